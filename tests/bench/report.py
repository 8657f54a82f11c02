"""The benchmark's output: a timing table, a request table, DIFF lines and the load figures.

``format_markdown`` renders everything as GitHub markdown tables (what is printed and what goes
to ``.bench/bench.md``); ``make_json`` is the same data for ``.bench/bench.json``.
"""

from __future__ import annotations

import os
import platform
import subprocess
from collections.abc import Sequence
from typing import Any

from tests.bench.load import LoadReport
from tests.bench.runner import TOOLS, Measurement, SetResult

__all__ = ["find_revision", "format_markdown", "make_json"]

_TIMING_COLUMNS = (
    ("resolvd cold", "resolvd_cold"),
    ("warm", "resolvd_warm"),
    ("lock", "resolvd_lock"),
    ("repeat", "resolvd_repeat"),
    ("uv cold", "uv_cold"),
    ("uv warm", "uv_warm"),
    ("uv offline", "uv_offline"),
    ("pip", "pip"),
)
_CPU_COLUMNS = (
    ("resolvd cold", "resolvd_cold"),
    ("warm", "resolvd_warm"),
    ("uv cold", "uv_cold"),
    ("uv warm", "uv_warm"),
    ("uv offline", "uv_offline"),
)
_REQUEST_COLUMNS = (
    ("resolvd cold", "resolvd_cold"),
    ("resolvd warm", "resolvd_warm"),
    ("uv cold", "uv_cold"),
    ("uv warm", "uv_warm"),
    ("pip", "pip"),
)
_KIND_ABBREVIATIONS = {
    "page": "pg",
    "metadata": "md",
    "range": "rg",
    "download": "dl",
    "not_modified": "nm",
    "head": "hd",
}


def _seconds(measurement: Measurement, repeat: int) -> str:
    median = measurement.median
    if median is None:
        return "FAIL" if measurement.failures else "-"
    text = f"{median:.3f}" if median < 1 else f"{median:.2f}"
    runs = len(measurement.seconds)
    return text + ("*" if measurement.failures else "") + (f" n={runs}" if runs < repeat else "")


def _ratio(numerator: Measurement, denominator: Measurement, *, cpu: bool = False) -> str:
    top, bottom = (
        (numerator.median_cpu, denominator.median_cpu)
        if cpu
        else (numerator.median, denominator.median)
    )
    if top is None or bottom is None or bottom == 0:
        return "-"
    return f"{top / bottom:.1f}x"


def _cpu(measurement: Measurement) -> str:
    median = measurement.median_cpu
    return "-" if median is None else f"{median:.3f}" if median < 1 else f"{median:.2f}"


def _requests(measurement: Measurement) -> str:
    total = measurement.median_total_requests
    if total is None:
        return "-"
    kinds = measurement.median_requests
    detail = " ".join(
        f"{_KIND_ABBREVIATIONS.get(kind, kind)}{count}" for kind, count in kinds.items() if count
    )
    text = f"{total} ({detail})" if detail else str(total)
    if (sent := measurement.median_bytes) is not None:
        text += f" {sent / 1e6:.1f}MB" if sent >= 1e6 else f" {sent / 1e3:.0f}kB"
    return text


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    return [line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|"] + [
        line(row) for row in rows
    ]


def find_revision() -> str:
    """``git describe --always --dirty`` of the working tree measured, or ``unknown``."""
    try:
        done = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return done.stdout.strip() or "unknown"


