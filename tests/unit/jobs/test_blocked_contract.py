"""The mirror block catalogue: what a job adds, and one store contract run on Redis and memory."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime, timedelta

import msgspec
import pytest
from redis.asyncio import Redis

from service.diagnostics.model import Code, Diagnostic, Severity
from service.jobs.blocked import (
    BlockedStore,
    Bounds,
    JobRefusals,
    MemoryBlockedStore,
    RedisBlockedStore,
    Refusal,
    make_refusals,
)
from service.jobs.model import JobDocument, JobRecord
from service.jobs.stats import MemoryStatsStore, RedisStatsStore, StatsStore, record_finished_job
from service.resolution.result import Failure
from tests.unit.jobs.test_stats_contract import NOW, REQUEST, failed, succeeded, warning

StoreFactory = Callable[[Bounds], BlockedStore]
DAY = timedelta(days=1)


def page_warning(status: int = 403, index: str = "corp") -> Diagnostic:
    return Diagnostic(
        code=Code.INDEX_FORBIDDEN,
        severity=Severity.WARNING,
        message="page refused",
        package="flask",
        index=index,
        status=status,
    )


def skip(version: str = "3.1.0", *, status: int = 403, outcome: str = "forced") -> JobRefusals:
    """A succeeded job that skipped ``flask==version`` on corp under its metadata policy."""
    refusal = Refusal(
        index="corp",
        package="flask",
        version=version,
        status=status,
        outcome=outcome,  # type: ignore[arg-type]
    )
    policy = (("corp", status),) if outcome == "forced" else ()
    return JobRefusals(refusals=(refusal,), policy_skips=policy)


@pytest.fixture(params=["memory", "redis"])
async def make_stats(
    request: pytest.FixtureRequest, clean_redis: str
) -> AsyncIterator[Callable[[Bounds], StatsStore]]:
    """Statistics stores (and so catalogues) of either kind, with the given bounds."""
    if request.param == "memory":
        yield lambda bounds: MemoryStatsStore(MemoryBlockedStore(bounds))
        return
    client = Redis.from_url(clean_redis)
    try:
        yield lambda bounds: RedisStatsStore(client, RedisBlockedStore(client, bounds))
    finally:
        await client.aclose()


@pytest.fixture
def make_store(make_stats: Callable[[Bounds], StatsStore]) -> StoreFactory:
    return lambda bounds: make_stats(bounds).blocked


@pytest.fixture
def store(make_store: StoreFactory) -> BlockedStore:
    return make_store(Bounds())


class TestMakeRefusals:
    def test_a_version_skipped_by_a_policy_forced_the_job_elsewhere(self) -> None:
        """A succeeded job that skipped flask 3.1.0 and installed 1.0 was forced, by policy."""
        refusals = make_refusals(succeeded(warning()))
        assert refusals == JobRefusals(
            refusals=(
                Refusal(
                    index="corp", package="flask", version="3.1.0", status=403, outcome="forced"
                ),
            ),
            policy_skips=(("corp", 403),),
        )

    def test_a_fatal_refusal_counts_once_as_failed(self) -> None:
        """The failing 403, listed as hint and fetch error alike, is one failed refusal."""
        refusals = make_refusals(failed())
        assert [r.outcome for r in refusals.refusals] == ["failed"]
        assert refusals.policy_skips == ()

    def test_a_refused_page_is_forced_when_the_package_came_from_elsewhere(self) -> None:
        """A project page refused by corp (version None) while flask came from pypi."""
        refusals = make_refusals(succeeded(page_warning()))
        assert [(r.version, r.outcome) for r in refusals.refusals] == [(None, "forced")]
        assert make_refusals(succeeded(page_warning(index="pypi"))).refusals[0].outcome == "other"

    def test_the_same_version_installed_is_not_forced(self) -> None:
        """Installed at the refused version (from another file, say), the job was not forced."""
        refusals = make_refusals(succeeded(warning(version="1.0")))
        assert [r.outcome for r in refusals.refusals] == ["other"]

    @pytest.mark.parametrize(
        "diagnostic",
        [
            warning(status=500),
            warning(status=None),
            warning(code=Code.YANKED, status=None),
            page_warning(status=503),
            warning(code=Code.INDEX_FORBIDDEN),  # a page code with a version is not a page
        ],
    )
    def test_other_diagnostics_are_not_refusals(self, diagnostic: Diagnostic) -> None:
        """Server errors, yanks and malformed page diagnostics are not what a mirror refused."""
        assert make_refusals(succeeded(diagnostic)) == JobRefusals()

    def test_a_cancelled_job_adds_nothing(self) -> None:
        """A job cancelled before it met an index has no refusals."""
        document = JobDocument(
            id="c",
            status="cancelled",
            created_at=NOW,
            finished_at=NOW,
            failure=Failure(kind="cancelled", message="cancelled"),
            request=REQUEST,
        )
        assert make_refusals(document) == JobRefusals()


class TestBlockedStoreContract:
    async def test_counts_jobs_forced_and_failed_per_version(self, store: BlockedStore) -> None:
        """Each job counts once per refusal; first and last seen span the jobs."""
        await store.record(skip(), at=NOW - 2 * DAY)
        await store.record(skip(), at=NOW)
        await store.record(make_refusals(failed()), at=NOW + timedelta(minutes=1))
        until = NOW + timedelta(minutes=5)
        catalogue = await store.catalogue("corp", since=NOW - 3 * DAY, until=until, limit=10)
        [entry] = catalogue.versions
        assert (entry.package, entry.version, entry.status) == ("flask", "3.1.0", 403)
        assert (entry.jobs, entry.forced, entry.failed) == (3, 2, 1)
        assert entry.first_seen == NOW - 2 * DAY
        assert entry.last_seen == NOW + timedelta(minutes=1)
        assert catalogue.days == [date(2026, 11, 22) + n * DAY for n in range(4)]
        assert entry.per_day == [0, 1, 0, 2]
        assert catalogue.total == 1
        assert [(p.status, p.jobs) for p in catalogue.policy_impact] == [(403, 2)]

    async def test_the_window_lists_what_was_seen_since(self, store: BlockedStore) -> None:
        """An entry last seen before ``since`` is left out; counts cover the window's days."""
        await store.record(skip("1.0"), at=NOW - 5 * DAY)
        await store.record(skip("2.0"), at=NOW - 5 * DAY)
        await store.record(skip("2.0"), at=NOW)
        catalogue = await store.catalogue("corp", since=NOW - DAY, until=NOW, limit=10)
        assert [(v.version, v.jobs, v.per_day) for v in catalogue.versions] == [("2.0", 1, [0, 1])]
        assert catalogue.versions[0].first_seen == NOW - 5 * DAY
        assert [(p.status, p.jobs) for p in catalogue.policy_impact] == [(403, 1)]

    async def test_policy_impact_is_per_status_and_hour(self, store: BlockedStore) -> None:
        """Policy skips count by status, from ``since``'s hour on; failures never count."""
        await store.record(skip("1.0", status=403), at=NOW - timedelta(hours=3))
        await store.record(skip("2.0", status=451), at=NOW)
        await store.record(skip("2.0", status=451), at=NOW)
        await store.record(skip("3.0", status=403, outcome="failed"), at=NOW)
        recent = await store.catalogue("corp", since=NOW - timedelta(hours=1), until=NOW, limit=9)
        assert [(p.status, p.jobs) for p in recent.policy_impact] == [(451, 2)]
        wider = await store.catalogue("corp", since=NOW - DAY, until=NOW, limit=9)
        assert [(p.status, p.jobs) for p in wider.policy_impact] == [(403, 1), (451, 2)]

    async def test_indexes_are_kept_apart(self, store: BlockedStore) -> None:
        """What corp refused is not listed under pypi, and an unknown index is empty."""
        await store.record(skip(), at=NOW)
        assert (await store.catalogue("pypi", since=NOW - DAY, until=NOW, limit=10)).versions == []
        nothing = await store.catalogue("nowhere", since=NOW - DAY, until=NOW, limit=10)
        assert (nothing.total, nothing.versions, nothing.policy_impact) == (0, [], [])
        assert nothing.days == [NOW.date() - DAY, NOW.date()]

    async def test_limit_lists_the_most_recently_seen(self, store: BlockedStore) -> None:
        """``limit`` keeps the newest entries; ``total`` still counts every one."""
        for minute in range(5):
            await store.record(skip(f"1.{minute}"), at=NOW + timedelta(minutes=minute))
        catalogue = await store.catalogue("corp", since=NOW - DAY, until=NOW + DAY, limit=2)
        assert [v.version for v in catalogue.versions] == ["1.4", "1.3"]
        assert catalogue.total == 5

    async def test_at_most_max_versions_per_index(self, make_store: StoreFactory) -> None:
        """Past ``max_versions`` the least recently seen entries are dropped, counts and all."""
        store = make_store(Bounds(max_versions=3))
        for minute in range(5):
            await store.record(skip(f"1.{minute}"), at=NOW + timedelta(minutes=minute))
        await store.record(skip("1.2"), at=NOW + timedelta(minutes=9))
        await store.record(skip("1.0"), at=NOW + timedelta(minutes=10))  # back, counted afresh
        catalogue = await store.catalogue("corp", since=NOW - DAY, until=NOW + DAY, limit=10)
        assert [(v.version, v.jobs) for v in catalogue.versions] == [
            ("1.0", 1),
            ("1.2", 2),
            ("1.4", 1),
        ]
        assert catalogue.total == 3
        assert catalogue.max_versions == 3

    async def test_at_most_max_indexes(self, make_store: StoreFactory) -> None:
        """Past ``max_indexes`` the index least recently seen is forgotten whole."""
        store = make_store(Bounds(max_indexes=2))
        for minute, index in enumerate(["a", "b", "c"]):
            refusal = Refusal(index=index, package="p", version="1", status=403, outcome="other")
            await store.record(JobRefusals(refusals=(refusal,)), at=NOW + timedelta(minutes=minute))
        totals = [
            (await store.catalogue(i, since=NOW - DAY, until=NOW + DAY, limit=5)).total
            for i in ["a", "b", "c"]
        ]
        assert totals == [0, 1, 1]

    async def test_nothing_outlives_the_retention(self, make_store: StoreFactory) -> None:
        """Entries last seen before the retention are dropped, as are older days' counts."""
        store = make_store(Bounds(retention_days=7))
        await store.record(skip("1.0"), at=NOW - 10 * DAY)
        await store.record(skip("2.0"), at=NOW - 10 * DAY)
        await store.record(skip("2.0"), at=NOW)
        catalogue = await store.catalogue("corp", since=NOW - 60 * DAY, until=NOW, limit=10)
        assert catalogue.since == NOW - 7 * DAY
        assert len(catalogue.days) == 8
        assert [(v.version, v.jobs, v.forced) for v in catalogue.versions] == [("2.0", 1, 1)]
        assert catalogue.retention_days == 7
        assert [(p.status, p.jobs) for p in catalogue.policy_impact] == [(403, 1)]

    async def test_an_empty_job_changes_nothing(self, store: BlockedStore) -> None:
        """A job with no refusals adds no entry and no index."""
        await store.record(JobRefusals(), at=NOW)
        assert (await store.catalogue("corp", since=NOW - DAY, until=NOW, limit=10)).total == 0


