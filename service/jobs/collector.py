"""CPython's garbage collections: fewer young ones, and the full ones moved to the moments a
worker has no job to run.

A full collection walks every tracked object the process holds: during a cold 244-package job
(parsed pages, versions, requirements, resolvelib's states) one took 16-52 ms, and CPython ran
five of them, 107 ms with the GIL held, stalling the event loop and the resolver alike; a warm
job that met one took 137 ms instead of 60. ``tune_collector`` makes them ten times rarer (a
full collection after 100 young-generation ones instead of 10); ``IdleCollector`` runs one
whenever the worker has been idle for a moment, so the cycles a burst of jobs left behind are
freed soon after it ends. Under load that never pauses, CPython's own (now rarer) full
collections still bound the garbage.

Young collections were the other cost. CPython runs one every 700 container allocations, and
a job allocates many that live for the whole job (parsed pages, versions, candidates, states),
so each young collection walked hundreds of survivors: a warm 244-package job ran 28 young and
3 middle collections (5 ms of its 51), a cold one 168 and 16 (173 ms). After 20,000
allocations instead, the warm job runs none or one (1.7 ms) and the cold one 6 (30 ms), while
the garbage held between collections stays a few megabytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import Callable, Iterator

__all__ = [
    "FULL_COLLECTION_THRESHOLD",
    "YOUNG_COLLECTION_THRESHOLD",
    "IdleCollector",
    "tune_collector",
]

# Container allocations (less deallocations) between two young collections; CPython's is 700.
YOUNG_COLLECTION_THRESHOLD = 20_000
# Middle-generation (generation 1) collections between two full ones; CPython's default is 10.
FULL_COLLECTION_THRESHOLD = 100
# How long a worker must have had no job before the idle collection runs.
IDLE_SECONDS = 1.0


def tune_collector() -> None:
    """Make this process's collections rarer (see the module docstring)."""
    _, middle, _ = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, middle, FULL_COLLECTION_THRESHOLD)


class IdleCollector:
    """Counts the jobs running in this process; once none has run for ``idle_seconds``, runs
    ``collect`` (a full ``gc.collect``) on the event loop, once per idle spell."""

    def __init__(
        self, *, idle_seconds: float = IDLE_SECONDS, collect: Callable[[], object] = gc.collect
    ) -> None:
        self._idle_seconds = idle_seconds
        self._collect = collect
        self._running = 0
        self._spell = 0  # bumped by every job start: a timer from before one is stale
        self._timer: asyncio.TimerHandle | None = None
        self.collections = 0

    @contextlib.contextmanager
    def busy(self) -> Iterator[None]:
        """Around one job (on the event loop)."""
        self._running += 1
        self._spell += 1
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        try:
            yield
        finally:
            self._running -= 1
            if self._running == 0:
                self._timer = asyncio.get_running_loop().call_later(
                    self._idle_seconds, self._collect_if_idle, self._spell
                )

    def _collect_if_idle(self, spell: int) -> None:
        self._timer = None
        if self._running == 0 and spell == self._spell:
            self._collect()
            self.collections += 1
