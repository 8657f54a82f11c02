"""How a job ends: through ``finish_job``, counted once, whoever ends it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from saq.job import Status

from service.jobs.backend import Backend, open_backend
from service.jobs.lifecycle import give_up
from service.jobs.model import GAVE_UP_MESSAGE, JobRecord, make_record
from service.jobs.queue import SaqJobQueue
from service.jobs.stats import MemoryStatsStore
from service.jobs.store import MemoryJobStore
from service.resolution import ResolveRequest, Target
from service.settings import Settings


def job() -> JobRecord:
    request = ResolveRequest(
        requirements=("flask",), environment=Target(python_version="3.12", platform="linux")
    )
    return make_record(request, client="alice", fingerprint="fp")


@pytest.fixture
async def redis_backend(settings: Settings) -> AsyncIterator[Backend]:
    async with open_backend(settings, "redis") as backend:
        yield backend


class TestGiveUp:
    async def test_a_live_job_fails_once_saying_how_many_tries_it_had(self) -> None:
        """The give-up fails the job with the one give-up message and counts it once."""
        store, stats = MemoryJobStore(result_ttl=60), MemoryStatsStore()
        record = job()
        await store.create(record)
        await give_up(store, stats, record.id, 3)
        await give_up(store, stats, record.id, 3)
        document = (await store.get(record.id) or record).document
        assert document.status == "failed"
        assert document.failure is not None
        assert document.failure.message == GAVE_UP_MESSAGE.format(tries=3)
        assert (await stats.totals())["job\x1ffailed"] == 1

    async def test_the_queue_gives_up_through_the_hook(self, redis_backend: Backend) -> None:
        """SAQ ending a job's last try fails its document at once, before anyone reads it."""
        record = job()
        await redis_backend.store.create(record)
        await redis_backend.queue.enqueue(record.id, deadline_seconds=10)
        assert isinstance(redis_backend.queue, SaqJobQueue)
        saq = redis_backend.queue.saq
        saq_job = await saq.job(record.id)
        assert saq_job is not None
        saq_job.attempts = saq_job.retries
        await saq.finish(saq_job, Status.ABORTED, error="swept")
        stored = await redis_backend.store.get(record.id)
        assert stored is not None and stored.document.failure is not None
        assert stored.document.failure.message == GAVE_UP_MESSAGE.format(tries=saq_job.retries)
        assert (await redis_backend.stats.totals())["failure\x1finternal"] == 1
