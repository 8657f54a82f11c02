"""The fleet statistics store: one contract, run against Redis and memory."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import msgspec
import pytest
from redis.asyncio import Redis

from service.diagnostics.model import Code, Diagnostic, Severity
from service.jobs.model import JobDocument, JobRecord, mark_cancelled
from service.jobs.stats import (
    RECENT_JOBS_KEPT,
    MemoryStatsStore,
    RecentJob,
    RedisStatsStore,
    StatsStore,
    count_job,
    make_recent_job,
    record_finished_job,
)
from service.resolution import ResolveRequest, Target
from service.resolution.result import Failure, FailureCause, VersionRejection
from tests.support.scripted import make_resolution

NOW = datetime(2026, 11, 25, 12, 30, tzinfo=UTC)
REQUEST = ResolveRequest(
    requirements=("flask",), environment=Target(python_version="3.12", platform="linux")
)


def warning(**fields: object) -> Diagnostic:
    defaults: dict[str, object] = {
        "code": Code.METADATA_UNAVAILABLE,
        "severity": Severity.WARNING,
        "message": "skipped",
        "package": "flask",
        "version": "3.1.0",
        "index": "corp",
        "status": 403,
    }
    return Diagnostic(**{**defaults, **fields})  # type: ignore[arg-type]


def succeeded(*warnings: Diagnostic) -> JobDocument:
    resolution = make_resolution("flask")
    resolution = type(resolution)(
        packages=resolution.packages, warnings=list(warnings), stats=resolution.stats
    )
    return JobDocument(
        id="a",
        status="succeeded",
        created_at=NOW,
        started_at=NOW,
        finished_at=NOW + timedelta(seconds=2),
        result=resolution,
        request=REQUEST,
    )


def failed() -> JobDocument:
    fatal = warning(severity=Severity.ERROR)
    return JobDocument(
        id="b",
        status="failed",
        created_at=NOW,
        started_at=NOW,
        finished_at=NOW + timedelta(seconds=1),
        failure=Failure(
            kind="metadata_error",
            message="…",
            causes=[
                FailureCause(
                    package="flask",
                    requirement="flask",
                    required_by=None,
                    versions=[VersionRejection(version="3.1.0", reason="metadata_unavailable")],
                )
            ],
            hints=[fatal],
            fetch_errors=[fatal],
        ),
        request=REQUEST,
    )


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest, clean_redis: str) -> AsyncIterator[StatsStore]:
    if request.param == "memory":
        yield MemoryStatsStore()
        return
    client = Redis.from_url(clean_redis)
    try:
        yield RedisStatsStore(client)
    finally:
        await client.aclose()


class TestCountJob:
    def test_a_repeated_diagnostic_counts_once(self) -> None:
        """A fatal diagnostic listed as both hint and fetch error is one diagnostic."""
        fields = count_job(failed(), {})
        assert fields["diag\x1fmetadata_unavailable\x1ferror"] == 1
        assert fields["pkg\x1fflask"] == 1
        assert fields["failure\x1fmetadata_error"] == 1

    def test_upstream_responses_and_duration(self) -> None:
        """Upstream statuses are added as counted; the duration is start to finish."""
        fields = count_job(succeeded(), {("corp", 200): 5, ("corp", 403): 1})
        assert fields["upstream\x1fcorp\x1f200"] == 5
        assert fields["upstream\x1fcorp\x1f403"] == 1
        assert fields["duration_ms"] == 2000
        assert fields["job\x1fsucceeded"] == 1


class TestStatsStoreContract:
    async def test_summary_groups_by_code_index_and_package(self, store: StatsStore) -> None:
        """A summary over the window adds the jobs' counts, grouped as dashboards chart them."""
        await store.record(count_job(succeeded(warning()), {("corp", 403): 1}), at=NOW)
        await store.record(count_job(failed(), {("corp", 403): 1}), at=NOW)
        summary = await store.summary(NOW - timedelta(hours=1), NOW + timedelta(minutes=5))
        assert summary.jobs == {"succeeded": 1, "failed": 1}
        assert summary.failures_by_kind == {"metadata_error": 1}
        assert {(c.code, c.severity, c.count) for c in summary.diagnostics} == {
            ("metadata_unavailable", "warning", 1),
            ("metadata_unavailable", "error", 1),
        }
        assert [(c.index, c.status, c.count) for c in summary.by_index_status] == [("corp", 403, 2)]
        assert [(u.index, u.status, u.count) for u in summary.upstream_responses] == [
            ("corp", 403, 2)
        ]
        assert [(p.package, p.count) for p in summary.top_failing_packages] == [("flask", 1)]

    async def test_window_excludes_older_hours(self, store: StatsStore) -> None:
        """Jobs finished before ``since``'s hour are not in the summary, but stay in totals."""
        await store.record(count_job(succeeded(), {}), at=NOW - timedelta(hours=5))
        await store.record(count_job(failed(), {}), at=NOW)
        summary = await store.summary(NOW - timedelta(hours=1), NOW)
        assert summary.jobs == {"failed": 1}
        totals = await store.totals()
        assert totals["job\x1fsucceeded"] == 1
        assert totals["job\x1ffailed"] == 1

    async def test_empty_store(self, store: StatsStore) -> None:
        """Nothing recorded gives an empty summary, empty hours, no totals and no recent jobs."""
        summary = await store.summary(NOW - timedelta(hours=1), NOW)
        assert summary.jobs == {} and summary.diagnostics == []
        assert [hour.jobs for hour in summary.series] == [{}, {}]
        assert await store.totals() == {}
        assert await store.recent("anonymous", 10) == []

    async def test_series_has_every_hour_with_its_failures_by_code(self, store: StatsStore) -> None:
        """One entry per hour of the window, oldest first; each counts the jobs of its hour."""
        await store.record(count_job(failed(), {}), at=NOW - timedelta(hours=2))
        await store.record(count_job(failed(), {}), at=NOW)
        await store.record(count_job(succeeded(), {}), at=NOW)
        summary = await store.summary(NOW - timedelta(hours=3), NOW)
        hour = NOW.replace(minute=0)
        assert [entry.hour for entry in summary.series] == [
            hour - timedelta(hours=3),
            hour - timedelta(hours=2),
            hour - timedelta(hours=1),
            hour,
        ]
        assert [entry.failures_by_code for entry in summary.series] == [
            {},
            {"metadata_unavailable": 1},
            {},
            {"metadata_unavailable": 1},
        ]
        assert summary.series[-1].jobs == {"failed": 1, "succeeded": 1}
        assert summary.series[-1].failures_by_kind == {"metadata_error": 1}
        assert summary.jobs == {"failed": 2, "succeeded": 1}

    async def test_recent_jobs_are_newest_first_and_per_client(self, store: StatsStore) -> None:
        """A client reads back its own jobs, newest first, as they were stored."""
        first, second = recent_job("one"), recent_job("two", "failed")
        await store.remember("alice", first)
        await store.remember("alice", second)
        await store.remember("bob", recent_job("bobs"))
        assert await store.recent("alice", 10) == [second, first]
        assert await store.recent("alice", 1) == [second]
        assert [job.id for job in await store.recent("bob", 10)] == ["bobs"]
        assert await store.recent("carol", 10) == []

    async def test_recent_jobs_are_capped(self, store: StatsStore) -> None:
        """Only the ``RECENT_JOBS_KEPT`` newest jobs of a client are kept."""
        for number in range(RECENT_JOBS_KEPT + 5):
            await store.remember("alice", recent_job(f"job-{number}"))
        kept = await store.recent("alice", RECENT_JOBS_KEPT + 5)
        assert len(kept) == RECENT_JOBS_KEPT
        assert kept[0].id == f"job-{RECENT_JOBS_KEPT + 4}"
        assert kept[-1].id == "job-5"

    async def test_record_finished_job_counts_and_lists_it(self, store: StatsStore) -> None:
        """A finished job is counted in its hour and listed first for its own client."""
        record = JobRecord(client="alice", fingerprint="f", document=failed())
        await record_finished_job(store, record, {("corp", 403): 1})
        summary = await store.summary(NOW - timedelta(hours=1), NOW + timedelta(minutes=5))
        assert summary.jobs == {"failed": 1}
        assert [(u.index, u.status) for u in summary.upstream_responses] == [("corp", 403)]
        assert [job.id for job in await store.recent("alice", 10)] == ["b"]
        assert await store.recent("anonymous", 10) == []


