"""Handing jobs to workers: SAQ on Redis, or an asyncio queue inside one process.

The queue carries only job ids; the job document (``service.jobs.store``) is the source of
truth, so a job the queue delivers after it was cancelled is skipped by the runner.

On Redis, a job carries a heartbeat (``jobs.heartbeat_seconds``): the running attempt touches
it, and a worker that dies stops touching it. Every worker sweeps the active list about as often
as the heartbeat; a job whose heartbeat lapsed is handed to another worker, until its
``jobs.max_tries`` are used up, when the queue gives up on it (``SweepingRedisQueue``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from redis.exceptions import RedisError
from saq.job import Job, Status
from saq.queue.redis import RedisQueue

from service.settings import JobSettings

__all__ = [
    "QUEUE_NAME",
    "RESOLVE_FUNCTION",
    "SWEEP_ABORT_SECONDS",
    "GiveUp",
    "JobQueue",
    "MemoryJobQueue",
    "SaqJobQueue",
    "SweepingRedisQueue",
]

logger = logging.getLogger(__name__)

QUEUE_NAME = "resolvd"
RESOLVE_FUNCTION = "resolve"
# SAQ's own timeout is a backstop behind the runner's deadline enforcement: long enough that
# it only fires when a worker's event loop is wedged.
_SAQ_TIMEOUT_MARGIN_SECONDS = 60
# How long a sweep waits for a stuck job's worker, should it still be alive, to let go of the
# job before another worker gets it. SAQ waits 5 s per job, one job after another; the job
# documents' compare-and-set already makes an overlapping attempt harmless.
SWEEP_ABORT_SECONDS = 1.0
# A sweeping worker's claim on one stuck job outlives the abort wait by this much; should the
# worker die while handing the job on, the claim lapses and the next sweep takes over.
_CLAIM_MARGIN_SECONDS = 5.0
# SAQ's end states for a job it will not run again.
_GIVEN_UP = frozenset({Status.ABORTED, Status.FAILED})
# Under the sweep lock (taken for ARGV[1] seconds), each job on the active list with its
# record, as SAQ's own sweep reads them.
_SWEEP_SCRIPT = """
local jobs = {}
if redis.call('EXISTS', KEYS[1]) == 0 then
    redis.call('SETEX', KEYS[1], ARGV[1], 1)
    for i, id in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do
        jobs[i] = {id, redis.call('GET', id)}
    end
end
return jobs
"""

GiveUp = Callable[[str, int], Awaitable[None]]
"""Told a job id and how many tries it had, when the queue gives up on the job."""


class SweepingRedisQueue(RedisQueue):
    """SAQ's Redis queue with a sweep that survives the sweeping worker, and a give-up hook.

    SAQ's own sweep has two holes, both found by killing workers: it takes a stuck job off the
    active list (to abort it) before it puts the job back on the queue, so a worker killed in
    between loses the job for good; and it reads the active list under a lock that lasts one
    sweep interval, then waits up to 5 s per stuck job, one after another, so with several
    stuck jobs the next worker's sweep reads the same list and retries the same jobs again,
    running two attempts at once and burning a try. Here a sweeping worker claims each stuck
    job (a key that lapses should it die), re-reads it, marks it aborting *on* the active list,
    and only then moves it to the queue in one transaction, for all its stuck jobs at once; a
    worker that lets go of a job a sweep marked puts it back on the queue itself.

    ``on_give_up`` is awaited when a job ends aborted or failed with no try left, so that its
    document fails at once, saying how many tries it had, instead of on its next read.
    """

    on_give_up: GiveUp | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._active_key = self.namespace("active")
        self._sweep_script = self.redis.register_script(_SWEEP_SCRIPT)

    async def sweep(self, lock: int = 60, abort: float = SWEEP_ABORT_SECONDS) -> list[str]:
        listed = await self._sweep_script(
            keys=[self.namespace("sweep"), self._active_key], args=[lock]
        )
        stuck = [raw_id.decode() for raw_id, raw_job in listed if self._looks_stuck(raw_job)]
        # At once, not one after another: each may wait ``abort`` seconds for an answer.
        outcomes = await asyncio.gather(
            *(self._sweep_one(job_id, abort) for job_id in stuck), return_exceptions=True
        )
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        return [job_id for job_id, swept in zip(stuck, outcomes, strict=True) if swept]

    def _looks_stuck(self, raw_job: bytes | None) -> bool:
        """From the sweep's snapshot: gone, not marked active, or active without a heartbeat."""
        job = self.deserialize(raw_job)
        return job is None or job.status != Status.ACTIVE or job.stuck

    async def _sweep_one(self, job_id: str, abort: float) -> bool:
        claim = self.namespace(f"sweeping:{job_id}")
        claimed = await self.redis.set(
            claim, self.name, nx=True, px=int((abort + _CLAIM_MARGIN_SECONDS) * 1000)
        )
        if not claimed:
            return False  # another worker's sweep is handing it on
        try:
            return await self._hand_on(job_id, abort)
        finally:
            await self.redis.delete(claim)

    async def _hand_on(self, job_id: str, abort: float) -> bool:
        """Put a stuck job back on the queue (or give up on it); False if it is not stuck."""
        if await self.redis.lpos(self._active_key, job_id) is None:
            return False  # handed on since the list was read
        job = await self.job(self.job_key_from_id(job_id))
        if job is None:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.lrem(self._active_key, 0, job_id)
                pipe.zrem(self.namespace("incomplete"), job_id)
                await pipe.execute()
            logger.info("swept job %s, which no longer exists", job_id)
            return True
        # On the active list but queued: its worker died between taking it and starting it.
        # Aborting: a sweep that marked it died before handing it on.
        if job.status == Status.ACTIVE and not job.stuck:
            return False
        logger.info("sweeping job %s (try %d of %d)", job.key, job.attempts, job.retries)
        if job.status in (Status.ACTIVE, Status.ABORTING):
            await self.update(job, status=Status.ABORTING, error=self.swept_error_message)
            # A worker that is gone (or wedged) never answers.
            with contextlib.suppress(TimeoutError):
                await job.refresh(abort)
            if job.status != Status.ABORTING:
                return True  # its worker answered: it finished, or put the job back itself
        if job.retryable:
            await self.retry(job, error=self.swept_error_message)
        else:
            await self.finish(job, Status.ABORTED, error=self.swept_error_message)
        return True

    async def retry(self, job: Job, error: str | None) -> None:
        try:
            await super().retry(job, error)
        except (RedisError, OSError) as exc:
            _left_for_sweep(job, "retry", exc)

    async def finish(
        self,
        job: Job,
        status: Status,
        *,
        result: Any = None,
        error: str | None = None,
        **kwargs: Any,
    ) -> None:
        if status == Status.ABORTED and error == self.swept_error_message and job.retryable:
            # This worker let go of a job a sweep took for dead: back on the queue with it, so
            # that the job is on some list even if the sweeping worker dies now.
            await self.retry(job, error=error)
            return
        try:
            await super().finish(job, status, result=result, error=error, **kwargs)
        except (RedisError, OSError) as exc:
            _left_for_sweep(job, "finish", exc)
            return
        if status not in _GIVEN_UP or job.retryable or self.on_give_up is None:
            return
        try:
            await self.on_give_up(job.key, job.attempts)
        except (RedisError, OSError) as exc:
            # GET /jobs/{id} repairs the document later (``SaqJobQueue.gave_up``).
            logger.warning("job %s: could not record that the queue gave up: %s", job.key, exc)


