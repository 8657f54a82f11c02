"""The finder: which versions of a project exist, which file each would use, and why not.

The finder is the resolver's only door to the network. It reads project pages across the job's
indexes under its ``index_strategy`` (a package the request's ``sources`` pins is read from that
index alone; an explicit index serves only the packages pinned to it), picks the best file per
version for the target (wheel by tag priority, else a static-metadata sdist:
``service.resolution.selection``), loads core metadata lazily as the resolver reaches a
candidate, and records every version it had to pass over with the reason, so a failure can be
explained from what was actually learned rather than guessed afterwards.

Everything is lazy, newest version first: a page's versions are known from its filenames, and
a version's files are judged only when the resolver reaches it (a real page lists thousands of
files; a resolution usually uses the first usable version). The verdicts are shared by every job
of the process that reads the same page for the same target (``find_page_versions``), and none
is computed on the event loop: the prefetcher judges in a worker thread.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

import msgspec
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

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
from service.resolution.direct import DirectFile, make_direct_index
from service.resolution.fetch_errors import (
    FatalFetchError,
    describe_status,
    make_direct_url_diagnostic,
    make_metadata_diagnostic,
    make_page_diagnostic,
    metadata_reason,
)
from service.resolution.identity import IdentityMemo
from service.resolution.markers import marker_extras
from service.resolution.preferences import Preferences
from service.resolution.request import ResolveRequest
from service.resolution.result import Reason, VersionRejection
from service.resolution.scope import Scope
from service.resolution.selection import (
    FileChoice,
    FileJudge,
    PageVersions,
    find_page_versions,
    parse_time,
)

if TYPE_CHECKING:
    from service.index import FetchStats, IndexClient

__all__ = ["Finder", "ProjectVersions", "VersionEntry"]

# Backtracking walks a project's versions one at a time, each waiting for its metadata. Once
# the metadata of this many of a project's versions has been fetched for the search, the next
# ones it would try are fetched together, this many ahead (uv prefetches in batches too).
_BATCH_AFTER = 5
_BATCH_AHEAD = 50


@functools.lru_cache(maxsize=65536)
def _parse_requirement(line: str) -> Requirement:
    """A Requires-Dist line, parsed once per process: the same lines recur in every job.

    Callers never mutate the result; it is shared by every job of the worker.
    """
    return Requirement(line)


def _prerelease_split(
    versions: Sequence[Version],
) -> tuple[tuple[Version, ...], tuple[Version, ...]]:
    """``versions``' stable releases and pre-releases, each in the given order."""
    stable = tuple(v for v in versions if not v.is_prerelease)
    return stable, tuple(v for v in versions if v.is_prerelease)


# By the version tuple's identity: a shared page's versions, which every job meets again (the
# split reads every version).
_remembered_split = IdentityMemo(_prerelease_split, size=4096)


def _split_prereleases(
    versions: Sequence[Version],
) -> tuple[tuple[Version, ...], tuple[Version, ...]]:
    # Only an immutable list's answer can be kept.
    if isinstance(versions, tuple):
        return _remembered_split(versions)
    return _prerelease_split(versions)


@dataclass(frozen=True, slots=True)
class VersionEntry:
    """One version of a project on one index, with its chosen file or why none is usable."""

    version: Version
    index: Index
    choice: FileChoice
    # The usable file this job takes: the judge's best, or the one a lock prefers.
    file: DistFile | None

    @property
    def rejection(self) -> Reason | None:
        return self.choice.rejection

    @property
    def detail(self) -> str | None:
        return self.choice.detail

    @property
    def yanked(self) -> bool:
        return self.file is not None and self.file.yanked

    @property
    def yanked_reason(self) -> str | None:
        return self.file.yanked_reason if self.file is not None else None

    @property
    def wheel_tags(self) -> tuple[str, ...]:
        return self.choice.wheel_tags

    @property
    def files(self) -> tuple[DistFile, ...]:
        """Every usable file of the version, best first (``file`` first)."""
        usable = self.choice.usable
        if not usable or self.file is usable[0]:
            return usable
        return (self.file, *(f for f in usable if f is not self.file)) if self.file else usable


