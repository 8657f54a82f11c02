"""Fleet-wide diagnostics counters and recent jobs: what ``/diagnostics/*`` and ``/metrics`` report.

Each finished job adds its outcome once, through ``record_finished_job``, which
``service.jobs.lifecycle.finish_job`` calls for the writer that won the terminal compare-and-set:
its status (the one count of finished jobs, ``resolvd_jobs_finished_total``), failure kind,
every distinct diagnostic by code and severity (and by index and status where it has them), the
codes its failure carried, the packages a failure named, and the upstream responses its fetches
got. Counters live in Redis, so every API replica reports the same figures however many workers
ran the jobs: a running total for Prometheus, plus hourly buckets (kept ``BUCKET_TTL_SECONDS``)
for ``since`` queries and the per-hour series.
The job itself joins a capped list of recent jobs kept per client, so with authentication on a
client only ever reads its own. The memory implementation serves the single-process fallback;
one contract suite runs against both.
"""

from __future__ import annotations

import logging
from collections import Counter, deque
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Protocol

import msgspec
from packaging.requirements import InvalidRequirement, Requirement
from redis.asyncio import Redis
from redis.exceptions import RedisError

from service.diagnostics.model import Diagnostic
from service.jobs.blocked import BlockedStore, MemoryBlockedStore, RedisBlockedStore, make_refusals
from service.jobs.model import JobDocument, JobRecord, JobStatus, utcnow
from service.resolution.result import FailureKind

__all__ = [
    "BUCKET_TTL_SECONDS",
    "RECENT_JOBS_KEPT",
    "CodeCount",
    "DiagnosticsSummary",
    "HourCounts",
    "IndexStatusCount",
    "MemoryStatsStore",
    "PackageCount",
    "RecentJob",
    "RedisStatsStore",
    "StatsStore",
    "UpstreamCount",
    "count_job",
    "make_recent_job",
    "record_finished_job",
]

logger = logging.getLogger(__name__)

BUCKET_TTL_SECONDS = 8 * 24 * 3600
MAX_SUMMARY_HOURS = 7 * 24
TOP_PACKAGES = 20
RECENT_JOBS_KEPT = 100
_SEP = "\x1f"
_TOTAL_KEY = "resolvd:stats:total"
_BUCKET_PREFIX = "resolvd:stats:hour:"
_RECENT_PREFIX = "resolvd:stats:recent:"


class CodeCount(msgspec.Struct, frozen=True, kw_only=True):
    code: str
    severity: str
    count: int


class IndexStatusCount(msgspec.Struct, frozen=True, kw_only=True):
    code: str
    index: str
    status: int | None
    count: int


class UpstreamCount(msgspec.Struct, frozen=True, kw_only=True):
    index: str
    status: int
    count: int


class PackageCount(msgspec.Struct, frozen=True, kw_only=True):
    package: str
    count: int


class HourCounts(msgspec.Struct, frozen=True, kw_only=True):
    """The jobs that finished in one hour (``hour`` is its start, UTC).

    ``failures_by_code`` counts the failed and cancelled jobs by each distinct diagnostic code
    their failure carried (so a job may count under several codes; a deadline, cancel or
    internal error carries its own code, ``make_job_failure``). ``failures_by_kind`` counts
    each such job once.
    """

    hour: datetime
    jobs: dict[str, int]
    failures_by_kind: dict[str, int]
    failures_by_code: dict[str, int]


class DiagnosticsSummary(msgspec.Struct, frozen=True, kw_only=True):
    """What dashboards chart: counts since ``since`` (to the hour), grouped as the README's
    "What dashboards read" describes.

    ``series`` has one entry per hour of the window, oldest first, empty hours included.
    """

    since: datetime
    until: datetime
    jobs: dict[str, int]
    failures_by_kind: dict[str, int]
    diagnostics: list[CodeCount]
    by_index_status: list[IndexStatusCount]
    upstream_responses: list[UpstreamCount]
    top_failing_packages: list[PackageCount]
    series: list[HourCounts]


