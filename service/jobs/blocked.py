"""What each index refused: the mirror block catalogue behind ``GET /indexes/{name}/blocked``.

A *refusal* is a client-error status (4xx) an index answered for one version's metadata or file
(``metadata_unavailable``) or for a project page (``index_forbidden``, ``index_unauthorized``,
``index_error``), whether the index's policy (``ignore_error_codes``) let the job carry on
without it or the job failed on it. Each finished job adds its distinct refusals once, from the
one place a finished job is recorded (``record_finished_job`` in ``service.jobs.stats``): per
(index, package, version, status) the first and last time it was seen and, per UTC day, how many
jobs it affected, how many of those still succeeded with the package at another version (or,
for a refused project page, from another index) -- *forced* -- and how many failed. A job that
succeeded only because a policy skipped something also counts, per UTC hour, under that index
and status: the *policy impact* a security team weighs a block by.

The catalogue is fleet-wide and anonymous: no job ids, no client ids. It is bounded:
``Bounds.max_versions`` entries per index (the least recently seen go first),
``Bounds.max_indexes`` indexes, and nothing older than ``Bounds.retention_days`` (its own
retention, longer than the hourly statistics'). Redis holds it for every API replica and worker;
the memory implementation serves the single-process fallback; one contract suite runs both.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Literal, Protocol

import msgspec
from packaging.utils import canonicalize_name
from redis.asyncio import Redis

from service.diagnostics.model import Code, Diagnostic, Severity
from service.jobs.model import JobDocument

__all__ = [
    "BlockedCatalogue",
    "BlockedStore",
    "BlockedVersion",
    "Bounds",
    "JobRefusals",
    "MemoryBlockedStore",
    "Outcome",
    "PolicyImpact",
    "RedisBlockedStore",
    "Refusal",
    "make_refusals",
]

Outcome = Literal["forced", "failed", "other"]
"""What a refusal did to the job: it moved to another version, it failed, or neither."""

# Codes a refused project page is reported under (service.resolution.fetch_errors).
_PAGE_CODES = frozenset({Code.INDEX_FORBIDDEN, Code.INDEX_UNAUTHORIZED, Code.INDEX_ERROR})
_SEP = "\x1f"
_DAY = "%Y%m%d"
_HOUR = "%Y%m%d%H"
_COUNTS = ("jobs", "forced", "failed")
_INDEXES_KEY = "resolvd:blocked:indexes"
_SEEN_PREFIX = "resolvd:blocked:seen:"
_ENTRY_PREFIX = "resolvd:blocked:entry:"
_IMPACT_PREFIX = "resolvd:blocked:impact:"


@dataclass(frozen=True)
class Bounds:
    """How much the catalogue keeps (``limits.blocked_*`` in the configuration)."""

    max_versions: int = 1000
    max_indexes: int = 100
    retention_days: int = 30

    @property
    def retention(self) -> timedelta:
        return timedelta(days=self.retention_days)


class Refusal(msgspec.Struct, frozen=True, kw_only=True):
    """One (index, package, version, status) a job met, and what it did to the job.

    ``version`` is ``None`` when the project page itself was refused (every version).
    """

    index: str
    package: str
    version: str | None
    status: int
    outcome: Outcome


class JobRefusals(msgspec.Struct, frozen=True, kw_only=True):
    """What one finished job adds: its distinct refusals, and the (index, status) pairs of the
    policy skips it succeeded thanks to (empty unless it succeeded)."""

    refusals: tuple[Refusal, ...] = ()
    policy_skips: tuple[tuple[str, int], ...] = ()


class BlockedVersion(msgspec.Struct, frozen=True, kw_only=True):
    """One thing an index refused, as ``GET /indexes/{name}/blocked`` lists it.

    ``first_seen`` and ``last_seen`` span everything kept; ``jobs``, ``forced``, ``failed`` and
    ``per_day`` (one count per day of the window, oldest first) count the window's days.
    """

    package: str
    version: str | None
    status: int
    first_seen: datetime
    last_seen: datetime
    jobs: int
    forced: int
    failed: int
    per_day: list[int]


class PolicyImpact(msgspec.Struct, frozen=True, kw_only=True):
    """Jobs in the window that succeeded only because the policy skipped ``status`` answers."""

    status: int
    jobs: int


class BlockedCatalogue(msgspec.Struct, frozen=True, kw_only=True):
    """An index's refusals last seen in the window, most recently seen first."""

    index: str
    since: datetime
    until: datetime
    days: list[date]
    total: int
    versions: list[BlockedVersion]
    policy_impact: list[PolicyImpact]
    retention_days: int
    max_versions: int