class ProjectVersions:
    """Every version of a project across the job's indexes, newest first; entries on demand.

    ``entry(version)`` judges one version (on the first index that lists it usably, under the
    index strategy, or the one a lock took it from) once, calls ``on_entry`` with it, and
    returns it; ``None`` when no file of that version parses. ``entries`` judges them all, for
    a failure's explanation.

    ``tiers`` is the order the search tries versions in, tier by tier: one tier of every version
    newest first; under ``unsafe-first-match`` (``first_match``) one tier per index, each with
    the versions no earlier index lists, so the first index's versions are exhausted before a
    later index's are tried (uv's meaning).
    """

    def __init__(
        self,
        name: NormalizedName,
        sources: list[PageVersions],
        found_on: list[Index],
        missing_on: list[Index],
        *,
        first_match: bool,
        take: Callable[[Version, Index, FileChoice], VersionEntry],
        prefers_index: Callable[[Version, Index], bool],
        on_entry: Callable[[VersionEntry], None],
    ) -> None:
        self.name = name
        self.found_on = found_on
        self.missing_on = missing_on
        self._sources = list(zip(found_on, sources, strict=True))
        self._first_match = first_match
        self._take = take
        self._prefers_index = prefers_index
        self._on_entry = on_entry
        self._entries: dict[Version, VersionEntry | None] = {}
        if len(sources) == 1:
            self.versions: tuple[Version, ...] = sources[0].versions
            self.tiers = sources[0].tiers
        else:
            every = {v for source in sources for v in source.versions}
            self.versions = tuple(sorted(every, reverse=True))
            self.tiers = (self.versions,) if not first_match else _tiers(sources)

    @classmethod
    def from_entries(
        cls,
        name: NormalizedName,
        entries: Sequence[VersionEntry],
        found_on: list[Index],
        missing_on: list[Index],
    ) -> ProjectVersions:
        """Versions already judged (a record of a search, as tests write one)."""
        versions = cls(
            name,
            [],
            [],
            missing_on,
            first_match=False,
            take=lambda version, index, choice: VersionEntry(version, index, choice, choice.best),
            prefers_index=lambda version, index: False,
            on_entry=lambda entry: None,
        )
        versions.found_on = found_on
        versions._entries = {entry.version: entry for entry in entries}
        versions.versions = tuple(sorted(versions._entries, reverse=True))
        versions.tiers = (versions.versions,)
        return versions

    def entry(self, version: Version) -> VersionEntry | None:
        if version in self._entries:
            return self._entries[version]
        found: VersionEntry | None = None
        for index, source in self._sources:
            if not source.page.listing.lists(version):
                continue
            choice = source.choice(version)
            if not choice.usable and choice.rejection is None:
                continue  # no file of the version parses: it is not listed here
            candidate = self._take(version, index, choice)
            if found is None:
                found = candidate
            elif found.file is None and candidate.file is not None:
                if not self._first_match:
                    found = candidate
            elif candidate.file is not None and self._prefers_index(version, index):
                found = candidate  # the index it was locked from
            if found.file is not None and not self._locked(version):
                break  # no later index can take its place
        self._entries[version] = found
        if found is not None:
            self._on_entry(found)
        return found

    def _locked(self, version: Version) -> bool:
        """Whether a later index could still be the one a lock took ``version`` from."""
        return any(self._prefers_index(version, index) for index, _ in self._sources)

    @property
    def entries(self) -> list[VersionEntry]:
        return [e for version in self.versions if (e := self.entry(version)) is not None]


