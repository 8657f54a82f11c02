"""One contract, two stores: each test runs on ``RedisBuildStore`` and ``MemoryBuildStore``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from service.builds.model import BuildFailure, BuildOutcome, BuildRequest
from service.builds.store import BuildStore, MemoryBuildStore, RedisBuildStore
from service.resolution.request import IndexRef
from tests.unit.builds.projects import sdist_file

SHA = "a" * 64


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[BuildStore]:
    made: BuildStore
    if request.param == "memory":
        made = MemoryBuildStore()
    else:
        made = RedisBuildStore(Redis.from_url(request.getfixturevalue("clean_redis")))
    yield made
    await made.aclose()


def build_request(sha256: str = SHA) -> BuildRequest:
    ref = IndexRef(name="corp")
    return BuildRequest(sha256=sha256, file=sdist_file(sha256), index=ref, indexes=(ref,))


BUILT = BuildOutcome(metadata=b"Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n\n")
FAILED = BuildOutcome(failure=BuildFailure(stage="backend", message="boom", log_tail="line"))


class TestQueue:
    async def test_one_request_per_sdist_is_queued(self, store: BuildStore) -> None:
        """A second submission of a pending sdist queues nothing."""
        assert await store.submit(build_request())
        assert not await store.submit(build_request())
        assert await store.is_pending(SHA)
        assert await store.take(0.5) == build_request()
        assert await store.take(0.05) is None

    async def test_nothing_is_queued_once_an_outcome_is_known(self, store: BuildStore) -> None:
        """An sdist built before is never queued again."""
        await store.finish(SHA, BUILT, failure_ttl=60)
        assert not await store.submit(build_request())
        assert await store.find_outcome(SHA) == BUILT

    async def test_a_lapsed_lease_is_no_longer_pending(self, store: BuildStore) -> None:
        """A builder that stops holding its lease leaves the sdist free to queue again."""
        await store.submit(build_request())
        await store.take(0.5)
        await store.hold(SHA, "builder-1", 0.05)
        await asyncio.sleep(0.1)
        assert not await store.is_pending(SHA)
        assert await store.submit(build_request())

    async def test_a_released_build_is_taken_again(self, store: BuildStore) -> None:
        """A build handed back by a stopping builder goes to the next one."""
        await store.submit(build_request())
        taken = await store.take(0.5)
        assert taken is not None
        await store.release(taken)
        assert await store.is_pending(SHA)
        assert await store.take(0.5) == build_request()

    async def test_attempts_are_counted(self, store: BuildStore) -> None:
        assert [await store.count_attempt(SHA) for _ in range(3)] == [1, 2, 3]


class TestOutcomes:
    async def test_metadata_is_kept_and_counted(self, store: BuildStore) -> None:
        """Built metadata is kept; the duration and the outcome are counted."""
        await store.submit(build_request())
        outcome = BuildOutcome(metadata=BUILT.metadata, duration_seconds=2.5)
        await store.finish(SHA, outcome, failure_ttl=60)
        assert await store.find_outcome(SHA) == outcome
        assert not await store.is_pending(SHA)
        totals = await store.totals()
        assert (totals.requested, totals.built, totals.duration_count) == (1, 1, 1)
        assert totals.duration_seconds_sum == pytest.approx(2.5)

    async def test_a_failure_is_forgotten_after_its_ttl(self, store: BuildStore) -> None:
        """A failure lasts ``failure_ttl`` seconds, then the sdist may be built again."""
        await store.finish(SHA, FAILED, failure_ttl=0.1)
        assert await store.find_outcome(SHA) == FAILED
        await asyncio.sleep(0.2)
        assert await store.find_outcome(SHA) is None
        assert (await store.totals()).failed == {"backend": 1}

    async def test_a_failure_never_replaces_built_metadata(self, store: BuildStore) -> None:
        await store.finish(SHA, BUILT, failure_ttl=60)
        await store.finish(SHA, FAILED, failure_ttl=60)
        assert await store.find_outcome(SHA) == BUILT

    async def test_reuses_are_counted(self, store: BuildStore) -> None:
        await store.record_reuse()
        await store.record_reuse()
        assert (await store.totals()).reused == 2


class TestBuilders:
    async def test_builders_alive_within_the_window(self, store: BuildStore) -> None:
        assert await store.count_builders(30) == 0
        await store.beat("builder-1")
        await store.beat("builder-2")
        assert await store.count_builders(30) == 2
