"""IdleCollector: a full collection once the worker has been idle, never while a job runs."""

from __future__ import annotations

import asyncio
import gc
import subprocess
import sys

from service.jobs.collector import (
    FULL_COLLECTION_THRESHOLD,
    YOUNG_COLLECTION_THRESHOLD,
    IdleCollector,
)

IDLE = 0.05


class _Counter:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> None:
        self.calls += 1


async def _job(collector: IdleCollector, seconds: float) -> None:
    with collector.busy():
        await asyncio.sleep(seconds)


class TestIdleCollector:
    async def test_collects_once_after_the_last_job_ends(self) -> None:
        collect = _Counter()
        collector = IdleCollector(idle_seconds=IDLE, collect=collect)
        await asyncio.gather(_job(collector, 0.01), _job(collector, 0.03))
        assert collect.calls == 0
        await asyncio.sleep(IDLE * 3)
        assert collect.calls == collector.collections == 1
        await asyncio.sleep(IDLE * 3)
        assert collect.calls == 1  # one per idle spell

    async def test_never_while_a_job_runs(self) -> None:
        collect = _Counter()
        collector = IdleCollector(idle_seconds=IDLE, collect=collect)
        long_job = asyncio.create_task(_job(collector, IDLE * 6))
        for _ in range(4):  # short jobs end while the long one runs
            await _job(collector, IDLE / 5)
        await asyncio.sleep(IDLE * 2)
        assert collect.calls == 0
        await long_job
        await asyncio.sleep(IDLE * 3)
        assert collect.calls == 1

    async def test_a_job_starting_in_the_idle_spell_puts_it_off(self) -> None:
        collect = _Counter()
        collector = IdleCollector(idle_seconds=IDLE, collect=collect)
        await _job(collector, 0)
        await asyncio.sleep(IDLE / 2)
        await _job(collector, IDLE / 2)  # the spell restarts when this one ends
        await asyncio.sleep(IDLE * 0.7)
        assert collect.calls == 0
        await asyncio.sleep(IDLE)
        assert collect.calls == 1

    async def test_a_failed_job_counts_as_ended(self) -> None:
        collect = _Counter()
        collector = IdleCollector(idle_seconds=IDLE, collect=collect)
        try:
            with collector.busy():
                raise RuntimeError("resolution crashed")
        except RuntimeError:
            pass
        await asyncio.sleep(IDLE * 3)
        assert collect.calls == 1

    async def test_the_default_is_a_full_collection(self) -> None:
        collector = IdleCollector(idle_seconds=IDLE)
        before = gc.get_stats()[2]["collections"]
        await _job(collector, 0)
        await asyncio.sleep(IDLE * 3)
        assert gc.get_stats()[2]["collections"] > before


def test_serving_processes_make_full_collections_rarer() -> None:
    """What ``resolvd serve`` and ``resolvd worker`` set up: the startup heap frozen, young
    collections after YOUNG_COLLECTION_THRESHOLD allocations and full ones after
    FULL_COLLECTION_THRESHOLD middle ones (checked in a fresh interpreter)."""
    code = (
        "import gc; from service import cli; cli._freeze_startup_heap(); "
        "print(gc.get_threshold()[0], gc.get_threshold()[2], gc.get_freeze_count() > 0)"
    )
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert child.stdout.split() == [
        str(YOUNG_COLLECTION_THRESHOLD),
        str(FULL_COLLECTION_THRESHOLD),
        "True",
    ]
