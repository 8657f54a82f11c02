"""Load on the job API: ``GET /jobs/{id}`` throughput and latency, closed and open loop.

Three phases against one ``resolvd serve`` whose metadata cache is already warm, reading a pool
of finished jobs of a small synthetic set:

``saturate``  closed loop: ``concurrency`` keep-alive connections polling back to back; the
              best rate the server sustains, and its latency at that rate.
``poll``      open loop at half the saturated rate: each request is *due* at a fixed time and
              its latency counts from then, so a server that falls behind shows it (no
              coordinated omission); a request that cannot start within a second of its slot is
              counted as ``late`` instead of queueing without bound.
``submit``    open loop: new jobs (distinct bodies) at ``submit_rate``, each polled every 50 ms
              until terminal: submission latency, job latency (due time to the poll that saw it
              finished) and the latency of those polls.

The GETs go over a minimal asyncio HTTP/1.1 client: httpx tops out near 500 requests/s on one
core, below what the server answers, so it would measure itself. Submissions use httpx.
Everything is bounded in count and time and talks only to ``127.0.0.1``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx

from tests.bench.resolvd import make_resolve_body

__all__ = ["LoadPlan", "LoadReport", "PhaseReport", "run_load"]

_TERMINAL = frozenset({"succeeded", "failed", "cancelled"})
_LATE_AFTER_SECONDS = 1.0


@dataclass(frozen=True)
class LoadPlan:
    seconds: float = 10.0
    concurrency: int = 16
    submit_rate: float = 10.0
    pool_size: int = 20


@dataclass
class PhaseReport:
    """One phase: GETs answered 200 and their latencies (seconds), errors, late starts."""

    name: str
    rate: float | None = None
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    late: int = 0
    # ``submit`` only: the submission latency and the due-to-terminal job latency.
    submit_latencies: list[float] = field(default_factory=list)
    job_latencies: list[float] = field(default_factory=list)

    @property
    def throughput(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "target_rate_per_s": self.rate,
            "seconds": round(self.seconds, 3),
            "requests": len(self.latencies),
            "throughput_per_s": round(self.throughput, 1),
            "latency_ms": _percentiles(self.latencies),
            "errors": dict(self.errors),
            "late": self.late,
            "submit_latency_ms": _percentiles(self.submit_latencies),
            "job_latency_ms": _percentiles(self.job_latencies),
        }


@dataclass
class LoadReport:
    plan: LoadPlan
    phases: list[PhaseReport] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"plan": asdict(self.plan), "phases": [phase.to_json() for phase in self.phases]}


def _percentiles(values: Sequence[float]) -> dict[str, float] | None:
    if not values:
        return None
    ordered = sorted(values)

    def at(q: float) -> float:
        return round(1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)

    return {"p50": at(0.50), "p90": at(0.90), "p99": at(0.99), "max": at(1.0)}


class _Connection:
    """One keep-alive HTTP/1.1 connection that can ``GET`` and read a Content-Length body."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    @classmethod
    async def open(cls, port: int) -> _Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def get(self, path: str) -> tuple[int, bytes]:
        self._writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        head = await self._reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        length = 0
        for line in header_lines:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        return int(status_line.split()[1]), await self._reader.readexactly(length)

    async def close(self) -> None:
        self._writer.close()
        await self._writer.wait_closed()


class _Pool:
    """``size`` connections; a GET waits for a free one (that wait counts as latency)."""

    def __init__(self, port: int, size: int) -> None:
        self._port = port
        self._size = size
        self._idle: asyncio.Queue[_Connection] = asyncio.Queue()

    async def __aenter__(self) -> _Pool:
        for _ in range(self._size):
            self._idle.put_nowait(await _Connection.open(self._port))
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        while not self._idle.empty():
            await self._idle.get_nowait().close()

    async def get_job(self, job_id: str, report: PhaseReport, due: float) -> dict[str, Any] | None:
        """``GET /jobs/{job_id}``; records latency from ``due`` or the error, returns the body."""
        connection = await self._idle.get()
        try:
            status, body = await connection.get(f"/jobs/{job_id}")
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            report.errors[type(exc).__name__] += 1
            connection = await _Connection.open(self._port)
            return None
        finally:
            self._idle.put_nowait(connection)
        if status != 200:
            report.errors[f"http_{status}"] += 1
            return None
        report.latencies.append(time.perf_counter() - due)
        document: dict[str, Any] = json.loads(body)
        return document


