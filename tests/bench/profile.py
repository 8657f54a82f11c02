"""``python -m tests.bench.profile [--set NAME] [--variant shaped] [--top N]``: where CPU goes.

Runs resolvd's resolver in this process (the real ``IndexClient`` with an in-memory cache, the
real ``resolve_request``) against the loopback ``/opt`` index, served by a child process so that
its CPU is not counted: one cold job (empty cache), then
``--warm`` warm jobs (the same request on the filled cache). For each it prints the wall time,
the process CPU seconds, the resolver thread's own CPU seconds, and a cProfile of the resolver
thread (the event loop's share is the process CPU minus the thread's). ``--profile-loop`` adds a
cProfile of the event loop thread. Figures are for one run on a shared machine: compare them
with runs of the same command, never with timed assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import functools
import io
import multiprocessing
import multiprocessing.connection
import pstats
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tests.bench.realindex import RealIndexServer
from tests.bench.sets import find_sets
from tests.bench.tools import PLATFORM, PYTHON_VERSION

__all__ = ["main"]


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.profile")
    parser.add_argument("--set", default="stack244-shaped", help="a real set of tests.bench.sets")
    parser.add_argument("--cold", type=int, default=1, help="cold jobs (each on a new cache)")
    parser.add_argument("--warm", type=int, default=2, help="warm jobs after the last cold one")
    parser.add_argument("--top", type=int, default=25, help="functions shown per profile")
    parser.add_argument("--sort", default="cumulative", help="pstats sort key (or tottime)")
    parser.add_argument("--profile-loop", action="store_true", help="also profile the loop")
    parser.add_argument("--no-profile", action="store_true", help="time only (no cProfile)")
    return parser.parse_args(argv)


class _ThreadProfile:
    """cProfile and CPU time of whatever runs ``resolution.run._resolve_target`` (one thread)."""

    def __init__(self, *, enabled: bool) -> None:
        self.enabled = enabled
        self.profile = cProfile.Profile()
        self.cpu = 0.0

    def wrap(self, function: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(function)
        def profiled(*args: Any, **kwargs: Any) -> Any:
            started = time.thread_time()
            if self.enabled:
                self.profile.enable()
            try:
                return function(*args, **kwargs)
            finally:
                if self.enabled:
                    self.profile.disable()
                self.cpu += time.thread_time() - started

        return profiled


def _serve(conn: multiprocessing.connection.Connection) -> None:
    """The child process: the /opt index on a free port until the parent says stop."""
    with RealIndexServer(Path(".bench")) as server:
        conn.send(server.base_url)
        conn.recv()


def _report(profile: cProfile.Profile, sort: str, top: int) -> str:
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out)
    stats.strip_dirs().sort_stats(sort).print_stats(top)
    return out.getvalue()


async def _one_job(
    args: argparse.Namespace,
    client: Any,
    index: Any,
    requirements: tuple[str, ...],
    *,
    label: str,
    run: int,
) -> None:
    """One job, timed and (unless --no-profile) profiled; prints its figures."""
    from service.resolution import run as run_module  # noqa: PLC0415
    from service.resolution.request import ResolveRequest, Target  # noqa: PLC0415
    from service.resolution.result import Progress, ResolutionFailed  # noqa: PLC0415

    original = run_module._resolve_target
    thread = _ThreadProfile(enabled=not args.no_profile)
    run_module._resolve_target = thread.wrap(original)
    request = ResolveRequest(
        requirements=requirements,
        environment=Target(python_version=PYTHON_VERSION, platform=PLATFORM),
        deadline_seconds=300 + run,
    )
    loop_profile = cProfile.Profile()
    if args.profile_loop:
        loop_profile.enable()
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        resolution = await run_module.resolve_request(
            request, indexes=[index], client=client, progress=Progress(), stop=threading.Event()
        )
        outcome = f"{len(resolution.packages)} packages"
    except ResolutionFailed as failed:
        outcome = f"FAILED {failed.failure.kind}: {failed.failure.message[:200]}"
    finally:
        run_module._resolve_target = original
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    if args.profile_loop:
        loop_profile.disable()
    print(
        f"## {args.set} {label}: {outcome}; wall {wall:.3f} s, process CPU "
        f"{cpu:.3f} s, resolver thread CPU {thread.cpu:.3f} s"
    )
    if not args.no_profile:
        print(_report(thread.profile, args.sort, args.top))
    if args.profile_loop:
        print(f"### event loop thread ({label})")
        print(_report(loop_profile, args.sort, args.top))


async def _run(args: argparse.Namespace) -> int:
    from service.index import Index, IndexClient, MemoryPageCache, pages  # noqa: PLC0415
    from service.resolution import selection  # noqa: PLC0415
    from service.settings import FetchLimits  # noqa: PLC0415

    (bench_set,) = find_sets(quick=False, only=(args.set,))
    if bench_set.source != "real":
        print(f"{args.set} is not a real-index set", file=sys.stderr)
        return 2
    parent, child = multiprocessing.Pipe()
    server = multiprocessing.get_context("spawn").Process(target=_serve, args=(child,))
    server.start()
    base_url = parent.recv()
    try:
        index = Index(name="bench", url=f"{base_url}/{bench_set.variant}/simple")
        runs = [f"cold{n + 1}" for n in range(args.cold)] + [
            f"warm{n + 1}" for n in range(args.warm)
        ]
        client = IndexClient(FetchLimits(), cache=MemoryPageCache())
        try:
            for run, label in enumerate(runs):
                if label.startswith("cold") and run > 0:
                    await client.aclose()
                    client = IndexClient(FetchLimits(), cache=MemoryPageCache())
                    # A fresh process would hold none of the shared verdicts or decoded pages.
                    selection._shared.clear()
                    pages._hot.clear()
                await _one_job(args, client, index, bench_set.requirements, label=label, run=run)
        finally:
            await client.aclose()
    finally:
        parent.send("stop")
        server.join(timeout=30)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    return asyncio.run(_run(args))


if __name__ == "__main__":
    sys.exit(main())