# -- what a job adds ---------------------------------------------------------------------


def _refusal_key(diagnostic: Diagnostic) -> tuple[str, str, str | None, int] | None:
    """(index, package, version, status) when ``diagnostic`` reports an index's refusal."""
    status, index, package = diagnostic.status, diagnostic.index, diagnostic.package
    if status is None or index is None or package is None or not 400 <= status < 500:
        return None
    if diagnostic.code is Code.METADATA_UNAVAILABLE and diagnostic.version is not None:
        return index, str(canonicalize_name(package)), diagnostic.version, status
    if diagnostic.code in _PAGE_CODES and diagnostic.version is None:
        return index, str(canonicalize_name(package)), None, status
    return None


def _outcome(document: JobDocument, index: str, package: str, version: str | None) -> Outcome:
    if document.status == "failed":
        return "failed"
    if document.result is None:
        return "other"
    installed = [p for p in document.result.packages if canonicalize_name(p.name) == package]
    if not installed:
        return "other"
    if version is None:  # the page was refused: forced when it came from elsewhere
        moved = all(p.index != index for p in installed)
    else:
        moved = all(p.version != version for p in installed)
    return "forced" if moved else "other"


def make_refusals(document: JobDocument) -> JobRefusals:
    """The refusals a finished job met, each once, from its warnings, hints and fetch errors."""
    diagnostics: list[Diagnostic] = []
    if document.result is not None:
        diagnostics += document.result.warnings
    if document.failure is not None:
        diagnostics += document.failure.hints + document.failure.fetch_errors
    keys: dict[tuple[str, str, str | None, int], None] = {}
    skips: dict[tuple[str, int], None] = {}
    for diagnostic in diagnostics:
        key = _refusal_key(diagnostic)
        if key is None:
            continue
        keys[key] = None
        if document.status == "succeeded" and diagnostic.severity is Severity.WARNING:
            skips[key[0], key[3]] = None
    return JobRefusals(
        refusals=tuple(
            Refusal(
                index=index,
                package=package,
                version=version,
                status=status,
                outcome=_outcome(document, index, package, version),
            )
            for index, package, version, status in keys
        ),
        policy_skips=tuple(skips),
    )


# -- shared arithmetic -------------------------------------------------------------------


def _entry_id(refusal: Refusal) -> str:
    return _SEP.join((refusal.package, refusal.version or "", str(refusal.status)))


def _count_fields(refusal: Refusal, at: datetime) -> list[str]:
    """The per-day counter fields one job adds to an entry."""
    day = at.astimezone(UTC).strftime(_DAY)
    names = ["jobs"] if refusal.outcome == "other" else ["jobs", refusal.outcome]
    return [f"{name}:{day}" for name in names]


def _impact_field(index_status: tuple[str, int], at: datetime) -> str:
    return f"{at.astimezone(UTC).strftime(_HOUR)}{_SEP}{index_status[1]}"


def _stale_counts(fields: Iterable[str], cutoff: datetime) -> list[str]:
    """The per-day counter fields of days wholly before ``cutoff``."""
    oldest = cutoff.astimezone(UTC).strftime(_DAY)
    return [f for f in fields if ":" in f and f.partition(":")[2] < oldest]


