"""In-process API tests: the test client type, its factory type, and the queue's counts.

The ``make_client``, ``api`` and ``api_with_worker`` fixtures (``tests/unit/api/conftest.py``)
build ``Client``s with a ``ScriptedResolver``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from litestar import Litestar
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

__all__ = ["Client", "ClientFactory", "count_queued"]

Client = AsyncTestClient[Litestar]
ClientFactory = Callable[..., contextlib.AbstractAsyncContextManager[Client]]


async def count_queued(redis: Redis) -> tuple[int, int]:
    """(job documents stored, jobs waiting in the SAQ queue)."""
    documents = len(await redis.keys("resolvd:job:*"))
    waiting = int(await redis.llen("saq:resolvd:queued"))
    return documents, waiting
