"""The finder: which versions of a project exist, which file each would use, and why not.

The finder is the resolver's only door to the network. It reads project pages across the job's
indexes under its ``index_strategy``, picks the best file per version for the target (wheel by tag
priority, else a static-metadata sdist), loads core metadata lazily as the resolver reaches a
candidate, and records every version it had to pass over with the reason, so a failure can be
explained from what was actually learned rather than guessed afterwards.
"""

from __future__ import annotations

import asyncio
import functools
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import InvalidVersion, Version

from service.diagnostics.model import Code, Diagnostic, Severity
from service.index.errors import HTTPStatusError, IndexFetchError
from service.index.models import CoreMetadata, DistFile, Index, ProjectPage
from service.resolution.bridge import FetchBridge
from service.resolution.candidates import (
    Candidate,
    ExplicitRequirement,
    ResolverRequirement,
    SpecifierRequirement,
)
from service.resolution.fetch_errors import (
    FatalFetchError,
    describe_status,
    make_metadata_diagnostic,
    make_page_diagnostic,
    metadata_reason,
)
from service.resolution.preferences import Preferences
from service.resolution.request import ResolveRequest
from service.resolution.result import Reason, VersionRejection
from service.resolution.scope import Scope

if TYPE_CHECKING:
    from service.index import FetchStats, IndexClient

__all__ = ["Finder", "ProjectVersions", "VersionEntry"]

# Reasons whose detail (the file's Requires-Python or upload time) the finder records.
_DETAILED = (Reason.REQUIRES_PYTHON, Reason.EXCLUDE_NEWER)
# When several files of a version are unusable, the reason reported is the most telling one.
_REASON_PRIORITY = (
    Reason.REQUIRES_PYTHON,
    Reason.EXCLUDE_NEWER,
    Reason.NO_BINARY,
    Reason.ONLY_BINARY,
    Reason.NO_COMPATIBLE_WHEELS,
)


@functools.lru_cache(maxsize=65536)
def _parse_requirement(line: str) -> Requirement:
    """A Requires-Dist line, parsed once per process: the same lines recur in every job.

    Callers never mutate the result; it is shared by every job of the worker.
    """
    return Requirement(line)


@dataclass
class VersionEntry:
    """One version of a project on one index, with its chosen file or why none is usable."""

    version: Version
    index: Index
    file: DistFile | None
    rejection: Reason | None = None
    detail: str | None = None
    yanked: bool = False
    yanked_reason: str | None = None
    wheel_tags: tuple[str, ...] = ()
    # Every file of the version usable somewhere in scope, best first (``file`` is the first).
    files: tuple[DistFile, ...] = ()


@dataclass
class ProjectVersions:
    name: NormalizedName
    entries: list[VersionEntry]
    found_on: list[Index]
    missing_on: list[Index]


@dataclass
class _Records:
    """What the search learned, for warnings and the failure explanation."""

    rejections: dict[str, dict[str, VersionRejection]] = field(
        default_factory=lambda: defaultdict(dict)
    )
    excluded_prereleases: dict[str, set[Version]] = field(default_factory=lambda: defaultdict(set))
    warnings: list[Diagnostic] = field(default_factory=list)
    fetch_errors: list[Diagnostic] = field(default_factory=list)
    dependencies: dict[tuple[str, str], list[Requirement]] = field(default_factory=dict)


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _matches(names: frozenset[str], name: str) -> bool:
    return ":all:" in names or name in names


