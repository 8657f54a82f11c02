"""Universal resolution: one lock for every environment of a domain, by forking (uv's model).

The domain is the lock's Requires-Python range narrowed by ``environments``. A resolution is
run for a *fork* — a marker region, at first the whole domain — with markers judged
symbolically (``RegionScope``): a requirement that cannot hold in the region is dropped, one
that always holds is unconditional, one that may hold is kept with its marker. The region is
split, and each part resolved on its own, where uv splits it:

* a package's dependency list names one project more than once under different markers
  (``numpy>=2; python_version >= "3.10"`` beside ``numpy<2; python_version < "3.10"``), or names
  it once under a marker that raises the lowest Python (so the part above the new bound may
  use versions that need it). Non-sibling requirements are never split on: like uv, a conflict
  between two packages' conditional requirements is a failure, not a fork;
* the version the resolver would pick first needs a newer Python than the region's lowest: the
  region is split at that bound, so newer Pythons get the newest version (uv's default
  ``requires-python`` fork strategy);
* a version without an sdist has no wheel for one of ``required_environments``: the region is
  split off that environment (or, when it lies wholly inside it, the version is passed over).

resolvelib cannot copy a half-finished search, so a split abandons the search and both parts
start again from the beginning, preferring the versions the abandoned search had pinned, and
every fork prefers the versions of the forks resolved before it — so forks agree wherever they
can, and forks that end up alike merge in the result. Forks are solved as uv orders them: higher
Python bounds first (lower first for ``lowest``).

The forks' results are merged into one list: an entry per (name, version, index) whose
``markers`` is the union, over forks, of the paths by which the package is required there
(each the conjunction of the requirement markers along it), simplified against the domain.
"""

from __future__ import annotations

import functools
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from packaging.utils import NormalizedName
from packaging.version import Version
from resolvelib.resolvers import ResolutionImpossible

from service.diagnostics.redact import redact_url
from service.index.models import DistFile, Index
from service.resolution.bridge import FetchBridge
from service.resolution.candidates import (
    Candidate,
    ResolverRequirement,
    SpecifierRequirement,
    split_identifier,
)
from service.resolution.changes import diff_packages
from service.resolution.environment import TargetEnvironment, make_target_environment
from service.resolution.explain import explain_failure
from service.resolution.finder import Finder
from service.resolution.markers import (
    ANY,
    EMPTY,
    BaseMarker,
    InvalidMarker,
    covers,
    disjoint,
    format_marker,
    is_empty,
    lower_python_bound,
    parse_marker,
    python_range_marker,
    raises_python,
    requires_python_marker,
    simplify,
    wheel_marker,
)
from service.resolution.preferences import Preference, Preferences, upgraded_names
from service.resolution.prepare import (
    DEFAULT_MAX_ROUNDS,
    Prepared,
    make_finder,
    prepare,
    run_resolver,
    success_warnings,
)
from service.resolution.provider import ProgressReporter, Provider
from service.resolution.request import LockedFile, LockedPackage, ResolveRequest
from service.resolution.result import (
    Failure,
    Progress,
    Resolution,
    ResolutionFailed,
    ResolutionStats,
    ResolvedPackage,
    make_file_ref,
)
from service.resolution.scope import RegionScope

if TYPE_CHECKING:
    from service.index import FetchStats, IndexClient

__all__ = ["ForkRequired", "make_domain", "resolve_universal"]

# A resolution that keeps splitting is bounded: each split narrows a region, but a pathological
# set could still make thousands of forks.
MAX_FORKS = 256


class ForkRequired(Exception):
    """The current fork must be split into ``forks`` and each resolved on its own."""

    def __init__(self, forks: Sequence[Fork], reason: str) -> None:
        super().__init__(reason)
        self.forks = list(forks)
        self.reason = reason


def make_domain(requires_python: str, environments: Sequence[str]) -> BaseMarker:
    """The lock's domain: its Python range, narrowed to the union of ``environments``."""
    domain = python_range_marker(requires_python)
    if environments:
        union = EMPTY
        for environment in environments:
            union = union | parse_marker(environment)
        domain = domain & union
    return domain


