"""Workers on a real queue: SAQ on Redis and the in-process memory queue, run in this loop."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator

import pytest

from service.jobs.backend import Backend, BackendChoice, open_backend
from service.jobs.model import JobRecord, make_record
from service.jobs.runner import JobRunner
from service.jobs.worker import Worker, make_worker
from service.resolution import ResolveRequest, Target
from service.settings import Settings
from tests.support.scripted import ScriptedResolver


@pytest.fixture(params=["redis", "memory"])
async def backend(request: pytest.FixtureRequest, settings: Settings) -> AsyncIterator[Backend]:
    choice: BackendChoice = request.param
    async with open_backend(settings, choice) as opened:
        yield opened


@contextlib.asynccontextmanager
async def running_worker(
    backend: Backend, settings: Settings, resolver: ScriptedResolver, *, drain_grace: float
) -> AsyncIterator[Worker]:
    runner = JobRunner(backend.store, settings, resolver.resolve, stop_grace=0.3)
    worker = make_worker(
        backend,
        runner,
        concurrency=2,
        settings=settings,
        handle_signals=False,
        drain_grace=drain_grace,
    )
    task = asyncio.create_task(worker.run())
    try:
        yield worker
    finally:
        await worker.stop()
        await task


async def submit(backend: Backend, requirement: str) -> JobRecord:
    request = ResolveRequest(
        requirements=(requirement,), environment=Target(python_version="3.12", platform="linux")
    )
    record = make_record(request, client="c", fingerprint=requirement)
    await backend.store.create(record)
    await backend.queue.enqueue(record.id, deadline_seconds=30)
    return record


async def wait_for(backend: Backend, job_id: str, status: str, within: float = 5) -> JobRecord:
    until = time.monotonic() + within
    while time.monotonic() < until:
        record = await backend.store.get(job_id)
        if record is not None and record.status == status:
            return record
        await asyncio.sleep(0.02)
    raise AssertionError(f"job {job_id} did not become {status}")


class TestWorkers:
    async def test_a_queued_job_is_run(
        self, backend: Backend, settings: Settings, resolver: ScriptedResolver
    ) -> None:
        """A worker takes a queued job and runs it to its end."""
        async with running_worker(backend, settings, resolver, drain_grace=1):
            record = await submit(backend, "ok")
            done = await wait_for(backend, record.id, "succeeded")
        assert done.attempts == 1
        assert await backend.queue.depth() == 0

    async def test_a_running_worker_beats(
        self, backend: Backend, settings: Settings, resolver: ScriptedResolver
    ) -> None:
        """A worker is counted by ``count_workers`` as soon as it runs."""
        async with running_worker(backend, settings, resolver, drain_grace=1):
            await asyncio.sleep(0.2)
            assert await backend.store.count_workers(30) == 1

    async def test_jobs_run_concurrently(
        self, backend: Backend, settings: Settings, resolver: ScriptedResolver
    ) -> None:
        """With concurrency 2, two slow jobs run at the same time."""
        async with running_worker(backend, settings, resolver, drain_grace=1):
            first = await submit(backend, "slow")
            second = await submit(backend, "slow==1")
            await wait_for(backend, first.id, "running")
            await wait_for(backend, second.id, "running")
            resolver.release.set()
            await wait_for(backend, first.id, "succeeded")
            await wait_for(backend, second.id, "succeeded")

    async def test_an_idle_worker_stops_at_once(
        self, backend: Backend, settings: Settings, resolver: ScriptedResolver
    ) -> None:
        """Stopping a worker with nothing to do takes about a second at most."""
        async with running_worker(backend, settings, resolver, drain_grace=20):
            await asyncio.sleep(0.2)
            started = time.monotonic()
        assert time.monotonic() - started < 2.5


class TestDrain:
    async def test_a_job_that_finishes_within_the_grace_completes(
        self, backend: Backend, settings: Settings, resolver: ScriptedResolver
    ) -> None:
        """Draining waits for a running job that ends within the grace period."""
        async with running_worker(backend, settings, resolver, drain_grace=5):
            record = await submit(backend, "slow")
            await wait_for(backend, record.id, "running")
            threading.Timer(0.3, resolver.release.set).start()
        done = await wait_for(backend, record.id, "succeeded", within=0.1)
        assert done.document.result is not None

    async def test_a_job_still_running_after_the_grace_goes_back_to_the_queue(
        self, backend: Backend, settings: Settings, resolver: ScriptedResolver
    ) -> None:
        """Past the grace period a running job is released, and the next worker finishes it."""
        async with running_worker(backend, settings, resolver, drain_grace=0.3):
            record = await submit(backend, "slow")
            await wait_for(backend, record.id, "running")
        released = await wait_for(backend, record.id, "queued", within=2)
        assert released.document.started_at is None
        assert resolver.stops[0].is_set()
        if backend.kind == "memory":
            # The in-process queue lives and dies with its server: nothing to hand over to.
            return
        assert await backend.queue.depth() == 1
        resolver.release.set()
        async with running_worker(backend, settings, resolver, drain_grace=1):
            done = await wait_for(backend, record.id, "succeeded")
        assert done.attempts == 2
