"""PEP 751 ``pylock.toml``: the resolution as a lock file pip and uv install from.

One ``[[packages]]`` entry per resolved package, with the index it came from, the chosen file
(``wheels`` or ``sdist``: url, hashes, size, upload-time) and ``dependencies`` naming the other
entries it needs. The lock holds for one target, which ``environments`` and ``requires-python``
say, so an installer refuses it elsewhere. A package's own ``requires-python`` is kept only when
the target satisfies it: the resolver ignores upper bounds (as uv does), and writing a cap the
target breaks would make the lock uninstallable where it was made for.

The document is built with ``packaging.pylock`` and validated by reading the written TOML back
through ``Pylock.from_dict``, so what leaves here is what an installer's parser accepts.
"""

from __future__ import annotations

import tomllib
from datetime import datetime

import tomli_w
from packaging.markers import Marker
from packaging.pylock import Package, PackageSdist, PackageWheel, Pylock
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

from service.diagnostics.redact import redact_url
from service.export.source import CREATED_BY, LockSource, MissingHashError
from service.resolution.result import FileRef, ResolvedPackage

__all__ = ["format_pylock"]

LOCK_VERSION = "1.0"


def _upload_time(file: FileRef) -> datetime | None:
    if not file.upload_time:
        return None
    try:
        return datetime.fromisoformat(file.upload_time)
    except ValueError:
        return None


def _requires_python(source: LockSource, package: ResolvedPackage) -> SpecifierSet | None:
    if not package.requires_python:
        return None
    try:
        specifiers = SpecifierSet(package.requires_python)
    except InvalidSpecifier:
        return None
    lowest = source.lowest_python()
    return specifiers if specifiers.contains(lowest, prereleases=True) else None


def _make_file(package: ResolvedPackage, file: FileRef) -> PackageWheel | PackageSdist:
    if not file.hashes:
        raise MissingHashError(package, file)
    kind = PackageWheel if file.filename.endswith(".whl") else PackageSdist
    return kind(
        name=file.filename,
        url=redact_url(file.url),
        hashes=dict(sorted(file.hashes.items())),
        size=file.size,
        upload_time=_upload_time(file),
    )


def _make_package(source: LockSource, package: ResolvedPackage) -> Package:
    files = [_make_file(package, file) for file in source.files(package)]
    wheels = [file for file in files if isinstance(file, PackageWheel)]
    sdists = [file for file in files if isinstance(file, PackageSdist)]
    return Package(
        name=canonicalize_name(package.name),
        version=Version(package.version),
        marker=Marker(package.markers) if package.markers else None,
        requires_python=_requires_python(source, package),
        dependencies=[{"name": name} for name in package.dependencies] or None,
        index=source.index_url(package),
        wheels=wheels or None,
        sdist=sdists[0] if sdists else None,
    )


def format_pylock(source: LockSource) -> str:
    """The resolution as ``pylock.toml`` text; raises ``MissingHashError`` for a hashless file."""
    environment = source.request.environment
    lock = Pylock(
        lock_version=Version(LOCK_VERSION),
        created_by=CREATED_BY,
        environments=[Marker(marker) for marker in source.environments()] or None,
        requires_python=SpecifierSet(source.requires_python()),
        packages=[_make_package(source, package) for package in source.packages],
        tool={
            CREATED_BY: {"job": source.job_id, "universal": True}
            if source.universal
            else {
                "job": source.job_id,
                "python-version": environment.python_version,
                "platform": environment.platform,
            }
        },
    )
    text = tomli_w.dumps(dict(lock.to_dict()))
    Pylock.from_dict(tomllib.loads(text))
    return text
