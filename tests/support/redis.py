"""Redis for tests and dev tools: the configured test URL, throwaway servers, flushing.

One URL configures every Redis the tests and their runners use: ``RESOLVD_TEST_REDIS_URL``
(default ``redis://127.0.0.1:6379/15``). The test suite uses its database; ``make conformance``
and ``make bench`` use other databases of the same server (``configured_redis_url(db=N)``), so
that none flushes another's data.

``serving_redis(url)`` yields ``url`` when a Redis answers there, and otherwise starts a
throwaway ``RedisServer`` (non-persistent, on a free loopback port, same database number) and
stops it on the way out. ``RedisServer`` also runs the servers that tests stop, freeze and
restart, and those ``make run-cluster`` starts from compose.yaml.
"""

from __future__ import annotations

import contextlib
import os
import signal
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import redis

from tests.support.processes import Service, find_executable, free_port, wait_until

__all__ = [
    "DEFAULT_TEST_REDIS_URL",
    "EPHEMERAL",
    "RedisServer",
    "configured_redis_url",
    "find_redis_problem",
    "flush_db",
    "serving_redis",
    "with_db",
]

DEFAULT_TEST_REDIS_URL = "redis://127.0.0.1:6379/15"
# A server that keeps nothing on disk.
EPHEMERAL = ("--save", "", "--appendonly", "no")


def with_db(url: str, db: int) -> str:
    """``url`` naming database ``db`` instead of its own."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{db}"))


def configured_redis_url(db: int | None = None) -> str:
    """``RESOLVD_TEST_REDIS_URL`` (or the default), on database ``db`` when given."""
    url = os.environ.get("RESOLVD_TEST_REDIS_URL") or DEFAULT_TEST_REDIS_URL
    return url if db is None else with_db(url, db)


def find_redis_problem(url: str) -> str | None:
    """``None`` when Redis answers a PING at ``url``, else why not."""
    client = redis.Redis.from_url(url, socket_connect_timeout=1.0, socket_timeout=1.0)
    try:
        client.ping()
    except (redis.RedisError, OSError) as exc:
        return f"Redis not reachable at {url}: {exc}"
    finally:
        client.close()
    return None


def flush_db(url: str) -> None:
    """Empty the database ``url`` names (and only that one)."""
    client = redis.Redis.from_url(url, socket_connect_timeout=2.0)
    try:
        client.flushdb()
    finally:
        client.close()


class RedisServer:
    """A ``redis-server`` of the caller's own on a free loopback port, data and log in
    ``directory``.

    ``options`` are redis-server arguments (``EPHEMERAL`` by default); the port, the loopback
    bind, the directory and the password are added after them, so they win. ``stop`` shuts it
    down with SIGTERM (a persistent server writes out its append-only file); ``start`` brings it
    back on the same port and directory. ``freeze``/``thaw`` (SIGSTOP/SIGCONT) make it hang:
    connections open, nothing answers.
    """

    def __init__(
        self,
        directory: Path,
        *,
        options: Sequence[str] = EPHEMERAL,
        password: str | None = None,
        name: str = "redis",
    ) -> None:
        self._binary = find_executable("redis-server", package="redis-server")
        self.name = name
        self.directory = directory
        self.options = tuple(options)
        self.password = password
        self.port = free_port()
        self.service: Service | None = None

    @property
    def url(self) -> str:
        """Database 0 (``with_db`` names another)."""
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_connect_timeout=2, socket_timeout=5)

    def start(self, timeout: float = 15.0) -> None:
        """Start the server and wait until it answers (``StartError`` if it never does)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        argv = [self._binary, *self.options, "--port", str(self.port), "--bind", "127.0.0.1"]
        argv += ["--dir", str(self.directory)]
        if self.password:
            argv += ["--requirepass", self.password]
        self.service = Service(self.name, argv, os.environ, self.directory / "redis.log")
        wait_until(
            f"{self.name} on port {self.port} to answer",
            lambda: find_redis_problem(self.url) is None,
            services=[self.service],
            timeout=timeout,
        )

    def freeze(self) -> None:
        assert self.service is not None
        self.service.signal_group(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.service is not None
        self.service.signal_group(signal.SIGCONT)

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM (after SIGCONT, in case it is frozen); the exit status, ``None`` if never
        started."""
        if self.service is None:
            return None
        self.thaw()
        return self.service.stop(timeout)

    def log(self) -> str:
        return self.service.output() if self.service else ""


@contextlib.contextmanager
def serving_redis(url: str) -> Iterator[str]:
    """``url`` when a Redis answers there; otherwise the same database on a throwaway server,
    stopped on exit. ``MissingToolError`` when neither answers nor redis-server is installed."""
    if find_redis_problem(url) is None:
        yield url
        return
    db = int(urlsplit(url).path.strip("/") or 0)
    with tempfile.TemporaryDirectory(prefix="resolvd-test-redis-") as directory:
        server = RedisServer(Path(directory))
        try:
            server.start()
            yield with_db(server.url, db)
        finally:
            server.stop()