class RecentJob(msgspec.Struct, frozen=True, kw_only=True):
    """A finished job as its client's dashboard lists it.

    ``duration_ms`` runs from the last attempt's start to the end (``None`` for a job
    cancelled before it started); ``requirements`` are the names of the root requirements only.
    """

    id: str
    status: JobStatus
    failure_kind: FailureKind | None
    created_at: datetime
    finished_at: datetime | None
    duration_ms: int | None
    requirements: list[str]


def _field(*parts: object) -> str:
    return _SEP.join("" if part is None else str(part) for part in parts)


def _job_diagnostics(document: JobDocument) -> list[Diagnostic]:
    """Every distinct diagnostic of a finished job (fetch errors often repeat a hint)."""
    found: list[Diagnostic] = []
    if document.result is not None:
        found += document.result.warnings
    if document.failure is not None:
        found += document.failure.hints + document.failure.fetch_errors
    seen: dict[tuple[object, ...], Diagnostic] = {}
    for diagnostic in found:
        key = (
            diagnostic.code,
            diagnostic.severity,
            diagnostic.package,
            diagnostic.version,
            diagnostic.index,
            diagnostic.status,
        )
        seen.setdefault(key, diagnostic)
    return list(seen.values())


def _failure_codes(document: JobDocument) -> set[str]:
    """The distinct codes a job's failure carried."""
    if document.failure is None:
        return set()
    return {str(d.code) for d in document.failure.hints + document.failure.fetch_errors}


def _duration_ms(document: JobDocument) -> int | None:
    if document.started_at is None or document.finished_at is None:
        return None
    return int((document.finished_at - document.started_at).total_seconds() * 1000)


def count_job(document: JobDocument, upstream: Mapping[tuple[str, int], int]) -> Counter[str]:
    """The counter fields one finished job adds."""
    fields: Counter[str] = Counter()
    fields[_field("job", document.status)] += 1
    if document.failure is not None:
        fields[_field("failure", document.failure.kind)] += 1
        for code in _failure_codes(document):
            fields[_field("failure_code", code)] += 1
        packages = {cause.package for cause in document.failure.causes}
        packages |= {
            d.package for d in document.failure.fetch_errors + document.failure.hints if d.package
        }
        for package in packages:
            fields[_field("pkg", package)] += 1
    for diagnostic in _job_diagnostics(document):
        fields[_field("diag", diagnostic.code, diagnostic.severity)] += 1
        if diagnostic.index is not None:
            fields[_field("diag_index", diagnostic.code, diagnostic.index, diagnostic.status)] += 1
    for (index, status), count in upstream.items():
        fields[_field("upstream", index, status)] += count
    duration = _duration_ms(document)
    if duration is not None:
        fields[_field("duration_ms")] += duration
        fields[_field("duration_count")] += 1
    fields[_field("requests")] += document.progress.requests
    fields[_field("cache_hits")] += document.progress.cache_hits
    return fields