def _left_for_sweep(job: Job, operation: str, exc: Exception) -> None:
    # Redis is down (the job's attempt most likely failed for that reason too). The job stays
    # on the active list, its heartbeat lapses, and a sweep hands it on once Redis answers.
    logger.warning("job %s: could not %s it (%s); a sweep will hand it on", job.key, operation, exc)


class JobQueue(Protocol):
    async def enqueue(self, job_id: str, *, deadline_seconds: float) -> None:
        """Queue ``job_id`` for a worker."""
        ...

    async def discard(self, job_id: str) -> None:
        """Drop ``job_id`` if no worker has taken it yet (best effort; the runner also skips it)."""
        ...

    async def depth(self) -> int:
        """How many jobs wait for a worker."""
        ...

    async def gave_up(self, job_id: str) -> bool:
        """True when the queue has given up on ``job_id`` (its tries ran out)."""
        ...


class SaqJobQueue:
    """Jobs on a SAQ Redis queue: retries, heartbeats and sweeping of jobs whose worker died."""

    def __init__(self, queue: RedisQueue, settings: JobSettings) -> None:
        self.saq = queue
        self._settings = settings

    async def enqueue(self, job_id: str, *, deadline_seconds: float) -> None:
        await self.saq.enqueue(
            RESOLVE_FUNCTION,
            key=job_id,
            job_id=job_id,
            timeout=math.ceil(deadline_seconds) + _SAQ_TIMEOUT_MARGIN_SECONDS,
            retries=self._settings.max_tries,
            heartbeat=self._settings.heartbeat_seconds,
        )

    async def discard(self, job_id: str) -> None:
        job = await self.saq.job(job_id)
        if job is not None and job.status in (Status.NEW, Status.QUEUED):
            await self.saq.abort(job, "cancelled")

    async def depth(self) -> int:
        return await self.saq.count("queued")

    async def gave_up(self, job_id: str) -> bool:
        # SAQ ends a job ABORTED or FAILED when its last try was swept (the worker died) or
        # crashed outside the runner; the runner never wrote an outcome for those.
        job = await self.saq.job(job_id)
        return job is not None and job.status in (Status.ABORTED, Status.FAILED)


class MemoryJobQueue:
    """Jobs on an ``asyncio.Queue``, consumed by the in-process worker of the same app."""

    def __init__(self) -> None:
        self.pending: asyncio.Queue[str] = asyncio.Queue()

    async def enqueue(self, job_id: str, *, deadline_seconds: float) -> None:
        self.pending.put_nowait(job_id)

    async def discard(self, job_id: str) -> None:
        # The runner skips cancelled jobs; removing from an asyncio.Queue is not supported.
        return None

    async def depth(self) -> int:
        return self.pending.qsize()

    async def gave_up(self, job_id: str) -> bool:
        return False
