"""The sandbox a metadata build runs in: bubblewrap, resource limits, a capped output.

A build runs arbitrary code (``setup.py``, a build backend). It runs as a separate process:

* under **bubblewrap** (``[builds] sandbox = "bwrap"``) in new user, PID, network, IPC, UTS and
  cgroup namespaces, with every capability dropped and no further user namespaces: no network
  at all (only its own loopback), no view of other processes; its filesystem is an empty root
  with read-only binds of the system (``/usr`` and the loader's files in ``/etc``) and of the
  Python installation, a private ``/tmp``, and one writable directory, its work directory;
* as an **unprivileged user**: a builder running as root drops the process to ``sandbox_uid``
  (nobody) before bubblewrap starts, so even what the sandbox can reach it reaches as nobody.
  Where that uid cannot run the Python installation (one under root's home, as on a developer
  machine), the probe falls back to mapping root to ``sandbox_uid`` inside the user namespace,
  with no capabilities — and says so in the builder's log;
* with **limits** set before it starts: address space (``memory_mb``), CPU seconds and
  wall-clock time (``timeout_seconds``), file size, processes, no core dumps; and a cap on the
  bytes of output it may print (``max_output_bytes``), of which only the tail is kept.

``sandbox = "none"`` keeps the limits and drops the isolation; it must be chosen explicitly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import resource
import shutil
import signal
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import util as importlib_util
from pathlib import Path
from typing import Literal

from service.settings import BuildSettings

__all__ = ["RunResult", "Sandbox", "SandboxUnavailableError", "make_sandbox"]

logger = logging.getLogger(__name__)

# What a build may write into one file (an sdist's tree, a fallback wheel).
_MAX_FILE_BYTES = 1024 * 1024 * 1024
_MAX_PROCESSES = 256
_MAX_OPEN_FILES = 1024
# The output kept for a failure's log tail.
TAIL_BYTES = 8 * 1024
_READ_CHUNK = 64 * 1024
# Where the system lives; each is bound read-only (or recreated as the symlink it is).
_SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
_SYSTEM_ETC = (
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/localtime",
    "/etc/passwd",
    "/etc/group",
    "/etc/nsswitch.conf",
    "/etc/alternatives",
)
# Modules the in-sandbox program needs, found wherever this installation keeps them.
_NEEDED_MODULES = ("build", "pyproject_hooks", "packaging", "pip")

Ending = Literal["exited", "timeout", "output", "signal"]


class SandboxUnavailableError(RuntimeError):
    """Builds are enabled with a sandbox this machine cannot provide; the message says why."""


@dataclass(frozen=True)
class RunResult:
    """How a sandboxed run ended: ``exited`` with ``returncode``, or stopped for a limit."""

    ending: Ending
    returncode: int | None
    output_tail: str
    output_bytes: int


def _python_roots() -> list[str]:
    """Directories holding the interpreter, its standard library and the modules needed."""
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    roots.add(str(Path(os.path.realpath(sys.executable)).parent.parent))
    for name in _NEEDED_MODULES:
        spec = importlib_util.find_spec(name)
        if spec is not None and spec.origin is not None:
            roots.add(str(Path(spec.origin).resolve().parent.parent))
    # A root inside another is covered by it.
    ordered = sorted(roots)
    return [r for r in ordered if not any(r != o and r.startswith(o + "/") for o in ordered)]


class Sandbox:
    """Runs a command confined as configured; ``describe()`` says what confinement that is."""

    def __init__(
        self,
        settings: BuildSettings,
        *,
        bwrap: str | None,
        drop_to: int | None,
        python_roots: Sequence[str],
    ) -> None:
        self._settings = settings
        self._bwrap = bwrap
        self._drop_to = drop_to
        self._roots = list(python_roots)

    def describe(self) -> str:
        if self._bwrap is None:
            return "none: builds run unconfined (resource limits only), as configured"
        user = (
            f"as uid {self._drop_to}"
            if self._drop_to is not None
            else f"as uid {os.geteuid()} outside, {self._settings.sandbox_uid} inside"
        )
        return (
            f"bubblewrap {user}: new user/pid/net/ipc/uts namespaces, no capabilities, no "
            "network, read-only system, writable work directory only"
        )

    def _bwrap_args(self, work: Path) -> list[str]:
        assert self._bwrap is not None
        uid = str(self._drop_to if self._drop_to is not None else self._settings.sandbox_uid)
        args = [self._bwrap, "--die-with-parent", "--new-session", "--unshare-all"]
        args += ["--unshare-user", "--uid", uid, "--gid", uid, "--disable-userns"]
        args += ["--cap-drop", "ALL", "--hostname", "sandbox"]
        for path in _SYSTEM_DIRS:
            if os.path.islink(path):
                args += ["--symlink", os.readlink(path), path]
            elif os.path.isdir(path):
                args += ["--ro-bind", path, path]
        for path in _SYSTEM_ETC:
            args += ["--ro-bind-try", path, path]
        # /tmp first: an interpreter or venv kept under /tmp is bound on top of it, not hidden.
        args += ["--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]
        for root in self._roots:
            if not root.startswith(tuple(d + "/" for d in _SYSTEM_DIRS)):
                args += ["--ro-bind", root, root]
        args += ["--bind", str(work), str(work), "--chdir", str(work)]
        args += ["--clearenv", *self._env_args(work)]
        return [*args, "--"]

    @staticmethod
    def _environment(work: Path) -> dict[str, str]:
        return {
            "PATH": f"{work}/env/bin:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(work / "home"),
            "TMPDIR": str(work / "tmp"),
            "LANG": "C.UTF-8",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PIP_NO_INPUT": "1",
            "SOURCE_DATE_EPOCH": "315532800",
        }

    def _env_args(self, work: Path) -> list[str]:
        return [a for k, v in self._environment(work).items() for a in ("--setenv", k, v)]

    def _limits(self, cpu_seconds: float) -> Callable[[], None]:
        memory = self._settings.memory_mb * 1024 * 1024
        drop_to = self._drop_to

        def apply() -> None:  # runs in the child between fork and exec
            cpu = max(1, math.ceil(cpu_seconds))
            resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
            resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
            resource.setrlimit(resource.RLIMIT_FSIZE, (_MAX_FILE_BYTES, _MAX_FILE_BYTES))
            resource.setrlimit(resource.RLIMIT_NPROC, (_MAX_PROCESSES, _MAX_PROCESSES))
            resource.setrlimit(resource.RLIMIT_NOFILE, (_MAX_OPEN_FILES, _MAX_OPEN_FILES))
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            if drop_to is not None:
                os.setgroups([])
                os.setgid(drop_to)
                os.setuid(drop_to)

        return apply

    def prepare(self, work: Path) -> None:
        """Make ``work`` (and its home and tmp) the sandbox user's to write."""
        for path in (work / "home", work / "tmp"):
            path.mkdir(exist_ok=True)
        if self._drop_to is not None:
            for path in (work, *work.rglob("*")):
                os.chown(path, self._drop_to, self._drop_to, follow_symlinks=False)

    async def run(self, argv: Sequence[str], work: Path, *, seconds: float) -> RunResult:
        """Run ``argv`` confined, with ``work`` writable, for at most ``seconds``."""
        command = [*self._bwrap_args(work), *argv] if self._bwrap else list(argv)
        env = None if self._bwrap else self._environment(work)
        process = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            cwd=work,
            env=env,
            start_new_session=True,
            preexec_fn=self._limits(seconds),
        )
        assert process.stdout is not None
        tail = bytearray()
        total = 0
        ending: Ending = "exited"
        try:
            async with asyncio.timeout(seconds):
                while chunk := await process.stdout.read(_READ_CHUNK):
                    total += len(chunk)
                    tail = (tail + chunk)[-TAIL_BYTES:]
                    if total > self._settings.max_output_bytes:
                        ending = "output"
                        break
                if ending == "exited":
                    await process.wait()
        except TimeoutError:
            ending = "timeout"
        finally:
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
            # Reads what is left in the pipe to its end, so the pipe is closed too.
            await process.communicate()
        returncode = process.returncode
        if ending == "exited" and returncode is not None and returncode < 0:
            cpu_out = returncode == -signal.SIGXCPU
            ending = "timeout" if cpu_out else "signal"
        return RunResult(ending, returncode, tail.decode(errors="replace"), total)

    async def probe(self) -> None:
        """Run a trivial Python program confined; raise ``SandboxUnavailableError`` if it fails."""
        with tempfile.TemporaryDirectory(prefix="resolvd-probe-", dir=self._settings.work_dir) as t:
            work = Path(t)
            self.prepare(work)
            # Interfaces, not a connection attempt: the check sends nothing anywhere.
            code = "import socket; print(sorted(n for _, n in socket.if_nameindex()))"
            result = await self.run([sys.executable, "-I", "-c", code], work, seconds=30)
        if result.ending != "exited" or result.returncode != 0:
            raise SandboxUnavailableError(
                f"the sandbox could not run Python ({result.ending}, exit {result.returncode}): "
                f"{result.output_tail.strip()[-500:]}"
            )
        if self._bwrap is not None and result.output_tail.strip() != "['lo']":
            raise SandboxUnavailableError(
                f"the sandbox did not cut the network off: it sees {result.output_tail.strip()}"
            )


