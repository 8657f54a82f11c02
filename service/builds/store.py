"""Where build requests wait and outcomes stay: Redis for a fleet, process memory for one process.

One request per sdist (keyed by its sha256) is queued at a time: ``submit`` queues it unless an
outcome is known or the sdist is already pending (queued, or leased by a builder that holds it
with ``hold`` while it builds). A builder that dies stops holding; its lease lapses, and the
next worker that waits for the sdist submits it again. Outcomes: built metadata is kept
forever (the sdist's bytes cannot change under its sha256); a failure for ``failure_ttl``
seconds and it never replaces built metadata. Counters for ``/metrics`` are kept beside them.
The Redis keys live in the job store's Redis (``redis.url``: no eviction), never the cache's.
One contract suite runs against both implementations.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator
from typing import Literal, Protocol, runtime_checkable

import msgspec
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from service.builds.model import BuildOutcome, BuildRequest
from service.diagnostics.redact import redact_url
from service.settings import Settings

__all__ = [
    "QUEUED_TTL_SECONDS",
    "BuildStore",
    "BuildTotals",
    "MemoryBuildStore",
    "RedisBuildStore",
    "open_build_store",
]

logger = logging.getLogger(__name__)

# A queued request no builder took in this long may be queued again by a waiting worker.
QUEUED_TTL_SECONDS = 300.0
# Requests and attempt counts outlive any job that could wait for them.
_REQUEST_TTL_SECONDS = 24 * 3600
_PREFIX = "resolvd:builds:"
_QUEUE = _PREFIX + "queue"
_BUILDERS = _PREFIX + "builders"
_STATS = _PREFIX + "stats"

_SUBMIT = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
if not redis.call('SET', KEYS[2], 'queued', 'NX', 'PX', ARGV[1]) then return 0 end
redis.call('SET', KEYS[3], ARGV[2], 'PX', ARGV[3])
redis.call('RPUSH', KEYS[4], ARGV[4])
redis.call('HINCRBY', KEYS[5], 'requested', 1)
return 1
"""


class BuildTotals(msgspec.Struct, frozen=True, kw_only=True):
    """Fleet-wide build counters since the store was created."""

    requested: int = 0
    built: int = 0
    reused: int = 0
    failed: dict[str, int] = msgspec.field(default_factory=dict)
    duration_seconds_sum: float = 0.0
    duration_count: int = 0


@runtime_checkable  # Litestar checks a dependency's type against its annotation
class BuildStore(Protocol):
    async def find_outcome(self, sha256: str) -> BuildOutcome | None:
        """The known outcome for the sdist, or ``None``."""
        ...

    async def submit(self, request: BuildRequest) -> bool:
        """Queue ``request`` unless an outcome is known or it is pending; True if queued."""
        ...

    async def is_pending(self, sha256: str) -> bool:
        """Whether the sdist is queued or being built (its lease has not lapsed)."""
        ...

    async def take(self, wait_seconds: float) -> BuildRequest | None:
        """The next queued request, waiting up to ``wait_seconds``."""
        ...

    async def hold(self, sha256: str, holder: str, seconds: float) -> None:
        """Lease the sdist to ``holder`` for ``seconds`` (renewed while it builds)."""
        ...

    async def release(self, request: BuildRequest) -> None:
        """Give an unfinished build back: queue it first, for another builder."""
        ...

    async def finish(self, sha256: str, outcome: BuildOutcome, *, failure_ttl: float) -> None:
        """Store ``outcome`` (metadata forever, a failure for ``failure_ttl``); count it."""
        ...

    async def count_attempt(self, sha256: str) -> int:
        """Count one more submission of the sdist; returns the count so far."""
        ...

    async def record_reuse(self) -> None:
        """Count a build a worker did not have to wait for (its outcome was known)."""
        ...

    async def beat(self, builder_id: str) -> None:
        """Record that ``builder_id`` is alive now."""
        ...

    async def count_builders(self, window: float) -> int:
        """Builders that beat within the last ``window`` seconds."""
        ...

    async def totals(self) -> BuildTotals: ...

    async def aclose(self) -> None: ...


def _encode(value: BuildOutcome | BuildRequest) -> bytes:
    return msgspec.msgpack.encode(value)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _bytes(value: bytes | str) -> bytes:
    return value.encode() if isinstance(value, str) else value


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


