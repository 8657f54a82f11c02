"""Fixtures for the network edge: loopback servers, fast limits, clients, a real Redis cache.

``index_server`` (the loopback index) and ``clean_redis`` (the flushed test Redis database)
come from the root conftest's plugins.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator

import pytest

from service.index import IndexClient, RedisPageCache
from service.settings import FetchLimits
from tests.unit.index.loopback import StaticServer


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


@pytest.fixture
async def redis_cache(clean_redis: str) -> AsyncIterator[RedisPageCache]:
    """A Redis cache on the flushed test database."""
    async with contextlib.aclosing(RedisPageCache.from_url(clean_redis)) as cache:
        yield cache
