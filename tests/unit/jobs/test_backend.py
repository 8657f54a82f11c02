"""``open_backend`` on Redis: bounded pools that make a burst wait; connections named by role."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from service.jobs.backend import open_backend
from service.settings import Settings

# Past redis-py's default pool size (100), which answered a burst of long-polls with
# "Too many connections".
BURST = 300


class TestRedisBackend:
    async def test_a_burst_of_reads_waits_for_connections_instead_of_failing(
        self, settings: Settings
    ) -> None:
        """300 reads at once on one backend all answer: the pool is bounded, and a command
        finding every connection busy waits for one."""
        async with open_backend(settings, "redis") as backend:
            answers = await asyncio.gather(
                *(backend.store.get(f"job-{n}") for n in range(BURST)), return_exceptions=True
            )
        assert answers == [None] * BURST

    async def test_connections_are_named_by_role(
        self, settings: Settings, redis_client: Redis
    ) -> None:
        """The store's connections carry the role, the queue's ``<role>-queue``."""
        async with open_backend(settings, "redis", role="resolvd-test") as backend:
            await backend.store.ping()
            await backend.queue.gave_up("nothing")
            names = {entry["name"] for entry in await redis_client.client_list()}
        assert {"resolvd-test", "resolvd-test-queue"} <= names