@dataclass(frozen=True)
class Fork:
    """A region to resolve, and how many of the splitting package's requirements that apply
    in it have an upper bound (uv solves forks with more of them first: their choices are
    likelier to suit the others)."""

    region: BaseMarker
    upper_bounds: int = 0


def split_dependencies(
    region: BaseMarker, dependencies: Iterable[SpecifierRequirement]
) -> list[Fork]:
    """The forks ``region`` splits into for one package's dependency list (uv's rule).

    One fork back means no split.
    """
    dependencies = list(dependencies)
    by_name: dict[str, list[SpecifierRequirement]] = defaultdict(list)
    for dependency in dependencies:
        by_name[dependency.name].append(dependency)
    regions = [region]
    # uv's order, which decides which fork is solved first: names sorted, and a split part
    # where the marker does not hold before the part where it does.
    for _, group in sorted(by_name.items()):
        markers = [dependency.marker for dependency in group]
        if all(marker == markers[0] for marker in markers) and not raises_python(
            region, markers[0]
        ):
            continue
        for marker in markers:
            if marker.is_any():
                continue
            split: list[BaseMarker] = []
            for fork in regions:
                if disjoint(fork, marker) or covers(fork, marker):
                    split.append(fork)
                    continue
                split.extend((fork & ~marker, fork & marker))
            regions = split
    return [
        Fork(
            fork,
            sum(
                dependency.upper_bounded
                for dependency in dependencies
                if not disjoint(fork, dependency.marker)
            ),
        )
        for fork in regions
    ]


def _preferences(
    region: BaseMarker,
    request: ResolveRequest,
    pins: Mapping[str, Version],
    solved: Mapping[str, Sequence[tuple[Version, BaseMarker]]],
    *,
    lowest: bool,
) -> Preferences:
    """Versions to try first in a fork: the abandoned search's pins; then the request's lock
    (entries whose marker holds somewhere in the fork first); then earlier forks' choices,
    those made where this fork's environments lie first, then by version (uv's order)."""
    by_name: dict[str, list[Preference]] = defaultdict(list)

    def add(
        name: str, version: Version, index: str | None = None, files: tuple[LockedFile, ...] = ()
    ) -> None:
        if all(known.version != version for known in by_name[name]):
            by_name[name].append(Preference(version, index, files))

    for name, version in pins.items():
        add(name, version)
    for entry in _lock_entries(request, region):
        add(entry.name, Version(entry.version), entry.index, entry.files)
    for name, choices in solved.items():
        by_version = sorted(choices, key=lambda choice: choice[0], reverse=not lowest)
        for version, _ in sorted(by_version, key=lambda choice: disjoint(region, choice[1])):
            add(name, version)
    return Preferences(by_name)


def _lock_entries(request: ResolveRequest, region: BaseMarker) -> list[LockedPackage]:
    """The lock's entries, less what ``upgrade``/``upgrade_packages`` lift, those whose marker
    holds somewhere in ``region`` first."""
    if request.lock is None or request.upgrade:
        return []
    lifted = upgraded_names(request)
    entries = [entry for entry in request.lock.packages if entry.name not in lifted]

    def elsewhere(entry: LockedPackage) -> bool:
        if entry.marker is None:
            return False
        try:
            return disjoint(region, parse_marker(entry.marker))
        except InvalidMarker:
            return False

    return sorted(entries, key=elsewhere)


def _solving_order(forks: Sequence[Fork], *, lowest: bool) -> list[Fork]:
    """``forks`` in the order they are pushed on the stack: the last is solved first.

    As uv: the highest Python bound first (the lowest for ``lowest``, whose choices suit the
    higher ones), then the most upper-bounded requirements first.
    """

    def key(fork: Fork) -> tuple[tuple[int, ...], int]:
        bound = lower_python_bound(fork.region)
        release = bound.release if bound is not None else ()
        return (tuple(-part for part in release) if lowest else release, fork.upper_bounds)

    return sorted(forks, key=key)


@dataclass
class _ForkResult:
    region: BaseMarker
    finder: Finder
    roots: list[SpecifierRequirement]
    mapping: dict[str, Candidate]
    dependencies: dict[str, list[ResolverRequirement]]


