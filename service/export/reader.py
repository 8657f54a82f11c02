"""Reading locks back: each export format, or a succeeded job, as a neutral ``LockInput``.

A re-resolution takes a previous lock's entries as preferences (``service.resolution``), so the
three formats this package writes are read back here into one shape, ``LockedPackage`` (name,
version, index, marker, files), whatever wrote them:

- ``pylock``: PEP 751 TOML, validated by ``packaging.pylock``; an entry without a version (a
  directory or VCS source) is no pin and is skipped. ``environments`` and ``requires-python``
  say where the lock holds.
- ``requirements``: pip's requirements-file syntax as the ``requirements`` export and ``uv pip
  compile`` write it: ``name[extras]==version ; marker`` entries parsed by
  ``packaging.requirements``, ``--hash`` options, and uv's ``# from <index URL>`` annotation. The
  header's marker line (what the export writes under ``# for Python …``) says where it holds.
  Global options (``--index-url`` …) carry no pins and are skipped; ``-r``, ``-c`` and ``-e``
  cannot be followed from a lock sent as text and make it unreadable.
- ``pip-report``: pip's installation report (version "1"); ``environment`` says where it holds.

Every URL kept is redacted: the result is stored with the job. ``UnreadableLockError`` says,
for the user, why a lock cannot be read (bad TOML, an entry that is not a pin).
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator, Mapping
from pathlib import PurePosixPath
from urllib.parse import unquote, urlsplit

import msgspec
from packaging.markers import InvalidMarker, Marker
from packaging.pylock import Package, PackageSdist, PackageWheel, Pylock, PylockValidationError
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from service.diagnostics.redact import redact_text, redact_url
from service.export.source import format_marker_values, make_lock_source
from service.jobs.model import JobDocument
from service.resolution.request import LockedFile, LockedPackage, LockInput

__all__ = ["LOCK_READERS", "UnreadableLockError", "read_job_lock", "read_lock"]

_FOLLOWED_OPTIONS = frozenset({"-r", "--requirement", "-c", "--constraint", "-e", "--editable"})
_INDEX_ANNOTATION = "# from "


class UnreadableLockError(Exception):
    """The lock cannot be read; ``str(exc)`` says why (credentials redacted)."""

    def __init__(self, message: str) -> None:
        super().__init__(redact_text(message))


def _filename(url: str | None) -> str | None:
    if not url:
        return None
    name = PurePosixPath(unquote(urlsplit(url).path)).name
    return name or None


def _make_file(filename: str | None, url: str | None, hashes: Mapping[str, str]) -> LockedFile:
    return LockedFile(
        filename=filename or _filename(url),
        url=redact_url(url) if url else None,
        hashes={algorithm.lower(): value.lower() for algorithm, value in hashes.items()},
    )


# -- pylock.toml ------------------------------------------------------------------------------


def _pylock_files(package: Package) -> Iterator[LockedFile]:
    files: list[PackageWheel | PackageSdist] = [*(package.wheels or ())]
    if package.sdist is not None:
        files.append(package.sdist)
    for file in files:
        yield _make_file(file.name, file.url or file.path, file.hashes)


def read_pylock(content: str) -> LockInput:
    """A PEP 751 ``pylock.toml``."""
    try:
        lock = Pylock.from_dict(tomllib.loads(content))
    except tomllib.TOMLDecodeError as exc:
        raise UnreadableLockError(f"not valid TOML: {exc}") from exc
    except PylockValidationError as exc:
        raise UnreadableLockError(f"not a valid pylock.toml: {exc}") from exc
    return LockInput(
        format="pylock",
        packages=tuple(
            LockedPackage(
                name=package.name,
                version=str(package.version),
                index=redact_url(package.index).rstrip("/") if package.index else None,
                marker=str(package.marker) if package.marker else None,
                files=tuple(_pylock_files(package)),
            )
            for package in lock.packages
            if package.version is not None
        ),
        environments=tuple(str(marker) for marker in lock.environments or ()),
        requires_python=str(lock.requires_python) if lock.requires_python else None,
    )


# -- requirements.txt -------------------------------------------------------------------------


def _iter_lines(content: str) -> Iterator[tuple[int, str]]:
    """(first line number, logical line): ``\\`` continuations joined, comment lines kept
    whole (they carry the header marker and ``# from`` annotations)."""
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(content.splitlines(), start=1):
        stripped = raw.strip()
        if not pending:
            start = number
            if stripped.startswith("#"):
                yield number, stripped
                continue
        if stripped.endswith("\\"):
            pending.append(stripped[:-1])
            continue
        joined = " ".join([*pending, stripped]).strip()
        pending = []
        if joined:
            yield start, joined
    if pending and (joined := " ".join(pending).strip()):
        yield start, joined


def _split_options(line: str) -> tuple[str, list[str]]:
    """pip's split: the requirement runs up to the first token that starts with ``-``."""
    tokens = line.split()
    for position, token in enumerate(tokens):
        if token.startswith("-"):
            return " ".join(tokens[:position]), tokens[position:]
    return line, []


def _strip_comment(line: str) -> str:
    """The line without a trailing ``# …`` comment (pip: ``#`` after whitespace)."""
    for position, char in enumerate(line):
        if char == "#" and (position == 0 or line[position - 1].isspace()):
            return line[:position].rstrip()
    return line


def _hashes(options: list[str], where: str) -> dict[str, str]:
    hashes: dict[str, str] = {}
    values = iter(options)
    for option in values:
        name, _, value = option.partition("=")
        if name != "--hash":
            continue
        value = value or next(values, "")
        algorithm, sep, digest = value.partition(":")
        if not sep or not digest:
            raise UnreadableLockError(f"{where}: --hash must be ALGORITHM:DIGEST, got {value!r}")
        hashes[algorithm] = digest
    return hashes


def _pinned_version(requirement: Requirement, where: str) -> str:
    specifiers = list(requirement.specifier)
    if (
        requirement.url
        or len(specifiers) != 1
        or specifiers[0].operator not in ("==", "===")
        or specifiers[0].version.endswith(".*")
    ):
        raise UnreadableLockError(f"{where}: {requirement} is not a pin (name==version)")
    try:
        return str(Version(specifiers[0].version))
    except InvalidVersion as exc:
        raise UnreadableLockError(
            f"{where}: {requirement} does not pin a valid version ({exc})"
        ) from exc


def _header_marker(comment: str) -> str | None:
    """The marker of a header comment line, if the whole line is one."""
    text = comment.lstrip("#").strip()
    if not text:
        return None
    try:
        return str(Marker(text))
    except InvalidMarker:
        return None


def read_requirements(content: str) -> LockInput:
    """A pinned ``requirements.txt`` (pip-tools, uv and resolvd's ``requirements`` export)."""
    packages: list[LockedPackage] = []
    environments: list[str] = []
    for number, logical in _iter_lines(content):
        where = f"line {number}"
        if logical.startswith("#"):
            if logical.startswith(_INDEX_ANNOTATION) and packages:
                index = logical.removeprefix(_INDEX_ANNOTATION).strip()
                packages[-1] = msgspec.structs.replace(
                    packages[-1], index=redact_url(index).rstrip("/")
                )
            elif not packages and not environments and (marker := _header_marker(logical)):
                environments.append(marker)
            continue
        line = _strip_comment(logical)
        if not line:
            continue
        if line.startswith("-"):
            option = line.split("=", 1)[0].split()[0]
            if option in _FOLLOWED_OPTIONS:
                raise UnreadableLockError(
                    f"{where}: {option} cannot be followed in a lock sent as text; "
                    "send the complete lock"
                )
            continue  # --index-url and friends carry no pins
        text, options = _split_options(line)
        try:
            requirement = Requirement(text)
        except InvalidRequirement as exc:
            raise UnreadableLockError(f"{where}: invalid requirement: {exc}") from exc
        packages.append(
            LockedPackage(
                name=canonicalize_name(requirement.name),
                version=_pinned_version(requirement, where),
                marker=str(requirement.marker) if requirement.marker else None,
                files=(_make_file(None, None, hashes),)
                if (hashes := _hashes(options, where))
                else (),
            )
        )
    return LockInput(
        format="requirements", packages=tuple(packages), environments=tuple(environments)
    )


# -- pip's installation report ----------------------------------------------------------------


class _ArchiveInfo(msgspec.Struct, frozen=True, kw_only=True):
    hashes: dict[str, str] | None = None
    hash: str | None = None


class _DownloadInfo(msgspec.Struct, frozen=True, kw_only=True):
    url: str
    archive_info: _ArchiveInfo | None = None


class _ReportMetadata(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    version: str


class _ReportItem(msgspec.Struct, frozen=True, kw_only=True):
    metadata: _ReportMetadata
    download_info: _DownloadInfo | None = None


class _Report(msgspec.Struct, frozen=True, kw_only=True):
    version: str
    install: list[_ReportItem]
    environment: dict[str, str] = msgspec.field(default_factory=dict)


def _report_file(info: _DownloadInfo | None) -> tuple[LockedFile, ...]:
    if info is None:
        return ()
    archive = info.archive_info or _ArchiveInfo()
    hashes = dict(archive.hashes or {})
    if archive.hash and "=" in archive.hash:
        algorithm, _, digest = archive.hash.partition("=")
        hashes.setdefault(algorithm, digest)
    return (_make_file(None, info.url, hashes),)


def read_pip_report(content: str) -> LockInput:
    """pip's installation report, format version "1"."""
    try:
        report = msgspec.json.decode(content, type=_Report)
    except msgspec.DecodeError as exc:
        raise UnreadableLockError(f"not a pip installation report: {exc}") from exc
    if report.version != "1":
        raise UnreadableLockError(
            f"pip installation report version {report.version!r} is not supported (only '1')"
        )
    packages = []
    for position, item in enumerate(report.install):
        where = f"install[{position}].metadata"
        try:
            version = str(Version(item.metadata.version))
        except InvalidVersion as exc:
            raise UnreadableLockError(f"{where}.version: {exc}") from exc
        packages.append(
            LockedPackage(
                name=canonicalize_name(item.metadata.name),
                version=version,
                files=_report_file(item.download_info),
            )
        )
    environment = format_marker_values(report.environment)
    return LockInput(
        format="pip-report",
        packages=tuple(packages),
        environments=(str(Marker(environment)),) if environment else (),
    )


LOCK_READERS = {
    "pylock": read_pylock,
    "requirements": read_requirements,
    "pip-report": read_pip_report,
}


def read_lock(lock_format: str, content: str) -> LockInput:
    """``content`` in ``lock_format`` as a ``LockInput``; raise ``UnreadableLockError``."""
    return LOCK_READERS[lock_format](content)


def read_job_lock(document: JobDocument, index_urls: Mapping[str, str]) -> LockInput:
    """A succeeded job's resolution as a ``LockInput`` (``index_urls``: configured names to
    URLs); raises ``NotSucceededError`` for a job without one."""
    source = make_lock_source(document, index_urls)
    return LockInput(
        format="job",
        job=document.id,
        packages=tuple(
            LockedPackage(
                name=package.name,
                version=package.version,
                index=(source.index_url(package) or package.index).rstrip("/"),
                marker=package.markers,
                files=tuple(
                    _make_file(file.filename, file.url, file.hashes)
                    for file in source.files(package)
                ),
            )
            for package in source.packages
        ),
        environments=tuple(str(Marker(marker)) for marker in source.environments()),
        requires_python=source.requires_python(),
    )
