"""Run the packse scenario corpus against a real resolvd process; print and record the score.

    python -m tests.conformance.run [--min-match N] [--only SUBSTR] [--verbose] [--uv]

Every non-disabled scenario is published on one loopback ``IndexServer`` (an index per
scenario). ``resolvd serve`` starts as a subprocess on a free port, on database 14 of the test Redis
(``RESOLVD_TEST_REDIS_URL``'s server, flushed first; a throwaway redis-server when none answers)
and only that server's URLs allowed. Each scenario is submitted to
``POST /resolve`` and polled with ``GET /jobs/{id}?wait=10``, eight at a time.

A scenario matches when the job succeeded exactly when the corpus says it is satisfiable, and
every expected package resolved to an equal version. An expected failure must be a failure of
kind ``unsatisfiable``: the corpus indexes never misbehave, so any other kind is a service bug,
not a correct answer. Universal scenarios are sent as universal requests and matched the same
way, an expected version counting when any entry of that name has it (a universal lock may hold
several); they are scored apart. Exit status 1 when fewer than ``--min-match`` non-universal
scenarios match (default: the number in ``tests/conformance/MIN_MATCH``; with ``--only``, 0), or
fewer universal ones than ``tests/conformance/MIN_MATCH_UNIVERSAL``.

The report (``.bench/conformance.json``) also says, per expected failure, which hint codes the
failure carried and whether its message names every requested package; the run prints the hint
codes per category and the failures whose message does not. ``--uv`` adds what
``uv pip compile`` prints for each expected failure on the same index, for side-by-side reading.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from tests.conformance.scenarios import REPO_ROOT, Scenario, find_corpus, iter_scenarios, select
from tests.indexserver import IndexServer
from tests.support.processes import StartError, make_service_env, start_serve
from tests.support.redis import configured_redis_url, flush_db, serving_redis

__all__ = ["Outcome", "Verdict", "find_outcome", "judge", "main"]

# The database of the test Redis server that the run flushes and uses.
REDIS_DB = 14
MIN_MATCH_FILE = Path(__file__).with_name("MIN_MATCH")
MIN_MATCH_UNIVERSAL_FILE = Path(__file__).with_name("MIN_MATCH_UNIVERSAL")
REPORT_PATH = REPO_ROOT / ".bench" / "conformance.json"
SERVICE_LOG_PATH = REPO_ROOT / ".bench" / "conformance-service.log"
CONCURRENCY = 8
JOB_TIMEOUT_SECONDS = 150.0
HEALTH_TIMEOUT_SECONDS = 30.0
FINISHED = frozenset({"succeeded", "failed", "cancelled"})


@dataclass(frozen=True)
class Outcome:
    """What the service said about one scenario.

    ``status`` is the job's final status, or ``rejected`` (POST /resolve refused it),
    ``timeout`` (still running after the runner's patience) or ``error`` (transport trouble).
    """

    status: str
    # canonical name -> the versions resolved (a universal lock may hold several).
    packages: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    failure_kind: str | None = None
    message: str | None = None
    hint_codes: tuple[str, ...] = ()
    seconds: float = 0.0


@dataclass(frozen=True)
class Verdict:
    scenario: Scenario
    outcome: Outcome
    match: bool
    # Why it is a miss, in words; None for a match.
    reason: str | None = None


def _pins(packages: Mapping[str, str | tuple[str, ...]]) -> str:
    return ", ".join(
        f"{name}=={version}"
        for name, versions in sorted(packages.items())
        for version in ((versions,) if isinstance(versions, str) else versions)
    )


def _summary_line(message: str | None) -> str:
    """The first line of a failure message, with the next one when the first only introduces."""
    lines = [line.strip() for line in (message or "").splitlines() if line.strip()]
    if not lines:
        return ""
    if lines[0].endswith(":") and len(lines) > 1:
        return f"{lines[0]} {lines[1]}"
    return lines[0]


def _same_version(expected: str, got: str) -> bool:
    try:
        return Version(expected) == Version(got)
    except InvalidVersion:
        return expected == got


def _describe(outcome: Outcome) -> str:
    if outcome.status == "succeeded":
        return f"succeeded ({_pins(outcome.packages) or 'no packages'})"
    kind = f" [{outcome.failure_kind}]" if outcome.failure_kind else ""
    summary = _summary_line(outcome.message)
    return f"{outcome.status}{kind}" + (f": {summary}" if summary else "")


def judge(scenario: Scenario, outcome: Outcome) -> Verdict:
    """Compare an outcome with the scenario's expectation (rules in the module docstring)."""
    expected = scenario.expected
    if not expected.satisfiable:
        if outcome.status == "failed" and outcome.failure_kind == "unsatisfiable":
            return Verdict(scenario, outcome, match=True)
        return Verdict(
            scenario, outcome, False, f"expected unsatisfiable, got {_describe(outcome)}"
        )
    wanted = f"satisfiable ({_pins(expected.packages)})" if expected.packages else "satisfiable"
    if outcome.status != "succeeded":
        return Verdict(scenario, outcome, False, f"expected {wanted}, got {_describe(outcome)}")
    wrong = [
        name
        for name, version in expected.packages.items()
        if not any(_same_version(version, got) for got in outcome.packages.get(name, ()))
    ]
    if wrong:
        got = {name: outcome.packages.get(name, ("(absent)",)) for name in wrong}
        return Verdict(scenario, outcome, False, f"expected {wanted}, got {_pins(got)}")
    return Verdict(scenario, outcome, match=True)


def _problem_text(response: httpx.Response) -> str:
    try:
        problem = response.json()
    except ValueError:
        return response.text[:300]
    if isinstance(problem, dict):
        return str(problem.get("detail") or problem.get("title") or problem)
    return str(problem)


def _outcome_from_job(job: Mapping[str, Any], seconds: float) -> Outcome:
    result = job.get("result") or {}
    failure = job.get("failure") or {}
    packages: dict[str, tuple[str, ...]] = collections.defaultdict(tuple)
    for package in result.get("packages", ()):
        packages[canonicalize_name(package["name"])] += (str(package["version"]),)
    return Outcome(
        status=str(job.get("status")),
        packages=packages,
        failure_kind=failure.get("kind"),
        message=failure.get("message"),
        hint_codes=tuple(str(hint.get("code")) for hint in failure.get("hints", ())),
        seconds=seconds,
    )


def find_outcome(client: httpx.Client, body: Mapping[str, Any], *, timeout: float) -> Outcome:
    """Submit ``body`` to ``POST /resolve`` and wait for the job to finish (or ``timeout``)."""
    started = time.monotonic()

    def elapsed() -> float:
        return time.monotonic() - started

    try:
        response = client.post("/resolve", json=body)
        if response.status_code not in (200, 202):
            message = f"HTTP {response.status_code}: {_problem_text(response)}"
            return Outcome("rejected", message=message, seconds=elapsed())
        job = response.json()
        while job.get("status") not in FINISHED:
            if elapsed() > timeout:
                client.delete(f"/jobs/{job['id']}")
                message = f"still {job.get('status')} after {timeout:.0f} s"
                return Outcome("timeout", message=message, seconds=elapsed())
            response = client.get(f"/jobs/{job['id']}", params={"wait": 10})
            if response.status_code != 200:
                message = f"GET /jobs: HTTP {response.status_code}: {_problem_text(response)}"
                return Outcome("error", message=message, seconds=elapsed())
            job = response.json()
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
        return Outcome("error", message=f"{type(exc).__name__}: {exc}", seconds=elapsed())
    return _outcome_from_job(job, elapsed())


def names_requested_packages(scenario: Scenario, outcome: Outcome) -> bool:
    """Whether a failure's message names every package the scenario's root requires."""
    words = {
        canonicalize_name(word)
        for word in re.split(r"[^A-Za-z0-9._-]+", outcome.message or "")
        if word
    }
    return all(canonicalize_name(name) in words for name in scenario.requirement_names)


def find_uv_message(scenario: Scenario, index_url: str) -> str:
    """What ``uv pip compile`` prints for ``scenario`` against its loopback index."""
    uv = Path(sys.executable).with_name("uv")
    command = [
        str(uv if uv.exists() else "uv"),
        "pip",
        "compile",
        "--no-config",
        "--no-cache",
        "--quiet",
        "--no-header",
        "--index-url",
        index_url,
        "--python-version",
        scenario.python_version,
        "--python-platform",
        scenario.platform,
    ]
    if scenario.prerelease is not None:
        command += ["--prerelease", scenario.prerelease]
    if scenario.resolution is not None:
        command += ["--resolution", scenario.resolution]
    command += [f"--only-binary={name}" for name in scenario.only_binary]
    command += [f"--no-binary={name}" for name in scenario.no_binary]
    command.append("-")  # the requirements, on stdin
    try:
        done = subprocess.run(
            command,
            input="\n".join(scenario.requirements) + "\n",
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "UV_NO_CACHE": "1", "NO_COLOR": "1"},
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"(uv did not run: {exc})"
    return (done.stderr or done.stdout).strip()


@contextmanager
def run_service(index_base_url: str, redis_url: str, log: Path) -> Iterator[str]:
    """Start ``resolvd serve`` allowed to use ``index_base_url``; yield its URL; stop it.

    It runs in its own session so that stopping it (SIGTERM, then SIGKILL after 10 s) reaches
    any worker processes it started, and nothing else. ``StartError`` (with the log's tail) when
    it exits or never answers /healthz.
    """
    environ = make_service_env(
        {
            "RESOLVD_ALLOWED_INDEX_URLS": f"{index_base_url}/",
            "RESOLVD_REDIS_URL": redis_url,
            "RESOLVD_CACHE_URL": redis_url,
            # One client submits the whole corpus within a minute.
            "RESOLVD_LIMITS_JOBS_PER_CLIENT_PER_MINUTE": "100000",
            "RESOLVD_JOBS_WORKER_CONCURRENCY": str(CONCURRENCY),
        }
    )
    service, url = start_serve(environ, log, timeout=HEALTH_TIMEOUT_SECONDS)
    try:
        yield url
    finally:
        service.stop(timeout=10)


def _read_min_match(path: Path) -> int:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return 0


def _run_all(
    service_url: str, scenarios: Sequence[Scenario], urls: Mapping[str, str], *, verbose: bool
) -> list[Verdict]:
    verdicts: list[Verdict] = []
    timeout = httpx.Timeout(30.0, connect=5.0)
    limits = httpx.Limits(max_connections=CONCURRENCY * 2)
    pool = ThreadPoolExecutor(max_workers=CONCURRENCY)
    try:
        with httpx.Client(base_url=service_url, timeout=timeout, limits=limits) as client:
            futures = {
                pool.submit(
                    find_outcome,
                    client,
                    scenario.make_request(urls[scenario.name]),
                    timeout=JOB_TIMEOUT_SECONDS,
                ): scenario
                for scenario in scenarios
            }
            for future in as_completed(futures):
                verdict = judge(futures[future], future.result())
                verdicts.append(verdict)
                if verbose:
                    mark = "ok  " if verdict.match else "MISS"
                    took = verdict.outcome.seconds
                    print(f"{mark} {verdict.scenario.key} ({took:.1f} s)", flush=True)
    finally:
        # Interrupted, do not wait for jobs in flight: stopping the service ends their polls.
        pool.shutdown(wait=False, cancel_futures=True)
    return sorted(verdicts, key=lambda v: v.scenario.key)


def _run_corpus(
    active: Sequence[Scenario], *, verbose: bool, uv: bool
) -> tuple[list[Verdict], dict[str, str]]:
    """Serve ``active`` on loopback and run them through a fresh service on the flushed test
    Redis database; the verdicts, and uv's messages when ``uv``."""
    SERVICE_LOG_PATH.parent.mkdir(exist_ok=True)
    SERVICE_LOG_PATH.unlink(missing_ok=True)
    uv_messages: dict[str, str] = {}
    with IndexServer() as index_server:
        urls = {s.name: index_server.add_index(s.index) for s in active}
        with serving_redis(configured_redis_url(db=REDIS_DB)) as redis_url:
            flush_db(redis_url)
            with run_service(index_server.base_url, redis_url, SERVICE_LOG_PATH) as url:
                verdicts = _run_all(url, active, urls, verbose=verbose)
        if uv:
            failing = [s for s in active if not s.expected.satisfiable and not s.universal]
            with ThreadPoolExecutor(max_workers=CONCURRENCY) as pool:
                found = pool.map(lambda s: find_uv_message(s, urls[s.name]), failing)
                uv_messages = {s.key: m for s, m in zip(failing, found, strict=True)}
    return verdicts, uv_messages


def _write_report(
    verdicts: Sequence[Verdict], disabled: Sequence[Scenario], uv_messages: Mapping[str, str]
) -> None:
    universal = [v for v in verdicts if v.scenario.universal]
    report = {
        "match": sum(v.match for v in verdicts if not v.scenario.universal),
        "total": len(verdicts) - len(universal),
        "universal_match": sum(v.match for v in universal),
        "universal_total": len(universal),
        "disabled": [s.key for s in disabled],
        "results": [
            {
                "scenario": v.scenario.key,
                "universal": v.scenario.universal,
                "match": v.match,
                "reason": v.reason,
                "expected": {
                    "satisfiable": v.scenario.expected.satisfiable,
                    "packages": dict(v.scenario.expected.packages),
                },
                "status": v.outcome.status,
                "packages": {name: list(found) for name, found in v.outcome.packages.items()},
                "failure_kind": v.outcome.failure_kind,
                "message": v.outcome.message,
                "hint_codes": list(v.outcome.hint_codes),
                "names_requested_packages": (
                    names_requested_packages(v.scenario, v.outcome)
                    if not v.scenario.expected.satisfiable
                    else None
                ),
                "uv_message": uv_messages.get(v.scenario.key),
                "seconds": round(v.outcome.seconds, 3),
            }
            for v in verdicts
        ],
    }
    REPORT_PATH.parent.mkdir(exist_ok=True)
    REPORT_PATH.write_text(json.dumps(report, indent=2) + "\n")


def _print_explanations(verdicts: Sequence[Verdict]) -> None:
    """Hint codes per category, and expected failures whose message misses a requested name."""
    failures = [v for v in verdicts if not v.scenario.expected.satisfiable and v.match]
    if not failures:
        return
    codes: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for verdict in failures:
        codes[verdict.scenario.category].update(verdict.outcome.hint_codes or ("(none)",))
    print("hint codes of expected failures, by category:")
    for category, counter in sorted(codes.items()):
        print(f"  {category}: " + ", ".join(f"{c} {n}" for c, n in sorted(counter.items())))
    unnamed = [v for v in failures if not names_requested_packages(v.scenario, v.outcome)]
    named = len(failures) - len(unnamed)
    print(f"{named}/{len(failures)} failure messages name every requested package")
    for verdict in unnamed:
        print(f"  UNNAMED {verdict.scenario.key}: {_summary_line(verdict.outcome.message)}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.conformance.run", description=__doc__)
    parser.add_argument("--min-match", type=int, default=None, help="fail below this many matches")
    parser.add_argument("--only", default="", help="run scenarios whose category/name has this")
    parser.add_argument("--verbose", action="store_true", help="print every scenario as it ends")
    parser.add_argument(
        "--uv", action="store_true", help="record uv pip compile's message for expected failures"
    )
    args = parser.parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so the service and the index server are always stopped.
    signal.signal(signal.SIGTERM, signal.default_int_handler)

    corpus = find_corpus()
    if corpus is None:
        print("conformance: no packse-scenarios corpus found (set RESOLVD_CORPORA); skipping")
        return 0
    chosen = select(list(iter_scenarios(corpus)), args.only)
    disabled = [s for s in chosen if s.disabled]
    active = [s for s in chosen if not s.disabled]
    min_match = args.min_match
    if min_match is None:
        min_match = 0 if args.only else _read_min_match(MIN_MATCH_FILE)
    min_universal = 0 if args.only else _read_min_match(MIN_MATCH_UNIVERSAL_FILE)

    verdicts: list[Verdict] = []
    uv_messages: dict[str, str] = {}
    if active:
        try:
            verdicts, uv_messages = _run_corpus(active, verbose=args.verbose, uv=args.uv)
        except StartError as exc:
            print(f"conformance: the service did not start: {exc}")
            return 1

    matched, matched_universal = _print_scores(verdicts, disabled)
    _write_report(verdicts, disabled, uv_messages)
    print(f"report: {REPORT_PATH.relative_to(REPO_ROOT)}")
    if matched < min_match or matched_universal < min_universal:
        print(
            f"conformance: {matched} (minimum {min_match}), universal {matched_universal} "
            f"(minimum {min_universal})"
        )
        return 1
    return 0


def _print_scores(verdicts: Sequence[Verdict], disabled: Sequence[Scenario]) -> tuple[int, int]:
    """Print the misses and the scores; return (non-universal, universal) matches."""
    for verdict in verdicts:
        if not verdict.match:
            print(f"MISS {verdict.scenario.key}: {verdict.reason}")
    by_category: dict[str, list[bool]] = collections.defaultdict(list)
    for verdict in verdicts:
        by_category[verdict.scenario.category].append(verdict.match)
    if by_category:
        print(", ".join(f"{c} {sum(m)}/{len(m)}" for c, m in sorted(by_category.items())))
    _print_explanations(verdicts)
    single = [v for v in verdicts if not v.scenario.universal]
    universal = [v for v in verdicts if v.scenario.universal]
    matched = sum(v.match for v in single)
    matched_universal = sum(v.match for v in universal)
    print(f"{matched}/{len(single)} match expected")
    print(f"universal: {matched_universal}/{len(universal)} match expected")
    print(f"disabled in corpus: {len(disabled)}")
    return matched, matched_universal


if __name__ == "__main__":
    sys.exit(main())