def _stale_impact(fields: Iterable[str], cutoff: datetime) -> list[str]:
    oldest = cutoff.astimezone(UTC).strftime(_HOUR)
    return [f for f in fields if f.partition(_SEP)[0] < oldest]


def _days(since: datetime, until: datetime) -> list[date]:
    first, last = since.astimezone(UTC).date(), until.astimezone(UTC).date()
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def _make_version(
    entry: str,
    first_seen: datetime,
    last_seen: datetime,
    counts: Mapping[str, int],
    days: list[date],
) -> BlockedVersion:
    package, version, status = entry.split(_SEP)
    totals = {
        name: [counts.get(f"{name}:{day.strftime(_DAY)}", 0) for day in days] for name in _COUNTS
    }
    return BlockedVersion(
        package=package,
        version=version or None,
        status=int(status),
        first_seen=first_seen,
        last_seen=last_seen,
        jobs=sum(totals["jobs"]),
        forced=sum(totals["forced"]),
        failed=sum(totals["failed"]),
        per_day=totals["jobs"],
    )


def _make_impact(fields: Mapping[str, int], since: datetime) -> list[PolicyImpact]:
    first = since.astimezone(UTC).strftime(_HOUR)
    by_status: Counter[int] = Counter()
    for name, count in fields.items():
        hour, _, status = name.partition(_SEP)
        if hour >= first:
            by_status[int(status)] += count
    return [PolicyImpact(status=s, jobs=n) for s, n in sorted(by_status.items())]


class BlockedStore(Protocol):
    bounds: Bounds

    async def record(self, job: JobRefusals, *, at: datetime) -> None:
        """Add one finished job's refusals and policy skips, seen at ``at``; trim to bounds."""

    async def catalogue(
        self, index: str, *, since: datetime, until: datetime, limit: int
    ) -> BlockedCatalogue:
        """``index``'s refusals last seen since ``since`` (within the retention), at most
        ``limit`` of them, most recently seen first; counts over the window's UTC days."""


def _start(bounds: Bounds, since: datetime, until: datetime) -> datetime:
    """The window's start: ``since``, but never before the retention."""
    return max(since, until - bounds.retention)


_Held = tuple[str, datetime, datetime, Mapping[str, int]]
"""An entry as a store holds it: id, first seen, last seen, per-day counters."""


def _make_catalogue(
    bounds: Bounds,
    index: str,
    *,
    start: datetime,
    until: datetime,
    total: int,
    entries: Iterable[_Held],
    impact: Mapping[str, int],
) -> BlockedCatalogue:
    days = _days(start, until)
    return BlockedCatalogue(
        index=index,
        since=start,
        until=until,
        days=days,
        total=total,
        versions=[_make_version(*entry, days) for entry in entries],
        policy_impact=_make_impact(impact, start),
        retention_days=bounds.retention_days,
        max_versions=bounds.max_versions,
    )


# -- Redis ---------------------------------------------------------------------------------


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _entry_key(index: str, entry: str) -> str:
    return f"{_ENTRY_PREFIX}{index}{_SEP}{entry}"


