"""The seam between the synchronous resolver thread and the async index client.

The resolver asks for pages and metadata by calling ``wait(...)`` on futures scheduled on the
worker's event loop. Futures are memoised per key, so a prefetch started when a dependency's name
first appears is simply awaited later. Every wait honours the job's stop event and deadline.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Coroutine
from typing import Any, Literal, TypeVar

__all__ = ["FetchBridge", "StoppedError"]

T = TypeVar("T")

_POLL_SECONDS = 0.1


class StoppedError(Exception):
    """The job was cancelled or ran past its deadline; ``kind`` says which."""

    def __init__(self, kind: Literal["cancelled", "deadline_exceeded"]) -> None:
        super().__init__(kind)
        self.kind = kind


class FetchBridge:
    """Schedules coroutines on ``loop`` from the resolver thread and waits for them."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, *, stop: threading.Event, deadline: float
    ) -> None:
        self._loop = loop
        self._stop = stop
        self._deadline = deadline
        self._futures: dict[tuple[str, ...], concurrent.futures.Future[Any]] = {}
        self._lock = threading.Lock()
        self._closed = False

    def check(self) -> None:
        """Raise ``StoppedError`` when the job should end now."""
        if self._stop.is_set():
            raise StoppedError("cancelled")
        if time.monotonic() >= self._deadline:
            raise StoppedError("deadline_exceeded")

    def schedule(self, key: tuple[str, ...], make: Any) -> concurrent.futures.Future[Any]:
        """Start ``make()`` (a coroutine factory) once per ``key``; return its future.

        After ``cancel_pending`` nothing new starts (prefetches running on the loop may still
        ask): the future returned is already cancelled.
        """
        with self._lock:
            future = self._futures.get(key)
            if future is None and self._closed:
                future = concurrent.futures.Future()
                future.cancel()
            elif future is None:
                coroutine: Coroutine[Any, Any, Any] = make()
                future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
                self._futures[key] = future
            return future

    def wait(self, future: concurrent.futures.Future[T]) -> T:
        """Block until ``future`` is done, checking for cancellation and the deadline."""
        while True:
            self.check()
            try:
                return future.result(timeout=_POLL_SECONDS)
            except concurrent.futures.TimeoutError:
                continue

    def cancel_pending(self) -> None:
        """Cancel every fetch still running and refuse new ones: the job is over."""
        with self._lock:
            self._closed = True
            for future in self._futures.values():
                future.cancel()
