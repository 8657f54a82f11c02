"""Measure one requirement set with every client: the medians, request counts and agreement.

Order per set, so that no client pays for another's cold disk: an untimed ``uv pip compile``
first (it warms the OS page cache and the PEP 658 sidecars, and its output is the reference
resolution), then ``uv`` cold and warm, ``pip``, and ``repeat`` cycles of resolvd — each cycle a
fresh ``resolvd serve`` on a flushed Redis db timing a cold job, a warm job (a new request: only
``deadline_seconds`` differs, so the result store cannot answer it) and the warm job again (the
result store's answer). A client that times out is not run again on that set.
"""

from __future__ import annotations

import shutil
import statistics
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import httpx

from tests.bench.resolvd import (
    JobOutcome,
    ResolvdProcess,
    flush_redis,
    make_resolve_body,
    submit_and_wait,
)
from tests.bench.tools import ToolRun, run_pip, run_uv

__all__ = [
    "Measurement",
    "RequestLog",
    "SetResult",
    "Workspace",
    "describe_diff",
    "measure_resolvd",
    "measure_set",
    "summarize_requests",
]

TOOLS = ("resolvd_cold", "resolvd_warm", "resolvd_repeat", "uv_cold", "uv_warm", "pip")


class _Logged(Protocol):
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

    def path(self, *parts: str) -> Path:
        target = self.root.joinpath(*parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        return target


@dataclass
class Measurement:
    """Wall seconds of the successful runs, what failed, and index requests per run."""

    seconds: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    requests: list[Counter[str]] = field(default_factory=list)

    @property
    def median(self) -> float | None:
        return statistics.median(self.seconds) if self.seconds else None

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


def summarize_requests(log: Iterable[_Logged]) -> Counter[str]:
    """Count requests by kind: page, metadata (PEP 658), range (206), download, not_modified…"""
    kinds: Counter[str] = Counter()
    for entry in log:
        if entry.status == 304:
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
        parts.append(
            "versions: " + ", ".join(f"{n} {other[n]} (uv {reference[n]})" for n in changed)
        )
    line = f"{label} vs uv: " + "; ".join(parts)
    if validator is not None:
        for who, resolution in ((label, other), ("uv", reference)):
            problems = validator(resolution)
            verdict = "valid" if not problems else "INVALID: " + "; ".join(problems[:3])
            line += f" [{who} {verdict}]"
    return line


def _timed(
    measurement: Measurement,
    index: RequestLog,
    run: Callable[[], ToolRun],
) -> ToolRun:
    index.clear_requests()
    outcome = run()
    counts = summarize_requests(index.requests)
    if outcome.ok:
        measurement.seconds.append(outcome.seconds)
        measurement.requests.append(counts)
    else:
        measurement.failures.append(outcome.error.splitlines()[-1] if outcome.error else "failed")
    return outcome


def _repeat_tool(
    measurement: Measurement, index: RequestLog, times: int, run: Callable[[], ToolRun]
) -> ToolRun | None:
    last = None
    for _ in range(times):
        last = _timed(measurement, index, run)
        if last.timed_out:
            break
    return last


def _record_job(
    measurement: Measurement,
    index: RequestLog,
    client: httpx.Client,
    body: dict[str, object],
    timeout: float,
) -> JobOutcome:
    index.clear_requests()
    outcome = submit_and_wait(client, body, timeout)
    counts = summarize_requests(index.requests)
    if outcome.ok:
        measurement.seconds.append(outcome.seconds)
        measurement.requests.append(counts)
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
) -> None:
    """Fill ``result`` with the uv and pip runs and uv's resolution, the ``reference``."""
    requirements_file = workspace.path("requirements", f"{result.name}.txt")
    requirements_file.write_text("\n".join(result.requirements) + "\n")
    home = workspace.path("home", "x").parent
    reference_file = workspace.path("reference", f"{result.name}.txt")
    repeat, timeout = workspace.repeat, workspace.timeout

    log(f"[{result.name}] reference: uv pip compile (untimed)")
    reference = run_uv(
        requirements_file,
        result.index_url,
        home=home,
        cache_dir=None,
        timeout=timeout,
        output=reference_file,
    )
    if not reference.ok:
        result.error = f"uv could not resolve it: {reference.error.splitlines()[-1:]}"
        return
    result.reference = reference.resolution
    result.packages = len(reference.resolution)

    log(f"[{result.name}] uv cold x{repeat}")
    _repeat_tool(
        result.runs["uv_cold"],
        index,
        repeat,
        lambda: run_uv(
            requirements_file, result.index_url, home=home, cache_dir=None, timeout=timeout
        ),
    )
    cache_dir = workspace.root / "uv-cache" / result.name
    shutil.rmtree(cache_dir, ignore_errors=True)
    run_uv(requirements_file, result.index_url, home=home, cache_dir=cache_dir, timeout=timeout)
    log(f"[{result.name}] uv warm x{repeat}")
    _repeat_tool(
        result.runs["uv_warm"],
        index,
        repeat,
        lambda: run_uv(
            requirements_file, result.index_url, home=home, cache_dir=cache_dir, timeout=timeout
        ),
    )

    log(f"[{result.name}] pip x{repeat}")
    pip_report = workspace.path("pip", f"{result.name}.json")
    pip_run = _repeat_tool(
        result.runs["pip"],
        index,
        repeat,
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


def measure_resolvd(
    result: SetResult,
    index: RequestLog,
    workspace: Workspace,
    allowed_index_urls: Sequence[str],
) -> None:
    """``repeat`` cycles of a fresh ``resolvd serve``: a cold job, a warm job, and it again.

    Raises ``ResolvdUnavailableError`` when the server cannot be started.
    """
    timeout = workspace.timeout
    cold_outcomes: list[JobOutcome] = []
    warm_outcomes: list[JobOutcome] = []
    rss: list[int] = []
    for cycle in range(workspace.repeat):
        flush_redis()
        with (
            ResolvdProcess(
                allowed_index_urls, log_path=workspace.path("logs", "resolvd.log")
            ) as server,
            httpx.Client(base_url=server.base_url, trust_env=False, timeout=timeout + 40) as client,
        ):
            # Distinct whole-second deadlines per cycle and kind: each body is new to the
            # result store (a cold job never finds a previous cycle's result either: flushed).
            base = int(timeout) + 2 * cycle
            cold_body = make_resolve_body(
                result.requirements, result.index_url, deadline_seconds=base
            )
            cold = _record_job(result.runs["resolvd_cold"], index, client, cold_body, timeout)
            cold_outcomes.append(cold)
            result.lost_reads += cold.lost_reads
            diff = (
                cycle == 0
                and cold.ok
                and describe_diff("resolvd", result.reference, cold.resolution, result.validator)
            )
            if diff:
                result.diffs.append(diff)
            if cold.status == "timeout" or cold.failure_kind == "deadline_exceeded":
                if peak := server.peak_rss_kib():
                    rss.append(peak)
                break
            warm_body = make_resolve_body(
                result.requirements, result.index_url, deadline_seconds=base + 1
            )
            warm = _record_job(result.runs["resolvd_warm"], index, client, warm_body, timeout)
            warm_outcomes.append(warm)
            if warm.http_status == 200:
                result.notes.append("a warm job was answered by the result store (deduplicated)")
            again = _record_job(result.runs["resolvd_repeat"], index, client, warm_body, timeout)
            result.lost_reads += warm.lost_reads + again.lost_reads
            if peak := server.peak_rss_kib():
                rss.append(peak)
        time.sleep(0.2)
    result.resolvd_stats = {
        "cold": _median_stats([o for o in cold_outcomes if o.ok]),
        "warm": _median_stats([o for o in warm_outcomes if o.ok]),
    }
    result.peak_rss_kib = max(rss) if rss else None
