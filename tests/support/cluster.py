"""Real resolvd processes for end-to-end tests: ``python -m service serve`` and ``worker``.

``Cluster`` starts ``Service``s (``tests.support.processes``), each logging to a file under the
test's temporary directory, and always stops them (SIGTERM to the group, then SIGKILL) in
``close``. ``PROJECTS`` is the small world the ``world`` fixture (``tests/e2e/conftest.py``)
serves as the ``corp`` index.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.indexserver import Project, Release
from tests.support.processes import (
    Service,
    StartError,
    free_port,
    resolvd_command,
    wait_http_ready,
)

__all__ = ["PROJECTS", "Cluster", "assert_not_internal"]

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
        """``python -m service ARGS`` as ``name``, on the cluster's environment plus ``env``."""
        service = Service(
            name, resolvd_command(*args), {**self.env, **(env or {})}, self.tmp_path / f"{name}.log"
        )
        self.services.append(service)
        return service

    def serve(self, *args: str, env: Mapping[str, str] | None = None) -> Service:
        return self.start("api", "serve", "--port", str(self.port), *args, env=env)

    def worker(self, name: str = "worker", *args: str) -> Service:
        return self.start(name, "worker", "--concurrency", "2", *args)

    def wait_ready(self, path: str = "/readyz", timeout: float = 30) -> None:
        """Wait until ``path`` answers 200 (fail with the process logs if it never does)."""
        try:
            wait_http_ready(self.base_url + path, services=self.services, timeout=timeout)
        except StartError as exc:
            pytest.fail(f"{exc}\n{self.logs()}")

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


def assert_not_internal(document: Mapping[str, Any]) -> None:
    """An ``internal`` failure is a bug in resolvd, never an expected outcome."""
    failure = document.get("failure") or {}
    assert failure.get("kind") != "internal", f"resolver failed internally: {failure}"
