"""Pytest plugin: the shared fixtures (the root conftest loads it).

- ``redis_url`` (session): the test Redis (``tests.support.redis``): ``RESOLVD_TEST_REDIS_URL``
  when a Redis answers there, else a throwaway redis-server for the session. Without either the
  tests that need Redis fail, naming the command that installs redis-server: they never skip.
- ``clean_redis``: that database, flushed before and after the test; ``redis_client``: an async
  client on it.
- ``settings``: ``make_test_settings`` on the flushed database; ``resolver``: a
  ``ScriptedResolver``.

Nothing here changes ``os.environ``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from redis.asyncio import Redis

from service.settings import Settings
from tests.support.processes import MissingToolError
from tests.support.redis import configured_redis_url, flush_db, serving_redis
from tests.support.scripted import ScriptedResolver
from tests.support.settings import make_test_settings

__all__ = ["clean_redis", "redis_client", "redis_url", "resolver", "settings"]


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """The test Redis database's URL, for the whole session."""
    try:
        with serving_redis(configured_redis_url()) as url:
            yield url
    except MissingToolError as exc:
        pytest.fail(f"no Redis at {configured_redis_url()} and {exc}")


@pytest.fixture
def clean_redis(redis_url: str) -> Iterator[str]:
    """The test database, flushed before and after the test; yields its URL."""
    flush_db(redis_url)
    try:
        yield redis_url
    finally:
        flush_db(redis_url)


@pytest.fixture
async def redis_client(clean_redis: str) -> AsyncIterator[Redis]:
    """An async client on the flushed test database."""
    async with Redis.from_url(clean_redis) as client:
        yield client


@pytest.fixture
def settings(clean_redis: str) -> Settings:
    """Test settings on the flushed test database."""
    return make_test_settings(clean_redis)


@pytest.fixture
def resolver() -> ScriptedResolver:
    """A scripted resolver (see ``tests.support.scripted``) for in-process workers."""
    return ScriptedResolver()
