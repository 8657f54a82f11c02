"""Run one job: load it, resolve it, publish progress, honour cancels and deadlines, finish it.

``JobRunner.run`` is what every worker (SAQ or in-process) calls with a job id. It never raises
for a resolution that goes wrong; the job document records why. It raises only when the store
itself fails (so the queue retries the job) or when it is cancelled by a worker shutdown, in
which case the job goes back to ``queued`` for another worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping, Sequence
from typing import Any, Protocol, TypeVar

import msgspec

from service.builds import BuildRequester, open_build_store
from service.diagnostics.redact import redact_text
from service.index import FetchStats, make_index_client
from service.index.models import Index
from service.jobs.collector import IdleCollector
from service.jobs.lifecycle import finish_job
from service.jobs.model import (
    JobRecord,
    mark_failed,
    mark_given_up,
    mark_running,
    mark_succeeded,
    record_progress,
    release,
)
from service.jobs.stats import StatsStore
from service.jobs.store import JobStore, Transition
from service.resolution import (
    IndexRefError,
    Progress,
    Resolution,
    ResolutionFailed,
    ResolveRequest,
    make_indexes,
    resolve_request,
)
from service.resolution.result import Failure, make_deadline_failure, make_job_failure
from service.settings import Settings

__all__ = ["JobRunner", "ResolveFn", "Resolver", "open_resolver", "start_executor_threads"]

logger = logging.getLogger(__name__)

# ThreadPoolExecutor's own default size: the threads ``start_executor_threads`` starts up front.
_EXECUTOR_THREADS = min(32, (os.cpu_count() or 1) + 4)
# How often a running job publishes progress and looks for a cancel.
PROGRESS_INTERVAL_SECONDS = 0.25
# How long past its deadline a resolution may run before the runner gives up on it.
DEADLINE_GRACE_SECONDS = 5.0
# How long a stopped resolution gets to notice ``stop`` before its task is cancelled.
STOP_GRACE_SECONDS = 5.0

_Outcome = TypeVar("_Outcome", Resolution, Failure)

# One per process: the idle moments it collects in are the process's, whatever runs the jobs.
_COLLECTOR = IdleCollector()

INTERNAL_ERROR_MESSAGE = (
    "An internal error stopped this resolution. It has been logged; "
    "try again, and report it if it persists."
)


class ResolveFn(Protocol):
    """Resolve ``request`` against ``indexes`` (the index client already bound)."""

    def __call__(
        self,
        request: ResolveRequest,
        *,
        indexes: Sequence[Index],
        progress: Progress,
        stop: threading.Event,
        fetch_stats: FetchStats | None = None,
    ) -> Coroutine[Any, Any, Resolution]: ...


Resolver = Callable[[Settings], contextlib.AbstractAsyncContextManager[ResolveFn]]
"""Opens what resolutions need for a worker's lifetime (the index client) and yields a
``ResolveFn``; ``open_resolver`` is the real one, tests pass fakes."""


@contextlib.asynccontextmanager
async def open_resolver(settings: Settings) -> AsyncIterator[ResolveFn]:
    """The real resolver: one index client per worker process, shared by its jobs."""
    await start_executor_threads()
    async with contextlib.AsyncExitStack() as stack:
        builder = None
        if settings.builds.enabled:  # sdists with dynamic metadata go to the builders
            store = await stack.enter_async_context(open_build_store(settings))
            builder = BuildRequester(store, settings.builds)
        # make_index_client probes the cache's Redis synchronously; keep that off the event loop.
        client = await stack.enter_async_context(
            await asyncio.to_thread(make_index_client, settings, metadata_builder=builder)
        )

        def resolve(
            request: ResolveRequest,
            *,
            indexes: Sequence[Index],
            progress: Progress,
            stop: threading.Event,
            fetch_stats: FetchStats | None = None,
        ) -> Coroutine[Any, Any, Resolution]:
            return resolve_request(
                request,
                indexes=indexes,
                client=client,
                progress=progress,
                stop=stop,
                stats=fetch_stats,
                max_rounds=settings.limits.max_rounds,
            )

        yield resolve


async def start_executor_threads(count: int = _EXECUTOR_THREADS) -> None:
    """Start up to ``count`` threads of the event loop's default executor now.

    The executor starts a thread the first time it finds none idle, and ``Thread.start`` holds
    the event loop until the new thread has run. On a loop whose resolver threads hold the GIL
    that costs 5-10 ms per thread, so a new worker's first job paid 30-50 ms of stalled loop.
    Each task below waits until all are submitted, so each submission finds no idle thread.
    """
    loop = asyncio.get_running_loop()
    submitted = threading.Event()
    started = [loop.run_in_executor(None, submitted.wait) for _ in range(count)]
    submitted.set()
    await asyncio.gather(*started)


class JobRunner:
    """Runs jobs for one worker; safe to call concurrently for different jobs."""

    def __init__(
        self,
        store: JobStore,
        settings: Settings,
        resolve: ResolveFn,
        *,
        environ: Mapping[str, str] | None = None,
        deadline_grace: float = DEADLINE_GRACE_SECONDS,
        stop_grace: float = STOP_GRACE_SECONDS,
        stats: StatsStore | None = None,
        collector: IdleCollector = _COLLECTOR,
    ) -> None:
        self._store = store
        self._stats = stats
        self._collector = collector
        self._settings = settings
        self._resolve = resolve
        self._environ = os.environ if environ is None else environ
        self._deadline_grace = deadline_grace
        self._stop_grace = stop_grace

    async def run(self, job_id: str, *, touch: Callable[[], Awaitable[None]] | None = None) -> None:
        """Run ``job_id`` to an end. ``touch`` is called now and then as a queue heartbeat.

        Garbage is collected in full only once no job has run for a moment
        (``service.jobs.collector``)."""
        with self._collector.busy():
            await self._run(job_id, touch)

    async def _run(self, job_id: str, touch: Callable[[], Awaitable[None]] | None) -> None:
        started = await self._store.update(job_id, mark_running)
        if started.record is None or not started.changed:
            logger.info("job %s skipped: %s", job_id, _why_skipped(started.record))
            return
        record = started.record
        if record.attempts > self._settings.jobs.max_tries:
            await self._finish(job_id, mark_given_up)
            return
        try:
            request = record.document.request
            indexes = make_indexes(
                request.indexes, self._settings, self._environ, sources=request.sources
            )
        except IndexRefError as exc:
            failure = Failure(kind="invalid_request", message=f"{exc.field}: {exc.message}")
            await self._finish(job_id, lambda r: mark_failed(r, failure))
            return
        try:
            await self._supervise(record, indexes, touch)
        except asyncio.CancelledError:
            # A worker shutdown (or SAQ's timeout, or a sweep that thought this attempt dead):
            # hand the job back for another attempt, unless another has started already.
            attempt = record.attempts
            await asyncio.shield(
                self._store.update(job_id, lambda r: release(r) if r.attempts == attempt else None)
            )
            raise

    async def _supervise(
        self,
        record: JobRecord,
        indexes: list[Index],
        touch: Callable[[], Awaitable[None]] | None,
    ) -> None:
        job_id = record.id
        request = record.document.request
        progress = Progress()
        stop = threading.Event()
        fetch_stats = FetchStats()
        task = asyncio.create_task(
            self._resolve(
                request, indexes=indexes, progress=progress, stop=stop, fetch_stats=fetch_stats
            ),
            name=f"resolve-{job_id}",
        )
        deadline = time.monotonic() + request.deadline_seconds + self._deadline_grace
        touch_every = max(1.0, self._settings.jobs.heartbeat_seconds / 3)
        last_touch = time.monotonic()
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=PROGRESS_INTERVAL_SECONDS)
                if done:
                    break
                current = await self._store.update(
                    job_id, lambda r: record_progress(r, msgspec.structs.replace(progress))
                )
                if current.record is None or current.record.status != "running":
                    logger.info("job %s stopping: it was cancelled or expired", job_id)
                    await _stop(task, stop, self._stop_grace)
                    return
                if time.monotonic() > deadline:
                    failure = make_deadline_failure(request.deadline_seconds)
                    await self._finish_with(job_id, mark_failed, failure, progress, fetch_stats)
                    await _stop(task, stop, self._stop_grace)
                    return
                if touch is not None and time.monotonic() - last_touch >= touch_every:
                    await touch()
                    last_touch = time.monotonic()
        except BaseException:
            await _stop(task, stop, self._stop_grace)
            raise
        await self._finish_task(job_id, task, progress, fetch_stats)

    async def _finish_task(
        self,
        job_id: str,
        task: asyncio.Task[Resolution],
        progress: Progress,
        fetch_stats: FetchStats,
    ) -> None:
        """End the job with what its resolution task returned or raised."""
        try:
            resolution = task.result()
        except ResolutionFailed as exc:
            await self._finish_with(job_id, mark_failed, exc.failure, progress, fetch_stats)
            return
        except Exception:
            # The traceback is redacted: an unexpected error may quote a URL with credentials.
            logger.error(
                "job %s: the resolver raised unexpectedly\n%s",
                job_id,
                redact_text(traceback.format_exc()),
            )
            failure = make_job_failure("internal", INTERNAL_ERROR_MESSAGE)
            await self._finish_with(job_id, mark_failed, failure, progress, fetch_stats)
            return
        await self._finish_with(job_id, mark_succeeded, resolution, progress, fetch_stats)

    async def _finish_with(
        self,
        job_id: str,
        finish: Callable[[JobRecord, _Outcome], JobRecord | None],
        outcome: _Outcome,
        progress: Progress,
        fetch_stats: FetchStats,
    ) -> None:
        """End a job that ran: its outcome, its final counters, and its upstream responses."""
        await self._finish(
            job_id,
            lambda r: _with_progress(finish, r, outcome, progress),
            upstream=fetch_stats.responses,
        )

    async def _finish(
        self,
        job_id: str,
        finish: Transition,
        *,
        upstream: Mapping[tuple[str, int], int] | None = None,
    ) -> None:
        await finish_job(self._store, self._stats, job_id, finish, upstream=upstream)


def _with_progress(
    finish: Callable[[JobRecord, _Outcome], JobRecord | None],
    record: JobRecord,
    outcome: _Outcome,
    progress: Progress,
) -> JobRecord | None:
    """Apply a terminal transition, carrying the final counters into the document."""
    if not record.terminal:
        record = msgspec.structs.replace(
            record,
            document=msgspec.structs.replace(
                record.document, progress=msgspec.structs.replace(progress)
            ),
        )
    return finish(record, outcome)


async def _stop(task: asyncio.Task[Resolution], stop: threading.Event, grace: float) -> None:
    """Ask the resolution to stop, give it ``grace`` seconds, then cancel its task."""
    stop.set()
    if not task.done():
        await asyncio.wait({task}, timeout=grace)
    if not task.done():
        task.cancel()
        # The job's outcome is already decided (cancelled, past deadline or shutting down);
        # whatever the abandoned resolution raises on its way out no longer matters.
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    elif not task.cancelled():
        # Retrieve the outcome so asyncio does not log it as never retrieved.
        task.exception()


def _why_skipped(record: JobRecord | None) -> str:
    if record is None:
        return "unknown or expired"
    return f"already {record.status}"