async def make_sandbox(settings: BuildSettings) -> Sandbox:
    """The sandbox ``settings`` ask for, probed; raises ``SandboxUnavailableError``."""
    if settings.sandbox == "none":
        sandbox = Sandbox(settings, bwrap=None, drop_to=None, python_roots=())
        await sandbox.probe()
        logger.warning('builds: sandbox = "none": setup.py code runs unconfined')
        return sandbox
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise SandboxUnavailableError(
            "builds need bubblewrap (the Debian package `bubblewrap`, command `bwrap`), or "
            'sandbox = "none" set explicitly to build unconfined'
        )
    roots = _python_roots()
    candidates: list[int | None] = [settings.sandbox_uid, None] if os.geteuid() == 0 else [None]
    errors = []
    for drop_to in candidates:
        sandbox = Sandbox(settings, bwrap=bwrap, drop_to=drop_to, python_roots=roots)
        try:
            await sandbox.probe()
        except SandboxUnavailableError as exc:
            errors.append(str(exc))
            continue
        logger.info("builds: sandbox is %s", sandbox.describe())
        return sandbox
    raise SandboxUnavailableError(
        "bubblewrap does not work here (are user namespaces allowed? a container needs a "
        f"seccomp profile that permits them): {'; '.join(errors)}"
    )
