"""Workers: consume the queue, run jobs, beat a heartbeat, drain on shutdown.

``SaqWorker`` consumes the Redis queue through SAQ (``resolvd worker`` processes, and the
in-process worker of ``resolvd serve`` when Redis is up); ``MemoryWorker`` consumes the
in-process queue. Both run up to ``concurrency`` jobs at once, write a heartbeat to the store
every few seconds (what ``/readyz`` looks for) and drain on ``stop()``: no new jobs are taken,
running ones get ``DRAIN_GRACE_SECONDS`` to finish and are then cancelled, which hands them back
to the queue for another worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any, Protocol, cast

from redis.exceptions import RedisError
from saq import Worker as _SaqWorker
from saq.types import Context, PartialTimersDict

from service.jobs.backend import Backend, open_backend
from service.jobs.queue import RESOLVE_FUNCTION, MemoryJobQueue, SaqJobQueue
from service.jobs.runner import STOP_GRACE_SECONDS, JobRunner, Resolver, open_resolver
from service.jobs.store import JobStore
from service.settings import Settings

__all__ = [
    "DRAIN_GRACE_SECONDS",
    "HEARTBEAT_INTERVAL_SECONDS",
    "READY_WINDOW_SECONDS",
    "MemoryWorker",
    "SaqWorker",
    "Worker",
    "make_worker",
    "run_worker_process",
]

logger = logging.getLogger(__name__)

HEARTBEAT_INTERVAL_SECONDS = 5.0
# A worker counts as alive for /readyz if it beat within this window.
READY_WINDOW_SECONDS = 30.0
# Running jobs get this long to finish on shutdown (fits a 30 s container stop timeout).
DRAIN_GRACE_SECONDS = 20
# An idle worker notices a shutdown within this long (it blocks on the queue at most this long).
_DEQUEUE_TIMEOUT_SECONDS = 1.0


class Worker(Protocol):
    id: str

    async def run(self) -> None:
        """Consume jobs until ``stop()`` (or, if it handles signals, SIGTERM/SIGINT)."""
        ...

    async def stop(self) -> None:
        """Drain: take no new jobs, let running ones finish or hand them back."""
        ...


async def _beat_forever(store: JobStore, worker_id: str) -> None:
    while True:
        try:
            await store.beat(worker_id)
        except (RedisError, OSError):
            logger.warning("worker %s could not record its heartbeat", worker_id, exc_info=True)
        await asyncio.sleep(HEARTBEAT_INTERVAL_SECONDS)


@contextlib.asynccontextmanager
async def _heartbeat(store: JobStore, worker_id: str) -> AsyncIterator[None]:
    task = asyncio.create_task(_beat_forever(store, worker_id), name=f"heartbeat-{worker_id}")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


class _Context(Context):
    runner: JobRunner


async def _resolve_job(ctx: _Context, *, job_id: str) -> None:
    """The SAQ job function: run our job, heartbeating the SAQ job while it runs."""
    saq_job = ctx["job"]
    await ctx["runner"].run(job_id, touch=saq_job.update)


class _DrainingSaqWorker(_SaqWorker[_Context]):
    """SAQ's worker with a drain that is quick when idle.

    SAQ's own ``stop`` waits out its grace period for every task, including upkeep loops that
    sleep up to 10 s; here upkeep is cancelled at once, running jobs get ``drain_grace``
    seconds, and jobs still running then are cancelled, which SAQ turns into a retry.
    """

    def __init__(self, *args: Any, drain_grace: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._drain_grace = drain_grace

    async def stop(self) -> None:
        self.event.set()
        tasks = list(self.tasks)
        processing = [task for task in tasks if task.get_name() == "process"]
        for task in tasks:
            if task not in processing:
                task.cancel()
        if processing:
            _, late = await asyncio.wait(processing, timeout=self._drain_grace)
            for task in late:
                task.cancel()
            await asyncio.gather(*processing, return_exceptions=True)
        await super().stop()


class _EmbeddedSaqWorker(_DrainingSaqWorker):
    """A SAQ worker that leaves signals to its host (uvicorn owns them in ``resolvd serve``)."""

    SIGNALS = []  # noqa: RUF012 - overrides SAQ's class attribute of the same shape


class SaqWorker:
    """Consumes the SAQ queue on Redis."""

    def __init__(
        self,
        queue: SaqJobQueue,
        store: JobStore,
        runner: JobRunner,
        *,
        concurrency: int,
        settings: Settings,
        handle_signals: bool,
        drain_grace: float = DRAIN_GRACE_SECONDS,
    ) -> None:
        worker_class = _DrainingSaqWorker if handle_signals else _EmbeddedSaqWorker
        self._store = store
        self._saq: _DrainingSaqWorker = worker_class(
            queue.saq,
            functions=[(RESOLVE_FUNCTION, _resolve_job)],
            concurrency=concurrency,
            dequeue_timeout=_DEQUEUE_TIMEOUT_SECONDS,
            drain_grace=drain_grace,
            cancellation_hard_deadline_s=STOP_GRACE_SECONDS + 2,
            # Sweeping as often as the heartbeat hands a dead worker's jobs on within two
            # heartbeats. SAQ's PartialTimersDict inherits required keys, hence the cast.
            timers=cast(PartialTimersDict, {"sweep": max(1, settings.jobs.heartbeat_seconds)}),
        )
        self._saq.context["runner"] = runner
        self.id = self._saq.id

    async def run(self) -> None:
        logger.info("worker %s consuming the Redis queue", self.id)
        async with _heartbeat(self._store, self.id):
            await self._saq.start()

    async def stop(self) -> None:
        await self._saq.stop()


class MemoryWorker:
    """Consumes the in-process queue of a ``resolvd serve`` running without Redis."""

    def __init__(
        self,
        queue: MemoryJobQueue,
        store: JobStore,
        runner: JobRunner,
        *,
        concurrency: int,
        drain_grace: float = DRAIN_GRACE_SECONDS,
    ) -> None:
        self._drain_grace = drain_grace
        self.id = f"memory-{uuid.uuid4().hex[:12]}"
        self._queue = queue
        self._store = store
        self._runner = runner
        self._concurrency = concurrency
        self._busy: dict[asyncio.Task[None], bool] = {}
        self._stopped = asyncio.Event()

    async def run(self) -> None:
        logger.info("worker %s consuming the in-process queue", self.id)
        async with _heartbeat(self._store, self.id):
            for slot in range(self._concurrency):
                task = asyncio.create_task(self._consume(), name=f"{self.id}-{slot}")
                self._busy[task] = False
            await self._stopped.wait()

    async def _consume(self) -> None:
        me = asyncio.current_task()
        assert me is not None
        while True:
            job_id = await self._queue.pending.get()
            self._busy[me] = True
            try:
                await self._runner.run(job_id)
            except Exception:
                # Logged with its traceback; the slot must survive to run the next job.
                logger.exception("job %s could not be run", job_id)
            finally:
                self._busy[me] = False

    async def stop(self) -> None:
        idle = [task for task, busy in self._busy.items() if not busy]
        busy = [task for task, busy in self._busy.items() if busy]
        for task in idle:
            task.cancel()
        if busy:
            await asyncio.wait(busy, timeout=self._drain_grace)
        for task in self._busy:
            task.cancel()
        await asyncio.gather(*self._busy, return_exceptions=True)
        self._busy.clear()
        self._stopped.set()


def make_worker(
    backend: Backend,
    runner: JobRunner,
    *,
    concurrency: int,
    settings: Settings,
    handle_signals: bool,
    drain_grace: float = DRAIN_GRACE_SECONDS,
) -> Worker:
    """The worker that consumes ``backend``'s queue."""
    if isinstance(backend.queue, SaqJobQueue):
        return SaqWorker(
            backend.queue,
            backend.store,
            runner,
            concurrency=concurrency,
            settings=settings,
            handle_signals=handle_signals,
            drain_grace=drain_grace,
        )
    assert isinstance(backend.queue, MemoryJobQueue)
    return MemoryWorker(
        backend.queue, backend.store, runner, concurrency=concurrency, drain_grace=drain_grace
    )


async def run_worker_process(
    settings: Settings, *, concurrency: int, resolver: Resolver = open_resolver
) -> None:
    """``resolvd worker``: consume the Redis queue until SIGTERM/SIGINT, then drain."""
    async with (
        open_backend(settings, "redis", role="resolvd-worker") as backend,
        resolver(settings) as resolve,
    ):
        runner = JobRunner(backend.store, settings, resolve, stats=backend.stats)
        worker = make_worker(
            backend, runner, concurrency=concurrency, settings=settings, handle_signals=True
        )
        await worker.run()
