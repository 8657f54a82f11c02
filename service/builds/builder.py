"""The builder role: take build requests from the queue, build, store the outcome.

``Builder`` runs ``[builds] concurrency`` builds at once, beats a heartbeat (what waiting
workers look for before they wait), and holds a lease on each sdist it builds, renewed while it
builds; a builder that dies stops renewing, and a waiting worker queues the build again. On
``stop()`` running builds are cancelled (their sandboxes killed) and handed back to the queue.

``open_builder`` runs one inside another process's event loop (``resolvd serve`` with builds
enabled); ``run_builder_process`` is ``resolvd builder``. Both refuse to start when the sandbox
asked for cannot be had (``SandboxUnavailableError``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import uuid
from collections.abc import AsyncIterator, Mapping

from redis.exceptions import RedisError

from service.builds.build import SdistBuilds
from service.builds.model import BuildRequest
from service.builds.sandbox import make_sandbox
from service.builds.store import BuildStore, open_build_store
from service.index.client import make_index_client
from service.settings import Settings

__all__ = [
    "HEARTBEAT_SECONDS",
    "Builder",
    "open_builder",
    "run_builder_process",
]

logger = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 5.0
# A build's lease lasts this long and is renewed every third of it.
LEASE_SECONDS = 15.0
_TAKE_WAIT_SECONDS = 1.0


class Builder:
    """Consumes build requests from ``store`` (see the module docstring)."""

    def __init__(self, store: BuildStore, builds: SdistBuilds, settings: Settings) -> None:
        self.id = f"builder-{uuid.uuid4().hex[:12]}"
        self._store = store
        self._builds = builds
        self._settings = settings
        self._tasks: list[asyncio.Task[None]] = []
        self._stopped = asyncio.Event()

    async def run(self) -> None:
        """Build until ``stop()``."""
        logger.info("%s taking build requests", self.id)
        slots = self._settings.builds.concurrency
        self._tasks = [asyncio.create_task(self._beat(), name=f"{self.id}-beat")]
        self._tasks += [
            asyncio.create_task(self._consume(), name=f"{self.id}-{n}") for n in range(slots)
        ]
        await self._stopped.wait()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        self._stopped.set()

    async def _beat(self) -> None:
        while True:
            try:
                await self._store.beat(self.id)
            except (RedisError, OSError):
                logger.warning("%s could not record its heartbeat", self.id, exc_info=True)
            await asyncio.sleep(HEARTBEAT_SECONDS)

    async def _consume(self) -> None:
        while True:
            try:
                request = await self._store.take(_TAKE_WAIT_SECONDS)
            except (RedisError, OSError):
                logger.warning("%s could not read the build queue", self.id, exc_info=True)
                await asyncio.sleep(_TAKE_WAIT_SECONDS)
                continue
            if request is None or await self._store.find_outcome(request.sha256) is not None:
                continue
            try:
                await self._build_one(request)
            except (RedisError, OSError):
                logger.exception("%s: the build of %s was lost", self.id, request.file.filename)

    async def _build_one(self, request: BuildRequest) -> None:
        store, sha256 = self._store, request.sha256
        await store.hold(sha256, self.id, LEASE_SECONDS)

        async def renew() -> None:
            while True:
                await asyncio.sleep(LEASE_SECONDS / 3)
                await store.hold(sha256, self.id, LEASE_SECONDS)

        renewing = asyncio.create_task(renew())
        try:
            outcome = await self._builds.build(request)
        except asyncio.CancelledError:
            await asyncio.shield(store.release(request))
            raise
        finally:
            renewing.cancel()
        await store.finish(sha256, outcome, failure_ttl=self._settings.builds.failure_ttl_seconds)


@contextlib.asynccontextmanager
async def open_builder(
    settings: Settings, store: BuildStore, *, environ: Mapping[str, str] | None = None
) -> AsyncIterator[Builder]:
    """A running ``Builder`` for the life of the context (its sandbox probed first)."""
    sandbox = await make_sandbox(settings.builds)
    async with await asyncio.to_thread(make_index_client, settings) as client:
        builds = SdistBuilds(
            settings, client, sandbox, environ=os.environ if environ is None else environ
        )
        builder = Builder(store, builds, settings)
        task = asyncio.create_task(builder.run(), name=builder.id)
        try:
            yield builder
        finally:
            await builder.stop()
            await task


async def run_builder_process(settings: Settings) -> None:
    """``resolvd builder``: build from the Redis queue until SIGTERM/SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with open_build_store(settings, "redis") as store:
        await store.count_builders(1.0)  # fails now, not later, when Redis is down
        async with open_builder(settings, store):
            await stop.wait()
            logger.info("builder stopping: running builds go back to the queue")
