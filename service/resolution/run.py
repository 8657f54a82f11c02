"""Run one resolution: prepare requirements, drive resolvelib in a thread, shape the outcome."""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING

import msgspec

from service.index.builder import BuildScope, build_scope
from service.index.fetch import FetchStats
from service.index.models import Index
from service.resolution.bridge import FetchBridge
from service.resolution.candidates import Candidate
from service.resolution.environment import (
    UnsupportedTargetError,
    make_target_environment,
)
from service.resolution.explain import explain_failure
from service.resolution.finder import Finder
from service.resolution.preferences import check_lock_environment, make_preferences
from service.resolution.prepare import (
    DEFAULT_MAX_ROUNDS,
    Prepared,
    invalid,
    make_finder,
    prepare,
    run_resolver,
    success_warnings,
)
from service.resolution.provider import ProgressReporter, Provider
from service.resolution.relock import make_changes
from service.resolution.request import ResolveRequest
from service.resolution.result import (
    Progress,
    Resolution,
    ResolutionStats,
    ResolvedPackage,
    make_file_ref,
)
from service.resolution.scope import TargetScope
from service.resolution.universal import resolve_universal

if TYPE_CHECKING:
    from service.index import IndexClient

__all__ = ["resolve_request"]


def _build_resolution(
    mapping: dict[str, Candidate],
    graph_edges: list[tuple[str | None, str]],
    finder: Finder,
    prepared: Prepared,
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
        packages.append(
            ResolvedPackage(
                name=name,
                version=str(candidate.version),
                index=candidate.index.display_name,
                requested=name in prepared.root_names,
                direct=name in prepared.direct,
                extras=sorted(extras[name]),
                markers=None,
                requires_python=finder.metadata(candidate).requires_python,
                dependencies=sorted(dependencies[name]),
                required_by=sorted(required_by[name]),
                file=make_file_ref(candidate.file),
                files=[make_file_ref(file) for file in finder.entry(candidate).files],
            )
        )
    return packages


def _resolve_target(
    request: ResolveRequest,
    *,
    indexes: Sequence[Index],
    client: IndexClient,
    stats: FetchStats,
    progress: Progress,
    bridge: FetchBridge,
    max_rounds: int,
) -> Resolution:
    """Resolve ``request`` for its one target environment (in the resolver thread)."""
    started = time.monotonic()
    try:
        target = make_target_environment(
            request.environment.python_version, request.environment.platform
        )
    except UnsupportedTargetError as error:
        raise invalid(f"{error.field}: {error.message}") from error
    scope = TargetScope(target)
    prepared = prepare(request, scope)
    preferences = make_preferences(request, target)
    finder = make_finder(
        request,
        prepared,
        scope=scope,
        indexes=indexes,
        client=client,
        stats=stats,
        bridge=bridge,
        preferences=preferences,
    )
    provider = Provider(finder, bridge, constraints=prepared.constraints)
    result = run_resolver(
        provider,
        ProgressReporter(progress),
        prepared.roots,
        request=request,
        finder=finder,
        max_rounds=max_rounds,
        explain=lambda impossible: explain_failure(
            impossible.causes, finder=finder, request=request, target=target
        ),
    )
    edges = [
        (parent, child)
        for parent in result.graph
        for child in result.graph.iter_children(parent)
        if child is not None
    ]
    packages = _build_resolution(dict(result.mapping), edges, finder, prepared)
    progress.requests, progress.cache_hits = stats.requests, stats.cache_hits
    warnings = success_warnings(finder, packages)
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
    max_rounds: int = DEFAULT_MAX_ROUNDS,
) -> Resolution:
    """Resolve ``request`` against ``indexes``; raise ``ResolutionFailed`` with the explanation.

    ``progress`` is updated in place as the search goes (the caller publishes it); setting
    ``stop`` makes the search end at its next step with a ``cancelled`` failure. The request's
    ``deadline_seconds`` is enforced here too, as a ``deadline_exceeded`` failure, and a search
    longer than ``max_rounds`` (``limits.max_rounds``) fails as too complex. ``stats``
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
    # (not the explicit ones: they serve only what ``sources`` pins) and is waited for no longer
    # than the job's deadline (service.index.builder).
    scope = build_scope.set(
        BuildScope(
            indexes=tuple(index for index in indexes if not index.explicit),
            index_strategy=request.index_strategy,
            deadline=time.time() + request.deadline_seconds,
        )
    )
    try:
        resolution = await asyncio.to_thread(
            functools.partial(
                resolve_universal if request.universal else _resolve_target,
                request,
                indexes=indexes,
                client=client,
                stats=stats,
                progress=progress,
                bridge=bridge,
                max_rounds=max_rounds,
            )
        )
        return msgspec.structs.replace(resolution, exclude_newer=request.exclude_newer)
    except asyncio.CancelledError:
        stop.set()
        raise
    finally:
        build_scope.reset(scope)
        publisher.cancel()
        bridge.cancel_pending()
