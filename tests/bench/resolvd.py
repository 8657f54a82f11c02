"""A ``resolvd serve`` process for the benchmark, and one timed job against it.

``ResolvdProcess`` starts ``resolvd serve`` (API + in-process worker) on a free loopback port with
its job store and metadata cache on a dedicated Redis database, which ``flush_redis`` empties
before every cold start. ``submit_and_wait`` times one job from ``POST /resolve`` to the terminal
job document, polling ``GET /jobs/{id}?wait=30``.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import redis
from packaging.utils import canonicalize_name

from tests.bench.tools import PLATFORM, PYTHON_VERSION

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

REDIS_URL = os.environ.get("RESOLVD_BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")
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
    """How to run ``resolvd``: the venv's console script, else ``python -m service``."""
    script = Path(sys.executable).with_name("resolvd")
    if script.is_file():
        return [str(script)]
    if shutil.which("resolvd"):
        return ["resolvd"]
    return None


def flush_redis(url: str = REDIS_URL) -> None:
    """Empty the benchmark's Redis database: job store, result store and metadata cache."""
    client = redis.Redis.from_url(url, socket_connect_timeout=2.0)
    try:
        client.flushdb()
    finally:
        client.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ResolvdProcess:
    """``resolvd serve`` on ``127.0.0.1``, ready (``/readyz`` 200 on Redis) when constructed."""

    def __init__(
        self,
        allowed_index_urls: Sequence[str],
        *,
        log_path: Path,
        redis_url: str = REDIS_URL,
        startup_timeout: float = 30.0,
    ) -> None:
        command = find_resolvd_command()
        if command is None:
            raise ResolvdUnavailableError("no resolvd command in the venv (pip install -e .)")
        self.port = _free_port()
        self._terminated = False
        env = {k: v for k, v in os.environ.items() if not k.startswith("RESOLVD_")}
        env |= {
            "RESOLVD_REDIS_URL": redis_url,
            "RESOLVD_ALLOWED_INDEX_URLS": ",".join(allowed_index_urls),
            # The load run measures the API, not the per-client submission limiter.
            "RESOLVD_LIMITS_JOBS_PER_CLIENT_PER_MINUTE": "1000000",
            # Any request to a non-loopback host goes to a closed port and fails.
            "HTTP_PROXY": "http://127.0.0.1:9",
            "HTTPS_PROXY": "http://127.0.0.1:9",
            "ALL_PROXY": "http://127.0.0.1:9",
            "NO_PROXY": "127.0.0.1,localhost",
        }
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = log_path.open("ab")
        self._process = subprocess.Popen(
            [*command, "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            self._wait_ready(startup_timeout, log_path)
        except BaseException:
            self.close()
            raise

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self._process.pid

    def _wait_ready(self, timeout: float, log_path: Path) -> None:
        deadline = time.monotonic() + timeout
        last = "no answer"
        with httpx.Client(base_url=self.base_url, trust_env=False, timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self._process.poll() is not None:
                    raise ResolvdUnavailableError(
                        f"resolvd serve exited with {self._process.returncode}; see {log_path}"
                    )
                try:
                    response = client.get("/readyz")
                except httpx.TransportError as exc:
                    last = repr(exc)
                else:
                    body = response.json() if response.content else {}
                    if response.status_code == 200 and body.get("store") == "redis":
                        return
                    last = f"{response.status_code} {body}"
                time.sleep(0.1)
        raise ResolvdUnavailableError(f"resolvd not ready after {timeout:.0f}s: {last}")

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
        if self._process.poll() is None and not self._terminated:
            self._terminated = True
            self._process.send_signal(signal.SIGTERM)

    def close(self) -> None:
        """SIGTERM (the server drains), then SIGKILL if it lingers; only our own process."""
        self.terminate()
        if self._process.poll() is None:
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._log.close()

    def __enter__(self) -> ResolvdProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(child) for child in text.split()]


def make_resolve_body(
    requirements: Sequence[str], index_url: str, *, deadline_seconds: float
) -> dict[str, Any]:
    """The ``POST /resolve`` body; ``deadline_seconds`` also makes otherwise-equal bodies differ."""
    return {
        "requirements": list(requirements),
        "indexes": [{"url": index_url}],
        "environment": {"python_version": PYTHON_VERSION, "platform": PLATFORM},
        "deadline_seconds": deadline_seconds,
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
    resolution = {
        str(canonicalize_name(package["name"])): package["version"]
        for package in result.get("packages", [])
    }
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
