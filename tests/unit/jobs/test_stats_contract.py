"""The fleet statistics store: one contract, run against Redis and memory."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from redis.asyncio import Redis

from service.diagnostics.model import Code, Diagnostic, Severity
from service.jobs.model import JobDocument
from service.jobs.stats import MemoryStatsStore, RedisStatsStore, StatsStore, count_job
from service.resolution import ResolveRequest, Target
from service.resolution.result import Failure, FailureCause, VersionRejection
from tests.unit.jobs.fakes import make_resolution

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
        """Nothing recorded gives an empty summary and no totals."""
        summary = await store.summary(NOW - timedelta(hours=1), NOW)
        assert summary.jobs == {} and summary.diagnostics == []
        assert await store.totals() == {}


def test_counter_fields_are_plain_strings() -> None:
    """Fields are text, so Redis hashes and the memory Counter hold the same thing."""
    assert all(isinstance(field, str) for field in Counter(count_job(succeeded(), {})))
