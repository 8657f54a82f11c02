"""What every export reads: a succeeded job's resolution, its target and where its indexes live.

``make_lock_source`` is the one gate between a job document and the formats: it refuses a job
without a resolution, works out the target environment the resolution was made for, and knows
each index's URL (redacted: no export ever writes a credential). The formats share the helpers
below so that they agree on what the index of a package is and how the target is described.

Errors::

    ExportError            an export cannot be made; the message is for the user
    ├── NotSucceededError  the job has no resolution (its status is not ``succeeded``)
    ├── NotUniversalError  the format describes one environment, the job a universal lock
    └── MissingHashError   a chosen file has no hash the format can pin
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from service.diagnostics.model import Code
from service.diagnostics.redact import redact_url
from service.index.urls import AmbiguousURLError
from service.jobs.model import JobDocument
from service.resolution.environment import (
    TargetEnvironment,
    make_target_environment,
    python_lower_bound,
)
from service.resolution.indexes import url_index_location
from service.resolution.request import IndexRef, ResolveRequest
from service.resolution.result import FileRef, Resolution, ResolvedPackage

__all__ = [
    "CREATED_BY",
    "ExportError",
    "LockSource",
    "MissingHashError",
    "NotSucceededError",
    "NotUniversalError",
    "format_marker_values",
    "make_lock_source",
]

CREATED_BY = "resolvd"

# The order in which marker values describe the target in ``environments`` and headers.
_TARGET_MARKERS = ("python_version", "implementation_name", "sys_platform", "platform_machine")


def format_marker_values(values: Mapping[str, str]) -> str:
    """A PEP 508 marker holding exactly where an environment has these marker ``values``, by
    the keys that describe a target (``""`` when ``values`` names none of them)."""
    return " and ".join(
        f"{key} == {value!r}"
        for key in _TARGET_MARKERS
        if (value := values.get(key)) is not None and not ("'" in value and '"' in value)
    )


def _either(words: Sequence[str]) -> str:
    """``a, b or c``."""
    return f"{', '.join(words[:-1])} or {words[-1]}" if len(words) > 1 else "".join(words)


class ExportError(Exception):
    """An export cannot be made from this job; ``str(exc)`` tells the user why."""


class NotSucceededError(ExportError):
    """The job has no resolution to export; ``status`` is what it is instead."""

    def __init__(self, job_id: str, status: str, failure_kind: str | None) -> None:
        why = f"{status} ({failure_kind})" if failure_kind and status == "failed" else status
        super().__init__(
            f"Job {job_id!r} is {why}: a lock exists only for a job that has succeeded."
        )
        self.status = status


class NotUniversalError(ExportError):
    """The format describes one installation environment; a universal lock holds for many."""

    def __init__(self, job_id: str, format_name: str) -> None:
        super().__init__(
            f"Job {job_id!r} is a universal lock: {format_name} describes one environment; "
            "export it as pylock or requirements instead."
        )


class MissingHashError(ExportError):
    """A chosen file has no hash of the kinds a format accepts (PEP 751 and pip require one)."""

    def __init__(
        self, package: ResolvedPackage, file: FileRef, algorithms: Sequence[str] = ()
    ) -> None:
        kinds = f"{_either(algorithms)} hash" if algorithms else "hash"
        super().__init__(
            f"{package.name} {package.version}: the index published no {kinds} for "
            f"{file.filename}, and this format pins every file by hash."
        )
        self.package = package.name


def _url_index_location(ref: IndexRef) -> str:
    """Where the job read the index ``ref`` names by URL (its packages' ``index``); as spelled
    for a job made before URLs were normalized that holds a spelling now refused."""
    url, index_format = ref.url or "", ref.format or "simple"
    try:
        return url_index_location(url, index_format)
    except AmbiguousURLError:
        return url if index_format == "flat" else url.rstrip("/")


@dataclass(frozen=True)
class LockSource:
    """A succeeded job's resolution and what surrounds it.

    ``index_urls`` maps configured index names to their URLs, already redacted; a package whose
    ``index`` is not a configured name was resolved from an index the request named by URL, and
    that (redacted) URL is its name. ``flat_names`` are the configured indexes that are flat
    pages of links (``--find-links``), not simple indexes.
    """

    job_id: str
    request: ResolveRequest
    resolution: Resolution
    target: TargetEnvironment
    index_urls: Mapping[str, str]
    flat_names: frozenset[str] = frozenset()

    @property
    def universal(self) -> bool:
        """Whether the lock holds for a domain of environments rather than one target."""
        return self.request.universal

    @property
    def packages(self) -> list[ResolvedPackage]:
        """The resolved packages, sorted by name then version (every format lists them so)."""
        return sorted(
            self.resolution.packages, key=lambda package: (package.name, Version(package.version))
        )

    @staticmethod
    def files(package: ResolvedPackage) -> list[FileRef]:
        """Every file of ``package`` the lock allows (older results list only ``file``)."""
        if package.files:
            return list(package.files)
        return [package.file] if package.file is not None else []

    def index_url(self, package: ResolvedPackage) -> str | None:
        """The (redacted) URL of the index ``package`` came from, or None if unknown (or a
        direct URL requirement's: no index was asked for it)."""
        if package.direct:
            return None
        if package.index in self.index_urls:
            return self.index_urls[package.index]
        if urlsplit(package.index).scheme in ("http", "https"):
            return redact_url(package.index)
        return None

    def iter_index_urls(self) -> Iterator[str]:
        """The URLs of the indexes the packages came from, in the request's priority order."""
        used = {url for package in self.resolution.packages if (url := self.index_url(package))}
        # A request that named no index used every configured one, in configuration order.
        ranked = [ref.name or _url_index_location(ref) for ref in self.request.indexes]
        seen: set[str] = set()
        for name in ranked or list(self.index_urls):
            url = self.index_urls[name] if name in self.index_urls else redact_url(name)
            if url in used and url not in seen:
                seen.add(url)
                yield url
        yield from sorted(used - seen)

    def is_flat(self, url: str) -> bool:
        """Whether the index at ``url`` (as ``iter_index_urls`` gives it) is a flat page."""
        configured = (self.index_urls.get(name) for name in self.flat_names)
        named = (
            redact_url(_url_index_location(r))
            for r in self.request.indexes
            if r.format == "flat" and r.url
        )
        return url in {*configured, *named}

    def target_marker(self) -> str:
        """A PEP 508 marker that holds exactly on the target the resolution was made for."""
        return format_marker_values(self.target.markers)

    def environments(self) -> list[str]:
        """The markers of the environments the lock is for (none: a universal lock for all)."""
        if self.universal:
            return list(self.resolution.environments or ())
        return [self.target_marker()]

    def describe_target(self) -> str:
        """``Python 3.12 on x86_64-manylinux_2_28``: the target in words."""
        if self.universal:
            where = " or ".join(self.environments()) or "every platform"
            return f"Python {self.requires_python()} on {where} (universal)"
        return f"Python {self.request.environment.python_version} on {self.target.platform_name}"

    def requires_python(self) -> str:
        """The Python versions the lock holds for: a universal lock's range, or the target's
        minor series from its patch."""
        if self.universal and self.resolution.requires_python:
            return self.resolution.requires_python
        version = self.request.environment.python_version
        series = f"=={self.target.python_version}.*"
        return series if version == self.target.python_version else f"{series},>={version}"

    def lowest_python(self) -> Version:
        """The lowest Python the lock holds for (a universal lock's lower bound)."""
        if self.universal and self.resolution.requires_python:
            bound = python_lower_bound(self.resolution.requires_python)
            versions = [Version(spec.version.removesuffix(".*")) for spec in bound or ()]
            if versions:
                return max(versions)
        return self.target.python

    def is_yanked(self, package: ResolvedPackage) -> bool:
        """Whether the chosen version is yanked (used only because the request pinned it)."""
        return any(
            warning.code == Code.YANKED
            and warning.package == package.name
            and warning.version == package.version
            for warning in self.resolution.warnings
        )

    def requested_extras(self, package: ResolvedPackage) -> list[str]:
        """The extras the request itself asked for on ``package`` (not those of dependents)."""
        named = _iter_naming(self.request.requirements, package.name)
        return sorted({str(canonicalize_name(extra)) for line in named for extra in line.extras})

    def constrained(self, package: ResolvedPackage) -> bool:
        """Whether a constraint line of the request names ``package``."""
        return any(_iter_naming(self.request.constraints, package.name))


def _iter_naming(lines: Sequence[str], name: str) -> Iterator[Requirement]:
    """The requirement lines that name the project ``name`` (a canonical name)."""
    for line in lines:
        try:
            requirement = Requirement(line)
        except InvalidRequirement:  # the API validated every line; an old job may differ
            continue
        if canonicalize_name(requirement.name) == name:
            yield requirement


def make_lock_source(
    document: JobDocument, index_urls: Mapping[str, str], *, flat_names: Collection[str] = ()
) -> LockSource:
    """The export input for ``document``; raises ``NotSucceededError`` without a resolution.

    ``index_urls`` maps configured index names to URLs; they are redacted here. ``flat_names``
    are the configured flat indexes.
    """
    if document.status != "succeeded" or document.result is None:
        kind = document.failure.kind if document.failure else None
        raise NotSucceededError(document.id, document.status, kind)
    environment = document.request.environment
    return LockSource(
        job_id=document.id,
        request=document.request,
        resolution=document.result,
        target=make_target_environment(environment.python_version, environment.platform),
        index_urls={name: redact_url(url) for name, url in index_urls.items()},
        flat_names=frozenset(flat_names),
    )
