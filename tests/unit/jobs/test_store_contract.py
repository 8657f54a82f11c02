"""One contract, two stores: every test runs against ``RedisJobStore`` and ``MemoryJobStore``."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import msgspec
import pytest
from redis.asyncio import Redis

from service.jobs.lifecycle import finish_job
from service.jobs.model import (
    JobRecord,
    make_record,
    mark_cancelled,
    mark_failed,
    mark_running,
    mark_succeeded,
    record_progress,
)
from service.jobs.stats import MemoryStatsStore, RedisStatsStore, StatsStore
from service.jobs.store import (
    FinishedRecords,
    IdempotencyConflict,
    JobStore,
    MemoryJobStore,
    RedisJobStore,
)
from service.resolution import Progress, ResolveRequest, Target
from service.resolution.result import Failure
from tests.support.scripted import make_resolution

StoreFactory = Callable[[int], Awaitable[JobStore]]


@pytest.fixture(params=["memory", "redis"])
async def make_store(request: pytest.FixtureRequest) -> AsyncIterator[StoreFactory]:
    """Builds stores of the parametrized kind with a given result TTL; closes them after."""
    made: list[JobStore] = []

    async def factory(ttl: int) -> JobStore:
        store: JobStore
        if request.param == "memory":
            store = MemoryJobStore(result_ttl=ttl)
        else:
            url = request.getfixturevalue("clean_redis")
            store = RedisJobStore(Redis.from_url(url), result_ttl=ttl)
        made.append(store)
        return store

    yield factory
    for store in made:
        await store.aclose()


@pytest.fixture
async def store(make_store: StoreFactory) -> JobStore:
    return await make_store(3600)


def job(requirement: str = "flask", *, client: str = "alice") -> JobRecord:
    request = ResolveRequest(
        requirements=(requirement,),
        environment=Target(python_version="3.12", platform="linux"),
    )
    return make_record(request, client=client, fingerprint=f"fp-{requirement}")


def internal_failure() -> Failure:
    return Failure(kind="internal", message="boom")


class TestCreate:
    async def test_a_new_job_is_stored_and_readable(self, store: JobStore) -> None:
        """A created job reads back identical, and is reported as new."""
        record = job()
        created = await store.create(record)
        assert created.created
        assert await store.get(record.id) == record

    async def test_unknown_job_reads_as_none(self, store: JobStore) -> None:
        """An id that was never stored reads as None."""
        assert await store.get("no-such-job") is None

    async def test_identical_live_request_returns_the_existing_job(self, store: JobStore) -> None:
        """Same client and fingerprint while the first job is queued: the first job answers."""
        first = await store.create(job())
        second = await store.create(job())
        assert not second.created
        assert second.record.id == first.record.id

    async def test_another_client_gets_its_own_job(self, store: JobStore) -> None:
        """Deduplication never crosses clients."""
        first = await store.create(job(client="alice"))
        second = await store.create(job(client="bob"))
        assert second.created
        assert second.record.id != first.record.id

    @pytest.mark.parametrize(
        ("finish", "reused"),
        [
            (lambda r: mark_succeeded(r, make_resolution()), True),
            (lambda r: mark_failed(r, Failure(kind="unsatisfiable", message="no")), True),
            (lambda r: mark_failed(r, internal_failure()), False),
            (lambda r: mark_failed(r, Failure(kind="deadline_exceeded", message="slow")), False),
            (mark_cancelled, False),
        ],
        ids=["succeeded", "unsatisfiable", "internal", "deadline", "cancelled"],
    )
    async def test_finished_jobs_are_reused_only_when_the_outcome_is_the_requests(
        self,
        store: JobStore,
        finish: Callable[[JobRecord], JobRecord | None],
        reused: bool,
    ) -> None:
        """Results and request-inherent failures are reused; cancels and transient ones not."""
        first = await store.create(job())
        await store.update(first.record.id, finish)
        second = await store.create(job())
        assert second.created is not reused
        assert (second.record.id == first.record.id) is reused

    async def test_a_new_job_replaces_the_dedupe_entry(self, store: JobStore) -> None:
        """After a cancelled job is replaced, identical requests get the replacement."""
        first = await store.create(job())
        await store.update(first.record.id, mark_cancelled)
        second = await store.create(job())
        third = await store.create(job())
        assert third.record.id == second.record.id != first.record.id

    async def test_idempotency_key_with_same_body_returns_the_same_job(
        self, store: JobStore
    ) -> None:
        """Same key, same body: the same job, even after it was cancelled."""
        first = await store.create(job(), idempotency_key="k1")
        await store.update(first.record.id, mark_cancelled)
        again = await store.create(job(), idempotency_key="k1")
        assert not again.created
        assert again.record.id == first.record.id
        assert again.record.status == "cancelled"

    async def test_idempotency_key_with_another_body_conflicts(self, store: JobStore) -> None:
        """Same key, different body: ``IdempotencyConflict`` naming the first job."""
        first = await store.create(job("flask"), idempotency_key="k1")
        with pytest.raises(IdempotencyConflict) as raised:
            await store.create(job("django"), idempotency_key="k1")
        assert raised.value.job_id == first.record.id

    async def test_idempotency_keys_are_per_client(self, store: JobStore) -> None:
        """Another client may use the same key for another body."""
        await store.create(job("flask", client="alice"), idempotency_key="k1")
        other = await store.create(job("django", client="bob"), idempotency_key="k1")
        assert other.created

    async def test_a_key_first_seen_on_a_deduplicated_request_binds_to_that_job(
        self, store: JobStore
    ) -> None:
        """A key sent with a request that deduplicated to an existing job binds to that job."""
        first = await store.create(job())
        await store.create(job(), idempotency_key="k2")
        await store.update(first.record.id, mark_cancelled)
        again = await store.create(job(), idempotency_key="k2")
        assert again.record.id == first.record.id

    async def test_jobs_expire_after_the_result_ttl(self, make_store: StoreFactory) -> None:
        """After ``result_ttl`` seconds a job is gone, and an identical request makes a new one."""
        store = await make_store(1)
        first = await store.create(job(), idempotency_key="k")
        await asyncio.sleep(1.2)
        assert await store.get(first.record.id) is None
        again = await store.create(job(), idempotency_key="k")
        assert again.created


class TestUpdate:
    async def test_a_transition_bumps_the_version(self, store: JobStore) -> None:
        """An applied transition is stored, reported as a change, with the next version."""
        record = (await store.create(job())).record
        updated = await store.update(record.id, mark_running)
        assert updated.changed
        assert updated.record is not None
        assert updated.record.version == record.version + 1
        assert await store.get(record.id) == updated.record

    async def test_a_transition_that_does_not_apply_changes_nothing(self, store: JobStore) -> None:
        """A transition returning None leaves the record, and reports it unchanged."""
        record = (await store.create(job())).record
        updated = await store.update(record.id, lambda r: record_progress(r, Progress()))
        assert not updated.changed
        assert updated.record == record

    async def test_updating_an_unknown_job_reports_none(self, store: JobStore) -> None:
        """Nothing to update: ``(None, False)``."""
        assert tuple(await store.update("missing", mark_cancelled)) == (None, False)

    async def test_a_job_finishes_exactly_once(self, store: JobStore) -> None:
        """Of many concurrent terminal writes, exactly one applies."""
        record = (await store.create(job())).record
        await store.update(record.id, mark_running)
        outcomes = await asyncio.gather(
            *(
                store.update(record.id, lambda r: mark_succeeded(r, make_resolution()))
                for _ in range(10)
            ),
            *(store.update(record.id, mark_cancelled) for _ in range(10)),
        )
        assert sum(outcome.changed for outcome in outcomes) == 1

    async def test_a_late_result_never_overwrites_a_cancel(self, store: JobStore) -> None:
        """Cancelled stays cancelled when the worker's result arrives afterwards."""
        record = (await store.create(job())).record
        await store.update(record.id, mark_running)
        await store.update(record.id, mark_cancelled)
        late = await store.update(record.id, lambda r: mark_succeeded(r, make_resolution()))
        assert not late.changed
        stored = await store.get(record.id)
        assert stored is not None
        assert stored.status == "cancelled"
        assert stored.document.result is None

    async def test_concurrent_transitions_all_apply_in_turn(self, store: JobStore) -> None:
        """Compare-and-set retries: 25 concurrent increments give 25, none lost."""
        record = (await store.create(job())).record

        def increment(r: JobRecord) -> JobRecord:
            return msgspec.structs.replace(r, version=r.version + 1, attempts=r.attempts + 1)

        await asyncio.gather(*(store.update(record.id, increment) for _ in range(25)))
        stored = await store.get(record.id)
        assert stored is not None
        assert stored.attempts == 25

    async def test_finishing_keeps_the_result_for_the_ttl(self, make_store: StoreFactory) -> None:
        """The result lives ``result_ttl`` from when the job ended, not from its creation."""
        store = await make_store(2)
        record = (await store.create(job())).record
        await asyncio.sleep(1.2)
        await store.update(record.id, lambda r: mark_succeeded(r, make_resolution()))
        await asyncio.sleep(1.2)
        assert await store.get(record.id) is not None


