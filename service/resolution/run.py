"""Run one resolution: prepare requirements, drive resolvelib in a thread, shape the outcome."""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version
from resolvelib import Resolver
from resolvelib.resolvers import ResolutionImpossible, ResolutionTooDeep

from service.diagnostics.model import Code, Diagnostic, Severity
from service.diagnostics.redact import redact_url
from service.index import FetchStats
from service.index.builder import BuildScope, build_scope
from service.index.models import Index
from service.resolution.bridge import FetchBridge, StoppedError
from service.resolution.candidates import Candidate, ResolverRequirement, SpecifierRequirement
from service.resolution.environment import (
    TargetEnvironment,
    UnsupportedTargetError,
    make_target_environment,
)
from service.resolution.explain import explain_failure
from service.resolution.fetch_errors import FatalFetchError
from service.resolution.finder import Finder
from service.resolution.preferences import check_lock_environment, make_preferences
from service.resolution.provider import ProgressReporter, Provider
from service.resolution.relock import make_changes
from service.resolution.request import ResolveRequest
from service.resolution.result import (
    Failure,
    FileRef,
    Progress,
    Reason,
    Resolution,
    ResolutionFailed,
    ResolutionStats,
    ResolvedPackage,
)

if TYPE_CHECKING:
    from service.index import IndexClient

__all__ = ["resolve_request"]

DEFAULT_MAX_ROUNDS = 20_000


@dataclass
class _Prepared:
    """The request's requirement lines, parsed and evaluated for the target."""

    roots: list[SpecifierRequirement]
    constraints: dict[str, list[SpecifierSet]]
    overrides: dict[str, list[Requirement]]
    yank_pins: dict[str, set[Version]]
    explicit_prerelease: frozenset[str]
    root_names: frozenset[str]


def _invalid(message: str) -> ResolutionFailed:
    return ResolutionFailed(
        Failure(
            kind="invalid_request",
            message=message,
            hints=[],
            fetch_errors=[],
        )
    )


def _parse(lines: Sequence[str], field: str, target: TargetEnvironment) -> list[Requirement]:
    parsed = []
    for position, line in enumerate(lines):
        try:
            requirement = Requirement(line)
        except InvalidRequirement as error:
            raise _invalid(f"{field}[{position}]: invalid requirement: {error}") from error
        if requirement.url:
            raise _invalid(
                f"{field}[{position}]: direct URL requirements are not supported; "
                "publish the distribution to an index"
            )
        if requirement.marker is None or requirement.marker.evaluate(
            {**target.markers, "extra": ""}
        ):
            parsed.append(requirement)
    return parsed


def _pins(requirement: Requirement) -> set[Version]:
    pins = set()
    for spec in requirement.specifier:
        if spec.operator in ("==", "===") and not spec.version.endswith(".*"):
            try:
                pins.add(Version(spec.version))
            except InvalidVersion:
                continue
    return pins


def _prepare(request: ResolveRequest, target: TargetEnvironment) -> _Prepared:
    overrides: dict[str, list[Requirement]] = defaultdict(list)
    for requirement in _parse(request.overrides, "overrides", target):
        overrides[canonicalize_name(requirement.name)].append(requirement)
    constraints: dict[str, list[SpecifierSet]] = defaultdict(list)
    # upgrade_packages' specifiers constrain, as uv's -P does.
    constraint_lines = _parse(request.constraints, "constraints", target) + _parse(
        request.upgrade_packages, "upgrade_packages", target
    )
    for requirement in constraint_lines:
        constraints[canonicalize_name(requirement.name)].append(requirement.specifier)
    roots: list[SpecifierRequirement] = []
    for requirement in _parse(request.requirements, "requirements", target):
        name = canonicalize_name(requirement.name)
        for replaced in overrides.get(name, [requirement]):
            roots.append(SpecifierRequirement(replaced))
    yank_pins: dict[str, set[Version]] = defaultdict(set)
    explicit: set[str] = set()
    first_party = [r.requirement for r in roots] + constraint_lines
    for requirement in first_party:
        name = canonicalize_name(requirement.name)
        yank_pins[name] |= _pins(requirement)
        if requirement.specifier.prereleases:
            explicit.add(name)
    return _Prepared(
        roots=roots,
        constraints=dict(constraints),
        overrides=dict(overrides),
        yank_pins=dict(yank_pins),
        explicit_prerelease=frozenset(explicit),
        root_names=frozenset(r.name for r in roots),
    )


