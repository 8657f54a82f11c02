"""How many long-polls and event streams each client holds open in this API process.

A waiter costs a socket, a task and a store read on every change of its job, so one client
opening hundreds of them could crowd out everyone else. ``WatchSlots`` counts the
``GET /jobs/{id}?wait=`` and ``GET /jobs/{id}/events`` a client has open and refuses the one
past ``limits.max_watches_per_client`` with ``TooManyWatches`` (429 with ``Retry-After``)
before it touches the store. The count is per process: each API replica admits that many.
"""

from __future__ import annotations

from service.api.problems import TooManyWatches

__all__ = ["RETRY_AFTER_SECONDS", "WatchSlot", "WatchSlots"]

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