class TestWatch:
    async def test_an_update_wakes_the_watcher(self, store: JobStore) -> None:
        """A change after entering the watch is seen by ``wait``."""
        record = (await store.create(job())).record
        async with store.watch(record.id) as watch:
            waiter = asyncio.create_task(watch.wait(5))
            await asyncio.sleep(0.05)
            await store.update(record.id, mark_running)
            assert await waiter

    async def test_a_change_before_wait_is_not_lost(self, store: JobStore) -> None:
        """A change between entering the watch and calling ``wait`` still counts."""
        record = (await store.create(job())).record
        async with store.watch(record.id) as watch:
            await store.update(record.id, mark_running)
            assert await watch.wait(5)

    async def test_no_change_times_out(self, store: JobStore) -> None:
        """Without a change, ``wait`` returns False after its timeout."""
        record = (await store.create(job())).record
        async with store.watch(record.id) as watch:
            assert not await watch.wait(0.2)

    async def test_other_jobs_do_not_wake_the_watcher(self, store: JobStore) -> None:
        """Watching one job ignores changes to another."""
        mine = (await store.create(job("a"))).record
        other = (await store.create(job("b"))).record
        async with store.watch(mine.id) as watch:
            await store.update(other.id, mark_running)
            assert not await watch.wait(0.3)