async def _open_loop(
    rate: float,
    seconds: float,
    make_task: Callable[[float], Coroutine[Any, Any, None]],
    report: PhaseReport,
) -> None:
    """Start ``make_task(due)`` at ``rate`` per second for ``seconds``, then wait for them all."""
    started = time.perf_counter()
    tasks: set[asyncio.Task[None]] = set()
    for i in range(int(rate * seconds)):
        due = started + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        if time.perf_counter() - due > _LATE_AFTER_SECONDS:
            report.late += 1
            continue
        task = asyncio.create_task(make_task(due))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.gather(*tasks)
    report.seconds = time.perf_counter() - started


async def _submit(client: httpx.AsyncClient, body: dict[str, Any]) -> str:
    response = await client.post("/resolve", json=body)
    response.raise_for_status()
    job_id: str = response.json()["id"]
    return job_id


async def _wait_done(client: httpx.AsyncClient, job_id: str) -> None:
    while True:
        response = await client.get(f"/jobs/{job_id}", params={"wait": 10})
        if response.status_code == 200 and response.json()["status"] in _TERMINAL:
            return
        if response.status_code != 200:
            await asyncio.sleep(0.05)


async def _saturate(pool: _Pool, jobs: Sequence[str], plan: LoadPlan) -> PhaseReport:
    report = PhaseReport("saturate")
    ids = itertools.cycle(jobs)
    stop_at = time.perf_counter() + plan.seconds / 2

    async def reader() -> None:
        while time.perf_counter() < stop_at:
            await pool.get_job(next(ids), report, time.perf_counter())

    started = time.perf_counter()
    await asyncio.gather(*(reader() for _ in range(plan.concurrency)))
    report.seconds = time.perf_counter() - started
    return report


async def _poll(pool: _Pool, jobs: Sequence[str], plan: LoadPlan, rate: float) -> PhaseReport:
    report = PhaseReport("poll", rate=rate)
    ids = itertools.cycle(jobs)

    async def read_one(due: float) -> None:
        await pool.get_job(next(ids), report, due)

    await _open_loop(rate, plan.seconds, read_one, report)
    return report


async def _submit_and_poll(
    client: httpx.AsyncClient,
    pool: _Pool,
    requirements: Sequence[str],
    index_url: str,
    plan: LoadPlan,
) -> PhaseReport:
    report = PhaseReport("submit", rate=plan.submit_rate)
    deadlines = itertools.count(300)

    async def submit_one(due: float) -> None:
        body = make_resolve_body(requirements, index_url, deadline_seconds=next(deadlines))
        try:
            job_id = await _submit(client, body)
        except httpx.HTTPError as exc:
            report.errors[f"submit_{type(exc).__name__}"] += 1
            return
        submitted = time.perf_counter()
        report.submit_latencies.append(submitted - due)
        while time.perf_counter() - submitted < 60:
            document = await pool.get_job(job_id, report, time.perf_counter())
            if document is not None and document["status"] in _TERMINAL:
                report.job_latencies.append(time.perf_counter() - due)
                return
            await asyncio.sleep(0.05)
        report.errors["job_timeout"] += 1

    await _open_loop(plan.submit_rate, plan.seconds, submit_one, report)
    return report


async def _run(
    base_url: str, port: int, requirements: Sequence[str], index_url: str, plan: LoadPlan
) -> LoadReport:
    report = LoadReport(plan)
    async with httpx.AsyncClient(base_url=base_url, trust_env=False, timeout=30.0) as client:
        # A pool of finished jobs to read; the first one also warms the metadata cache.
        jobs = []
        for n in range(plan.pool_size):
            body = make_resolve_body(requirements, index_url, deadline_seconds=60 + n)
            job_id = await _submit(client, body)
            async with asyncio.timeout(60):
                await _wait_done(client, job_id)
            jobs.append(job_id)
        async with _Pool(port, plan.concurrency) as pool:
            saturate = await _saturate(pool, jobs, plan)
            report.phases.append(saturate)
            rate = max(10.0, round(saturate.throughput / 2, -1))
            report.phases.append(await _poll(pool, jobs, plan, rate))
            report.phases.append(
                await _submit_and_poll(client, pool, requirements, index_url, plan)
            )
    return report


def run_load(
    base_url: str, port: int, requirements: Sequence[str], index_url: str, plan: LoadPlan
) -> LoadReport:
    """Run the three phases against the resolvd at ``base_url`` (listening on ``port``)."""
    return asyncio.run(_run(base_url, port, requirements, index_url, plan))