def _build_resolution(
    mapping: dict[str, Candidate],
    graph_edges: list[tuple[str | None, str]],
    finder: Finder,
    prepared: _Prepared,
) -> list[ResolvedPackage]:
    by_name: dict[str, Candidate] = {}
    extras: dict[str, set[str]] = defaultdict(set)
    for candidate in mapping.values():
        if not candidate.extras:
            by_name[candidate.name] = candidate
        extras[candidate.name] |= candidate.extras
    dependencies: dict[str, set[str]] = defaultdict(set)
    required_by: dict[str, set[str]] = defaultdict(set)
    for parent, child in graph_edges:
        if parent is None:
            continue
        parent_name, child_name = parent.partition("[")[0], child.partition("[")[0]
        if parent_name != child_name:
            dependencies[parent_name].add(child_name)
            required_by[child_name].add(parent_name)
    packages = []
    for name in sorted(by_name):
        candidate = by_name[name]
        file = candidate.file
        packages.append(
            ResolvedPackage(
                name=name,
                version=str(candidate.version),
                index=candidate.index.display_name,
                requested=name in prepared.root_names,
                extras=sorted(extras[name]),
                markers=None,
                requires_python=finder.metadata(candidate).requires_python,
                dependencies=sorted(dependencies[name]),
                required_by=sorted(required_by[name]),
                file=FileRef(
                    filename=file.filename,
                    url=redact_url(file.url),
                    hashes=dict(file.hashes),
                    size=file.size,
                    upload_time=file.upload_time,
                ),
            )
        )
    return packages


def _success_warnings(finder: Finder, packages: list[ResolvedPackage]) -> list[Diagnostic]:
    warnings = list(finder.records.warnings)
    for package in packages:
        chosen = Version(package.version)
        rejections = finder.records.rejections.get(package.name, {})
        passed_over = [
            rejection
            for rejection in rejections.values()
            if rejection.reason is Reason.YANKED and Version(rejection.version) > chosen
        ]
        for rejection in passed_over:
            reason = f" (reason: {rejection.detail})" if rejection.detail else ""
            warnings.append(
                Diagnostic(
                    code=Code.YANKED,
                    severity=Severity.WARNING,
                    message=f"{package.name}=={rejection.version} is yanked{reason}; "
                    f"{package.version} was used instead",
                    package=package.name,
                    version=rejection.version,
                    index=rejection.index,
                    data={"reason": rejection.detail, "selected": package.version},
                )
            )
        if (package.name, package.version) in finder.yanked_candidates:
            warnings.append(
                Diagnostic(
                    code=Code.YANKED,
                    severity=Severity.WARNING,
                    message=f"{package.name}=={package.version} is yanked; it was used because "
                    "the requirements pin it exactly",
                    package=package.name,
                    version=package.version,
                    index=package.index,
                )
            )
    return warnings