class RedisBlockedStore:
    """Per index: a sorted set of entries by last-seen time, one hash per entry (``first`` and
    the per-day counters), and one hash of policy-impact counters by hour and status. Every key
    expires ``retention_days`` after its last write; a write also trims what it touched."""

    def __init__(self, redis: Redis, bounds: Bounds | None = None) -> None:
        self._redis = redis
        self.bounds = bounds or Bounds()

    async def record(self, job: JobRefusals, *, at: datetime) -> None:
        if not job.refusals and not job.policy_skips:
            return
        ttl = int(self.bounds.retention.total_seconds())
        score = at.timestamp()
        indexes = sorted({r.index for r in job.refusals} | {i for i, _ in job.policy_skips})
        entries = {(r.index, _entry_id(r)) for r in job.refusals}
        async with self._redis.pipeline(transaction=True) as pipe:
            for refusal in job.refusals:
                entry = _entry_id(refusal)
                key = _entry_key(refusal.index, entry)
                pipe.hsetnx(key, "first", at.isoformat())
                for name in _count_fields(refusal, at):
                    pipe.hincrby(key, name, 1)
                pipe.expire(key, ttl)
                pipe.zadd(_SEEN_PREFIX + refusal.index, {entry: score}, gt=True)
            for skip in job.policy_skips:
                pipe.hincrby(_IMPACT_PREFIX + skip[0], _impact_field(skip, at), 1)
            for index in indexes:
                pipe.expire(_SEEN_PREFIX + index, ttl)
                pipe.expire(_IMPACT_PREFIX + index, ttl)
                pipe.zadd(_INDEXES_KEY, {index: score}, gt=True)
            pipe.expire(_INDEXES_KEY, ttl)
            await pipe.execute()
        await self._trim(indexes, sorted(entries), cutoff=at - self.bounds.retention)

    async def _trim(
        self, indexes: list[str], entries: list[tuple[str, str]], *, cutoff: datetime
    ) -> None:
        """Drop what the write pushed past the bounds: old days and hours of the touched
        hashes, entries past retention or past ``max_versions``, indexes past ``max_indexes``."""
        oldest = f"({cutoff.timestamp()}"
        async with self._redis.pipeline(transaction=False) as pipe:
            for index in indexes:
                pipe.zrangebyscore(_SEEN_PREFIX + index, "-inf", oldest)
                pipe.zrange(_SEEN_PREFIX + index, 0, -(self.bounds.max_versions + 1))
                pipe.hkeys(_IMPACT_PREFIX + index)
            for index, entry in entries:
                pipe.hkeys(_entry_key(index, entry))
            pipe.zrangebyscore(_INDEXES_KEY, "-inf", oldest)
            pipe.zrange(_INDEXES_KEY, 0, -(self.bounds.max_indexes + 1))
            found = await pipe.execute()
        evicted_indexes = sorted({_text(i) for i in found[-2] + found[-1]})
        held: list[list[bytes]] = []
        if evicted_indexes:  # rare: read what each holds, to delete all of it
            async with self._redis.pipeline(transaction=False) as pipe:
                for index in evicted_indexes:
                    pipe.zrange(_SEEN_PREFIX + index, 0, -1)
                held = await pipe.execute()
        async with self._redis.pipeline(transaction=False) as pipe:
            for position, index in enumerate(indexes):
                expired, over, impact = found[3 * position : 3 * position + 3]
                evicted = {_text(m) for m in expired + over}
                if evicted:
                    pipe.zrem(_SEEN_PREFIX + index, *evicted)
                    pipe.delete(*(_entry_key(index, e) for e in evicted))
                if stale := _stale_impact(map(_text, impact), cutoff):
                    pipe.hdel(_IMPACT_PREFIX + index, *stale)
            for position, (index, entry) in enumerate(entries, start=3 * len(indexes)):
                if stale := _stale_counts(map(_text, found[position]), cutoff):
                    pipe.hdel(_entry_key(index, entry), *stale)
            for index, members in zip(evicted_indexes, held, strict=True):
                pipe.zrem(_INDEXES_KEY, index)
                pipe.delete(
                    _SEEN_PREFIX + index,
                    _IMPACT_PREFIX + index,
                    *(_entry_key(index, _text(m)) for m in members),
                )
            await pipe.execute()

    async def catalogue(
        self, index: str, *, since: datetime, until: datetime, limit: int
    ) -> BlockedCatalogue:
        start = _start(self.bounds, since, until)
        seen = _SEEN_PREFIX + index
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.zrevrangebyscore(seen, "+inf", start.timestamp(), 0, limit, withscores=True)
            pipe.zcount(seen, start.timestamp(), "+inf")
            pipe.hgetall(_IMPACT_PREFIX + index)
            listed, total, impact = await pipe.execute()
        members = [(_text(member), score) for member, score in listed]
        async with self._redis.pipeline(transaction=False) as pipe:
            for member, _ in members:
                pipe.hgetall(_entry_key(index, member))
            hashes = await pipe.execute()
        entries: list[_Held] = []
        for (member, score), raw in zip(members, hashes, strict=True):
            fields = {_text(k): _text(v) for k, v in raw.items()}
            last_seen = datetime.fromtimestamp(score, UTC)
            first_seen = datetime.fromisoformat(fields.pop("first", last_seen.isoformat()))
            counts = {name: int(value) for name, value in fields.items()}
            entries.append((member, first_seen, last_seen, counts))
        return _make_catalogue(
            self.bounds,
            index,
            start=start,
            until=until,
            total=int(total),
            entries=entries,
            impact={_text(k): int(v) for k, v in impact.items()},
        )


