"""``python -m tests.bench [--quick] [--live] [--repeat N] [--only NAME ...]``: run the benchmark.

What is measured (median wall-clock seconds of up to ``--repeat`` runs, never asserted; a
client stops repeating on a set once its runs took ``--budget`` seconds, and a run is cut at
``--timeout``), all for CPython 3.11 on ``x86_64-manylinux_2_34`` (see ``tools.PLATFORM``):

- resolvd **cold**: a fresh ``resolvd serve`` on a flushed Redis db (db 12 of the server
  ``RESOLVD_TEST_REDIS_URL`` names, by default 127.0.0.1:6379), timed from ``POST /resolve``
  to the terminal job document; **warm**: a new request on the same server with the metadata
  cache populated; **lock**: that request with the cold job's pins as its ``lock`` (a
  re-resolution whose lock still fits); **repeat**: that request again, answered by the result
  store. Also its ``result.stats`` and peak RSS (``VmHWM``).
- ``uv pip compile`` cold (``--no-cache``), warm (populated ``--cache-dir``) and ``--offline``
  on that cache (nothing revalidated: what a warm resolver costs without the network).
- CPU seconds per resolution beside wall time: resolvd's serve process during the job, and the
  uv process.
- ``pip install --dry-run --report --ignore-installed`` (resolves dependencies, installs nothing).
- index requests each client made (the loopback index servers' logs), and whether resolvd's
  and pip's resolutions equal uv's (a ``DIFF`` line when not).
- a load run on ``GET /jobs/{id}`` (``load``).

uv and resolvd alternate round by round (``runner.measure_set``): the machine's speed drifts,
and a ratio is only as good as the closeness in time of the runs it compares.

``--quick`` runs the sets marked quick with 3 runs each (under two minutes); ``--list`` names
every set. The ``*-shaped`` sets read pages shaped like pypi.org's (``tests.bench.shaped``).

``--live`` runs ``LIVE_SETS`` against the real default index instead (never part of ``make
test``): each round a ``uv pip compile --no-cache`` and then a fresh resolvd's cold and warm
jobs, so both meet the network at the same moment. It needs the machine's network, and
resolvd trusting its CA (``SSL_CERT_FILE``) on a TLS-inspecting one.

Redis must answer there; without it (or without the ``resolvd`` command) only uv and pip are
measured, and the output says so.

All indexes are served on 127.0.0.1 by this process: the wheels under ``/opt/pypi*``
(``realindex``) and generated ones (``synthetic`` via ``tests.indexserver``). Results go to
stdout, ``.bench/bench.md`` and ``.bench/bench.json``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from tests.bench.load import LoadPlan, LoadReport, run_load
from tests.bench.realindex import RealIndexServer
from tests.bench.report import find_revision, format_markdown, make_json
from tests.bench.resolvd import (
    REDIS_URL,
    ResolvdProcess,
    ResolvdUnavailableError,
    find_resolvd_command,
    flush_redis,
)
from tests.bench.runner import (
    LIVE_INDEX_URL,
    RequestLog,
    ResolvdCycles,
    SetResult,
    Workspace,
    measure_live,
    measure_set,
)
from tests.bench.sets import BenchSet, find_sets
from tests.bench.synthetic import check_resolution, make_scaling_set
from tests.indexserver import IndexServer
from tests.support.redis import find_redis_problem

BENCH_DIR = Path(".bench")


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench",
        description="Time resolvd against uv and pip on loopback indexes.",
    )
    parser.add_argument("--quick", action="store_true", help="a few sets, 3 runs each")
    parser.add_argument("--repeat", type=int, default=None, help="runs per figure (default 5)")
    parser.add_argument(
        "--only", action="append", default=[], metavar="NAME", help="run only this set (repeatable)"
    )
    parser.add_argument(
        "--timeout", type=float, default=45.0, help="seconds one client run may take (default 45)"
    )
    parser.add_argument(
        "--budget",
        type=float,
        default=15.0,
        help="stop repeating a client on a set once its runs took this many seconds (default 15)",
    )
    parser.add_argument("--no-load", action="store_true", help="skip the load run")
    parser.add_argument(
        "--live", action="store_true", help="the live sets against the real default index"
    )
    parser.add_argument("--list", action="store_true", help="list the sets and exit")
    return parser.parse_args(argv)


def _log(message: str, started: float = time.perf_counter()) -> None:
    print(f"[{time.perf_counter() - started:7.1f}s] {message}", file=sys.stderr, flush=True)


def _resolvd_unavailable_reason() -> str | None:
    if find_resolvd_command() is None:
        return "resolvd is not installed in the venv (run `make setup`)"
    problem = find_redis_problem(REDIS_URL)
    return problem and f"{problem}; `make redis` starts one"


@dataclass
class _Session:
    """What one benchmark run shares across sets: servers, limits and the notes it gathers."""

    workspace: Workspace
    synthetic: IndexServer
    real_server: RealIndexServer | None
    notes: list[str] = field(default_factory=list)
    resolvd_reason: str | None = None

    @property
    def allowed(self) -> list[str]:
        servers = [self.synthetic.base_url]
        if self.real_server is not None:
            servers.append(self.real_server.base_url)
        return [f"{base}/" for base in servers]

    def run_set(self, bench_set: BenchSet) -> SetResult | None:
        """uv, pip and (when it can run) resolvd on one set, uv and resolvd alternating."""
        measured = _measure(
            bench_set, self.real_server, self.synthetic, self.workspace, self._resolvd_cycles
        )
        if measured is None:
            return None
        result, cycles = measured
        if cycles is not None and cycles.unavailable is not None:
            self.resolvd_reason = cycles.unavailable
            self.notes.append(f"resolvd skipped from {bench_set.name} on: {cycles.unavailable}")
            _log(f"resolvd unavailable: {cycles.unavailable}")
        return result

    def _resolvd_cycles(self, result: SetResult, index: RequestLog) -> ResolvdCycles | None:
        """resolvd's cycles for ``result``'s rounds (fresh process, flushed Redis), if it runs."""
        if self.resolvd_reason is not None:
            return None
        return ResolvdCycles(result, index, self.workspace, self.allowed)

    def run_load(self, plan: LoadPlan) -> LoadReport | None:
        if self.resolvd_reason is not None:
            return None
        _log(f"load run ({plan.seconds:g}s per phase)")
        small = make_scaling_set(10)
        index_url = self.synthetic.add_index(small.spec)
        flush_redis()
        log_path = self.workspace.path("logs", "resolvd-load.log")
        try:
            with ResolvdProcess(self.allowed, log_path=log_path) as server:
                return run_load(server.base_url, server.port, small.requirements, index_url, plan)
        except ResolvdUnavailableError as exc:
            self.notes.append(f"load run skipped: {exc}")
            return None


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    if args.list:
        for bench_set in find_sets(quick=False, live=args.live):
            quick = " (quick)" if bench_set.quick else ""
            print(f"{bench_set.name:16} {bench_set.description}{quick}")
        return 0
    try:
        sets = find_sets(quick=args.quick, only=tuple(args.only), live=args.live)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    repeat = args.repeat or (3 if args.quick else 5)
    workspace = Workspace(
        BENCH_DIR.resolve(), repeat=repeat, timeout=args.timeout, budget=args.budget
    )
    notes: list[str] = []
    shutil.rmtree(BENCH_DIR / "logs", ignore_errors=True)  # server logs of this run only
    if args.live:
        return _main_live(sets, workspace, repeat)
    real_server: RealIndexServer | None = None
    if any(s.source == "real" for s in sets):
        try:
            real_server = RealIndexServer(BENCH_DIR)
        except FileNotFoundError as exc:
            notes.append(f"real-wheel sets skipped: {exc}")
    results: list[SetResult] = []
    load: LoadReport | None = None
    with IndexServer() as synthetic:
        session = _Session(workspace, synthetic, real_server, notes)
        session.resolvd_reason = _resolvd_unavailable_reason()
        if session.resolvd_reason:
            notes.append(f"resolvd skipped: {session.resolvd_reason}")
            _log(f"resolvd skipped: {session.resolvd_reason}")
        try:
            results = [r for s in sets if (r := session.run_set(s)) is not None]
            if not args.no_load:
                load = session.run_load(LoadPlan(seconds=5.0) if args.quick else LoadPlan())
        finally:
            if real_server is not None:
                real_server.close()

    notes += universal_ratios(results)
    revision = find_revision()
    text = format_markdown(results, load, repeat=repeat, notes=notes, revision=revision)
    BENCH_DIR.mkdir(exist_ok=True)
    (BENCH_DIR / "bench.md").write_text(text)
    data = make_json(results, load, repeat=repeat, notes=notes, revision=revision)
    (BENCH_DIR / "bench.json").write_text(json.dumps(data, indent=2) + "\n")
    print(text)
    _log(f"wrote {BENCH_DIR / 'bench.md'} and {BENCH_DIR / 'bench.json'}")
    return 0


def _main_live(sets: Sequence[BenchSet], workspace: Workspace, repeat: int) -> int:
    reason = _resolvd_unavailable_reason()
    notes = [f"live: against {LIVE_INDEX_URL}, uv and resolvd alternating"]
    if reason:
        notes.append(f"resolvd skipped: {reason}")
    results = []
    for bench_set in sets:
        result = SetResult(
            bench_set.name, bench_set.description, LIVE_INDEX_URL, bench_set.requirements
        )
        try:
            measure_live(result, workspace, log=_log, resolvd=reason is None)
        except ResolvdUnavailableError as exc:
            result.notes.append(f"resolvd unavailable: {exc}")
        results.append(result)
    revision = find_revision()
    text = format_markdown(results, None, repeat=repeat, notes=notes, revision=revision)
    BENCH_DIR.mkdir(exist_ok=True)
    (BENCH_DIR / "bench-live.md").write_text(text)
    data = make_json(results, None, repeat=repeat, notes=notes, revision=revision)
    (BENCH_DIR / "bench-live.json").write_text(json.dumps(data, indent=2) + "\n")
    print(text)
    _log(f"wrote {BENCH_DIR / 'bench-live.md'} and {BENCH_DIR / 'bench-live.json'}")
    return 0


def universal_ratios(results: Sequence[SetResult]) -> list[str]:
    """What one lock for every platform costs beside the single-target lock of the same set
    (``X-univ`` beside ``X``), warm and cold, for resolvd and for uv."""
    by_name = {r.name: r for r in results}
    lines = []
    for universal in results:
        single = by_name.get(universal.name.removesuffix("-univ"))
        if not universal.universal or single is None:
            continue
        parts = []
        for kind in ("cold", "warm"):
            for tool in ("resolvd", "uv"):
                both = [r.runs[f"{tool}_{kind}"].median for r in (universal, single)]
                if both[0] is not None and both[1]:
                    parts.append(f"{tool} {kind} {both[0] / both[1]:.2f}x")
        if parts:
            lines.append(f"universal/single-target, {universal.name}: {', '.join(parts)}")
    return lines


def _measure(
    bench_set: BenchSet,
    real_server: RealIndexServer | None,
    synthetic: IndexServer,
    workspace: Workspace,
    resolvd: Callable[[SetResult, RequestLog], ResolvdCycles | None],
) -> tuple[SetResult, ResolvdCycles | None] | None:
    """The uv, pip and resolvd runs of one set (``None``: its index is not available here),
    and resolvd's cycles (``None`` when resolvd does not run)."""
    index: RealIndexServer | IndexServer
    if bench_set.source == "real":
        if real_server is None:
            return None
        index = real_server
        result = SetResult(
            bench_set.name,
            bench_set.description,
            real_server.url(bench_set.variant),
            bench_set.requirements,
            universal=bench_set.universal,
        )
    else:
        assert bench_set.make is not None
        generated = bench_set.make()
        index = synthetic
        result = SetResult(
            bench_set.name,
            bench_set.description,
            synthetic.add_index(generated.spec),
            generated.requirements,
            validator=partial(check_resolution, generated),
        )
    cycles = resolvd(result, index)
    measure_set(result, index, workspace, log=_log, resolvd=cycles)
    return result, cycles


if __name__ == "__main__":
    sys.exit(main())