async def test_statistics_are_best_effort(caplog: pytest.LogCaptureFixture) -> None:
    """With Redis unreachable, recording a job logs a warning and does not raise."""
    client = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=1)
    record = JobRecord(client="alice", fingerprint="f", document=failed())
    try:
        with caplog.at_level(logging.WARNING, logger="service.jobs.stats"):
            await record_finished_job(RedisStatsStore(client), record)
    finally:
        await client.aclose()
    assert "job b: could not record statistics" in caplog.text


def cancelled_before_start() -> JobDocument:
    queued = JobDocument(id="c", status="queued", created_at=NOW, request=REQUEST)
    record = mark_cancelled(
        JobRecord(client="alice", fingerprint="f", document=queued), now=NOW + timedelta(seconds=3)
    )
    assert record is not None
    return record.document


def recent_job(job_id: str, status: str = "succeeded") -> RecentJob:
    return RecentJob(
        id=job_id,
        status=status,  # type: ignore[arg-type]
        failure_kind=None if status == "succeeded" else "unsatisfiable",
        created_at=NOW,
        finished_at=NOW + timedelta(seconds=1),
        duration_ms=1000,
        requirements=["flask"],
    )


class TestFailureCodes:
    def test_a_failure_counts_once_per_code_it_carries(self) -> None:
        """The codes of a failure's hints and fetch errors, each once, are its failure codes."""
        fields = count_job(failed(), {})
        assert {f: n for f, n in fields.items() if f.startswith("failure_code")} == {
            "failure_code\x1fmetadata_unavailable": 1
        }

    def test_a_failure_without_diagnostics_counts_under_its_kind(self) -> None:
        """A cancel carries no diagnostic; it is counted under the ``cancelled`` code."""
        assert count_job(cancelled_before_start(), {})["failure_code\x1fcancelled"] == 1

    def test_a_success_has_no_failure_codes(self) -> None:
        """Warnings of a job that succeeded are not failures."""
        fields = count_job(succeeded(warning()), {})
        assert not [f for f in fields if f.startswith("failure_code")]


class TestMakeRecentJob:
    def test_keeps_root_names_status_and_duration(self) -> None:
        """Only the root requirements' names are kept; the duration is start to finish."""
        request = msgspec.structs.replace(
            REQUEST, requirements=("Flask[async]>=2; python_version >= '3.8'", "requests==2.*")
        )
        document = msgspec.structs.replace(failed(), request=request)
        job = make_recent_job(document)
        assert job.requirements == ["Flask", "requests"]
        assert (job.id, job.status, job.failure_kind, job.duration_ms) == (
            "b",
            "failed",
            "metadata_error",
            1000,
        )

    def test_a_job_cancelled_before_it_started_has_no_duration(self) -> None:
        """No start, no run time: ``duration_ms`` is ``None``, the finish time is the cancel."""
        job = make_recent_job(cancelled_before_start())
        assert (job.status, job.failure_kind, job.duration_ms) == ("cancelled", "cancelled", None)
        assert job.finished_at == NOW + timedelta(seconds=3)


def test_counter_fields_are_plain_strings() -> None:
    """Fields are text, so Redis hashes and the memory Counter hold the same thing."""
    assert all(isinstance(field, str) for field in Counter(count_job(succeeded(), {})))
