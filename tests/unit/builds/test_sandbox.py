"""The sandbox, run for real: what a build can and cannot reach, and the limits that stop it.

bubblewrap is installed by ``make test-tools`` (tests/support/ensure-tools.sh); without it these
fail with the sandbox's own message naming the package, as ``resolvd builder`` would.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.builds.sandbox import RunResult, Sandbox, SandboxUnavailableError, make_sandbox
from service.settings import BuildSettings

SETTINGS = BuildSettings(enabled=True, memory_mb=256, max_output_bytes=64 * 1024)


@pytest.fixture
async def sandbox() -> Sandbox:
    return await make_sandbox(SETTINGS)


@pytest.fixture
def work(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture
def listener() -> Iterator[int]:
    """A TCP port listening on the host's loopback."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield server.getsockname()[1]


async def python(sandbox: Sandbox, work: Path, code: str, seconds: float = 30) -> RunResult:
    sandbox.prepare(work)
    return await sandbox.run([sys.executable, "-I", "-c", code], work, seconds=seconds)


class TestIsolation:
    async def test_no_network(self, sandbox: Sandbox, work: Path, listener: int) -> None:
        """Even the host's loopback is out of reach: the sandbox has its own, empty one."""
        code = (
            "import socket\n"
            f"try: socket.create_connection(('127.0.0.1', {listener}), timeout=2)\n"
            "except OSError as e: print('refused', e.errno)\n"
            "else: print('connected')\n"
        )
        result = await python(sandbox, work, code)
        assert result.output_tail.startswith("refused"), result.output_tail

    async def test_only_the_work_directory_is_writable(self, sandbox: Sandbox, work: Path) -> None:
        target = Path(sys.prefix) / "sandbox-write-test"
        code = (
            f"open({str(work / 'ok')!r}, 'w').write('x')\n"
            f"try: open({str(target)!r}, 'w')\n"
            "except OSError as e: print(e.strerror)\n"
        )
        result = await python(sandbox, work, code)
        assert result.output_tail.strip() == "Read-only file system"
        assert (work / "ok").read_text() == "x"
        assert not target.exists()

    async def test_no_secrets_in_view(
        self, sandbox: Sandbox, work: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The environment is cleared, other processes are invisible, home dirs are absent."""
        monkeypatch.setenv("RESOLVD_SECRET_CANARY", "canary")
        code = (
            "import os\n"
            "print(sorted(k for k in os.environ if 'CANARY' in k))\n"
            "print(len([p for p in os.listdir('/proc') if p.isdigit()]) < 5)\n"
            f"print(os.getppid() != {os.getpid()})\n"
            "print(os.path.exists('/root/.ssh') or os.path.exists('/run'))\n"
        )
        result = await python(sandbox, work, code)
        assert result.output_tail.split() == ["[]", "True", "True", "False"]

    async def test_no_capabilities(self, sandbox: Sandbox, work: Path) -> None:
        code = "print([l.split()[1] for l in open('/proc/self/status') if l.startswith('CapEff')])"
        result = await python(sandbox, work, code)
        assert result.output_tail.strip() == "['0000000000000000']"


class TestLimits:
    async def test_memory(self, sandbox: Sandbox, work: Path) -> None:
        result = await python(sandbox, work, "bytearray(1024 * 1024 * 1024)")
        assert result.returncode == 1
        assert "MemoryError" in result.output_tail

    async def test_wall_clock(self, sandbox: Sandbox, work: Path) -> None:
        result = await python(sandbox, work, "import time; time.sleep(30)", seconds=1)
        assert result.ending == "timeout"

    async def test_output_is_capped_and_its_tail_kept(self, sandbox: Sandbox, work: Path) -> None:
        result = await python(sandbox, work, "while True: print('spam ' * 100)")
        assert result.ending == "output"
        assert result.output_bytes > SETTINGS.max_output_bytes
        assert len(result.output_tail) <= 8 * 1024


class TestConfiguration:
    async def test_none_keeps_the_limits_without_isolation(self, work: Path) -> None:
        """``sandbox = "none"`` is explicit and still enforces the limits."""
        sandbox = await make_sandbox(BuildSettings(enabled=True, sandbox="none"))
        assert "unconfined" in sandbox.describe()
        result = await python(sandbox, work, "import time; time.sleep(30)", seconds=1)
        assert result.ending == "timeout"

    async def test_refused_without_bubblewrap(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("PATH", "/nonexistent")
        with pytest.raises(SandboxUnavailableError, match="bubblewrap"):
            await make_sandbox(BuildSettings(enabled=True))
