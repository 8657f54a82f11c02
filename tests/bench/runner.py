"""Measure one requirement set with every client: the medians, request counts and agreement.

Order per set: an untimed ``uv pip compile`` first, so that no client pays for another's cold
disk (it warms the OS page cache and the PEP 658 sidecars, and its output is the reference
resolution), and another that fills uv's cache; then ``repeat`` rounds, each of ``uv`` cold,
warm and ``--offline`` (the warm cache, nothing revalidated) and one resolvd cycle — a fresh
``resolvd serve`` on a flushed Redis db timing a cold job, a warm job (a new request: only
``deadline_seconds`` differs, so the result store cannot answer it), the warm job again (the
result store's answer) and the warm job against the cold job's pins; then ``pip``. A client
that times out is not run again on that set.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import statistics
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx

from tests.bench.realindex import Hit
from tests.bench.resolvd import (
    JobOutcome,
    ResolvdProcess,
    ResolvdUnavailableError,
    flush_redis,
    make_resolve_body,
    submit_and_wait,
)
from tests.bench.tools import ToolRun, run_pip, run_uv

__all__ = [
    "Measurement",
    "RequestLog",
    "ResolvdCycles",
    "SetResult",
    "Workspace",
    "describe_diff",
    "measure_live",
    "measure_set",
    "summarize_requests",
]

_DIFF_SHOWN = 6
TOOLS = (
    "resolvd_cold",
    "resolvd_warm",
    "resolvd_lock",
    "resolvd_repeat",
    "uv_cold",
    "uv_warm",
    "uv_offline",
    "pip",
)
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class _Logged(Protocol):
    @property
    def method(self) -> str: ...
    @property
    def path(self) -> str: ...
    @property
    def status(self) -> int: ...


class RequestLog(Protocol):
    """What the benchmark needs of an index server: its request log."""

    @property
    def requests(self) -> Sequence[_Logged]: ...

    def clear_requests(self) -> None: ...


@dataclass(frozen=True)
class Workspace:
    """Where a run keeps its files (all under ``.bench/``) and its per-run limits."""

    root: Path
    repeat: int
    timeout: float
    budget: float

    def path(self, *parts: str) -> Path:
        target = self.root.joinpath(*parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        return target


@dataclass
class Measurement:
    """Wall and CPU seconds of the successful runs, what failed, and index requests per run."""

    seconds: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    requests: list[Counter[str]] = field(default_factory=list)
    # Body bytes the index sent per run (only the /opt server counts them).
    bytes_sent: list[int] = field(default_factory=list)

    def add(self, seconds: float, log: Sequence[_Logged], cpu: float | None = None) -> None:
        """Record one successful run that made the requests in ``log`` (and took ``cpu``)."""
        self.seconds.append(seconds)
        if cpu is not None:
            self.cpu.append(cpu)
        self.requests.append(summarize_requests(log))
        if log and all(isinstance(entry, Hit) for entry in log):
            self.bytes_sent.append(sum(entry.sent for entry in log if isinstance(entry, Hit)))

    @property
    def median_bytes(self) -> int | None:
        return round(statistics.median(self.bytes_sent)) if self.bytes_sent else None

    @property
    def median(self) -> float | None:
        return statistics.median(self.seconds) if self.seconds else None

    @property
    def median_cpu(self) -> float | None:
        return statistics.median(self.cpu) if self.cpu else None

    @property
    def median_requests(self) -> dict[str, int]:
        """Per kind (page, metadata, range, download, …), the median over runs."""
        kinds = {kind for counts in self.requests for kind in counts}
        return {
            kind: round(statistics.median(counts[kind] for counts in self.requests))
            for kind in sorted(kinds)
        }

    @property
    def median_total_requests(self) -> int | None:
        if not self.requests:
            return None
        return round(statistics.median(sum(c.values()) for c in self.requests))


@dataclass
class SetResult:
    name: str
    description: str
    index_url: str
    requirements: tuple[str, ...]
    packages: int | None = None
    # uv's resolution (normalized name -> version): what the others are compared with.
    reference: dict[str, str] = field(default_factory=dict)
    error: str = ""
    runs: dict[str, Measurement] = field(default_factory=lambda: {t: Measurement() for t in TOOLS})
    # resolvd's own ``result.stats`` per job kind (cold, warm), medians of each field.
    resolvd_stats: dict[str, dict[str, float]] = field(default_factory=dict)
    peak_rss_kib: int | None = None
    lost_reads: int = 0
    diffs: list[str] = field(default_factory=list)
    # For generated sets: why a resolution is not a solution (empty: it is one).
    validator: Callable[[Mapping[str, str]], list[str]] | None = None
    notes: list[str] = field(default_factory=list)
    # One lock for every platform (``uv pip compile --universal``, resolvd's ``universal``).
    universal: bool = False


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its live children (uvicorn may fork)."""
    total = 0
    pids = [pid]
    with contextlib.suppress(OSError):
        pids += [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    for each in pids:
        try:
            fields = Path(f"/proc/{each}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / _CLOCK_TICKS


def summarize_requests(log: Iterable[_Logged]) -> Counter[str]:
    """Count requests by kind: page, metadata (PEP 658), range (206), download, head, 304…"""
    kinds: Counter[str] = Counter()
    for entry in log:
        if entry.method == "HEAD":
            kinds["head"] += 1
        elif entry.status == 304:
            kinds["not_modified"] += 1
        elif entry.status >= 400:
            kinds[f"http_{entry.status}"] += 1
        elif entry.path.endswith(".metadata"):
            kinds["metadata"] += 1
        elif "/files/" in entry.path:
            kinds["range" if entry.status == 206 else "download"] += 1
        else:
            kinds["page"] += 1
    return kinds


def describe_diff(
    label: str,
    reference: Mapping[str, str],
    other: Mapping[str, str],
    validator: Callable[[Mapping[str, str]], list[str]] | None = None,
) -> str:
    """``""`` when both resolutions pin the same versions, else one line saying how they differ.

    With a ``validator`` (generated sets) the line also says whether each is a valid solution.
    """
    only_ref = sorted(set(reference) - set(other))
    only_other = sorted(set(other) - set(reference))
    changed = sorted(n for n in set(reference) & set(other) if reference[n] != other[n])
    if not (only_ref or only_other or changed):
        return ""
    parts = []
    if only_other:
        parts.append("only " + label + ": " + ", ".join(f"{n}=={other[n]}" for n in only_other))
    if only_ref:
        parts.append("only uv: " + ", ".join(f"{n}=={reference[n]}" for n in only_ref))
    if changed:
        shown = ", ".join(f"{n} {other[n]} (uv {reference[n]})" for n in changed[:_DIFF_SHOWN])
        more = f" and {len(changed) - _DIFF_SHOWN} more" if len(changed) > _DIFF_SHOWN else ""
        parts.append(f"{len(changed)} versions differ: {shown}{more}")
    line = f"{label} vs uv: " + "; ".join(parts)
    if validator is not None:
        for who, resolution in ((label, other), ("uv", reference)):
            problems = validator(resolution)
            verdict = "valid" if not problems else "INVALID: " + "; ".join(problems[:3])
            line += f" [{who} {verdict}]"
    return line


def _timed(measurement: Measurement, index: RequestLog, run: Callable[[], ToolRun]) -> ToolRun:
    index.clear_requests()
    outcome = run()
    if outcome.ok:
        measurement.add(outcome.seconds, index.requests, outcome.cpu_seconds)
    else:
        measurement.failures.append(outcome.error.splitlines()[-1] if outcome.error else "failed")
    return outcome


def _repeat_tool(
    measurement: Measurement, index: RequestLog, workspace: Workspace, run: Callable[[], ToolRun]
) -> ToolRun | None:
    """Up to ``repeat`` runs, fewer once they have taken ``budget`` seconds or one timed out."""
    last = None
    turns = _Turns(workspace.budget)
    for _ in range(workspace.repeat):
        last = _timed(measurement, index, run)
        turns.took(last)
        if not turns.going:
            break
    return last


def _record_job(
    measurement: Measurement,
    index: RequestLog,
    client: httpx.Client,
    body: dict[str, object],
    timeout: float,
    *,
    pid: int,
) -> JobOutcome:
    index.clear_requests()
    cpu = process_cpu_seconds(pid)
    outcome = submit_and_wait(client, body, timeout)
    if outcome.ok:
        measurement.add(outcome.seconds, index.requests, process_cpu_seconds(pid) - cpu)
    else:
        detail = outcome.failure_kind or outcome.status
        message = outcome.failure_message.strip().splitlines()
        measurement.failures.append(f"{detail}: {message[-1] if message else ''}".strip(": "))
    return outcome


def _median_stats(outcomes: Sequence[JobOutcome]) -> dict[str, float]:
    keys = {k for o in outcomes for k, v in o.stats.items() if isinstance(v, int | float)}
    return {
        key: statistics.median(float(o.stats[key]) for o in outcomes if key in o.stats)
        for key in sorted(keys)
    }


def measure_set(
    result: SetResult,
    index: RequestLog,
    workspace: Workspace,
    *,
    log: Callable[[str], None],
    resolvd: ResolvdCycles | None = None,
) -> None:
    """Fill ``result`` with uv's resolution (the ``reference``), then rounds of uv cold, warm
    and ``--offline`` with a ``resolvd`` cycle after them, then the pip runs.

    The clients alternate round by round, so each ratio compares runs made within seconds of
    each other: this shared machine's speed drifts (by up to 2x within an hour), and a client
    timed minutes after another may meet another machine. A client stops once its runs have
    taken ``budget`` seconds or one timed out; the rounds end when every client has stopped.
    """
    requirements_file = workspace.path("requirements", f"{result.name}.txt")
    requirements_file.write_text("\n".join(result.requirements) + "\n")
    home = workspace.path("home", "x").parent
    reference_file = workspace.path("reference", f"{result.name}.txt")
    timeout = workspace.timeout

    # Every uv run of the set: the same requirements, index and target; cache and mode vary.
    uv = functools.partial(
        run_uv,
        requirements_file,
        result.index_url,
        home=home,
        timeout=timeout,
        universal=result.universal,
    )
    log(f"[{result.name}] reference: uv pip compile (untimed)")
    reference = uv(cache_dir=None, output=reference_file)
    if not reference.ok:
        result.error = f"uv could not resolve it: {reference.error.splitlines()[-1:]}"
        return
    result.reference = reference.resolution
    result.packages = len(reference.resolution)

    cache_dir = workspace.root / "uv-cache" / result.name
    shutil.rmtree(cache_dir, ignore_errors=True)
    uv(cache_dir=cache_dir)  # fills the cache the warm and offline runs read
    uv_runs: dict[str, Callable[[], ToolRun]] = {
        "uv_cold": lambda: uv(cache_dir=None),
        "uv_warm": lambda: uv(cache_dir=cache_dir),
        "uv_offline": lambda: uv(cache_dir=cache_dir, offline=True),
    }
    turns = {key: _Turns(workspace.budget) for key in uv_runs}
    for cycle in range(workspace.repeat):
        clients = "uv cold, warm, offline" + (", resolvd" if resolvd and resolvd.going else "")
        log(f"[{result.name}] round {cycle + 1}: {clients}")
        for key, run in uv_runs.items():
            if turns[key].going:
                turns[key].took(_timed(result.runs[key], index, run))
        if resolvd is not None and resolvd.going:
            resolvd.run(cycle)
        if not any(t.going for t in turns.values()) and not (resolvd and resolvd.going):
            break
    if resolvd is not None:
        resolvd.close()

    if result.universal:
        return  # pip has no universal mode
    log(f"[{result.name}] pip x{workspace.repeat}")
    pip_report = workspace.path("pip", f"{result.name}.json")
    pip_run = _repeat_tool(
        result.runs["pip"],
        index,
        workspace,
        lambda: run_pip(
            requirements_file, result.index_url, home=home, report=pip_report, timeout=timeout
        ),
    )
    pip_diff = (
        pip_run
        and pip_run.ok
        and describe_diff("pip", result.reference, pip_run.resolution, result.validator)
    )
    if pip_diff:
        result.diffs.append(pip_diff)


@dataclass
class _Turns:
    """One client's share of the rounds: it stops after a timeout or ``budget`` seconds."""

    budget: float
    spent: float = 0.0
    going: bool = True

    def took(self, run: ToolRun) -> None:
        self.spent += run.seconds
        if run.timed_out or self.spent >= self.budget:
            self.going = False


class ResolvdCycles:
    """resolvd's share of a set's rounds: each ``run`` is a fresh ``resolvd serve`` timing a
    cold job, a warm job, the warm one again, and the warm one with the cold job's pins as its
    ``lock``.

    It stops once its jobs have taken ``budget`` seconds or a cold job ran out of time (any
    other failure is recorded and the next cycle runs). A finished cycle's server drains
    (SIGTERM) while the next one starts, and has exited before the next cold job is timed.
    When the server cannot be started, ``unavailable`` says why and no cycle runs again.
    """

    def __init__(
        self,
        result: SetResult,
        index: RequestLog,
        workspace: Workspace,
        allowed_index_urls: Sequence[str],
    ) -> None:
        self._result = result
        self._index = index
        self._workspace = workspace
        self._allowed = list(allowed_index_urls)
        self._cold: list[JobOutcome] = []
        self._warm: list[JobOutcome] = []
        self._rss: list[int] = []
        self._spent = 0.0
        self._previous: ResolvdProcess | None = None
        self.unavailable: str | None = None
        self.going = True

    def run(self, cycle: int) -> None:
        result, index, timeout = self._result, self._index, self._workspace.timeout
        flush_redis()
        try:
            server = ResolvdProcess(
                self._allowed, log_path=self._workspace.path("logs", "resolvd.log")
            )
        except ResolvdUnavailableError as exc:
            self.unavailable, self.going = str(exc), False
            return
        if self._previous is not None:
            self._previous.close()
        self._previous = server
        with httpx.Client(
            base_url=server.base_url, trust_env=False, timeout=timeout + 60
        ) as client:
            # Whole-second deadlines distinct per cycle and kind: every body is new to the
            # result store. The client waits past the deadline to see the server end it.
            base = int(timeout) + 2 * cycle
            cold_body = make_resolve_body(
                result.requirements,
                result.index_url,
                deadline_seconds=base,
                universal=result.universal,
            )
            cold = _record_job(
                result.runs["resolvd_cold"], index, client, cold_body, base + 15, pid=server.pid
            )
            self._cold.append(cold)
            self._spent += cold.seconds
            if not self._cold[:-1] and cold.ok:
                diff = describe_diff("resolvd", result.reference, cold.resolution, result.validator)
                result.diffs += [diff] if diff else []
            if cold.ok:
                warm, seconds, lost_reads = _measure_warm(
                    result, index, client, cold, server=server, base=base
                )
                self._warm.append(warm)
                self._spent += seconds
                result.lost_reads += lost_reads
            result.lost_reads += cold.lost_reads
        if peak := server.peak_rss_kib():
            self._rss.append(peak)
        server.terminate()
        out_of_time = cold.status == "timeout" or cold.failure_kind == "deadline_exceeded"
        if out_of_time or self._spent >= self._workspace.budget:
            self.going = False

    def close(self) -> None:
        """Stop the last server and record the medians of the jobs' stats and the peak RSS."""
        if self._previous is not None:
            self._previous.close()
            self._previous = None
        self._result.resolvd_stats = {
            "cold": _median_stats([o for o in self._cold if o.ok]),
            "warm": _median_stats([o for o in self._warm if o.ok]),
        }
        self._result.peak_rss_kib = max(self._rss) if self._rss else None


def _measure_warm(
    result: SetResult,
    index: RequestLog,
    client: httpx.Client,
    cold: JobOutcome,
    *,
    server: ResolvdProcess,
    base: int,
) -> tuple[JobOutcome, float, int]:
    """After a cold job: a warm one, the same again (the result store answers), and (single
    target) the warm one against the cold job's pins as its ``lock``, a lock that still fits,
    which should cost no more than the warm job and move nothing. The warm outcome, and the
    seconds and lost reads of all three."""
    body = make_resolve_body(
        result.requirements, result.index_url, deadline_seconds=base + 1, universal=result.universal
    )

    def record(kind: str, job_body: dict[str, Any]) -> JobOutcome:
        return _record_job(result.runs[kind], index, client, job_body, base + 16, pid=server.pid)

    warm = record("resolvd_warm", body)
    if warm.http_status == 200:
        result.notes.append("a warm job was answered by the result store")
    every = [warm, record("resolvd_repeat", body)]
    if not result.universal:  # a universal lock is no name==version list
        pinned = "".join(f"{name}=={v}\n" for name, v in cold.resolution.items())
        relock = record(
            "resolvd_lock", {**body, "lock": {"format": "requirements", "content": pinned}}
        )
        if relock.ok and relock.resolution != cold.resolution:
            result.notes.append("the re-resolution against the lock moved pins")
        every.append(relock)
    return warm, sum(o.seconds for o in every), sum(o.lost_reads for o in every)


class _NoLog:
    """The real index keeps no log for us: no request counts in ``--live``."""

    @property
    def requests(self) -> list[Hit]:
        return []

    def clear_requests(self) -> None:
        """Nothing to clear."""


LIVE_INDEX_URL = "https://pypi.org/simple"


def measure_live(
    result: SetResult, workspace: Workspace, *, log: Callable[[str], None], resolvd: bool
) -> None:
    """The set against the real default index: ``repeat`` rounds, each a ``uv pip compile
    --no-cache`` then a fresh ``resolvd serve`` (flushed Redis) timing a cold and a warm job,
    so both meet the network at the same moment; then uv warm and ``--offline`` once filled.

    resolvd reads the real index through its configured default (``pypi``); the machine's TLS
    trust must be set for it by hand until resolvd reads ``SSL_CERT_FILE`` itself.
    """
    requirements_file = workspace.path("requirements", f"{result.name}.txt")
    requirements_file.write_text("\n".join(result.requirements) + "\n")
    home = workspace.path("home", "x").parent
    nothing = _NoLog()
    reference_file = workspace.path("reference", f"{result.name}.txt")
    timeout = workspace.timeout
    for cycle in range(workspace.repeat):
        log(f"[{result.name}] round {cycle + 1}: uv --no-cache, then resolvd cold and warm")
        uv = _timed(
            result.runs["uv_cold"],
            nothing,
            lambda: run_uv(
                requirements_file,
                LIVE_INDEX_URL,
                home=home,
                cache_dir=None,
                timeout=timeout,
                output=reference_file,
                live=True,
            ),
        )
        if cycle == 0:
            if not uv.ok:
                result.error = f"uv could not resolve it: {uv.error.splitlines()[-1:]}"
                return
            result.reference, result.packages = uv.resolution, len(uv.resolution)
        if resolvd:
            _live_resolvd_cycle(result, workspace, cycle)
    cache_dir = workspace.root / "uv-cache" / result.name
    shutil.rmtree(cache_dir, ignore_errors=True)
    run_uv(
        requirements_file,
        LIVE_INDEX_URL,
        home=home,
        cache_dir=cache_dir,
        timeout=timeout,
        live=True,
    )
    for key, offline in (("uv_warm", False), ("uv_offline", True)):
        run = functools.partial(
            run_uv,
            requirements_file,
            LIVE_INDEX_URL,
            home=home,
            cache_dir=cache_dir,
            timeout=timeout,
            offline=offline,
            live=True,
        )
        _repeat_tool(result.runs[key], nothing, workspace, run)


def _live_resolvd_cycle(result: SetResult, workspace: Workspace, cycle: int) -> None:
    nothing = _NoLog()
    timeout = workspace.timeout
    flush_redis()
    with (
        ResolvdProcess(
            [], log_path=workspace.path("logs", "resolvd-live.log"), live=True
        ) as server,
        httpx.Client(base_url=server.base_url, trust_env=False, timeout=timeout + 60) as client,
    ):
        base = int(timeout) + 2 * cycle
        for key, deadline in (("resolvd_cold", base), ("resolvd_warm", base + 1)):
            body = make_resolve_body(result.requirements, LIVE_INDEX_URL, deadline_seconds=deadline)
            body["indexes"] = [{"name": "pypi"}]
            outcome = _record_job(
                result.runs[key], nothing, client, body, deadline + 15, pid=server.pid
            )
            if key == "resolvd_cold" and cycle == 0 and outcome.ok:
                diff = describe_diff("resolvd", result.reference, outcome.resolution)
                result.diffs += [diff] if diff else []
            if not outcome.ok:
                break
        if peak := server.peak_rss_kib():
            result.peak_rss_kib = max(result.peak_rss_kib or 0, peak)
