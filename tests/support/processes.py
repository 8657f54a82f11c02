"""Real processes for tests and dev tools: free ports, started services, waiting for them.

A ``Service`` runs in a session of its own (so that a signal reaches anything it forked, such as
uvicorn's workers, and nothing else), appends its output to a log file, and is stopped with
SIGTERM to its group, then SIGKILL when it lingers. ``wait_until`` and ``wait_http_ready`` poll
for readiness and raise ``StartError`` naming the process that died (with its log's tail) or
what never happened. ``find_executable`` raises ``MissingToolError`` naming the Debian package
that provides a missing tool and the command that installs it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import httpx

__all__ = [
    "ROOT",
    "MissingToolError",
    "Service",
    "StartError",
    "find_executable",
    "free_port",
    "make_service_env",
    "resolvd_command",
    "start_serve",
    "wait_http_ready",
    "wait_until",
]

ROOT = Path(__file__).resolve().parents[2]
# How long a stopped process gets between SIGTERM and SIGKILL unless told otherwise.
STOP_TIMEOUT_SECONDS = 25.0


class StartError(RuntimeError):
    """A process exited or never became ready; the message says which and why."""


class MissingToolError(StartError):
    """A program the tests drive is not installed; the message names the install command."""


def find_executable(name: str, *, package: str) -> str:
    """The path of ``name`` (a command, or an absolute path), or ``MissingToolError``."""
    found = shutil.which(name)
    if found is None:
        raise MissingToolError(
            f"{name} is not installed: `apt-get install -y {package}` installs it "
            "(`make test` does so when it runs as root)"
        )
    return found


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def resolvd_command(*args: str) -> list[str]:
    """``python -m service ARGS`` with this interpreter (the venv's, where resolvd is installed)."""
    return [sys.executable, "-m", "service", *args]


def make_service_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This environment without its ``RESOLVD_*`` settings (a started service is configured by
    what the caller passes, never by the developer's shell), unbuffered, plus ``extra``."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("RESOLVD_")}
    return {**env, "PYTHONUNBUFFERED": "1", **(extra or {})}


class Service:
    """A started process in a session of its own, appending its output to ``log``."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        env: Mapping[str, str],
        log: Path,
        *,
        clean_exits: Sequence[int] = (0,),
    ) -> None:
        self.name = name
        self.log = log
        # Exit statuses that mean a clean stop (uvicorn re-raises the SIGTERM it handled).
        self.clean_exits = clean_exits
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as output:
            self.process = subprocess.Popen(
                list(argv),
                cwd=ROOT,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._terminated = False
        self._reaped = False

    @property
    def pid(self) -> int:
        return self.process.pid

    def exited(self) -> bool:
        return self.process.poll() is not None

    def signal_group(self, signum: int) -> None:
        """Send ``signum`` to the process and everything in its session."""
        if not self._reaped:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signum)

    def terminate(self) -> None:
        """SIGTERM the group once, without waiting (``wait_stopped`` collects the exit). Only
        once: a second SIGTERM makes uvicorn skip its graceful shutdown."""
        if not self._terminated and not self.exited():
            self._terminated = True
            self.signal_group(signal.SIGTERM)

    def wait_stopped(self, timeout: float = STOP_TIMEOUT_SECONDS) -> int:
        """The exit status, SIGKILLing the group when the process takes longer than ``timeout``;
        anything it left behind in its session is killed too."""
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.signal_group(signal.SIGKILL)
            self.process.wait(5)
        self.signal_group(signal.SIGKILL)
        self._reaped = True
        return self.process.returncode

    def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> int:
        """SIGTERM, wait, SIGKILL if needed; the exit status. Stopping twice is harmless."""
        self.terminate()
        return self.wait_stopped(timeout)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def tail(self, lines: int = 30) -> str:
        return "\n".join(f"  | {line}" for line in self.output().splitlines()[-lines:])


def wait_until(
    what: str,
    condition: Callable[[], bool],
    *,
    services: Sequence[Service] = (),
    timeout: float = 30.0,
    detail: Callable[[], str] = lambda: "",
) -> None:
    """Poll ``condition`` until it holds; ``StartError`` when one of ``services`` exits first
    (with its log's tail) or after ``timeout`` seconds (with ``detail()``)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if dead := next((s for s in services if s.exited()), None):
            raise StartError(
                f"{dead.name} exited with status {dead.process.returncode} while waiting for "
                f"{what}:\n{dead.tail()}"
            )
        if time.monotonic() > deadline:
            raise StartError(f"gave up waiting for {what} after {timeout:g} s {detail()}".strip())
        time.sleep(0.1)


def wait_http_ready(
    url: str,
    *,
    services: Sequence[Service] = (),
    timeout: float = 30.0,
    headers: Mapping[str, str] | None = None,
    accept: Callable[[httpx.Response], bool] = lambda response: response.status_code == 200,
) -> None:
    """Poll ``GET url`` (no proxy) until ``accept`` takes the answer (by default: a 200)."""
    last = "no answer"

    def ready() -> bool:
        nonlocal last
        try:
            response = httpx.get(url, headers=headers, timeout=2.0, trust_env=False)
        except httpx.TransportError as exc:
            last = repr(exc)
            return False
        last = f"{response.status_code} {response.text[:300]}"
        return accept(response)

    wait_until(url, ready, services=services, timeout=timeout, detail=lambda: f"(last: {last})")


def start_serve(
    env: Mapping[str, str],
    log: Path,
    *,
    ready_path: str = "/healthz",
    timeout: float = 30.0,
    accept: Callable[[httpx.Response], bool] = lambda response: response.status_code == 200,
) -> tuple[Service, str]:
    """``resolvd serve`` (API and in-process worker) on a free loopback port, once ``GET
    ready_path`` is accepted; the service and its base URL. On ``StartError`` (its message has
    the log's tail) nothing is left running."""
    port = free_port()
    argv = resolvd_command("serve", "--host", "127.0.0.1", "--port", str(port))
    service = Service("resolvd", argv, env, log)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http_ready(url + ready_path, services=[service], timeout=timeout, accept=accept)
    except BaseException:
        service.stop(timeout=10)
        raise
    return service, url