def _resolve_sync(
    request: ResolveRequest,
    *,
    indexes: Sequence[Index],
    client: IndexClient,
    stats: FetchStats,
    progress: Progress,
    bridge: FetchBridge,
) -> Resolution:
    started = time.monotonic()
    if request.universal:
        raise _invalid(
            "universal: universal (all-platform) resolution is not supported yet; resolve for "
            "each target environment instead"
        )
    try:
        target = make_target_environment(
            request.environment.python_version, request.environment.platform
        )
    except UnsupportedTargetError as error:
        raise _invalid(f"{error.field}: {error.message}") from error
    prepared = _prepare(request, target)
    preferences = make_preferences(request, target)
    finder = Finder(
        request,
        indexes=indexes,
        client=client,
        stats=stats,
        bridge=bridge,
        target=target,
        root_names=prepared.root_names,
        yank_pins=prepared.yank_pins,
        explicit_prerelease=prepared.explicit_prerelease,
        overrides=prepared.overrides,
        preferences=preferences,
    )
    for root in prepared.roots:
        finder.prefetch(root.name)
    for name in preferences.names:  # a lock names the whole tree up front: fetch it at once
        finder.prefetch(name)
    provider = Provider(finder, bridge, constraints=prepared.constraints)
    reporter = ProgressReporter(progress)
    resolver: Resolver[ResolverRequirement, Candidate, str] = Resolver(provider, reporter)
    try:
        result = resolver.resolve(prepared.roots, max_rounds=DEFAULT_MAX_ROUNDS)
    except StoppedError as stopped:
        message = (
            "The job was cancelled."
            if stopped.kind == "cancelled"
            else f"The resolution did not finish within its deadline of "
            f"{request.deadline_seconds:g} seconds."
        )
        code = Code.CANCELLED if stopped.kind == "cancelled" else Code.DEADLINE_EXCEEDED
        raise ResolutionFailed(
            Failure(
                kind=stopped.kind,
                message=message,
                hints=[Diagnostic(code=code, severity=Severity.ERROR, message=message)],
                fetch_errors=[],
            )
        ) from None
    except FatalFetchError as fatal:
        raise ResolutionFailed(
            Failure(
                kind=fatal.kind,
                message=fatal.diagnostic.message,
                causes=[],
                hints=[fatal.diagnostic],
                fetch_errors=[fatal.diagnostic, *finder.records.fetch_errors],
            )
        ) from None
    except ResolutionImpossible as impossible:
        raise ResolutionFailed(
            explain_failure(impossible.causes, finder=finder, request=request, target=target)
        ) from None
    except ResolutionTooDeep:
        message = (
            f"The resolution gave up after {DEFAULT_MAX_ROUNDS} rounds of backtracking. "
            "Narrow the requirements (add upper bounds or pins) to help it."
        )
        raise ResolutionFailed(
            Failure(
                kind="unsatisfiable",
                message=message,
                hints=[
                    Diagnostic(
                        code=Code.RESOLUTION_TOO_COMPLEX, severity=Severity.ERROR, message=message
                    )
                ],
                fetch_errors=[],
            )
        ) from None
    edges = [
        (parent, child)
        for parent in result.graph
        for child in result.graph.iter_children(parent)
        if child is not None
    ]
    packages = _build_resolution(dict(result.mapping), edges, finder, prepared)
    progress.requests, progress.cache_hits = stats.requests, stats.cache_hits
    warnings = _success_warnings(finder, packages)
    changes = None
    if request.lock is not None:
        changes = make_changes(request, target, finder, result.mapping, result.criteria)
        if mismatch := check_lock_environment(request.lock, target):
            warnings.append(mismatch)
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
    )


async def resolve_request(
    request: ResolveRequest,
    *,
    indexes: Sequence[Index],
    client: IndexClient,
    progress: Progress,
    stop: threading.Event,
    stats: FetchStats | None = None,
) -> Resolution:
    """Resolve ``request`` against ``indexes``; raise ``ResolutionFailed`` with the explanation.

    ``progress`` is updated in place as the search goes (the caller publishes it); setting
    ``stop`` makes the search end at its next step with a ``cancelled`` failure. The request's
    ``deadline_seconds`` is enforced here too, as a ``deadline_exceeded`` failure. ``stats``
    (created when absent) collects the job's request, cache and upstream-status counts.
    """
    loop = asyncio.get_running_loop()
    stats = FetchStats() if stats is None else stats
    bridge = FetchBridge(loop, stop=stop, deadline=time.monotonic() + request.deadline_seconds)

    async def publish() -> None:
        while True:
            progress.requests, progress.cache_hits = stats.requests, stats.cache_hits
            await asyncio.sleep(0.1)

    publisher = asyncio.create_task(publish())
    # A metadata build this job asks for resolves its build requirements from the job's indexes
    # and is waited for no longer than the job's deadline (service.index.builder).
    scope = build_scope.set(
        BuildScope(
            indexes=tuple(indexes),
            index_strategy=request.index_strategy,
            deadline=time.time() + request.deadline_seconds,
        )
    )
    try:
        return await asyncio.to_thread(
            functools.partial(
                _resolve_sync,
                request,
                indexes=indexes,
                client=client,
                stats=stats,
                progress=progress,
                bridge=bridge,
            )
        )
    except asyncio.CancelledError:
        stop.set()
        raise
    finally:
        build_scope.reset(scope)
        publisher.cancel()
        bridge.cancel_pending()
