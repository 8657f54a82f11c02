"""A ``resolvd serve`` process for the benchmark, and one timed job against it.

``ResolvdProcess`` starts ``resolvd serve`` (API + in-process worker) on a free loopback port with
its job store and metadata cache on database 12 of the test Redis (``RESOLVD_TEST_REDIS_URL``'s
server, by default 127.0.0.1:6379), which ``flush_redis`` empties before every cold start.
``submit_and_wait`` times one job from ``POST /resolve`` to the terminal job document, polling
``GET /jobs/{id}?wait=30``.
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.bench.tools import PLATFORM, PYTHON_VERSION, UNIVERSAL_DOMAIN, merge_pins
from tests.support.processes import StartError, make_service_env, resolvd_command, start_serve
from tests.support.redis import configured_redis_url, flush_db

__all__ = [
    "REDIS_URL",
    "JobOutcome",
    "ResolvdProcess",
    "ResolvdUnavailableError",
    "find_resolvd_command",
    "flush_redis",
    "make_resolve_body",
    "submit_and_wait",
]

REDIS_URL = configured_redis_url(db=12)
_TERMINAL = frozenset({"succeeded", "failed", "cancelled"})
# A job id the API just returned must be readable; give a lagging store this long.
_LOST_JOB_GRACE_SECONDS = 2.0


class ResolvdUnavailableError(RuntimeError):
    """``resolvd serve`` is missing, would not start, or never became ready."""


@dataclass(frozen=True)
class JobOutcome:
    """One job as the client saw it."""

    seconds: float
    status: str
    http_status: int
    stats: Mapping[str, Any] = field(default_factory=dict)
    resolution: dict[str, str] = field(default_factory=dict)
    failure_kind: str = ""
    failure_message: str = ""
    # Times ``GET /jobs/{id}`` answered 404 for an id ``POST /resolve`` had just returned.
    lost_reads: int = 0

    @property
    def ok(self) -> bool:
        return self.status == "succeeded"


def find_resolvd_command() -> list[str] | None:
    """How to run ``resolvd``: this interpreter's ``python -m service`` when the package is
    installed in it (``make setup``), else ``None``."""
    if importlib.util.find_spec("service") is None:
        return None
    return resolvd_command()


def flush_redis(url: str = REDIS_URL) -> None:
    """Empty the benchmark's Redis database: job store, result store and metadata cache."""
    flush_db(url)


# Any request to a non-loopback host goes to a closed port and fails.
_LOOPBACK_ONLY = {
    "HTTP_PROXY": "http://127.0.0.1:9",
    "HTTPS_PROXY": "http://127.0.0.1:9",
    "ALL_PROXY": "http://127.0.0.1:9",
    "NO_PROXY": "127.0.0.1,localhost",
}


class ResolvdProcess:
    """``resolvd serve`` on ``127.0.0.1``, ready (``/readyz`` 200 on Redis) when constructed.

    Every request to a non-loopback host goes to a closed port, unless ``live``: then the
    server reaches the real default index as the machine does (its CA in ``SSL_CERT_FILE``).
    """

    def __init__(
        self,
        allowed_index_urls: Sequence[str],
        *,
        log_path: Path,
        redis_url: str = REDIS_URL,
        startup_timeout: float = 30.0,
        live: bool = False,
    ) -> None:
        if find_resolvd_command() is None:
            raise ResolvdUnavailableError("no resolvd command in the venv (pip install -e .)")
        env = make_service_env(
            {
                "RESOLVD_REDIS_URL": redis_url,
                "RESOLVD_ALLOWED_INDEX_URLS": ",".join(allowed_index_urls),
                # The load run measures the API, not the per-client submission limiter.
                "RESOLVD_LIMITS_JOBS_PER_CLIENT_PER_MINUTE": "1000000",
                **({} if live else _LOOPBACK_ONLY),
            }
        )
        try:
            self._service, self.base_url = start_serve(
                env,
                log_path,
                ready_path="/readyz",
                timeout=startup_timeout,
                accept=lambda r: r.status_code == 200 and r.json().get("store") == "redis",
            )
        except StartError as exc:
            raise ResolvdUnavailableError(f"{exc}\n(log: {log_path})") from exc

    @property
    def port(self) -> int:
        return int(self.base_url.rpartition(":")[2])

    @property
    def pid(self) -> int:
        return self._service.pid

    def peak_rss_kib(self) -> int | None:
        """``VmHWM`` of the serve process and its children (uvicorn may fork), in KiB."""
        total = 0
        for pid in (self.pid, *_children(self.pid)):
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            for line in status.splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1])
        return total or None

    def terminate(self) -> None:
        """Ask the server to drain and exit (SIGTERM) without waiting for it."""
        self._service.terminate()

    def close(self) -> None:
        """SIGTERM (the server drains), then SIGKILL if it lingers; only our own processes."""
        self._service.stop(timeout=10)

    def __enter__(self) -> ResolvdProcess:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(child) for child in text.split()]


def make_resolve_body(
    requirements: Sequence[str],
    index_url: str,
    *,
    deadline_seconds: float,
    universal: bool = False,
) -> dict[str, Any]:
    """The ``POST /resolve`` body; ``deadline_seconds`` also makes otherwise-equal bodies differ.
    ``universal``: one lock over ``UNIVERSAL_DOMAIN``."""
    requires_python, environments = UNIVERSAL_DOMAIN
    return {
        "requirements": list(requirements),
        "indexes": [{"url": index_url}],
        "environment": {"python_version": PYTHON_VERSION, "platform": PLATFORM},
        "deadline_seconds": deadline_seconds,
        **(
            {
                "universal": True,
                "requires_python": requires_python,
                "environments": list(environments),
            }
            if universal
            else {}
        ),
    }


def submit_and_wait(client: httpx.Client, body: Mapping[str, Any], timeout: float) -> JobOutcome:
    """``POST /resolve`` then ``GET /jobs/{id}?wait=30`` until terminal; wall time of it all."""
    started = time.perf_counter()
    response = client.post("/resolve", json=body)
    http_status = response.status_code
    if response.status_code not in (200, 202):
        return JobOutcome(
            time.perf_counter() - started,
            "rejected",
            http_status,
            failure_message=response.text[:500],
        )
    document = response.json()
    job_id = document["id"]
    lost_reads = 0
    first_404: float | None = None
    while document.get("status") not in _TERMINAL:
        if time.perf_counter() - started > timeout:
            return JobOutcome(time.perf_counter() - started, "timeout", http_status)
        response = client.get(f"/jobs/{job_id}", params={"wait": 30})
        if response.status_code == 404:
            lost_reads += 1
            first_404 = first_404 or time.perf_counter()
            if time.perf_counter() - first_404 > _LOST_JOB_GRACE_SECONDS:
                return JobOutcome(
                    time.perf_counter() - started, "lost", http_status, lost_reads=lost_reads
                )
            time.sleep(0.05)
            continue
        response.raise_for_status()
        document = response.json()
    elapsed = time.perf_counter() - started
    result = document.get("result") or {}
    failure = document.get("failure") or {}
    resolution = merge_pins(
        (package["name"], package["version"]) for package in result.get("packages", [])
    )
    return JobOutcome(
        elapsed,
        document["status"],
        http_status,
        stats=result.get("stats", {}),
        resolution=resolution,
        failure_kind=failure.get("kind", ""),
        failure_message=failure.get("message", ""),
        lost_reads=lost_reads,
    )