class TestLiveness:
    async def test_no_workers_until_one_beats(self, store: JobStore) -> None:
        """``count_workers`` counts distinct workers that beat recently."""
        assert await store.count_workers(30) == 0
        await store.beat("w1")
        await store.beat("w1")
        await store.beat("w2")
        assert await store.count_workers(30) == 2

    async def test_old_beats_do_not_count(self, store: JobStore) -> None:
        """A worker that beat outside the window is not counted."""
        await store.beat("w1")
        await asyncio.sleep(0.3)
        assert await store.count_workers(0.1) == 0


class TestFinishJob:
    async def test_each_job_counts_once_under_its_terminal_status(
        self, store: JobStore, request: pytest.FixtureRequest
    ) -> None:
        """``finish_job`` counts only the write that finished a job; a rejected one adds nothing."""
        async with contextlib.AsyncExitStack() as stack:
            stats: StatsStore = MemoryStatsStore()
            if isinstance(store, RedisJobStore):
                url = request.getfixturevalue("clean_redis")
                stats = RedisStatsStore(await stack.enter_async_context(Redis.from_url(url)))
            await self._finish_three_jobs(store, stats)

    async def _finish_three_jobs(self, store: JobStore, stats: StatsStore) -> None:
        succeeded = (await store.create(job("a"))).record
        cancelled = (await store.create(job("b"))).record
        failed = (await store.create(job("c"))).record
        won = await finish_job(
            store, stats, succeeded.id, lambda r: mark_succeeded(r, make_resolution())
        )
        lost = await finish_job(store, stats, succeeded.id, mark_cancelled)
        await finish_job(store, stats, cancelled.id, mark_cancelled)
        await finish_job(store, stats, failed.id, lambda r: mark_failed(r, internal_failure()))
        assert (won.changed, lost.changed) == (True, False)
        assert lost.record is not None and lost.record.status == "succeeded"
        totals = await stats.totals()
        finished = {key: count for key, count in totals.items() if key.startswith("job\x1f")}
        assert finished == {"job\x1fsucceeded": 1, "job\x1fcancelled": 1, "job\x1ffailed": 1}