class Finder:
    """Versions, candidates and dependencies for one job; runs in the resolver thread."""

    def __init__(
        self,
        request: ResolveRequest,
        *,
        indexes: Sequence[Index],
        client: IndexClient,
        stats: FetchStats,
        bridge: FetchBridge,
        scope: Scope,
        root_names: frozenset[str],
        yank_pins: dict[str, set[Version]],
        explicit_prerelease: frozenset[str],
        overrides: dict[str, list[Requirement]],
        preferences: Preferences | None = None,
    ) -> None:
        self._request = request
        self._indexes = list(indexes)
        self._client = client
        self._stats = stats
        self._bridge = bridge
        self._scope = scope
        self._root_names = root_names
        self._yank_pins = yank_pins
        self._explicit_prerelease = explicit_prerelease
        self._overrides = overrides
        self._preferences = preferences or Preferences()
        self._no_binary = frozenset(
            canonicalize_name(n) if n != ":all:" else n for n in request.no_binary
        )
        self._only_binary = frozenset(
            canonicalize_name(n) if n != ":all:" else n for n in request.only_binary
        )
        self._cutoff = _parse_time(request.exclude_newer)
        self._versions: dict[str, ProjectVersions] = {}
        self._metadata: dict[tuple[str, str], CoreMetadata | None] = {}
        self._candidates: dict[tuple[str, Version, frozenset[str]], Candidate] = {}
        self._warned: set[tuple[str, ...]] = set()
        self.records = _Records()

    # -- project pages -------------------------------------------------------------------

    def _page_future(self, index: Index, name: str) -> object:
        client, stats = self._client, self._stats
        return self._bridge.schedule(
            ("page", index.url, name),
            lambda: client.find_project_page(index, name, stats=stats),
        )

    def prefetch(self, name: str) -> None:
        """Start fetching ``name``'s page from the first index, then the metadata of the
        version the resolver will most likely pick, without waiting for either."""
        if name in self._versions or not self._indexes:
            return
        index = self._indexes[0]
        if self._client.peek_project_page(index, name) is not None:
            return  # at hand already: the resolver takes it without a round trip
        page = self._page_future(index, name)
        self._bridge.schedule(
            ("prefetch", index.url, name),
            lambda: self._prefetch_metadata(index, name, page),
        )

    async def _prefetch_metadata(self, index: Index, name: str, page_future: Any) -> None:
        """On the event loop: once the page is in, start the likeliest version's metadata, and
        once that is in, prefetch the pages of its dependencies."""
        try:
            page: ProjectPage = await asyncio.wrap_future(page_future)
        except IndexFetchError:
            return  # the resolver meets the same error when it asks, and reports it there
        entries = sorted(
            self._make_entries(NormalizedName(name), index, page),
            key=lambda e: e.version,
            reverse=True,
        )
        stable, pre = self._order(name, entries)
        best = next((e for e in [*stable, *pre] if e.file and not e.yanked), None)
        if best is None or best.file is None:
            return
        file, client, stats = best.file, self._client, self._stats
        metadata_future = self._bridge.schedule(
            ("metadata", index.url, file.url),
            lambda: client.find_core_metadata(index, file, stats=stats),
        )
        try:
            metadata: CoreMetadata = await asyncio.wrap_future(metadata_future)
        except IndexFetchError:
            return
        # Walk on ahead of the resolver: the likeliest version's dependencies are the pages it
        # will ask for next, so the discovery of the tree runs breadth-first at network speed
        # instead of one resolver round at a time (uv does the same).
        for line in metadata.requires_dist:
            try:
                requirement = _parse_requirement(line)
            except InvalidRequirement:
                continue
            if self._scope.applies(requirement.marker, frozenset()) is not None:
                self.prefetch(canonicalize_name(requirement.name))

    @property
    def indexes(self) -> list[Index]:
        return list(self._indexes)

    def find_page_on(self, index: Index, name: str) -> ProjectPage | None:
        """``name``'s page on one index, or None when that index cannot give it."""
        try:
            page: ProjectPage = self._bridge.wait(self._page_future(index, name))  # type: ignore[arg-type]
        except IndexFetchError:
            return None
        return page

    def _find_pages(
        self, name: NormalizedName
    ) -> tuple[list[tuple[Index, ProjectPage]], list[Index]]:
        pages: list[tuple[Index, ProjectPage]] = []
        missing: list[Index] = []
        for index in self._indexes:
            try:
                page = self._client.peek_project_page(
                    index, name, stats=self._stats
                ) or self._bridge.wait(self._page_future(index, name))  # type: ignore[arg-type]
            except HTTPStatusError as error:
                if error.status == 404 or error.status in index.policy.page:
                    missing.append(index)
                    if error.status != 404:
                        self._warn_once(
                            ("page", index.name, name),
                            make_page_diagnostic(error, index, name, severity=Severity.WARNING),
                        )
                    continue
                raise FatalFetchError(
                    make_page_diagnostic(error, index, name), "index_error"
                ) from error
            except IndexFetchError as error:
                raise FatalFetchError(
                    make_page_diagnostic(error, index, name), "index_error"
                ) from error
            pages.append((index, page))
            if self._request.index_strategy == "first-index":
                break
        return pages, missing

    def find_versions(self, name: NormalizedName) -> ProjectVersions:
        """All versions of ``name`` across the job's indexes, best first, rejections noted."""
        known = self._versions.get(name)
        if known is not None:
            return known
        pages, missing = self._find_pages(name)
        by_version: dict[Version, VersionEntry] = {}
        for index, page in pages:
            for entry in self._make_entries(name, index, page):
                current = by_version.get(entry.version)
                if current is None or (current.file is None and entry.file is not None):
                    if current is not None and self._request.index_strategy == "unsafe-first-match":
                        continue
                    by_version[entry.version] = entry
                elif entry.file and self._preferences.prefers_index(name, entry.version, index):
                    by_version[entry.version] = entry  # the index it was locked from
        entries = sorted(by_version.values(), key=lambda e: e.version, reverse=True)
        for entry in entries:
            if entry.rejection is not None:
                self._reject(name, entry, entry.rejection, detail=entry.detail)
        versions = ProjectVersions(name, entries, [i for i, _ in pages], missing)
        self._versions[name] = versions
        return versions

    def _make_entries(
        self, name: NormalizedName, index: Index, page: ProjectPage
    ) -> Iterator[VersionEntry]:
        files: dict[Version, list[DistFile]] = defaultdict(list)
        for file in page.files:
            try:
                files[Version(file.version)].append(file)
            except InvalidVersion:
                continue
        for version, version_files in files.items():
            yield self._choose_file(name, index, version, version_files)

    def _file_problem(self, name: str, file: DistFile) -> Reason | None:
        if not self._scope.allows_python(file.requires_python):
            return Reason.REQUIRES_PYTHON
        if self._cutoff is not None:
            uploaded = _parse_time(file.upload_time)
            if uploaded is not None and uploaded > self._cutoff:
                return Reason.EXCLUDE_NEWER
        if file.kind == "wheel":
            if _matches(self._no_binary, name):
                return Reason.NO_BINARY
            if self._scope.wheel_rank(file.tags) is None:
                return Reason.NO_COMPATIBLE_WHEELS
        elif _matches(self._only_binary, name):
            return Reason.ONLY_BINARY
        return None

    def _choose_file(
        self, name: str, index: Index, version: Version, files: list[DistFile]
    ) -> VersionEntry:
        usable: list[tuple[tuple[int, int, int, int], DistFile]] = []
        problems: list[Reason] = []
        details: dict[Reason, str | None] = {}
        wheel_tags: list[str] = []
        for file in files:
            if file.kind == "wheel":
                wheel_tags.extend(file.tags)
            problem = self._file_problem(name, file)
            if problem is not None:
                problems.append(problem)
                details.setdefault(
                    problem,
                    file.requires_python if problem is Reason.REQUIRES_PYTHON else file.upload_time,
                )
                continue
            rank = self._scope.wheel_rank(file.tags) if file.kind == "wheel" else None
            locked = self._preferences.prefers_file(name, version, file)
            # Non-yanked first, then the locked file, then wheels by tag priority, then sdists.
            key = (int(file.yanked), int(not locked), 0 if rank is not None else 1, rank or 0)
            usable.append((key, file))
        if not usable:
            # Every file of a version is either usable or has a problem: ``problems`` is not empty.
            reason = min(problems, key=_REASON_PRIORITY.index)
            detail = details.get(reason) if reason in _DETAILED else None
            required = self._scope.required_environment
            if reason is Reason.NO_COMPATIBLE_WHEELS and required is not None:
                reason, detail = Reason.REQUIRED_ENVIRONMENT, required
            return VersionEntry(
                version, index, None, reason, detail=detail, wheel_tags=tuple(wheel_tags)
            )
        usable.sort(key=lambda item: item[0])
        best = usable[0][1]
        return VersionEntry(
            version,
            index,
            best,
            yanked=best.yanked,
            yanked_reason=best.yanked_reason,
            wheel_tags=tuple(wheel_tags),
            files=tuple(file for _, file in usable),
        )

    # -- candidates ----------------------------------------------------------------------

    def _order(
        self, name: str, entries: list[VersionEntry]
    ) -> tuple[list[VersionEntry], list[VersionEntry]]:
        """Stable versions and the pre-releases that may follow them, each in preference order;
        locked versions first (a locked pre-release too, unless pre-releases are banned)."""
        mode = self._request.resolution
        lowest = mode == "lowest" or (mode == "lowest-direct" and name in self._root_names)
        ordered = list(reversed(entries)) if lowest else list(entries)
        if self._request.prerelease == "allow":
            stable, pre = ordered, []
        else:
            stable = [e for e in ordered if not e.version.is_prerelease]
            pre = [e for e in ordered if e.version.is_prerelease]
        prerelease = self._request.prerelease
        banned = prerelease == "disallow" or (
            prerelease == "explicit" and name not in self._explicit_prerelease
        )
        return self._preferences.put_first(name, stable, pre, prereleases=not banned)

    def _prereleases_allowed(self, name: str, stable_found: bool) -> bool:
        mode = self._request.prerelease
        if mode == "if-necessary-or-explicit":
            return True
        if mode == "if-necessary":
            return not stable_found
        if mode == "explicit":
            return name in self._explicit_prerelease
        return False

    def iter_candidates(
        self, name: NormalizedName, extras: frozenset[str], accept: Callable[[Version], bool]
    ) -> Iterator[Candidate]:
        """Usable candidates in preference order; metadata is loaded as each is reached."""
        versions = self.find_versions(name)
        stable, pre = self._order(name, versions.entries)
        stable_found = False
        for entry in stable:
            if self._usable(name, entry, accept):
                stable_found = stable_found or not entry.version.is_prerelease
                yield self._candidate(name, entry, extras)
        allowed = self._prereleases_allowed(name, stable_found)
        for entry in pre:
            if entry.rejection is not None or not accept(entry.version):
                continue
            if not allowed:
                self.records.excluded_prereleases[name].add(entry.version)
                continue
            if self._usable(name, entry, accept):
                yield self._candidate(name, entry, extras)

    def first_choice(
        self, name: NormalizedName, accept: Callable[[Version], bool]
    ) -> VersionEntry | None:
        """The version the resolver would try first if every version were usable."""
        stable, pre = self._order(name, self.find_versions(name).entries)
        return next((entry for entry in [*stable, *pre] if accept(entry.version)), None)

    def _usable(self, name: str, entry: VersionEntry, accept: Callable[[Version], bool]) -> bool:
        if entry.rejection is not None or not accept(entry.version):
            return False
        if entry.yanked and entry.version not in self._yank_pins.get(name, set()):
            self._reject(name, entry, Reason.YANKED, detail=entry.yanked_reason)
            return False
        return self._load(name, entry)

    def _candidate(
        self, name: NormalizedName, entry: VersionEntry, extras: frozenset[str]
    ) -> Candidate:
        key = (name, entry.version, extras)
        candidate = self._candidates.get(key)
        if candidate is None:
            assert entry.file is not None
            candidate = Candidate(
                name, entry.version, entry.file, entry.index, extras, entry.yanked
            )
            self._candidates[key] = candidate
        return candidate

    def _reject(
        self,
        name: str,
        entry: VersionEntry,
        reason: Reason,
        *,
        status: int | None = None,
        detail: str | None = None,
    ) -> None:
        self.records.rejections[name][str(entry.version)] = VersionRejection(
            version=str(entry.version),
            reason=reason,
            status=status,
            index=entry.index.display_name,
            detail=detail,
        )

    def _warn_once(self, key: tuple[str, ...], diagnostic: Diagnostic) -> None:
        if key not in self._warned:
            self._warned.add(key)
            self.records.warnings.append(diagnostic)

    # -- metadata and dependencies -------------------------------------------------------

    def _load(self, name: str, entry: VersionEntry) -> bool:
        """Fetch and check core metadata for ``entry``; False (recorded) when unusable."""
        key = (name, str(entry.version))
        if key in self._metadata:
            return self._metadata[key] is not None
        file, index = entry.file, entry.index
        assert file is not None
        client, stats = self._client, self._stats
        metadata: CoreMetadata | None = None
        try:
            metadata = client.peek_core_metadata(index, file, stats=stats) or self._bridge.wait(
                self._bridge.schedule(
                    ("metadata", index.url, file.url),
                    lambda: client.find_core_metadata(index, file, stats=stats),
                )
            )
        except HTTPStatusError as error:
            if error.status not in index.policy.metadata:
                diagnostic = make_metadata_diagnostic(
                    error, index, name, str(entry.version), severity=Severity.ERROR
                )
                raise FatalFetchError(diagnostic, "metadata_error") from error
            self._reject(
                name,
                entry,
                Reason.METADATA_UNAVAILABLE,
                status=error.status,
                detail=describe_status(error.status, error.reason),
            )
            self.records.warnings.append(
                make_metadata_diagnostic(
                    error, index, name, str(entry.version), severity=Severity.WARNING
                )
            )
        except IndexFetchError as error:
            reason = metadata_reason(error)
            if reason is None:
                raise FatalFetchError(
                    make_metadata_diagnostic(
                        error, index, name, str(entry.version), severity=Severity.ERROR
                    ),
                    "metadata_error",
                ) from error
            self._reject(name, entry, reason, detail=error.message)
            self.records.warnings.append(
                make_metadata_diagnostic(
                    error, index, name, str(entry.version), severity=Severity.WARNING
                )
            )
        if metadata is not None and not self._scope.allows_python(metadata.requires_python):
            self._reject(name, entry, Reason.REQUIRES_PYTHON, detail=metadata.requires_python)
            metadata = None
        if metadata is not None:
            try:
                self.records.dependencies[key] = [
                    _parse_requirement(line) for line in metadata.requires_dist
                ]
            except InvalidRequirement as error:
                self._reject(name, entry, Reason.INVALID_METADATA, detail=str(error))
                self.records.warnings.append(
                    Diagnostic(
                        code=Code.INVALID_METADATA,
                        severity=Severity.WARNING,
                        message=f"{name}=={entry.version} declares an invalid requirement "
                        f"and was skipped: {error}",
                        package=name,
                        version=str(entry.version),
                        index=index.display_name,
                    )
                )
                metadata = None
        self._metadata[key] = metadata
        return metadata is not None

    def metadata(self, candidate: Candidate) -> CoreMetadata:
        metadata = self._metadata.get((candidate.name, str(candidate.version)))
        assert metadata is not None, "candidates are only made after their metadata loaded"
        return metadata

    def applies(self, requirement: Requirement) -> bool:
        """Whether a Requires-Dist line (without extras) applies anywhere in scope."""
        return self._scope.applies(requirement.marker, frozenset()) is not None

    def iter_dependencies(self, candidate: Candidate) -> Iterator[ResolverRequirement]:
        """The candidate's requirements for the target, overrides applied."""
        metadata = self.metadata(candidate)
        requirements = self.records.dependencies[(candidate.name, str(candidate.version))]
        if candidate.extras:
            yield ExplicitRequirement(candidate)
            provided = {canonicalize_name(extra) for extra in metadata.provides_extra}
            for extra in sorted(candidate.extras - provided):
                self._warn_once(
                    ("extra", candidate.name, str(candidate.version), extra),
                    Diagnostic(
                        code=Code.INVALID_METADATA,
                        severity=Severity.WARNING,
                        message=f"{candidate.name}=={candidate.version} does not provide the "
                        f"extra '{extra}'",
                        package=candidate.name,
                        version=str(candidate.version),
                        index=candidate.index.display_name,
                        data={"extra": extra},
                    ),
                )
        for requirement in requirements:
            where = self._scope.applies(requirement.marker, candidate.extras)
            if where is None:
                continue
            if canonicalize_name(requirement.name) == candidate.name and not requirement.extras:
                continue
            for replaced in self._overrides.get(canonicalize_name(requirement.name), [requirement]):
                yield SpecifierRequirement(replaced, parent=candidate, marker=where)

    def entry(self, candidate: Candidate) -> VersionEntry:
        """The version entry ``candidate`` was made from."""
        versions = self._versions[candidate.name]
        return next(e for e in versions.entries if e.version == candidate.version)

    @property
    def yanked_candidates(self) -> set[tuple[str, str]]:
        """(name, version) of yanked candidates offered because a direct ``==`` pinned them."""
        return {(c.name, str(c.version)) for c in self._candidates.values() if c.yanked}

    @property
    def known_versions(self) -> dict[str, ProjectVersions]:
        return self._versions