def format_markdown(
    results: Sequence[SetResult],
    load: LoadReport | None,
    *,
    repeat: int,
    notes: Sequence[str],
    revision: str,
) -> str:
    """Every table and note as markdown text."""
    out = [
        f"## resolvd benchmark: median wall seconds of up to {repeat} runs",
        "",
        f"Revision {revision}; {os.cpu_count()} CPUs; Python {platform.python_version()}.",
        "",
        "resolvd: POST /resolve to terminal job document; cold = fresh process, flushed Redis;"
        " warm = new request, cache populated; lock = that request with the cold job's pins as"
        " its `lock` (all still fit); repeat = identical request (result store)."
        " uv: `uv pip compile` (cold `--no-cache`, warm populated `--cache-dir`, offline the"
        " same with `--offline`: nothing revalidated)."
        " pip: `pip install --dry-run --report`. `*` = some runs failed; `n=` = median of"
        " fewer runs (time budget or timeout); ratios are resolvd/uv and resolvd/pip (lower is"
        " better for resolvd). RSS = resolvd serve's peak (VmHWM).",
        "",
    ]
    rows = []
    for r in results:
        if r.error:
            rows.append([r.name, "-", r.error[:60], *[""] * (len(_TIMING_COLUMNS) + 4)])
            continue
        rss = f"{r.peak_rss_kib / 1024:.0f}" if r.peak_rss_kib else "-"
        rows.append(
            [
                r.name,
                str(r.packages),
                *(_seconds(r.runs[key], repeat) for _, key in _TIMING_COLUMNS),
                _ratio(r.runs["resolvd_cold"], r.runs["uv_cold"]),
                _ratio(r.runs["resolvd_warm"], r.runs["uv_warm"]),
                _ratio(r.runs["resolvd_warm"], r.runs["uv_offline"]),
                _ratio(r.runs["resolvd_cold"], r.runs["pip"]),
                rss,
            ]
        )
    header = ["set", "pkgs", *(label for label, _ in _TIMING_COLUMNS)]
    header += ["r/uv cold", "r/uv warm", "r/uv off", "r/pip", "RSS MiB"]
    out += _table(header, rows)

    out += [
        "",
        "### CPU seconds per resolution (median; resolvd: the serve process during the job,"
        " uv: the uv process); r/uv = resolvd cold / uv cold, warm / uv offline",
        "",
    ]
    cpu_rows = [
        [
            r.name,
            *(_cpu(r.runs[key]) for _, key in _CPU_COLUMNS),
            _ratio(r.runs["resolvd_cold"], r.runs["uv_cold"], cpu=True),
            _ratio(r.runs["resolvd_warm"], r.runs["uv_offline"], cpu=True),
        ]
        for r in results
        if not r.error
    ]
    out += _table(["set", *(label for label, _ in _CPU_COLUMNS), "r/uv cold", "r/uv off"], cpu_rows)

    out += [
        "",
        "### index requests per run (median): pg page, md PEP 658 metadata, rg range (206),"
        " dl whole-file download, hd HEAD, nm 304 revalidation; kB/MB = body bytes the"
        " /opt index sent",
        "",
    ]
    out += [
        "Real sets are served with PyPI's caching headers (pages max-age=600, files immutable)."
        " Synthetic sets come from tests.indexserver, which sends ETags but no Cache-Control:"
        " there uv's warm cache revalidates every page and sidecar (nm), while resolvd reuses"
        " pages for its own page_ttl_seconds.",
        "",
    ]
    request_rows = [
        [r.name, *(_requests(r.runs[key]) for _, key in _REQUEST_COLUMNS)]
        for r in results
        if not r.error
    ]
    out += _table(["set", *(label for label, _ in _REQUEST_COLUMNS)], request_rows)

    out += ["", "### resolvd result.stats (median)", ""]
    stat_rows = []
    for r in results:
        for kind, stats in r.resolvd_stats.items():
            if stats:
                fields = ", ".join(f"{k}={v:g}" for k, v in stats.items())
                stat_rows.append([r.name, kind, fields])
    out += _table(["set", "job", "stats"], stat_rows) if stat_rows else ["(none)"]

    problems = []
    for r in results:
        problems += [f"DIFF {r.name}: {diff}" for diff in r.diffs]
        for key in TOOLS:
            for failure in dict.fromkeys(r.runs[key].failures):
                problems.append(f"FAIL {r.name} {key}: {failure[:300]}")
        if r.lost_reads:
            problems.append(
                f"LOST {r.name}: GET /jobs/{{id}} answered 404 {r.lost_reads}x for an id"
                " POST /resolve had just returned"
            )
        problems += [f"NOTE {r.name}: {note}" for note in dict.fromkeys(r.notes)]
    problems += [f"NOTE {note}" for note in notes]
    if problems:
        out += ["", "### differences, failures and notes", "", *(f"- {p}" for p in problems)]

    if load is not None:
        out += ["", _format_load(load)]
    return "\n".join(out) + "\n"


def _format_load(load: LoadReport) -> str:
    plan = load.plan
    lines = [
        f"### load: GET /jobs/{{id}} (saturate: {plan.concurrency} closed-loop connections for"
        f" {plan.seconds / 2:g}s; poll: open loop at half that rate for {plan.seconds:g}s;"
        f" submit: {plan.submit_rate:g} new jobs/s for {plan.seconds:g}s, each polled every"
        " 50 ms)",
        "",
    ]
    rows = []
    for phase in load.phases:
        data = phase.to_json()
        latency = data["latency_ms"] or {}
        jobs = data["job_latency_ms"] or {}
        errors = ", ".join(f"{k}={v}" for k, v in data["errors"].items()) or "0"
        rows.append(
            [
                phase.name if phase.rate is None else f"{phase.name} @{phase.rate:g}/s",
                str(data["requests"]),
                f"{data['throughput_per_s']:.0f}",
                str(latency.get("p50", "-")),
                str(latency.get("p99", "-")),
                str(jobs.get("p50", "-")),
                str(jobs.get("p99", "-")),
                errors,
                str(data["late"]),
            ]
        )
    header = ["phase", "GETs", "GET/s", "p50 ms", "p99 ms", "job p50 ms", "job p99 ms"]
    lines += _table([*header, "errors", "late"], rows)
    return "\n".join(lines)


def make_json(
    results: Sequence[SetResult],
    load: LoadReport | None,
    *,
    repeat: int,
    notes: Sequence[str],
    revision: str,
) -> dict[str, Any]:
    """Everything measured, raw samples included."""

    def measurement(m: Measurement) -> dict[str, Any]:
        return {
            "median_seconds": m.median,
            "seconds": m.seconds,
            "median_cpu_seconds": m.median_cpu,
            "cpu_seconds": m.cpu,
            "failures": m.failures,
            "median_requests": m.median_requests,
            "median_bytes_sent": m.median_bytes,
        }

    return {
        "repeat": repeat,
        "revision": revision,
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        },
        "notes": list(notes),
        "sets": [
            {
                "name": r.name,
                "description": r.description,
                "index_url": r.index_url,
                "requirements": list(r.requirements),
                "packages": r.packages,
                "error": r.error,
                "runs": {key: measurement(m) for key, m in r.runs.items()},
                "resolvd_stats": r.resolvd_stats,
                "peak_rss_kib": r.peak_rss_kib,
                "lost_reads": r.lost_reads,
                "diffs": r.diffs,
                "notes": r.notes,
            }
            for r in results
        ],
        "load": load.to_json() if load is not None else None,
    }