class TestSubmissionCount:
    async def test_counts_per_client(self, store: JobStore) -> None:
        """Each call counts one submission for that client in the current window."""
        assert await store.count_submission("alice", 60) == 1
        assert await store.count_submission("alice", 60) == 2
        assert await store.count_submission("bob", 60) == 1


class TestRedisHoldsWhatItFinished:
    """``RedisJobStore`` keeps the terminal records it wrote for a while (``FinishedRecords``,
    shared by the stores of one process): they never change, and the waiters an update wakes
    read them back at once."""

    async def test_a_finished_record_is_read_without_redis(self, clean_redis: str) -> None:
        """After the terminal write, the stores sharing the holder answer from memory (the key
        deleted behind their back shows it); another process's store reads Redis."""
        redis = Redis.from_url(clean_redis)
        store = RedisJobStore(redis, result_ttl=3600)
        sibling = RedisJobStore(
            Redis.from_url(clean_redis), result_ttl=3600, finished=store.finished
        )
        other = RedisJobStore(Redis.from_url(clean_redis), result_ttl=3600)
        record = (await store.create(job())).record
        await store.update(record.id, mark_running)
        done = await store.update(record.id, lambda r: mark_succeeded(r, make_resolution()))
        await redis.delete(f"resolvd:job:{record.id}")
        assert await store.get(record.id) == done.record
        assert await sibling.get(record.id) == done.record
        assert await other.get(record.id) is None
        for each in (store, sibling, other):
            await each.aclose()

    async def test_a_live_record_is_always_read_from_redis(self, clean_redis: str) -> None:
        """Running jobs change: nothing is held for them."""
        redis = Redis.from_url(clean_redis)
        store = RedisJobStore(redis, result_ttl=3600)
        record = (await store.create(job())).record
        await store.update(record.id, mark_running)
        await redis.delete(f"resolvd:job:{record.id}")
        assert await store.get(record.id) is None
        await store.aclose()

    async def test_held_records_go_before_the_key_expires(self, clean_redis: str) -> None:
        """A record is never served from memory past its expiry in Redis."""
        store = RedisJobStore(Redis.from_url(clean_redis), result_ttl=1)
        record = (await store.create(job())).record
        await store.update(record.id, mark_cancelled)
        assert await store.get(record.id) is not None
        await asyncio.sleep(1.1)
        assert await store.get(record.id) is None
        await store.aclose()

    async def test_a_read_during_the_write_waits_for_its_outcome(self) -> None:
        """A read that arrives while the terminal write is in flight gets what it wrote, or,
        when the write did not apply, nothing from memory (the caller reads Redis)."""
        held = FinishedRecords()
        record = job()
        with held.writing(record.id) as written:
            reader = asyncio.create_task(held.get(record.id))
            await asyncio.sleep(0)
            assert not reader.done()
            written.set_result(record)
        assert await reader == record
        with held.writing("other"):
            failed = asyncio.create_task(held.get("other"))
            await asyncio.sleep(0)
        assert await failed is None

    def test_held_records_are_bounded_by_bytes(self) -> None:
        """The oldest go first once the held bytes pass the bound; a record over a quarter of
        it is never held."""
        held = FinishedRecords(max_bytes=1000)
        first, second = job("a"), job("b")
        held.put(first, 200, 60)
        held.put(second, 200, 60)
        held.put(job("big"), 300, 60)
        assert held._entries.keys() == {first.id, second.id}
        for number in range(5):
            held.put(job(f"c{number}"), 200, 60)
        assert first.id not in held._entries
        assert held._bytes <= 1000
