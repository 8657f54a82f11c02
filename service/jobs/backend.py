"""Open the job backend: Redis (store + SAQ queue) or, when allowed and Redis is down, memory.

On Redis the queue is told how to give up on a job (``service.jobs.lifecycle.give_up``): its
document fails with kind ``internal`` and a message saying how many tries it had, and the
failure is counted.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from service.diagnostics.redact import redact_url
from service.jobs.blocked import Bounds, MemoryBlockedStore, RedisBlockedStore
from service.jobs.lifecycle import give_up
from service.jobs.queue import (
    QUEUE_NAME,
    JobQueue,
    MemoryJobQueue,
    SaqJobQueue,
    SweepingRedisQueue,
)
from service.jobs.stats import MemoryStatsStore, RedisStatsStore, StatsStore
from service.jobs.store import FinishedRecords, JobStore, MemoryJobStore, RedisJobStore
from service.settings import Settings

__all__ = ["Backend", "BackendChoice", "BackendUnavailable", "open_backend"]

logger = logging.getLogger(__name__)

BackendChoice = Literal["redis", "memory", "auto"]
"""``redis`` requires Redis; ``memory`` never touches it; ``auto`` uses Redis when it answers."""

_CONNECT_TIMEOUT_SECONDS = 2.0
# A command whose connection dropped is sent once more, at once, on a new connection. Without
# it (redis-py's default) the first command on every connection pooled before a Redis restart
# fails, after the restart: a 503 from the API, a lost try for a worker's job. A transaction
# that was watching keys is not resent: it raises WatchError, and the store starts it over.
_RECONNECT = Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,))
# Each client's pool holds at most this many connections; a command finding them all busy
# waits up to _POOL_WAIT_SECONDS for one rather than failing at once (redis-py's default pool
# raises "Too many connections" past 100: a burst of 150 long-polls answered 51 of them 503).
# A process's API and its in-process worker never share a pool (``service.api.app``).
_POOL_CONNECTIONS = 64
_POOL_WAIT_SECONDS = 10.0


class BackendUnavailable(RuntimeError):
    """Redis is required but cannot be reached; the message says where it was looked for."""


@dataclass(frozen=True)
class Backend:
    """The job store and queue one process uses; ``kind`` says which implementation."""

    kind: Literal["redis", "memory"]
    store: JobStore
    queue: JobQueue
    stats: StatsStore


def _make_redis(url: str, client_name: str) -> Redis:
    pool = BlockingConnectionPool.from_url(
        url,
        client_name=client_name,
        max_connections=_POOL_CONNECTIONS,
        timeout=_POOL_WAIT_SECONDS,
        socket_connect_timeout=_CONNECT_TIMEOUT_SECONDS,
        health_check_interval=30,
        retry=_RECONNECT,
    )
    return Redis.from_pool(pool)


@contextlib.asynccontextmanager
async def open_backend(
    settings: Settings,
    choice: BackendChoice,
    *,
    role: str = "resolvd",
    finished: FinishedRecords | None = None,
) -> AsyncIterator[Backend]:
    """Connect to the configured backend for the lifetime of the context.

    ``role`` names its Redis connections (``CLIENT LIST`` shows ``<role>`` and
    ``<role>-queue``), so an operator sees who holds them. ``finished``: the finished records
    another backend of this process holds, shared with this one's store.
    """
    result_ttl = settings.jobs.result_ttl_seconds
    bounds = Bounds(
        max_versions=settings.limits.blocked_versions_per_index,
        retention_days=settings.limits.blocked_retention_days,
    )
    memory_stats = MemoryStatsStore(MemoryBlockedStore(bounds))
    if choice == "memory":
        yield Backend(
            "memory", MemoryJobStore(result_ttl=result_ttl), MemoryJobQueue(), memory_stats
        )
        return
    url = settings.redis.url
    redis = _make_redis(url, role)
    store = RedisJobStore(redis, result_ttl=result_ttl, finished=finished)
    try:
        await store.ping()
    except (RedisError, OSError) as exc:
        await redis.aclose()
        if choice == "redis":
            raise BackendUnavailable(
                f"Redis at {redact_url(url)} is unreachable ({exc}); "
                "start Redis or set RESOLVD_REDIS_URL"
            ) from exc
        logger.warning(
            "Redis at %s is unreachable; using an in-process job store "
            "(jobs live in this process only and are lost when it stops)",
            redact_url(url),
        )
        yield Backend(
            "memory", MemoryJobStore(result_ttl=result_ttl), MemoryJobQueue(), memory_stats
        )
        return
    saq_queue = SweepingRedisQueue(_make_redis(url, f"{role}-queue"), name=QUEUE_NAME)
    stats = RedisStatsStore(redis, RedisBlockedStore(redis, bounds))
    saq_queue.on_give_up = functools.partial(give_up, store, stats)
    try:
        await saq_queue.connect()
        yield Backend("redis", store, SaqJobQueue(saq_queue, settings.jobs), stats)
    finally:
        await saq_queue.disconnect()
        await store.aclose()
