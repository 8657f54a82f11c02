"""Fleet-wide diagnostics counters: what ``/diagnostics/summary`` and ``/metrics`` report.

Each finished job adds its outcome once (the runner calls ``record`` after the terminal
compare-and-set succeeded): its status, failure kind, every distinct diagnostic by code and
severity (and by index and status where it has them), the packages a failure named, and the
upstream responses its fetches got. Counters live in Redis, so every API replica reports the
same figures however many workers ran the jobs: a running total for Prometheus, plus hourly
buckets (kept ``BUCKET_TTL_SECONDS``) for ``since`` queries. The memory implementation serves
the single-process fallback; one contract suite runs against both.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Protocol

import msgspec
from redis.asyncio import Redis

from service.diagnostics.model import Diagnostic
from service.jobs.model import JobDocument

__all__ = [
    "BUCKET_TTL_SECONDS",
    "CodeCount",
    "DiagnosticsSummary",
    "IndexStatusCount",
    "MemoryStatsStore",
    "PackageCount",
    "RedisStatsStore",
    "StatsStore",
    "UpstreamCount",
    "count_job",
]

BUCKET_TTL_SECONDS = 8 * 24 * 3600
MAX_SUMMARY_HOURS = 7 * 24
TOP_PACKAGES = 20
_SEP = "\x1f"
_TOTAL_KEY = "resolvd:stats:total"
_BUCKET_PREFIX = "resolvd:stats:hour:"


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


class DiagnosticsSummary(msgspec.Struct, frozen=True, kw_only=True):
    """What dashboards chart: counts since ``since`` (to the hour), grouped as API.md says."""

    since: datetime
    until: datetime
    jobs: dict[str, int]
    failures_by_kind: dict[str, int]
    diagnostics: list[CodeCount]
    by_index_status: list[IndexStatusCount]
    upstream_responses: list[UpstreamCount]
    top_failing_packages: list[PackageCount]


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


def count_job(document: JobDocument, upstream: Mapping[tuple[str, int], int]) -> Counter[str]:
    """The counter fields one finished job adds."""
    fields: Counter[str] = Counter()
    fields[_field("job", document.status)] += 1
    if document.failure is not None:
        fields[_field("failure", document.failure.kind)] += 1
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
    if document.started_at and document.finished_at:
        elapsed = (document.finished_at - document.started_at).total_seconds()
        fields[_field("duration_ms")] += int(elapsed * 1000)
        fields[_field("duration_count")] += 1
    fields[_field("requests")] += document.progress.requests
    fields[_field("cache_hits")] += document.progress.cache_hits
    return fields


def _bucket(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%d%H")


def _hours(since: datetime, until: datetime) -> list[str]:
    start = max(since, until - timedelta(hours=MAX_SUMMARY_HOURS))
    start = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    hours = []
    while start <= until:
        hours.append(_bucket(start))
        start += timedelta(hours=1)
    return hours


def _summarize(fields: Counter[str], since: datetime, until: datetime) -> DiagnosticsSummary:
    jobs: dict[str, int] = {}
    kinds: dict[str, int] = {}
    codes: list[CodeCount] = []
    by_index: list[IndexStatusCount] = []
    upstream: list[UpstreamCount] = []
    packages: list[PackageCount] = []
    for field, count in fields.items():
        kind, *parts = field.split(_SEP)
        if kind == "job":
            jobs[parts[0]] = count
        elif kind == "failure":
            kinds[parts[0]] = count
        elif kind == "diag":
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
        jobs=jobs,
        failures_by_kind=kinds,
        diagnostics=sorted(codes, key=lambda c: (-c.count, c.code, c.severity)),
        by_index_status=sorted(by_index, key=lambda c: (-c.count, c.index, c.code)),
        upstream_responses=sorted(upstream, key=lambda c: (-c.count, c.index, c.status)),
        top_failing_packages=sorted(packages, key=lambda c: (-c.count, c.package))[:TOP_PACKAGES],
    )


def parse_totals(fields: Mapping[str, int]) -> Iterable[tuple[str, tuple[str, ...], int]]:
    """(kind, label values, count) for every running total, for the metrics endpoint."""
    for field, count in fields.items():
        kind, *parts = field.split(_SEP)
        yield kind, tuple(parts), count


class StatsStore(Protocol):
    async def record(self, fields: Counter[str], *, at: datetime) -> None:
        """Add one job's counter fields to the total and to the bucket of ``at``."""

    async def summary(self, since: datetime, until: datetime) -> DiagnosticsSummary:
        """Counts of the hourly buckets from ``since`` (to the hour) to ``until``."""

    async def totals(self) -> dict[str, int]:
        """Running totals since the store was created (what Prometheus scrapes)."""


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class RedisStatsStore:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis

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
        async with self._redis.pipeline(transaction=False) as pipe:
            for hour in _hours(since, until):
                pipe.hgetall(_BUCKET_PREFIX + hour)
            buckets = await pipe.execute()
        fields: Counter[str] = Counter()
        for bucket in buckets:
            for field, count in bucket.items():
                fields[_text(field)] += int(count)
        return _summarize(fields, since, until)

    async def totals(self) -> dict[str, int]:
        raw = await self._redis.hgetall(_TOTAL_KEY)
        return {_text(field): int(count) for field, count in raw.items()}


class MemoryStatsStore:
    def __init__(self) -> None:
        self._total: Counter[str] = Counter()
        self._buckets: dict[str, Counter[str]] = {}

    async def record(self, fields: Counter[str], *, at: datetime) -> None:
        self._total.update(fields)
        self._buckets.setdefault(_bucket(at), Counter()).update(fields)

    async def summary(self, since: datetime, until: datetime) -> DiagnosticsSummary:
        fields: Counter[str] = Counter()
        for hour in _hours(since, until):
            fields.update(self._buckets.get(hour, Counter()))
        return _summarize(fields, since, until)

    async def totals(self) -> dict[str, int]:
        return dict(self._total)
