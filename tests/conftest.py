"""Shared fixtures: a real Redis on db 15 (flushed around each test) and test settings.

Tests that need Redis are skipped, with the reason, when nothing answers at
``RESOLVD_TEST_REDIS_URL`` (default ``redis://127.0.0.1:6379/15``). Nothing here touches a
remote host: the configured indexes point at loopback addresses.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator

import msgspec
import pytest
import redis
from redis.asyncio import Redis

from service.settings import IndexSettings, JobSettings, RedisSettings, Settings
from tests.unit.jobs.fakes import ScriptedResolver

pytest_plugins = ["tests.indexserver.fixtures"]

TEST_REDIS_URL = os.environ.get("RESOLVD_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def _redis_reachable(url: str) -> str | None:
    """``None`` when Redis answers at ``url``, else why not."""
    client = redis.Redis.from_url(url, socket_connect_timeout=1.0, socket_timeout=1.0)
    try:
        client.ping()
    except (redis.RedisError, OSError) as exc:
        return f"Redis not reachable at {url}: {exc}"
    finally:
        client.close()
    return None


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """The test Redis URL (db 15).

    When nothing answers there and ``redis-server`` is installed, a throwaway non-persistent
    server is started on a free loopback port for the session and stopped afterwards, so
    ``make test`` works on a fresh machine and leaves nothing running. Without the binary the
    tests that need Redis are skipped with the reason.
    """
    reason = _redis_reachable(TEST_REDIS_URL)
    if reason is None:
        yield TEST_REDIS_URL
        return
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip(f"{reason}; redis-server is not installed (run `make redis`)")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/15"
    try:
        deadline = time.monotonic() + 10
        while _redis_reachable(url) is not None:
            if time.monotonic() > deadline or server.poll() is not None:
                pytest.fail(f"{reason}; a throwaway redis-server on port {port} did not start")
            time.sleep(0.05)
        os.environ["RESOLVD_TEST_REDIS_URL"] = url
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture
def clean_redis(redis_url: str) -> Iterator[str]:
    """Redis db 15, flushed before and after the test; yields its URL."""
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    try:
        yield redis_url
    finally:
        client.flushdb()
        client.close()


@pytest.fixture
async def redis_client(clean_redis: str) -> AsyncIterator[Redis]:
    """An async client on the flushed test database."""
    client = Redis.from_url(clean_redis)
    try:
        yield client
    finally:
        await client.aclose()


def make_test_settings(redis_url: str = TEST_REDIS_URL, **overrides: object) -> Settings:
    """Settings for tests: the test Redis and loopback-only indexes (port 9 = discard).

    ``overrides`` replace top-level sections (``limits=Limits(...)``).
    """
    settings = Settings(
        redis=RedisSettings(url=redis_url),
        index=(
            IndexSettings(name="pypi", url="http://127.0.0.1:9/pypi/simple"),
            IndexSettings(name="corp", url="http://127.0.0.1:9/corp/simple"),
        ),
        jobs=JobSettings(heartbeat_seconds=2, max_tries=3, worker_concurrency=2),
    )
    return msgspec.structs.replace(settings, **overrides)


@pytest.fixture
def settings(clean_redis: str) -> Settings:
    """Test settings on the flushed Redis db 15."""
    return make_test_settings(clean_redis)


@pytest.fixture
def resolver() -> ScriptedResolver:
    """A scripted resolver (see ``tests.unit.jobs.fakes``) for in-process workers."""
    return ScriptedResolver()
