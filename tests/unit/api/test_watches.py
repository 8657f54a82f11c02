"""What waiters cost: ``WatchSlots`` (per-client limit) and ``SharedReads`` (one read per wake).

End-to-end behaviour (429s from a real server, slots given back on disconnect) is in
``tests/e2e/test_abuse.py``; these pin the two classes' own promises.
"""

from __future__ import annotations

import asyncio

import pytest

from service.api.problems import TooManyWatches
from service.api.watches import RETRY_AFTER_SECONDS, SharedReads, WatchSlots


class TestWatchSlots:
    def test_a_client_past_its_limit_is_refused_with_retry_after(self) -> None:
        """The slot past ``per_client`` raises ``TooManyWatches`` carrying ``Retry-After``."""
        slots = WatchSlots(2)
        slots.take("a")
        slots.take("a")
        with pytest.raises(TooManyWatches) as caught:
            slots.take("a")
        assert caught.value.headers == {"Retry-After": str(RETRY_AFTER_SECONDS)}
        assert "limits.max_watches_per_client" in caught.value.detail

    def test_clients_are_counted_apart(self) -> None:
        """One client at its limit leaves another's slots alone."""
        slots = WatchSlots(1)
        slots.take("a")
        with slots.take("b"):
            assert slots.count("b") == 1
        assert slots.count("b") == 0

    def test_a_slot_released_twice_is_given_back_once(self) -> None:
        """``release`` is idempotent: the count never goes below what is held."""
        slots = WatchSlots(2)
        kept = slots.take("a")
        slot = slots.take("a")
        slot.release()
        slot.release()
        assert slots.count("a") == 1
        kept.release()
        assert slots.count("a") == 0


class GatedRead:
    """A read that counts its calls and waits for ``gate`` before answering."""

    def __init__(self) -> None:
        self.calls = 0
        self.gate = asyncio.Event()
        self.fail: Exception | None = None

    async def __call__(self) -> int:
        self.calls += 1
        call = self.calls
        await self.gate.wait()
        if self.fail is not None:
            raise self.fail
        return call


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


class TestSharedReads:
    async def test_askers_at_once_share_one_read(self) -> None:
        """A hundred waiters woken together: one read, one answer for all."""
        reads: SharedReads[str, int] = SharedReads()
        read = GatedRead()
        read.gate.set()
        answers = await asyncio.gather(*(reads.read("job", read) for _ in range(100)))
        assert answers == [1] * 100
        assert read.calls == 1

    async def test_an_asker_during_a_read_gets_the_next_read(self) -> None:
        """A read under way may predate the change that woke a later asker: it waits for the
        next read instead, which every later asker shares."""
        reads: SharedReads[str, int] = SharedReads()
        read = GatedRead()
        first = asyncio.create_task(reads.read("job", read))
        await settle()
        assert read.calls == 1
        later = [asyncio.create_task(reads.read("job", read)) for _ in range(10)]
        await settle()
        assert read.calls == 1  # one read at a time per key
        read.gate.set()
        assert await first == 1
        assert await asyncio.gather(*later) == [2] * 10
        assert read.calls == 2

    async def test_keys_are_read_apart(self) -> None:
        """Different keys never share a read."""
        reads: SharedReads[str, int] = SharedReads()
        read = GatedRead()
        read.gate.set()
        await asyncio.gather(reads.read("a", read), reads.read("b", read))
        assert read.calls == 2

    async def test_every_asker_gets_the_reads_error(self) -> None:
        """An error is every asker's, and the next ask reads again."""
        reads: SharedReads[str, int] = SharedReads()
        read = GatedRead()
        read.fail = LookupError("gone")
        read.gate.set()
        answers = await asyncio.gather(
            *(reads.read("job", read) for _ in range(3)), return_exceptions=True
        )
        assert [type(answer) for answer in answers] == [LookupError] * 3
        read.fail = None
        assert await reads.read("job", read) == 2

    async def test_an_asker_that_leaves_does_not_cancel_the_others(self) -> None:
        """A client that disconnects cancels its own wait, not the shared read."""
        reads: SharedReads[str, int] = SharedReads()
        read = GatedRead()
        leaving = asyncio.create_task(reads.read("job", read))
        staying = asyncio.create_task(reads.read("job", read))
        await settle()
        leaving.cancel()
        read.gate.set()
        assert await staying == 1
        with pytest.raises(asyncio.CancelledError):
            await leaving