def _tiers(sources: Sequence[PageVersions]) -> tuple[tuple[Version, ...], ...]:
    """One tier per source: its versions (newest first) that no earlier source lists."""
    seen: set[Version] = set()
    tiers: list[tuple[Version, ...]] = []
    for source in sources:
        tier = tuple(v for v in source.versions if v not in seen)
        seen.update(tier)
        if tier:
            tiers.append(tier)
    return tuple(tiers)


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


def _extras_named(requires_dist: Sequence[str]) -> set[str]:
    """The extras a list of Requires-Dist lines conditions on (``extra == "x"`` markers):
    what static metadata provides, as uv infers for its ``dependency-metadata``."""
    named: set[str] = set()
    for line in requires_dist:
        marker = _parse_requirement(line).marker
        if marker is not None:
            named |= marker_extras(marker)
    return named


def _matches(names: frozenset[str], name: str) -> bool:
    return ":all:" in names or name in names


class _Versioned(NamedTuple):
    """A version as ``Preferences.put_first`` orders it (it reads ``.version``)."""

    version: Version


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
        direct: dict[str, DirectFile] | None = None,
    ) -> None:
        self._request = request
        self._direct = direct or {}
        self._direct_metadata: dict[tuple[str, str], CoreMetadata] = {}
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
        self._cutoff = parse_time(request.exclude_newer)
        self._static = {
            (m.name, None if m.version is None else Version(m.version)): m
            for m in request.dependency_metadata
        }
        self._judges: dict[tuple[bool, bool, datetime | None], FileJudge] = {}
        self._versions: dict[str, ProjectVersions] = {}
        self._metadata: dict[tuple[str, str], CoreMetadata | None] = {}
        self._candidates: dict[tuple[str, Version, frozenset[str]], Candidate] = {}
        # Per project: versions whose metadata the search waited for, and those asked ahead.
        self._waited: dict[str, int] = {}
        self._ahead: dict[str, set[Version]] = defaultdict(set)
        self._warned: set[tuple[str, ...]] = set()
        self._ordered: dict[
            str, tuple[Sequence[Sequence[Version]], Sequence[Version], Sequence[Version]]
        ] = {}
        self.records = _Records()

    # -- project pages -------------------------------------------------------------------

    def _page_future(self, index: Index, name: str) -> object:
        client, stats = self._client, self._stats
        return self._bridge.schedule(
            ("page", index.url, name),
            lambda: client.find_project_page(index, name, stats=stats),
        )

    def indexes_for(self, name: str) -> list[Index]:
        """The indexes ``name`` is looked up on, in order: the one ``sources`` pins it to, else
        every index that is not explicit."""
        pinned = self._request.sources.get(name)
        if pinned is not None:
            return [index for index in self._indexes if index.name == pinned.rstrip("/")]
        return [index for index in self._indexes if not index.explicit]

    def prefetch(self, name: str) -> None:
        """Start fetching ``name``'s page from its first index, then the metadata of the
        version the resolver will most likely pick, without waiting for either."""
        indexes = self.indexes_for(name)
        if name in self._versions or not indexes or name in self._direct:
            return
        index = indexes[0]
        if self._client.peek_project_page(index, name) is not None:
            return  # at hand already: the resolver takes it without a round trip
        page = self._page_future(index, name)
        self._bridge.schedule(
            ("prefetch", index.url, name),
            lambda: self._prefetch_metadata(index, name, page),
        )

    async def _prefetch_metadata(self, index: Index, name: str, page_future: Any) -> None:
        """Once the page is in, start the likeliest version's metadata, and once that is in,
        prefetch the pages of its dependencies. Runs on the event loop; the page is judged in a
        worker thread (the verdicts are kept for the resolver thread, which then finds them)."""
        try:
            page: ProjectPage = await asyncio.wrap_future(page_future)
        except IndexFetchError:
            return  # the resolver meets the same error when it asks, and reports it there
        file = await asyncio.to_thread(self._likeliest_file, NormalizedName(name), index, page)
        if file is None or self._request.no_deps or self._has_static(name):
            return  # nothing to walk on to, or metadata the request supplies
        metadata_future = self._schedule_metadata(index, file)
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
    def direct_names(self) -> frozenset[str]:
        """The names the job takes from a direct URL requirement."""
        return frozenset(self._direct)

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
        for index in self.indexes_for(name):
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
            if index.format == "flat" and not page.versions:
                missing.append(index)  # a flat page lists every project it has files of
                continue
            pages.append((index, page))
            if self._request.index_strategy == "first-index":
                break
        return pages, missing

    def find_versions(self, name: NormalizedName) -> ProjectVersions:
        """All versions of ``name`` across the job's indexes, newest first (judged lazily)."""
        known = self._versions.get(name)
        if known is not None:
            return known
        if name in self._direct:
            self._versions[name] = self._find_direct(self._direct[name])
            return self._versions[name]
        pages, missing = self._find_pages(name)
        judge = self._judge(name)
        versions = ProjectVersions(
            name,
            [find_page_versions(index, page, judge) for index, page in pages],
            [index for index, _ in pages],
            missing,
            first_match=self._request.index_strategy == "unsafe-first-match",
            take=functools.partial(self._take, name),
            prefers_index=functools.partial(self._preferences.prefers_index, name),
            on_entry=functools.partial(self._judged, name),
        )
        self._versions[name] = versions
        return versions

    def _find_direct(self, direct: DirectFile) -> ProjectVersions:
        """The one version a direct URL requirement offers: its file downloaded whole (hash
        checked when the URL gives one, else computed for the lock), its metadata read from it
        unless the request supplies some, and the file judged for the scope like any other."""
        name, version = direct.name, direct.version
        index = make_direct_index(direct.file.url, self._indexes)
        file = direct.file
        # Metadata the request supplies is used as is; the file is then fetched only to learn
        # its hash, when the URL gives none.
        static = self._static_metadata(name, version) is not None
        if not static or not file.hashes:
            client, stats = self._client, self._stats
            try:
                metadata, hashes = self._bridge.wait(
                    self._bridge.schedule(
                        ("direct", file.url),
                        lambda: client.find_direct_metadata(
                            index, file, stats=stats, read_metadata=not static
                        ),
                    )
                )
            except IndexFetchError as error:
                diagnostic = make_direct_url_diagnostic(error, index, name, str(version))
                raise FatalFetchError(diagnostic, "metadata_error") from error
            file = msgspec.structs.replace(file, hashes=hashes)
            if metadata is not None:
                self._direct_metadata[(name, str(version))] = metadata
        choice = self._judge(name).choose((file,))
        entry = VersionEntry(version, index, choice, choice.best)
        self._judged(name, entry)
        return ProjectVersions.from_entries(name, [entry], [index], [])

    def _judge(self, name: str) -> FileJudge:
        """The file judge for ``name``: the scope, whether no/only-binary name it, its cutoff."""
        options = (
            _matches(self._no_binary, name),
            _matches(self._only_binary, name),
            self._cutoff_for(name),
        )
        judge = self._judges.get(options)
        if judge is None:
            judge = self._judges[options] = FileJudge(
                self._scope, no_binary=options[0], only_binary=options[1], cutoff=options[2]
            )
        return judge

    def _cutoff_for(self, name: str) -> datetime | None:
        """``exclude_newer_package``'s cutoff for ``name`` (``False``: none), else the job's."""
        own = self._request.exclude_newer_package.get(name)
        if own is None:
            return self._cutoff
        return parse_time(own) if isinstance(own, str) else None

    def _take(self, name: str, version: Version, index: Index, choice: FileChoice) -> VersionEntry:
        """This job's entry for a judged version: the judge's best file, unless a lock pinned
        another usable one (a yanked one only when every usable file is yanked)."""
        file = choice.best
        if self._preferences and file is not None:
            locked = next(
                (f for f in choice.usable if self._preferences.prefers_file(name, version, f)),
                None,
            )
            if locked is not None and (not locked.yanked or file.yanked):
                file = locked
        return VersionEntry(version, index, choice, file)

    def _judged(self, name: str, entry: VersionEntry) -> None:
        if entry.rejection is not None:
            self._reject(name, entry, entry.rejection, detail=entry.detail)

    def _likeliest_file(
        self, name: NormalizedName, index: Index, page: ProjectPage
    ) -> DistFile | None:
        """The file of the version the resolver will most likely pick from ``page``: the first
        not yanked, in the order the resolver tries them. Judges only as far as it must."""
        source = find_page_versions(index, page, self._judge(name))
        stable, pre = self._order(name, source.tiers)
        for version in (*stable, *pre):
            file = self._take(name, version, index, source.choice(version)).file
            if file is not None and not file.yanked:
                return file
        return None

    def complete_records(self) -> None:
        """Judge every version of every project met, recording each rejection: what a failure's
        explanation reads (the search itself judges only the versions it reaches)."""
        for versions in list(self._versions.values()):
            versions.entries  # noqa: B018 - judging is the point

    # -- candidates ----------------------------------------------------------------------

    def _order(
        self, name: str, tiers: Sequence[Sequence[Version]]
    ) -> tuple[Sequence[Version], Sequence[Version]]:
        """Stable versions and the pre-releases that may follow them, each in preference order
        tier by tier (``ProjectVersions.tiers``); locked versions first (a locked pre-release
        too, unless pre-releases are banned).

        Each tier comes newest first; the order is remembered per project for the job.
        """
        known = self._ordered.get(name)
        if known is not None and known[0] is tiers:
            return known[1], known[2]
        if len(tiers) == 1:
            stable, pre = self._split(name, tiers[0])
        else:
            split = [self._split(name, tier) for tier in tiers]
            stable = [v for tier_stable, _ in split for v in tier_stable]
            pre = [v for _, tier_pre in split for v in tier_pre]
        if self._preferences:
            prerelease = self._request.prerelease
            banned = prerelease == "disallow" or (
                prerelease == "explicit" and name not in self._explicit_prerelease
            )
            first, rest = self._preferences.put_first(
                name,
                [_Versioned(v) for v in stable],
                [_Versioned(v) for v in pre],
                prereleases=not banned,
            )
            stable, pre = [v.version for v in first], [v.version for v in rest]
        self._ordered[name] = (tiers, stable, pre)
        return stable, pre

    def _split(
        self, name: str, versions: Sequence[Version]
    ) -> tuple[Sequence[Version], Sequence[Version]]:
        mode = self._request.resolution
        lowest = mode == "lowest" or (mode == "lowest-direct" and name in self._root_names)
        if self._request.prerelease == "allow":
            return (versions[::-1] if lowest else versions), ()
        stable, pre = _split_prereleases(versions)
        return (stable[::-1], pre[::-1]) if lowest else (stable, pre)

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
        stable, pre = self._order(name, versions.tiers)
        stable_found = False
        for position, version in enumerate(stable):
            if not accept(version):
                continue
            if self._waited.get(name, 0) >= _BATCH_AFTER and version not in self._ahead[name]:
                # Past the versions fetched ahead so far (or at the first batch): the next.
                # Each version starts a batch at most once, however often the search restarts.
                self._ahead[name].add(version)
                self._fetch_ahead(
                    name, versions, itertools.islice(stable, position + 1, None), accept
                )
            entry = versions.entry(version)
            if entry is not None and self._usable(name, entry):
                # A locked pre-release comes first among the stable ones; it is no stable.
                stable_found = stable_found or not version.is_prerelease
                yield self._candidate(name, entry, extras)
        allowed = self._prereleases_allowed(name, stable_found)
        for version in pre:
            if not accept(version):
                continue
            entry = versions.entry(version)
            if entry is None or entry.rejection is not None:
                continue
            if not allowed:
                self.records.excluded_prereleases[name].add(version)
                continue
            if self._usable(name, entry):
                yield self._candidate(name, entry, extras)

    def _fetch_ahead(
        self,
        name: str,
        versions: ProjectVersions,
        after: Iterable[Version],
        accept: Callable[[Version], bool],
    ) -> None:
        """Start fetching the metadata of up to ``_BATCH_AHEAD`` of the versions the search
        would try next (``after``, in its order), without waiting: a search walking back
        through a project's versions then finds each one's metadata in hand."""
        asked, started = self._ahead[name], 0
        for version in after:
            if started >= _BATCH_AHEAD:
                return
            if version in asked or not accept(version):
                continue
            asked.add(version)
            entry = versions.entry(version)
            if (
                entry is None
                or entry.file is None
                or entry.rejection is not None
                or entry.yanked
                or (name, str(version)) in self._metadata
                or self._static_metadata(name, version) is not None
                or self._client.peek_core_metadata(entry.index, entry.file) is not None
            ):
                continue
            self._schedule_metadata(entry.index, entry.file)
            started += 1

    def _schedule_metadata(self, index: Index, file: DistFile) -> Any:
        """The fetch of ``file``'s metadata, started once per job (a concurrent future)."""
        client, stats = self._client, self._stats
        return self._bridge.schedule(
            ("metadata", index.url, file.url),
            lambda: client.find_core_metadata(index, file, stats=stats),
        )

    def first_choice(
        self, name: NormalizedName, accept: Callable[[Version], bool]
    ) -> VersionEntry | None:
        """The version the resolver would try first if every version were usable."""
        versions = self.find_versions(name)
        stable, pre = self._order(name, versions.tiers)
        for version in (*stable, *pre):
            if accept(version) and (entry := versions.entry(version)) is not None:
                return entry
        return None

    def _usable(self, name: str, entry: VersionEntry) -> bool:
        if entry.rejection is not None:
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

    def _has_static(self, name: str) -> bool:
        return any(static_name == name for static_name, _ in self._static)

    def _static_metadata(self, name: str, version: Version) -> CoreMetadata | None:
        """The request's ``dependency_metadata`` for this version (a versioned entry first)."""
        static = self._static.get((name, version)) or self._static.get((name, None))
        if static is None:
            return None
        return CoreMetadata(
            name=name,
            version=str(version),
            requires_dist=static.requires_dist,
            requires_python=static.requires_python,
            provides_extra=tuple(sorted(_extras_named(static.requires_dist))),
        )

    def _load(self, name: str, entry: VersionEntry) -> bool:
        """Fetch and check core metadata for ``entry``; False (recorded) when unusable.

        Metadata the request supplies (``dependency_metadata``) is taken instead: nothing is
        fetched or built for that version."""
        key = (name, str(entry.version))
        if key in self._metadata:
            return self._metadata[key] is not None
        file, index = entry.file, entry.index
        assert file is not None
        metadata: CoreMetadata | None = (
            self._static_metadata(name, entry.version)
            or self._direct_metadata.get(key)
            or self._client.peek_core_metadata(index, file, stats=self._stats)
        )
        try:
            if metadata is None:
                self._waited[name] = self._waited.get(name, 0) + 1
                metadata = self._bridge.wait(self._schedule_metadata(index, file))
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
        if self._request.no_deps:
            return  # uv's --no-deps: the listed requirements only
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
        entry = self._versions[candidate.name].entry(candidate.version)
        assert entry is not None, "candidates are only made from judged versions"
        return entry

    @property
    def yanked_candidates(self) -> set[tuple[str, str]]:
        """(name, version) of yanked candidates offered because a direct ``==`` pinned them."""
        return {(c.name, str(c.version)) for c in self._candidates.values() if c.yanked}

    @property
    def known_versions(self) -> dict[str, ProjectVersions]:
        """Every project met, each version judged and every rejection recorded: what a
        failure's explanation (or a lock's changes) reads, where the search itself judged only
        the versions it reached."""
        self.complete_records()
        return self._versions
