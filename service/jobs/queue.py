"""Handing jobs to workers: SAQ on Redis, or an asyncio queue inside one process.

The queue carries only job ids; the job document (``service.jobs.store``) is the source of
truth, so a job the queue delivers after it was cancelled is skipped by the runner.
"""

from __future__ import annotations

import asyncio
import math
from typing import Protocol

from saq.job import Status
from saq.queue.redis import RedisQueue

from service.settings import JobSettings

__all__ = ["QUEUE_NAME", "RESOLVE_FUNCTION", "JobQueue", "MemoryJobQueue", "SaqJobQueue"]

QUEUE_NAME = "resolvd"
RESOLVE_FUNCTION = "resolve"
# SAQ's own timeout is a backstop behind the runner's deadline enforcement: long enough that
# it only fires when a worker's event loop is wedged.
_SAQ_TIMEOUT_MARGIN_SECONDS = 60


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