def _bucket(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%d%H")


def _hour_start(bucket: str) -> datetime:
    return datetime.strptime(bucket, "%Y%m%d%H").replace(tzinfo=UTC)


def _hours(since: datetime, until: datetime) -> list[str]:
    start = max(since, until - timedelta(hours=MAX_SUMMARY_HOURS))
    start = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    hours = []
    while start <= until:
        hours.append(_bucket(start))
        start += timedelta(hours=1)
    return hours


def _by_label(fields: Mapping[str, int], kind: str) -> dict[str, int]:
    """``{label: count}`` for the one-label fields of ``kind`` (``job``, ``failure``, ...)."""
    found: dict[str, int] = {}
    for field, count in fields.items():
        field_kind, *parts = field.split(_SEP)
        if field_kind == kind:
            found[parts[0]] = count
    return found


def _summarize(
    buckets: Mapping[str, Counter[str]], since: datetime, until: datetime
) -> DiagnosticsSummary:
    """The summary of the hourly ``buckets`` (bucket name to fields, oldest first)."""
    fields: Counter[str] = Counter()
    for bucket in buckets.values():
        fields.update(bucket)
    codes: list[CodeCount] = []
    by_index: list[IndexStatusCount] = []
    upstream: list[UpstreamCount] = []
    packages: list[PackageCount] = []
    for field, count in fields.items():
        kind, *parts = field.split(_SEP)
        if kind == "diag":
            codes.append(CodeCount(code=parts[0], severity=parts[1], count=count))
        elif kind == "diag_index":
            status = int(parts[2]) if parts[2] else None
            by_index.append(
                IndexStatusCount(code=parts[0], index=parts[1], status=status, count=count)
            )
        elif kind == "upstream":
            upstream.append(UpstreamCount(index=parts[0], status=int(parts[1]), count=count))
        elif kind == "pkg":
            packages.append(PackageCount(package=parts[0], count=count))
    return DiagnosticsSummary(
        since=since,
        until=until,
        jobs=_by_label(fields, "job"),
        failures_by_kind=_by_label(fields, "failure"),
        diagnostics=sorted(codes, key=lambda c: (-c.count, c.code, c.severity)),
        by_index_status=sorted(by_index, key=lambda c: (-c.count, c.index, c.code)),
        upstream_responses=sorted(upstream, key=lambda c: (-c.count, c.index, c.status)),
        top_failing_packages=sorted(packages, key=lambda c: (-c.count, c.package))[:TOP_PACKAGES],
        series=[
            HourCounts(
                hour=_hour_start(hour),
                jobs=_by_label(bucket, "job"),
                failures_by_kind=_by_label(bucket, "failure"),
                failures_by_code=_by_label(bucket, "failure_code"),
            )
            for hour, bucket in buckets.items()
        ],
    )


def parse_totals(fields: Mapping[str, int]) -> Iterable[tuple[str, tuple[str, ...], int]]:
    """(kind, label values, count) for every running total, for the metrics endpoint."""
    for field, count in fields.items():
        kind, *parts = field.split(_SEP)
        yield kind, tuple(parts), count


def _requirement_name(text: str) -> str:
    try:
        return Requirement(text).name
    except InvalidRequirement:
        # Requests are validated before they are stored; should one not parse, show its start.
        return text.split(";", 1)[0].strip()


def make_recent_job(document: JobDocument) -> RecentJob:
    """What the recent-jobs list keeps of a finished job."""
    return RecentJob(
        id=document.id,
        status=document.status,
        failure_kind=document.failure.kind if document.failure is not None else None,
        created_at=document.created_at,
        finished_at=document.finished_at,
        duration_ms=_duration_ms(document),
        requirements=[_requirement_name(text) for text in document.request.requirements],
    )


class StatsStore(Protocol):
    blocked: BlockedStore
    """What each index refused (``service.jobs.blocked``), recorded with the job's counts."""

    async def record(self, fields: Counter[str], *, at: datetime) -> None:
        """Add one job's counter fields to the total and to the bucket of ``at``."""

    async def summary(self, since: datetime, until: datetime) -> DiagnosticsSummary:
        """Counts of the hourly buckets from ``since`` (to the hour) to ``until``."""

    async def totals(self) -> dict[str, int]:
        """Running totals since the store was created (what Prometheus scrapes)."""

    async def remember(self, client: str, job: RecentJob) -> None:
        """Put ``job`` first in ``client``'s recent jobs; only ``RECENT_JOBS_KEPT`` are kept."""

    async def recent(self, client: str, limit: int) -> list[RecentJob]:
        """``client``'s ``limit`` most recently finished jobs, newest first."""


async def record_finished_job(
    stats: StatsStore,
    record: JobRecord,
    upstream: Mapping[tuple[str, int], int] | None = None,
) -> None:
    """Count ``record``'s job, list it for its client, and add what its indexes refused.

    ``finish_job`` calls it once per job, after the compare-and-set that made it terminal, and
    only for the writer whose update changed it: that is what keeps a job from counting twice.
    Statistics are best effort: a Redis error is logged, never raised, so it cannot fail the job.
    """
    document = record.document
    at = document.finished_at or utcnow()
    try:
        await stats.record(count_job(document, upstream or {}), at=at)
        await stats.remember(record.client, make_recent_job(document))
        await stats.blocked.record(make_refusals(document), at=at)
    except (RedisError, OSError) as exc:
        logger.warning("job %s: could not record statistics: %s", document.id, exc)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class RedisStatsStore:
    def __init__(self, redis: Redis, blocked: BlockedStore | None = None) -> None:
        self._redis = redis
        self.blocked = blocked or RedisBlockedStore(redis)

    async def record(self, fields: Counter[str], *, at: datetime) -> None:
        bucket = _BUCKET_PREFIX + _bucket(at)
        async with self._redis.pipeline(transaction=True) as pipe:
            for field, count in fields.items():
                if count:
                    pipe.hincrby(_TOTAL_KEY, field, count)
                    pipe.hincrby(bucket, field, count)
            pipe.expire(bucket, BUCKET_TTL_SECONDS)
            await pipe.execute()

    async def summary(self, since: datetime, until: datetime) -> DiagnosticsSummary:
        hours = _hours(since, until)
        async with self._redis.pipeline(transaction=False) as pipe:
            for hour in hours:
                pipe.hgetall(_BUCKET_PREFIX + hour)
            raw = await pipe.execute()
        buckets = {
            hour: Counter({_text(field): int(count) for field, count in bucket.items()})
            for hour, bucket in zip(hours, raw, strict=True)
        }
        return _summarize(buckets, since, until)

    async def totals(self) -> dict[str, int]:
        raw = await self._redis.hgetall(_TOTAL_KEY)
        return {_text(field): int(count) for field, count in raw.items()}

    async def remember(self, client: str, job: RecentJob) -> None:
        key = _RECENT_PREFIX + client
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.lpush(key, msgspec.json.encode(job))
            pipe.ltrim(key, 0, RECENT_JOBS_KEPT - 1)
            pipe.expire(key, BUCKET_TTL_SECONDS)
            await pipe.execute()

    async def recent(self, client: str, limit: int) -> list[RecentJob]:
        if limit <= 0:
            return []
        raw = await self._redis.lrange(_RECENT_PREFIX + client, 0, limit - 1)
        return [msgspec.json.decode(item, type=RecentJob) for item in raw]


class MemoryStatsStore:
    def __init__(self, blocked: BlockedStore | None = None) -> None:
        self.blocked = blocked or MemoryBlockedStore()
        self._total: Counter[str] = Counter()
        self._buckets: dict[str, Counter[str]] = {}
        self._recent: dict[str, deque[RecentJob]] = {}

    async def record(self, fields: Counter[str], *, at: datetime) -> None:
        self._total.update(fields)
        self._buckets.setdefault(_bucket(at), Counter()).update(fields)

    async def summary(self, since: datetime, until: datetime) -> DiagnosticsSummary:
        buckets = {hour: self._buckets.get(hour, Counter()) for hour in _hours(since, until)}
        return _summarize(buckets, since, until)

    async def totals(self) -> dict[str, int]:
        return dict(self._total)

    async def remember(self, client: str, job: RecentJob) -> None:
        self._recent.setdefault(client, deque(maxlen=RECENT_JOBS_KEPT)).appendleft(job)

    async def recent(self, client: str, limit: int) -> list[RecentJob]:
        return list(self._recent.get(client, ()))[: max(limit, 0)]