# -- memory --------------------------------------------------------------------------------


@dataclass
class _Entry:
    first_seen: datetime
    last_seen: datetime
    counts: Counter[str] = field(default_factory=Counter)


@dataclass
class _Index:
    last_seen: datetime
    entries: dict[str, _Entry] = field(default_factory=dict)
    impact: Counter[str] = field(default_factory=Counter)


class MemoryBlockedStore:
    """The same catalogue in this process's memory, trimmed the same way."""

    def __init__(self, bounds: Bounds | None = None) -> None:
        self.bounds = bounds or Bounds()
        self._indexes: dict[str, _Index] = {}

    async def record(self, job: JobRefusals, *, at: datetime) -> None:
        touched: set[str] = set()
        for refusal in job.refusals:
            index = self._touch(refusal.index, at)
            entry = index.entries.setdefault(_entry_id(refusal), _Entry(at, at))
            entry.last_seen = max(entry.last_seen, at)
            entry.counts.update(_count_fields(refusal, at))
            touched.add(refusal.index)
        for skip in job.policy_skips:
            self._touch(skip[0], at).impact[_impact_field(skip, at)] += 1
            touched.add(skip[0])
        self._trim(touched, cutoff=at - self.bounds.retention)

    def _touch(self, name: str, at: datetime) -> _Index:
        index = self._indexes.setdefault(name, _Index(at))
        index.last_seen = max(index.last_seen, at)
        return index

    def _trim(self, touched: set[str], *, cutoff: datetime) -> None:
        for name in touched:
            index = self._indexes[name]
            by_age = sorted(index.entries, key=lambda e: (index.entries[e].last_seen, e))
            over = max(len(by_age) - self.bounds.max_versions, 0)
            for dropped in by_age[:over]:
                del index.entries[dropped]
            for entry_id, entry in list(index.entries.items()):
                if entry.last_seen < cutoff:
                    del index.entries[entry_id]
                for stale in _stale_counts(entry.counts, cutoff):
                    del entry.counts[stale]
            for stale in _stale_impact(index.impact, cutoff):
                del index.impact[stale]
        by_age = sorted(self._indexes, key=lambda i: (self._indexes[i].last_seen, i))
        over = max(len(by_age) - self.bounds.max_indexes, 0)
        for name in by_age[:over] + [i for i in by_age if self._indexes[i].last_seen < cutoff]:
            self._indexes.pop(name, None)

    async def catalogue(
        self, index: str, *, since: datetime, until: datetime, limit: int
    ) -> BlockedCatalogue:
        start = _start(self.bounds, since, until)
        held = self._indexes.get(index) or _Index(until)
        matching = sorted(
            (
                (entry_id, e.first_seen, e.last_seen, e.counts)
                for entry_id, e in held.entries.items()
                if e.last_seen >= start
            ),
            # Newest first, ties by entry id descending: the order of Redis's ZREVRANGE.
            key=lambda entry: (entry[2], entry[0]),
            reverse=True,
        )
        return _make_catalogue(
            self.bounds,
            index,
            start=start,
            until=until,
            total=len(matching),
            entries=matching[:limit],
            impact=held.impact,
        )
