"""``HealthProbe``: ``GET /healthz`` every 50 ms in a thread while a test loads the service.

It keeps every answer's latency (for the test's output: the suite makes no timed assertions
but reports what it saw) and every probe that failed or answered other than 200.
"""

from __future__ import annotations

import threading
import time

import httpx

__all__ = ["HealthProbe"]


class HealthProbe:
    """GET /healthz every 50 ms in a thread; each answer's latency, and any that failed."""

    def __init__(self, base_url: str) -> None:
        self._client = httpx.Client(base_url=base_url, timeout=30)
        self._stop = threading.Event()
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def slowest(self) -> float:
        return max(self.latencies, default=0.0)

    def summary(self) -> str:
        """Probes, median and slowest latency, in words for a test's output."""
        if not self.latencies:
            return "no /healthz answer"
        ordered = sorted(self.latencies)
        median = ordered[len(ordered) // 2]
        return (
            f"/healthz answered {len(ordered)} probes: median {median * 1000:.1f} ms, "
            f"slowest {ordered[-1] * 1000:.1f} ms; {len(self.failures)} failed"
        )

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            started = time.perf_counter()
            try:
                status = self._client.get("/healthz").status_code
            except httpx.HTTPError as exc:
                self.failures.append(repr(exc))
                continue
            self.latencies.append(time.perf_counter() - started)
            if status != 200:
                self.failures.append(str(status))

    def __enter__(self) -> HealthProbe:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()
        self._client.close()
