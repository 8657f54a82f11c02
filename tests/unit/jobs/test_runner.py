"""``JobRunner``: one job from queued to its single terminal state, with a scripted resolver."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator

import msgspec
import pytest

from service.diagnostics.model import Code
from service.index.models import Index
from service.jobs.model import GAVE_UP_MESSAGE, JobRecord, make_record, mark_cancelled
from service.jobs.runner import (
    INTERNAL_ERROR_MESSAGE,
    JobRunner,
    open_resolver,
    start_executor_threads,
)
from service.jobs.store import MemoryJobStore
from service.resolution import IndexRef, Progress, ResolutionFailed, ResolveRequest, Target
from service.resolution.result import make_deadline_failure
from service.settings import Limits, Settings
from tests.indexserver import IndexServer, IndexSpec, Project, Release
from tests.support.scripted import ScriptedResolver
from tests.support.settings import make_test_settings


@pytest.fixture
async def store() -> AsyncIterator[MemoryJobStore]:
    store = MemoryJobStore(result_ttl=600)
    yield store
    await store.aclose()


@pytest.fixture
def test_settings() -> Settings:
    return make_test_settings()


def make_runner(store: MemoryJobStore, settings: Settings, resolver: ScriptedResolver) -> JobRunner:
    return JobRunner(store, settings, resolver.resolve, deadline_grace=0.3, stop_grace=0.3)


async def submit(
    store: MemoryJobStore,
    requirement: str,
    *,
    deadline: float = 30,
    indexes: tuple[IndexRef, ...] = (),
) -> JobRecord:
    request = ResolveRequest(
        requirements=(requirement,),
        environment=Target(python_version="3.12", platform="linux"),
        deadline_seconds=deadline,
        indexes=indexes,
    )
    record = make_record(request, client="c", fingerprint=requirement)
    await store.create(record)
    return record


async def read(store: MemoryJobStore, job_id: str) -> JobRecord:
    record = await store.get(job_id)
    assert record is not None
    return record


async def wait_for_status(store: MemoryJobStore, job_id: str, status: str) -> JobRecord:
    for _ in range(200):
        record = await read(store, job_id)
        if record.status == status:
            return record
        await asyncio.sleep(0.01)
    raise AssertionError(f"job never reached {status}: {record.status}")


class TestOutcomes:
    async def test_success_records_the_result(
        self, store: MemoryJobStore, test_settings: Settings, resolver: ScriptedResolver
    ) -> None:
        """A resolution that returns ends ``succeeded`` with its result and timestamps."""
        record = await submit(store, "ok")
        await make_runner(store, test_settings, resolver).run(record.id)
        done = (await read(store, record.id)).document
        assert done.status == "succeeded"
        assert done.result is not None
        assert done.result.packages[0].name == "ok"
        assert done.started_at is not None
        assert done.finished_at is not None
        assert done.finished_at >= done.started_at >= done.created_at

    async def test_resolution_failure_is_recorded_as_is(
        self, store: MemoryJobStore, test_settings: Settings, resolver: ScriptedResolver
    ) -> None:
        """``ResolutionFailed`` ends ``failed`` with the resolver's own failure."""
        record = await submit(store, "unsat")
        await make_runner(store, test_settings, resolver).run(record.id)
        done = (await read(store, record.id)).document
        assert done.status == "failed"
        assert done.failure is not None
        assert done.failure.kind == "unsatisfiable"

    async def test_unexpected_error_is_internal_and_leaks_nothing(
        self,
        store: MemoryJobStore,
        test_settings: Settings,
        resolver: ScriptedResolver,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """Any other exception: ``internal``, fixed message; the redacted traceback is logged."""
        record = await submit(store, "crash")
        with caplog.at_level(logging.ERROR, logger="service.jobs.runner"):
            await make_runner(store, test_settings, resolver).run(record.id)
        done = (await read(store, record.id)).document
        assert done.failure is not None
        assert done.failure.kind == "internal"
        assert done.failure.message == INTERNAL_ERROR_MESSAGE
        assert "hunter2" not in msgspec.json.encode(done).decode()
        assert "RuntimeError: boom while reading" in caplog.text
        assert "hunter2" not in caplog.text

    async def test_indexes_are_made_from_the_request(
        self, store: MemoryJobStore, test_settings: Settings, resolver: ScriptedResolver
    ) -> None:
        """The resolver gets the runtime indexes the request named, in its order."""
        refs = (IndexRef(name="corp"), IndexRef(name="pypi"))
        record = await submit(store, "ok", indexes=refs)
        await make_runner(store, test_settings, resolver).run(record.id)
        assert [index.name for index in resolver.indexes[0]] == ["corp", "pypi"]

    async def test_an_index_removed_since_submission_fails_the_job(
        self, store: MemoryJobStore, test_settings: Settings, resolver: ScriptedResolver
    ) -> None:
        """If the configuration changed under a queued job, it fails ``invalid_request``."""
        record = await submit(store, "ok", indexes=(IndexRef(name="gone"),))
        await make_runner(store, test_settings, resolver).run(record.id)
        done = (await read(store, record.id)).document
        assert done.failure is not None
        assert done.failure.kind == "invalid_request"
        assert "indexes[0].name" in done.failure.message
        assert resolver.calls == []


class TestCancelAndDeadline:
    async def test_a_job_cancelled_while_queued_never_runs(
        self, store: MemoryJobStore, test_settings: Settings, resolver: ScriptedResolver
    ) -> None:
        """The runner skips a job cancelled before a worker took it."""
        record = await submit(store, "ok")
        await store.update(record.id, mark_cancelled)
        await make_runner(store, test_settings, resolver).run(record.id)
        assert resolver.calls == []
        assert (await read(store, record.id)).status == "cancelled"

    async def test_an_unknown_job_is_skipped(
        self, store: MemoryJobStore, test_settings: Settings, resolver: ScriptedResolver
    ) -> None:
        """An id with no document (expired) runs nothing."""
        await make_runner(store, test_settings, resolver).run("expired")
        assert resolver.calls == []

    async def test_cancel_while_running_sets_stop_within_half_a_second(
        self, store: MemoryJobStore, test_settings: Settings, resolver: ScriptedResolver
    ) -> None:
        """The runner notices a cancel at its next progress publish and sets ``stop``."""
        record = await submit(store, "slow")
        run = asyncio.create_task(make_runner(store, test_settings, resolver).run(record.id))
        await wait_for_status(store, record.id, "running")
        await asyncio.sleep(0.1)
        await store.update(record.id, mark_cancelled)
        cancelled_at = time.monotonic()
        while not resolver.stops[0].is_set():
            assert time.monotonic() - cancelled_at < 0.5
            await asyncio.sleep(0.01)
        await run
        done = await read(store, record.id)
        assert done.status == "cancelled"
        assert done.document.result is None

    async def test_progress_is_published_while_running(
        self, store: MemoryJobStore, test_settings: Settings, resolver: ScriptedResolver
    ) -> None:
        """Counters the resolver updates appear in the document while it runs."""
        record = await submit(store, "slow")
        run = asyncio.create_task(make_runner(store, test_settings, resolver).run(record.id))
        await wait_for_status(store, record.id, "running")
        await asyncio.sleep(0.6)
        assert (await read(store, record.id)).document.progress.rounds > 0
        resolver.release.set()
        await run
        done = await read(store, record.id)
        assert done.status == "succeeded"
        assert done.document.progress.rounds > 0

    async def test_a_resolution_overrunning_its_deadline_is_stopped(
        self, store: MemoryJobStore, test_settings: Settings, resolver: ScriptedResolver
    ) -> None:
        """A resolver that ignores its deadline is cut off: ``deadline_exceeded``."""
        record = await submit(store, "hang", deadline=0.2)
        started = time.monotonic()
        await make_runner(store, test_settings, resolver).run(record.id)
        assert time.monotonic() - started < 3
        done = (await read(store, record.id)).document
        assert done.failure is not None
        assert done.failure == make_deadline_failure(0.2)
        assert [hint.code for hint in done.failure.hints] == [Code.DEADLINE_EXCEEDED]
        assert resolver.stops[0].is_set()

    async def test_a_worker_shutdown_hands_the_job_back(
        self, store: MemoryJobStore, test_settings: Settings, resolver: ScriptedResolver
    ) -> None:
        """Cancelling the runner (worker draining) puts the job back to ``queued``."""
        record = await submit(store, "slow")
        run = asyncio.create_task(make_runner(store, test_settings, resolver).run(record.id))
        await wait_for_status(store, record.id, "running")
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run
        back = await read(store, record.id)
        assert back.status == "queued"
        assert back.document.started_at is None
        assert resolver.stops[0].is_set()

    async def test_too_many_attempts_fail_the_job(
        self, store: MemoryJobStore, test_settings: Settings, resolver: ScriptedResolver
    ) -> None:
        """A job that keeps coming back (its workers die) fails after ``jobs.max_tries``."""
        record = await submit(store, "ok")
        await store.update(
            record.id,
            lambda r: msgspec.structs.replace(
                r, version=r.version + 1, attempts=test_settings.jobs.max_tries
            ),
        )
        await make_runner(store, test_settings, resolver).run(record.id)
        done = (await read(store, record.id)).document
        assert done.failure is not None
        assert done.failure.kind == "internal"
        tries = test_settings.jobs.max_tries + 1
        assert done.failure.message == GAVE_UP_MESSAGE.format(tries=tries)
        assert resolver.calls == []


class TestTheRealResolver:
    @pytest.mark.parametrize("universal", [False, True])
    @pytest.mark.parametrize(("max_rounds", "outcome"), [(2, "too complex"), (100, "resolved")])
    async def test_limits_max_rounds_bounds_the_search(
        self,
        settings: Settings,
        index_server: IndexServer,
        max_rounds: int,
        outcome: str,
        universal: bool,
    ) -> None:
        """``limits.max_rounds`` reaches resolvelib, for one target or universally: a chain of
        three needs more than 2 rounds."""
        url = index_server.add_index(
            IndexSpec(
                "corp",
                [
                    Project("a", [Release("1.0", requires=["b"])]),
                    Project("b", [Release("1.0", requires=["c"])]),
                    Project("c", [Release("1.0")]),
                ],
            )
        )
        limited = msgspec.structs.replace(settings, limits=Limits(max_rounds=max_rounds))
        request = ResolveRequest(
            requirements=("a",),
            environment=Target(python_version="3.12", platform="linux"),
            universal=universal,
        )
        async with open_resolver(limited) as resolve:
            run = resolve(
                request,
                indexes=[Index(name="corp", url=url)],
                progress=Progress(),
                stop=threading.Event(),
            )
            if outcome == "resolved":
                assert [p.name for p in (await run).packages] == ["a", "b", "c"]
                return
            with pytest.raises(ResolutionFailed) as caught:
                await run
        failure = caught.value.failure
        assert [hint.code for hint in failure.hints] == [Code.RESOLUTION_TOO_COMPLEX]
        assert "after 2 rounds" in failure.message


def test_start_executor_threads_starts_them_before_any_job() -> None:
    # A loop of its own: its default executor is new, with no thread yet.
    async def started_threads() -> tuple[int, int]:
        before = set(threading.enumerate())
        await start_executor_threads(3)
        after_start = set(threading.enumerate()) - before
        # The next calls find idle threads: none is started on the loop.
        loop = asyncio.get_running_loop()
        await asyncio.gather(*(loop.run_in_executor(None, time.sleep, 0) for _ in range(3)))
        after_use = set(threading.enumerate()) - before
        return len(after_start), len(after_use)

    assert asyncio.run(started_threads()) == (3, 3)