class _ForkingProvider(Provider):
    """The provider of one fork: splits the fork where uv would (see the module docstring)."""

    def __init__(
        self,
        finder: Finder,
        bridge: FetchBridge,
        *,
        region: BaseMarker,
        prepared: Prepared,
        required_environments: Sequence[BaseMarker],
    ) -> None:
        super().__init__(finder, bridge, constraints=prepared.constraints)
        self._region = region
        self._required = required_environments
        self.dependencies: dict[str, list[ResolverRequirement]] = {}
        self.pins: dict[str, Version] = {}

    def get_dependencies(self, candidate: Candidate) -> list[ResolverRequirement]:
        dependencies = super().get_dependencies(candidate)
        specified = [d for d in dependencies if isinstance(d, SpecifierRequirement)]
        forks = split_dependencies(self._region, specified)
        if len(forks) > 1:
            raise ForkRequired(
                forks, f"{candidate.format_for_error()} has requirements under different markers"
            )
        self.dependencies[candidate.identifier] = dependencies
        self.pins[candidate.name] = candidate.version
        return dependencies

    def find_matches(
        self,
        identifier: str,
        requirements: Mapping[str, Iterator[ResolverRequirement]],
        incompatibilities: Mapping[str, Iterator[Candidate]],
    ) -> Callable[[], Iterator[Candidate]]:
        name, _ = split_identifier(identifier)
        accept = self.make_accept(name, requirements[identifier], incompatibilities[identifier])
        self._split_on_python(name, accept)
        matches = super().find_matches(identifier, requirements, incompatibilities)

        def checked() -> Iterator[Candidate]:
            return (c for c in matches() if self._split_on_required_environments(c))

        return checked

    def _split_on_python(self, name: NormalizedName, accept: Callable[[Version], bool]) -> None:
        """Split when the version the resolver would pick first needs a newer Python than the
        region's lowest but suits the rest of the region (uv's requires-python forks)."""
        best = self._finder.first_choice(name, accept)
        if best is None or best.rejection != "requires_python":
            return
        bound = requires_python_marker(best.detail)
        upper, lower = self._region & bound, self._region & ~bound
        if not is_empty(upper) and not is_empty(lower):
            raise ForkRequired(
                [Fork(lower), Fork(upper)], f"{name} {best.version} requires Python {best.detail}"
            )

    def _split_on_required_environments(self, candidate: Candidate) -> bool:
        """Split off a required environment that a wheel-only ``candidate`` has no wheel for.

        Inside that environment the version then has no usable file, and the finder reports it
        as missing the environment (see ``RegionScope.required_environment``).
        """
        if not self._required:
            return True
        entry = self._finder.entry(candidate)
        if any(file.kind == "sdist" for file in entry.files):
            return True
        covered = EMPTY
        for file in entry.files:
            covered = covered | wheel_marker(file.tags)
        for environment in self._required:
            if disjoint(self._region, environment) or not disjoint(covered, environment):
                continue
            outside = self._region & ~environment
            if not is_empty(outside):
                raise ForkRequired(
                    [Fork(outside), Fork(self._region & environment)],
                    f"{candidate.format_for_error()} has no wheel for a required environment",
                )
        return True


def _reach(result: _ForkResult) -> dict[str, BaseMarker]:
    """Per identifier: where in the fork it is installed (the union of its requirement paths)."""
    reach: dict[str, BaseMarker] = {}
    pending: list[str] = []

    def widen(identifier: str, marker: BaseMarker) -> None:
        if identifier not in result.mapping or is_empty(marker):
            return
        known = reach.get(identifier, EMPTY)
        if covers(marker, known):  # nothing new: marker lies within what is known
            return
        reach[identifier] = known | marker
        pending.append(identifier)

    for root in result.roots:
        widen(root.identifier, result.region & root.marker)
    rounds = 0
    while pending and rounds < 100_000:
        rounds += 1
        identifier = pending.pop()
        here = reach[identifier]
        for dependency in result.dependencies.get(identifier, ()):
            marker = dependency.marker if isinstance(dependency, SpecifierRequirement) else ANY
            widen(dependency.identifier, here & marker)
    return reach