async def test_redis_keeps_no_stale_counters(clean_redis: str) -> None:
    """Trimming deletes the dropped entries' hashes and old days' fields, not just the index."""
    client = Redis.from_url(clean_redis)
    try:
        store = RedisBlockedStore(client, Bounds(max_versions=2, retention_days=7))
        await store.record(skip("0.9"), at=NOW - 9 * DAY)
        await store.record(skip("1.0"), at=NOW - 9 * DAY)
        await store.record(skip("1.0"), at=NOW)
        for minute in range(4):
            await store.record(skip(f"2.{minute}"), at=NOW + timedelta(minutes=minute))
        await store.record(skip("2.3"), at=NOW + DAY)
        keys = sorted(k.decode() for k in await client.keys("resolvd:blocked:entry:*"))
        assert keys == [
            "resolvd:blocked:entry:corp\x1fflask\x1f2.2\x1f403",
            "resolvd:blocked:entry:corp\x1fflask\x1f2.3\x1f403",
        ]
        fields = await client.hkeys(keys[1])
        assert sorted(f.decode() for f in fields) == [
            "first",
            "forced:20261125",
            "forced:20261126",
            "jobs:20261125",
            "jobs:20261126",
        ]
        assert await client.ttl(keys[1]) > 6 * 24 * 3600
    finally:
        await client.aclose()


async def test_record_finished_job_adds_the_refusals(
    make_stats: Callable[[Bounds], StatsStore],
) -> None:
    """The one place a finished job is recorded also feeds the catalogue, with no job details."""
    stats = make_stats(Bounds())
    document = msgspec.structs.replace(succeeded(warning()), id="secret-job-id")
    await record_finished_job(stats, JobRecord(client="alice", fingerprint="f", document=document))
    catalogue = await stats.blocked.catalogue("corp", since=NOW - DAY, until=NOW + DAY, limit=10)
    assert [(v.version, v.jobs, v.forced) for v in catalogue.versions] == [("3.1.0", 1, 1)]
    encoded = msgspec.json.encode(catalogue).decode()
    assert "secret-job-id" not in encoded and "alice" not in encoded
    assert datetime.fromisoformat(msgspec.json.decode(encoded)["until"]).tzinfo == UTC