class RedisBuildStore:
    """The fleet's build queue and outcomes in Redis."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._submit = redis.register_script(_SUBMIT)

    @classmethod
    def from_url(cls, url: str) -> RedisBuildStore:
        # A command whose connection dropped is sent once more on a new one (as the job store);
        # a generous read timeout, since a builder inside `resolvd serve` shares its event loop
        # with a worker's resolutions, which can hold it while a BLPOP waits.
        retry = Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,))
        return cls(
            Redis.from_url(
                url,
                socket_connect_timeout=5.0,
                socket_timeout=30.0,
                health_check_interval=30,
                retry=retry,
            )
        )

    async def find_outcome(self, sha256: str) -> BuildOutcome | None:
        raw = await self._redis.get(f"{_PREFIX}outcome:{sha256}")
        return None if raw is None else msgspec.msgpack.decode(_bytes(raw), type=BuildOutcome)

    async def submit(self, request: BuildRequest) -> bool:
        sha = request.sha256
        keys = [
            f"{_PREFIX}outcome:{sha}",
            f"{_PREFIX}pending:{sha}",
            f"{_PREFIX}request:{sha}",
            _QUEUE,
            _STATS,
        ]
        args: list[bytes | str | int] = [
            _ms(QUEUED_TTL_SECONDS),
            _encode(request),
            _ms(_REQUEST_TTL_SECONDS),
            sha,
        ]
        return bool(await self._submit(keys=keys, args=args))

    async def is_pending(self, sha256: str) -> bool:
        return bool(await self._redis.exists(f"{_PREFIX}pending:{sha256}"))

    async def take(self, wait_seconds: float) -> BuildRequest | None:
        popped = await self._redis.blpop([_QUEUE], timeout=max(wait_seconds, 0.01))
        if popped is None:
            return None
        raw = await self._redis.get(f"{_PREFIX}request:{_text(popped[1])}")
        return None if raw is None else msgspec.msgpack.decode(_bytes(raw), type=BuildRequest)

    async def hold(self, sha256: str, holder: str, seconds: float) -> None:
        await self._redis.set(f"{_PREFIX}pending:{sha256}", holder, px=_ms(seconds))

    async def release(self, request: BuildRequest) -> None:
        sha = request.sha256
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(f"{_PREFIX}pending:{sha}", "queued", px=_ms(QUEUED_TTL_SECONDS))
            pipe.set(f"{_PREFIX}request:{sha}", _encode(request), px=_ms(_REQUEST_TTL_SECONDS))
            pipe.lpush(_QUEUE, sha)
            await pipe.execute()

    async def finish(self, sha256: str, outcome: BuildOutcome, *, failure_ttl: float) -> None:
        key = f"{_PREFIX}outcome:{sha256}"
        async with self._redis.pipeline(transaction=True) as pipe:
            if outcome.failure is None:
                pipe.set(key, _encode(outcome))
                pipe.hincrby(_STATS, "built", 1)
            else:
                pipe.set(key, _encode(outcome), px=_ms(failure_ttl), nx=True)
                pipe.hincrby(_STATS, f"failed:{outcome.failure.stage}", 1)
            pipe.hincrbyfloat(_STATS, "duration_seconds_sum", outcome.duration_seconds)
            pipe.hincrby(_STATS, "duration_count", 1)
            pipe.delete(f"{_PREFIX}pending:{sha256}", f"{_PREFIX}request:{sha256}")
            await pipe.execute()

    async def count_attempt(self, sha256: str) -> int:
        key = f"{_PREFIX}attempts:{sha256}"
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.pexpire(key, _ms(_REQUEST_TTL_SECONDS))
            count, _ = await pipe.execute()
        return int(count)

    async def record_reuse(self) -> None:
        await self._redis.hincrby(_STATS, "reused", 1)

    async def beat(self, builder_id: str) -> None:
        now = time.time()
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.zadd(_BUILDERS, {builder_id: now})
            pipe.zremrangebyscore(_BUILDERS, "-inf", now - 24 * 3600)
            await pipe.execute()

    async def count_builders(self, window: float) -> int:
        return int(await self._redis.zcount(_BUILDERS, time.time() - window, "+inf"))

    async def totals(self) -> BuildTotals:
        raw = {_text(k): _text(v) for k, v in (await self._redis.hgetall(_STATS)).items()}
        return _make_totals(raw)

    async def aclose(self) -> None:
        await self._redis.aclose()


def _make_totals(raw: dict[str, str]) -> BuildTotals:
    return BuildTotals(
        requested=int(raw.get("requested", 0)),
        built=int(raw.get("built", 0)),
        reused=int(raw.get("reused", 0)),
        failed={
            key.removeprefix("failed:"): int(value)
            for key, value in sorted(raw.items())
            if key.startswith("failed:")
        },
        duration_seconds_sum=float(raw.get("duration_seconds_sum", 0)),
        duration_count=int(raw.get("duration_count", 0)),
    )


class MemoryBuildStore:
    """The same, inside one process (``resolvd serve`` without Redis)."""

    def __init__(self) -> None:
        self._outcomes: dict[str, tuple[BuildOutcome, float]] = {}
        self._pending: dict[str, float] = {}
        self._requests: dict[str, BuildRequest] = {}
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._attempts: Counter[str] = Counter()
        self._builders: dict[str, float] = {}
        self._stats: dict[str, str] = {}

    def _count(self, key: str, by: float = 1) -> None:
        current = float(self._stats.get(key, 0)) + by
        self._stats[key] = str(int(current) if float(current).is_integer() else current)

    async def find_outcome(self, sha256: str) -> BuildOutcome | None:
        found = self._outcomes.get(sha256)
        if found is None or found[1] <= time.monotonic():
            return None
        return found[0]

    async def submit(self, request: BuildRequest) -> bool:
        sha = request.sha256
        if await self.find_outcome(sha) is not None or await self.is_pending(sha):
            return False
        self._pending[sha] = time.monotonic() + QUEUED_TTL_SECONDS
        self._requests[sha] = request
        self._queue.put_nowait(sha)
        self._count("requested")
        return True

    async def is_pending(self, sha256: str) -> bool:
        return self._pending.get(sha256, 0.0) > time.monotonic()

    async def take(self, wait_seconds: float) -> BuildRequest | None:
        try:
            sha = await asyncio.wait_for(self._queue.get(), wait_seconds)
        except TimeoutError:
            return None
        return self._requests.get(sha)

    async def hold(self, sha256: str, holder: str, seconds: float) -> None:
        self._pending[sha256] = time.monotonic() + seconds

    async def release(self, request: BuildRequest) -> None:
        self._pending[request.sha256] = time.monotonic() + QUEUED_TTL_SECONDS
        self._requests[request.sha256] = request
        # An asyncio.Queue has no front; the order of a release against new requests is moot.
        self._queue.put_nowait(request.sha256)

    async def finish(self, sha256: str, outcome: BuildOutcome, *, failure_ttl: float) -> None:
        if outcome.failure is None:
            self._outcomes[sha256] = (outcome, float("inf"))
            self._count("built")
        else:
            if await self.find_outcome(sha256) is None:
                self._outcomes[sha256] = (outcome, time.monotonic() + failure_ttl)
            self._count(f"failed:{outcome.failure.stage}")
        self._count("duration_seconds_sum", outcome.duration_seconds)
        self._count("duration_count")
        self._pending.pop(sha256, None)
        self._requests.pop(sha256, None)

    async def count_attempt(self, sha256: str) -> int:
        self._attempts[sha256] += 1
        return self._attempts[sha256]

    async def record_reuse(self) -> None:
        self._count("reused")

    async def beat(self, builder_id: str) -> None:
        self._builders[builder_id] = time.time()

    async def count_builders(self, window: float) -> int:
        since = time.time() - window
        return sum(seen >= since for seen in self._builders.values())

    async def totals(self) -> BuildTotals:
        return _make_totals(dict(self._stats))

    async def aclose(self) -> None:
        return None


# The store of a process without Redis, shared by its in-process builder and worker.
_PROCESS_STORE = MemoryBuildStore()


@contextlib.asynccontextmanager
async def open_build_store(
    settings: Settings, kind: Literal["redis", "memory"] | None = None
) -> AsyncIterator[BuildStore]:
    """The build store beside the job store: Redis at ``redis.url``, or this process's memory.

    ``kind`` follows the job backend's choice; ``None`` probes Redis and falls back to memory.
    """
    if kind is None:
        probe = Redis.from_url(settings.redis.url, socket_connect_timeout=1.0)
        try:
            await probe.ping()
            kind = "redis"
        except (RedisError, OSError):
            logger.warning(
                "builds: Redis at %s is unreachable; build requests stay in this process",
                redact_url(settings.redis.url),
            )
            kind = "memory"
        finally:
            await probe.aclose()
    if kind == "memory":
        yield _PROCESS_STORE
        return
    store = RedisBuildStore.from_url(settings.redis.url)
    try:
        yield store
    finally:
        await store.aclose()