@dataclass
class _Entry:
    name: NormalizedName
    version: Version
    index: Index
    marker: BaseMarker = EMPTY
    extras: set[str] = field(default_factory=set)
    files: dict[str, DistFile] = field(default_factory=dict)
    requires_python: str | None = None
    dependencies: set[str] = field(default_factory=set)
    required_by: set[str] = field(default_factory=set)


def merge_forks(
    results: Sequence[_ForkResult], domain: BaseMarker, root_names: frozenset[str]
) -> list[ResolvedPackage]:
    """One package list for all forks (see the module docstring)."""
    entries: dict[tuple[str, Version, str], _Entry] = {}
    for result in results:
        reach = _reach(result)
        for identifier, marker in reach.items():
            candidate = result.mapping[identifier]
            key = (candidate.name, candidate.version, candidate.index.url)
            entry = entries.get(key)
            if entry is None:
                entry = entries[key] = _Entry(candidate.name, candidate.version, candidate.index)
            entry.marker = entry.marker | marker
            entry.extras |= candidate.extras
            version_entry = result.finder.entry(candidate)
            for file in version_entry.files:
                entry.files.setdefault(file.filename, file)
            entry.requires_python = result.finder.metadata(candidate).requires_python
            for dependency in result.dependencies.get(identifier, ()):
                if dependency.name != candidate.name and dependency.identifier in reach:
                    entry.dependencies.add(dependency.name)
                    child = result.mapping[dependency.identifier]
                    child_key = (child.name, child.version, child.index.url)
                    if child_key in entries:
                        entries[child_key].required_by.add(candidate.name)
                    else:
                        entries[child_key] = _Entry(child.name, child.version, child.index)
                        entries[child_key].required_by.add(candidate.name)
    packages = []
    for (name, version, _), entry in sorted(entries.items(), key=lambda item: item[0][:2]):
        if is_empty(entry.marker):
            continue
        packages.append(
            ResolvedPackage(
                name=name,
                version=str(version),
                index=entry.index.display_name,
                requested=name in root_names,
                direct=any(name in result.finder.direct_names for result in results),
                extras=sorted(entry.extras),
                markers=format_marker(simplify(entry.marker, domain)),
                requires_python=entry.requires_python,
                dependencies=sorted(entry.dependencies),
                required_by=sorted(entry.required_by),
                file=None,
                files=[make_file_ref(file) for file in entry.files.values()],
            )
        )
    return packages


