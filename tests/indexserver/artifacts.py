"""Turn an ``IndexSpec`` into the bytes an index serves: real wheels, sdists and METADATA files.

Archives are deterministic (fixed timestamps, sorted members), so the same spec always yields
the same hashes, ETags and file sizes, across processes too.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import tarfile
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from packaging.requirements import InvalidRequirement, Requirement
from packaging.tags import parse_tag
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.indexserver.model import IndexSpec, Project, Release

__all__ = [
    "BuiltIndex",
    "BuiltProject",
    "DistFile",
    "make_index",
    "make_metadata",
    "make_sdist",
    "make_wheel",
    "requirement_for_extra",
]

WHEEL_METADATA_VERSION = "2.1"
_ZIP_EPOCH = (2020, 2, 2, 0, 0, 0)
_TAR_EPOCH = 1_580_601_600  # 2020-02-02, same instant as _ZIP_EPOCH


@dataclass(frozen=True)
class DistFile:
    """One file on a project page, with what the page says about it."""

    filename: str
    content: bytes
    requires_python: str | None
    yanked: bool | str
    upload_time: str | None
    # The PEP 658 sidecar, when this file advertises one.
    metadata: bytes | None

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()

    @property
    def metadata_sha256(self) -> str | None:
        return None if self.metadata is None else hashlib.sha256(self.metadata).hexdigest()


@dataclass(frozen=True)
class BuiltProject:
    name: str
    normalized: str
    versions: tuple[str, ...]
    files: tuple[DistFile, ...]


@dataclass(frozen=True)
class BuiltIndex:
    spec: IndexSpec
    projects: Mapping[str, BuiltProject]  # by normalized name
    files: Mapping[str, bytes]  # by file name, ``.metadata`` sidecars included


def _escape(component: str) -> str:
    """A name or version as it appears in a file name (PEP 427, sdist naming spec)."""
    return component.replace("-", "_")


def _dist_name(name: str) -> str:
    return _escape(canonicalize_name(name))


def requirement_for_extra(requirement: str, extra: str) -> str:
    """``requirement`` guarded by ``extra == "<extra>"``, keeping any marker it already has."""
    guard = f'extra == "{extra}"'
    try:
        parsed = Requirement(requirement)
    except InvalidRequirement:
        # Published as written so a test can serve broken metadata; the guard still attaches.
        return f"{requirement}; {guard}"
    if parsed.marker is None:
        return f"{parsed}; {guard}"
    marker = parsed.marker
    parsed.marker = None
    return f"{parsed}; ({marker}) and {guard}"


def make_metadata(
    name: str,
    release: Release,
    *,
    metadata_version: str = WHEEL_METADATA_VERSION,
    dynamic: Sequence[str] = (),
) -> bytes:
    """Core metadata (the METADATA / PKG-INFO email-header format) for one release."""
    lines = [
        f"Metadata-Version: {metadata_version}",
        f"Name: {name}",
        f"Version: {release.version}",
    ]
    lines += [f"Dynamic: {field}" for field in dynamic]
    if release.requires_python is not None:
        lines.append(f"Requires-Python: {release.requires_python}")
    lines += [f"Requires-Dist: {requirement}" for requirement in release.requires]
    for extra, requirements in release.extras.items():
        lines.append(f"Provides-Extra: {extra}")
        lines += [f"Requires-Dist: {requirement_for_extra(r, extra)}" for r in requirements]
    return ("\n".join(lines) + "\n\n").encode()


def _record_hash(content: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(content).digest()).rstrip(b"=")
    return f"sha256={digest.decode()}"


def _wheel_file(tag: str) -> bytes:
    tags = sorted(str(t) for t in parse_tag(tag))
    purelib = all(t.endswith("-any") for t in tags)
    lines = [
        "Wheel-Version: 1.0",
        "Generator: resolvd-indexserver",
        f"Root-Is-Purelib: {'true' if purelib else 'false'}",
        *(f"Tag: {t}" for t in tags),
    ]
    return ("\n".join(lines) + "\n").encode()


def make_wheel(name: str, release: Release, tag: str) -> tuple[str, bytes, bytes]:
    """A real wheel for ``release`` with ``tag``: ``(filename, wheel bytes, METADATA bytes)``."""
    dist, version = _dist_name(name), _escape(release.version)
    dist_info = f"{dist}-{version}.dist-info"
    metadata = make_metadata(name, release)
    members = {
        f"{dist}/__init__.py": f'__version__ = "{release.version}"\n'.encode(),
        f"{dist_info}/METADATA": metadata,
        f"{dist_info}/WHEEL": _wheel_file(tag),
    }
    record = "".join(f"{path},{_record_hash(data)},{len(data)}\n" for path, data in members.items())
    members[f"{dist_info}/RECORD"] = (record + f"{dist_info}/RECORD,,\n").encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path, data in members.items():
            info = zipfile.ZipInfo(path, date_time=_ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)
    return f"{dist}-{version}-{tag}.whl", buffer.getvalue(), metadata


def _pyproject(name: str, release: Release) -> bytes:
    def quoted(values: Sequence[str]) -> str:
        return "[" + ", ".join(_toml_string(v) for v in values) + "]"

    lines = [
        "[build-system]",
        'requires = ["setuptools>=69"]',
        'build-backend = "setuptools.build_meta"',
    ]
    lines += [
        "",
        "[project]",
        f"name = {_toml_string(name)}",
        f"version = {_toml_string(release.version)}",
    ]
    if release.requires_python is not None:
        lines.append(f"requires-python = {_toml_string(release.requires_python)}")
    if "Requires-Dist" in release.sdist_dynamic:
        lines.append('dynamic = ["dependencies", "optional-dependencies"]')
    else:
        lines.append(f"dependencies = {quoted(release.requires)}")
        if release.extras:
            lines += ["", "[project.optional-dependencies]"]
            lines += [f"{_toml_string(x)} = {quoted(reqs)}" for x, reqs in release.extras.items()]
    return ("\n".join(lines) + "\n").encode()


def _toml_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def make_sdist(name: str, release: Release) -> tuple[str, bytes]:
    """A real ``.tar.gz`` sdist with PKG-INFO and pyproject.toml: ``(filename, bytes)``."""
    dist, version = _dist_name(name), _escape(release.version)
    root = f"{dist}-{version}"
    # ``Dynamic`` only exists from Metadata-Version 2.2 on.
    dynamic_allowed = Version(release.sdist_metadata_version) >= Version("2.2")
    pkg_info = make_metadata(
        name,
        release,
        metadata_version=release.sdist_metadata_version,
        dynamic=release.sdist_dynamic if dynamic_allowed else (),
    )
    generated: dict[str, bytes | None] = {
        f"{root}/PKG-INFO": pkg_info,
        f"{root}/pyproject.toml": _pyproject(name, release),
        f"{root}/{dist}/__init__.py": f'__version__ = "{release.version}"\n'.encode(),
    }
    for path, text in release.sdist_files.items():
        generated[f"{root}/{path}"] = None if text is None else text.encode()
    members = {path: data for path, data in generated.items() if data is not None}
    buffer = io.BytesIO()
    # mtime=0 in the gzip header keeps the bytes stable between builds.
    with (
        gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as compressed,
        tarfile.open(fileobj=compressed, mode="w", format=tarfile.PAX_FORMAT) as archive,
    ):
        for path, data in members.items():
            info = tarfile.TarInfo(path)
            info.size, info.mtime, info.mode = len(data), _TAR_EPOCH, 0o644
            archive.addfile(info, io.BytesIO(data))
    return f"{root}.tar.gz", buffer.getvalue()


def _iter_files(project: Project, release: Release) -> Iterator[DistFile]:
    def make_file(filename: str, content: bytes, metadata: bytes | None) -> DistFile:
        return DistFile(
            filename=filename,
            content=content,
            requires_python=release.requires_python,
            yanked=release.yanked,
            upload_time=release.upload_time,
            metadata=metadata,
        )

    if release.wheel:
        for tag in release.wheel_tags:
            filename, content, metadata = make_wheel(project.name, release, tag)
            yield make_file(filename, content, metadata if release.pep658 else None)
    if release.sdist:
        filename, content = make_sdist(project.name, release)
        # Like PyPI, only wheels get a PEP 658 sidecar: an sdist's metadata may be dynamic.
        yield make_file(filename, content, None)
    for filename, content in release.prebuilt:
        yield make_file(filename, content, None)


def make_index(spec: IndexSpec) -> BuiltIndex:
    """Build every file of every release in ``spec``."""
    projects: dict[str, BuiltProject] = {}
    files: dict[str, bytes] = {}
    for project in spec.projects:
        normalized = canonicalize_name(project.name)
        if normalized in projects:
            raise ValueError(f"index {spec.name!r} lists project {normalized!r} twice")
        built = tuple(f for release in project.releases for f in _iter_files(project, release))
        for dist_file in built:
            if dist_file.filename in files:
                raise ValueError(f"index {spec.name!r} would serve {dist_file.filename} twice")
            files[dist_file.filename] = dist_file.content
            if dist_file.metadata is not None:
                files[f"{dist_file.filename}.metadata"] = dist_file.metadata
        projects[normalized] = BuiltProject(
            name=project.name,
            normalized=normalized,
            versions=tuple(release.version for release in project.releases),
            files=built,
        )
    return BuiltIndex(spec=spec, projects=projects, files=files)
