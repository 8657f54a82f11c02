"""What waiters cost: how many each client holds open, and the reads they share.

A waiter (``GET /jobs/{id}?wait=`` or ``GET /jobs/{id}/events``) costs a socket, a task and a
store read on every change of its job, so one client opening hundreds of them could crowd out
everyone else. ``WatchSlots`` counts the waiters a client has open and refuses the one past
``limits.max_watches_per_client`` with ``TooManyWatches`` (429 with ``Retry-After``) before it
touches the store; the count is per process (each API replica admits that many).
``SharedReads`` makes the reads of waiters woken together by one change a single read.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

from service.api.problems import TooManyWatches

__all__ = ["RETRY_AFTER_SECONDS", "SharedReads", "WatchSlot", "WatchSlots"]

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")

RETRY_AFTER_SECONDS = 5


class WatchSlot:
    """One open wait or stream; ``release`` gives it back (a second call does nothing)."""

    def __init__(self, slots: WatchSlots, client: str) -> None:
        self._slots = slots
        self._client = client
        self._held = True

    def release(self) -> None:
        if self._held:
            self._held = False
            self._slots.give_back(self._client)

    def __enter__(self) -> WatchSlot:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


class WatchSlots:
    """Per-client counts of open waits and streams, at most ``per_client`` each."""

    def __init__(self, per_client: int) -> None:
        self.per_client = per_client
        self._open: dict[str, int] = {}

    def take(self, client: str) -> WatchSlot:
        """A slot for ``client``; raise ``TooManyWatches`` when it holds ``per_client``."""
        held = self._open.get(client, 0)
        if held >= self.per_client:
            raise TooManyWatches(
                f"This client already has {held} waits or event streams open "
                f"(limits.max_watches_per_client); close one or retry later.",
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
        self._open[client] = held + 1
        return WatchSlot(self, client)

    def give_back(self, client: str) -> None:
        left = self._open[client] - 1
        if left:
            self._open[client] = left
        else:
            del self._open[client]

    def count(self, client: str) -> int:
        """Slots ``client`` holds now."""
        return self._open.get(client, 0)


class SharedReads(Generic[K, T]):
    """Reads asked for at once under one key, made once.

    A waiter woken by a change must see that change, so it joins a read that has not started
    yet, never one under way (which may predate the change): per key, at most one read runs
    and one waits to start, however many waiters ask. A waiter that leaves does not cancel the
    read the others wait on.
    """

    def __init__(self) -> None:
        self._next: dict[K, asyncio.Future[T]] = {}
        self._locks: dict[K, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def read(self, key: K, read: Callable[[], Awaitable[T]]) -> T:
        """The outcome of a ``read()`` begun after this call (shared by the key's askers)."""
        future = self._next.get(key)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            # Retrieved here, so that a read nobody waits for any more logs no warning.
            future.add_done_callback(lambda done: done.cancelled() or done.exception())
            self._next[key] = future
            task = asyncio.create_task(self._run(key, future, read))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await asyncio.shield(future)

    async def _run(
        self, key: K, future: asyncio.Future[T], read: Callable[[], Awaitable[T]]
    ) -> None:
        lock = self._locks.setdefault(key, asyncio.Lock())
        try:
            async with lock:
                del self._next[key]  # from now on, askers wait for the read after this one
                future.set_result(await read())
        except Exception as exc:  # not swallowed: every asker raises it
            future.set_exception(exc)
        except asyncio.CancelledError:
            future.cancel()
            raise
        finally:
            if self._next.get(key) is future:
                del self._next[key]
            if not lock.locked() and key not in self._next:
                self._locks.pop(key, None)

    async def aclose(self) -> None:
        """Cancel the reads under way (at shutdown)."""
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