def resolve_universal(
    request: ResolveRequest,
    *,
    indexes: Sequence[Index],
    client: IndexClient,
    stats: FetchStats,
    progress: Progress,
    bridge: FetchBridge,
    max_rounds: int = DEFAULT_MAX_ROUNDS,
) -> Resolution:
    """Resolve ``request`` for every environment of its domain (see the module docstring)."""
    started = time.monotonic()
    requires_python = request.requires_python or f">={request.environment.python_version}"
    domain = make_domain(requires_python, request.environments)
    required = [parse_marker(text) for text in request.required_environments]
    lowest = request.resolution == "lowest"
    # As uv: a fork's versions become preferences of the forks after it, except under
    # lowest-direct (a package direct in one fork may be transitive in another).
    carry_preferences = request.resolution in ("highest", "lowest")
    stack: list[tuple[Fork, dict[str, Version]]] = [(Fork(domain), {})]
    solved: dict[str, list[tuple[Version, BaseMarker]]] = defaultdict(list)
    results: list[_ForkResult] = []
    forks_made = 1
    while stack:
        fork, pins = stack.pop()
        region = fork.region
        inside = next((env for env in required if covers(region, env)), None)
        scope = RegionScope(region, required_environment=inside)
        prepared = prepare(request, scope)
        finder = make_finder(
            request,
            prepared,
            scope=scope,
            indexes=indexes,
            client=client,
            stats=stats,
            bridge=bridge,
            preferences=_preferences(region, request, pins, solved, lowest=lowest),
        )
        provider = _ForkingProvider(
            finder, bridge, region=region, prepared=prepared, required_environments=required
        )
        try:
            roots_split = split_dependencies(region, prepared.roots)
            if len(roots_split) > 1:
                raise ForkRequired(roots_split, "the requirements name a package twice")
            outcome = run_resolver(
                provider,
                ProgressReporter(progress),
                prepared.roots,
                request=request,
                finder=finder,
                max_rounds=max_rounds,
                explain=functools.partial(
                    _explain_fork, finder=finder, request=request, region=region, domain=domain
                ),
            )
        except ForkRequired as split:
            forks_made += len(split.forks) - 1
            if forks_made > MAX_FORKS:
                raise ResolutionFailed(
                    Failure(
                        kind="unsatisfiable",
                        message=f"The universal resolution split into more than {MAX_FORKS} "
                        "forks; narrow requires_python or environments.",
                    )
                ) from None
            # Both parts resume where the abandoned search stood: its pins come first.
            resumed = {**pins, **provider.pins}
            stack.extend((part, resumed) for part in _solving_order(split.forks, lowest=lowest))
            continue
        mapping = dict(outcome.mapping)
        results.append(_ForkResult(region, finder, prepared.roots, mapping, provider.dependencies))
        if carry_preferences:
            for candidate in mapping.values():
                solved[candidate.name].append((candidate.version, region))
    root_names = frozenset(name for result in results for name in (r.name for r in result.roots))
    packages = merge_forks(results, domain, root_names)
    warnings = []
    seen = set()
    for result in results:
        for warning in success_warnings(result.finder, packages):
            key = (warning.code, warning.package, warning.version, warning.message)
            if key not in seen:
                seen.add(key)
                warnings.append(warning)
    progress.requests, progress.cache_hits = stats.requests, stats.cache_hits
    changes = None
    if request.lock is not None:
        urls = {index.display_name: redact_url(index.url).rstrip("/") for index in indexes}
        changes = diff_packages(request.lock.packages, _locked(packages, urls))
    return Resolution(
        packages=packages,
        warnings=warnings,
        changes=changes,
        stats=ResolutionStats(
            duration_ms=int((time.monotonic() - started) * 1000),
            requests=stats.requests,
            cache_hits=stats.cache_hits,
            rounds=progress.rounds,
        ),
        requires_python=requires_python,
        environments=list(request.environments) or None,
    )


# Platforms an explanation may speak of when a fork's region rules out the request's own.
_PLATFORMS = ("x86_64-manylinux_2_28", "aarch64-apple-darwin", "x86_64-pc-windows-msvc")


def _representative_target(region: BaseMarker, preferred: str) -> TargetEnvironment:
    """A target inside ``region``, for explanations phrased about one environment: its lowest
    Python, on the request's platform or the first common one the region admits."""
    lowest = lower_python_bound(region)
    python = f"3.{lowest.release[1]}" if lowest is not None and len(lowest.release) > 1 else "3.12"
    for platform in (preferred, *_PLATFORMS):
        target = make_target_environment(python, platform)
        where = parse_marker(
            " and ".join(
                f"{key} == '{target.markers[key]}'" for key in ("sys_platform", "platform_machine")
            )
        )
        if not disjoint(region, where):
            return target
    return make_target_environment(python, preferred)


def _locked(packages: Sequence[ResolvedPackage], urls: Mapping[str, str]) -> list[LockedPackage]:
    """A universal result as lock entries, to say what moved from a previous lock."""
    return [
        LockedPackage(
            name=package.name,
            version=package.version,
            index=urls.get(package.index, package.index),
            marker=package.markers,
            files=tuple(
                LockedFile(filename=file.filename, url=file.url, hashes=file.hashes)
                for file in package.files
            ),
        )
        for package in packages
    ]


def _explain_fork(
    impossible: ResolutionImpossible[ResolverRequirement, Candidate],
    *,
    finder: Finder,
    request: ResolveRequest,
    region: BaseMarker,
    domain: BaseMarker,
) -> Failure:
    """The explanation of a failed fork, saying which fork it is."""
    target = _representative_target(region, request.environment.platform)
    failure = explain_failure(impossible.causes, finder=finder, request=request, target=target)
    split = format_marker(simplify(region, domain))
    if split is None:
        return failure
    header = "No solution found when resolving dependencies"
    message = failure.message.replace(f"{header}:", f"{header} for split ({split}):", 1)
    return Failure(
        kind=failure.kind,
        message=message,
        causes=failure.causes,
        hints=failure.hints,
        fetch_errors=failure.fetch_errors,
    )
