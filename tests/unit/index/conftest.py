"""Fixtures for the network edge: loopback servers, fast limits, clients, a real Redis.

``index_server`` (the loopback index) comes from ``tests.indexserver.fixtures`` via the root
conftest.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import pytest
import redis
import redis.asyncio

from service.index import IndexClient, RedisPageCache
from service.settings import FetchLimits
from tests.unit.index.loopback import StaticServer

REDIS_TEST_URL = "redis://127.0.0.1:6379/13"


@pytest.fixture
def static_server() -> Iterator[StaticServer]:
    """A loopback server of hand-made bytes, for edge cases."""
    with StaticServer() as server:
        yield server


@pytest.fixture
def limits() -> FetchLimits:
    """Limits that keep failure tests fast: short backoff and deadline."""
    return FetchLimits(retries=2, backoff_base=0.01, fetch_deadline=5.0, read_timeout=2.0)


@pytest.fixture
async def client(limits: FetchLimits) -> AsyncIterator[IndexClient]:
    """A client without a cache."""
    async with IndexClient(limits) as client:
        yield client


@asynccontextmanager
async def open_redis_cache() -> AsyncIterator[RedisPageCache]:
    """A Redis cache on db 13, flushed before and after; skips when Redis is not running."""
    probe = redis.Redis.from_url(REDIS_TEST_URL, socket_connect_timeout=1.0)
    try:
        probe.ping()
    except (redis.RedisError, OSError) as exc:
        pytest.skip(f"Redis not reachable at {REDIS_TEST_URL}: {exc}")
    finally:
        probe.close()
    connection = redis.asyncio.Redis.from_url(REDIS_TEST_URL)
    await connection.flushdb()
    cache = RedisPageCache(connection, url=REDIS_TEST_URL)
    try:
        yield cache
    finally:
        cleanup = redis.asyncio.Redis.from_url(REDIS_TEST_URL)
        await cleanup.flushdb()
        await cleanup.aclose()
        await cache.aclose()


@pytest.fixture
async def redis_cache() -> AsyncIterator[RedisPageCache]:
    """A Redis cache on db 13, flushed before and after; skips when Redis is not running."""
    async with open_redis_cache() as cache:
        yield cache
