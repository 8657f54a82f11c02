"""Real processes: ``python -m service serve`` and ``worker``, on Redis db 15 and loopback only.

``Cluster`` starts processes in their own process groups, logs each to a file under the test's
temporary directory, and always stops them (SIGTERM to the group, then SIGKILL) when the test
ends, whatever happened. The configuration names one index, ``corp``, on the test's
``index_server``; requests may also name URLs under the index server (``allowed_index_urls``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.indexserver import IndexServer, IndexSpec, Project, Release

ROOT = Path(__file__).parents[2]
STOP_TIMEOUT_SECONDS = 25

# A small world: flask 3.x with its dependencies, plus a "slow" project the tests delay.
PROJECTS = [
    Project(
        "flask",
        [
            Release("2.3.3", requires=["click>=8", "blinker>=1.6"]),
            Release("3.0.0", requires=["click>=8.1", "blinker>=1.6", "itsdangerous>=2.1"]),
        ],
    ),
    Project("click", [Release("8.1.7")]),
    Project("blinker", [Release("1.8.2")]),
    Project("itsdangerous", [Release("2.2.0")]),
    Project("slowpoke", [Release("1.0", requires=["click"])]),
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Service:
    """One started process: its command, log file and process handle."""

    def __init__(self, name: str, args: list[str], env: Mapping[str, str], log: Path) -> None:
        self.name = name
        self.log = log
        self._log_file = log.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "service", *args],
            cwd=ROOT,
            env=dict(env),
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def signal_group(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signum)

    def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> int:
        """SIGTERM the group, wait, SIGKILL if needed; returns the exit status."""
        if self.process.poll() is None:
            self.signal_group(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.signal_group(signal.SIGKILL)
                self.process.wait(5)
        # Children (uvicorn --workers) share the group; make sure none outlives the test.
        self.signal_group(signal.SIGKILL)
        self._log_file.close()
        return self.process.returncode

    def output(self) -> str:
        self._log_file.flush()
        return self.log.read_text(errors="replace")


class Cluster:
    """The processes of one test, and an HTTP client for the API once it is up."""

    def __init__(self, tmp_path: Path, env: Mapping[str, str]) -> None:
        self.tmp_path = tmp_path
        self.env = dict(env)
        self.services: list[Service] = []
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.http = httpx.Client(base_url=self.base_url, timeout=40)

    def start(self, name: str, *args: str, env: Mapping[str, str] | None = None) -> Service:
        service = Service(
            name, list(args), {**self.env, **(env or {})}, self.tmp_path / f"{name}.log"
        )
        self.services.append(service)
        return service

    def serve(self, *args: str, env: Mapping[str, str] | None = None) -> Service:
        return self.start("api", "serve", "--port", str(self.port), *args, env=env)

    def worker(self, name: str = "worker", *args: str) -> Service:
        return self.start(name, "worker", "--concurrency", "2", *args)

    def wait_ready(self, path: str = "/readyz", timeout: float = 30) -> None:
        """Wait until ``path`` answers 200 (fail with the process logs if it never does)."""
        until = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < until:
            for service in self.services:
                if service.process.poll() is not None:
                    pytest.fail(f"{service.name} exited early:\n{service.output()}")
            try:
                response = self.http.get(path, timeout=2)
            except httpx.TransportError as exc:
                last = repr(exc)
            else:
                if response.status_code == 200:
                    return
                last = f"{response.status_code} {response.text}"
            time.sleep(0.2)
        pytest.fail(f"{path} never became ready ({last}):\n{self.logs()}")

    def submit(self, body: Mapping[str, Any], **kwargs: Any) -> httpx.Response:
        return self.http.post("/resolve", json=body, **kwargs)

    def wait_job(self, job_id: str, timeout: float = 60) -> dict[str, Any]:
        """Poll with ``?wait=`` until the job ends."""
        until = time.monotonic() + timeout
        while time.monotonic() < until:
            document: dict[str, Any] = self.http.get(f"/jobs/{job_id}", params={"wait": 10}).json()
            if document["status"] in ("succeeded", "failed", "cancelled"):
                return document
        pytest.fail(f"job {job_id} did not end in {timeout} s:\n{self.logs()}")

    def logs(self) -> str:
        return "\n".join(f"--- {s.name} ---\n{s.output()[-4000:]}" for s in self.services)

    def close(self) -> None:
        self.http.close()
        for service in reversed(self.services):
            service.stop()


@pytest.fixture
def world(index_server: IndexServer) -> str:
    """The ``corp`` index on the loopback index server; returns its URL."""
    return index_server.add_index(IndexSpec("corp", PROJECTS))


@pytest.fixture
def cluster(
    tmp_path: Path, clean_redis: str, index_server: IndexServer, world: str
) -> Iterator[Cluster]:
    """Processes against Redis db 15, configured with only loopback indexes; always stopped."""
    config = tmp_path / "resolvd.toml"
    config.write_text(f'[[index]]\nname = "corp"\nurl = "{world}"\n')
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("RESOLVD_") or key == "RESOLVD_TEST_REDIS_URL"
    }
    env.update(
        {
            "RESOLVD_CONFIG": str(config),
            "RESOLVD_REDIS_URL": clean_redis,
            "RESOLVD_ALLOWED_INDEX_URLS": index_server.base_url + "/",
            "RESOLVD_JOBS_HEARTBEAT_SECONDS": "2",
            "PYTHONUNBUFFERED": "1",
        }
    )
    cluster = Cluster(tmp_path, env)
    try:
        yield cluster
    finally:
        cluster.close()


def assert_not_internal(document: Mapping[str, Any]) -> None:
    """An ``internal`` failure is a bug in resolvd, never an expected outcome."""
    failure = document.get("failure") or {}
    assert failure.get("kind") != "internal", f"resolver failed internally: {failure}"
