"""``resolvd submit``, end to end: the real command against a real cluster on loopback.

The command runs as its own process (``python -m service submit``) with stderr a pipe, so it
prints plain progress lines; one test gives it a pseudo-terminal, where it draws rich's bar.
"""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import tomllib
from collections.abc import Mapping
from pathlib import Path

import pytest

from tests.indexserver import IndexServer
from tests.support.cluster import Cluster
from tests.support.processes import ROOT, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

TOKEN = "submit-test-token-5f1c"


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def run_submit(
    *args: str, cwd: Path, env: Mapping[str, str] | None = None, timeout: float = 90
) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("RESOLVD_")}
    return subprocess.run(
        [sys.executable, "-m", "service", "submit", *args],
        cwd=cwd,
        env={**environ, "PYTHONPATH": str(ROOT), **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def served(cluster: Cluster) -> Cluster:
    cluster.serve()
    cluster.wait_ready()
    return cluster


@pytest.fixture
def requirements_in(tmp_path: Path) -> Path:
    """``flask`` constrained below 3 through a ``-c`` file, with comments and blank lines."""
    write(tmp_path / "constraints.txt", "# keep the old major\nflask<3\n")
    return write(
        tmp_path / "requirements.in",
        "# what the service needs\n\nflask>=2  # the web framework\n-c constraints.txt\n",
    )


class TestSubmit:
    def test_a_resolution_is_written_as_requirements(
        self, served: Cluster, requirements_in: Path, tmp_path: Path
    ) -> None:
        """Exit 0; ``-o requirements.txt`` holds the hashed pins; progress went to stderr."""
        output = tmp_path / "requirements.txt"
        result = run_submit(
            str(requirements_in),
            "--url",
            served.base_url,
            "--index",
            "corp",
            "-o",
            str(output),
            cwd=tmp_path,
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout == ""
        text = output.read_text()
        assert "flask==2.3.3 \\\n    --hash=sha256:" in text
        assert "    # via\n    #   -r requirements.in\n    #   -c constraints.txt\n" in text
        assert "blinker==1.8.2" in text
        assert "resolvd: job " in result.stderr
        assert "packages locked as requirements to" in result.stderr

    def test_a_pylock_is_written_to_stdout(self, served: Cluster, tmp_path: Path) -> None:
        """``--format pylock`` without ``-o``: the lock is stdout, for the target asked; ``-r``
        includes, ``\\`` continuations and a ``-c`` inside an included file are followed."""
        write(tmp_path / "constraints.txt", "flask<3\n")
        write(
            tmp_path / "base.in", "flask>=2 \\\n    ; python_version >= '3.8'\n-c constraints.txt\n"
        )
        requirements = write(tmp_path / "requirements.in", "-r base.in\n")
        result = run_submit(
            str(requirements),
            "--url",
            served.base_url,
            "--format",
            "pylock",
            "--python",
            "3.11",
            cwd=tmp_path,
        )
        assert result.returncode == 0, result.stderr
        lock = tomllib.loads(result.stdout)
        assert lock["requires-python"] == "==3.11.*"
        assert {p["name"]: p["version"] for p in lock["packages"]} == {
            "flask": "2.3.3",
            "click": "8.1.7",
            "blinker": "1.8.2",
        }

    def test_an_unsatisfiable_request_prints_its_report(
        self, served: Cluster, tmp_path: Path
    ) -> None:
        """Exit 1 and the failure report: the explanation, then hints with their codes."""
        requirements = write(tmp_path / "requirements.in", "flask\nno-such-project\n")
        output = tmp_path / "requirements.txt"
        result = run_submit(
            str(requirements), "--url", served.base_url, "-o", str(output), cwd=tmp_path
        )
        assert result.returncode == 1, result.stderr
        assert "failed (unsatisfiable):" in result.stderr
        assert "No solution found when resolving dependencies" in result.stderr
        assert "hints:\n  [package_not_found] no-such-project was not found" in result.stderr
        assert not output.exists()

    def test_an_index_error_prints_the_fetch_errors(
        self, served: Cluster, index_server: IndexServer, tmp_path: Path
    ) -> None:
        """Exit 1; a 403 on a project page is reported with its code under fetch errors."""
        index_server.inject("/corp/simple/click/*", status=403)
        requirements = write(tmp_path / "requirements.in", "flask\n")
        result = run_submit(str(requirements), "--url", served.base_url, cwd=tmp_path)
        assert result.returncode == 1, result.stderr
        assert "fetch errors:\n  [index_forbidden]" in result.stderr
        assert result.stdout == ""

    def test_an_unreachable_server_exits_2(self, tmp_path: Path) -> None:
        """Nothing listens: exit 2 with a message naming the URL."""
        requirements = write(tmp_path / "requirements.in", "flask\n")
        url = f"http://127.0.0.1:{free_port()}"
        result = run_submit(str(requirements), "--url", url, cwd=tmp_path)
        assert result.returncode == 2
        assert f"cannot reach resolvd at {url}" in result.stderr

    @pytest.mark.parametrize(
        ("line", "message"),
        [
            ("-e .", "requirements.in:2: -e is not supported: editable installs"),
            ("--index-url https://x/simple", "--index-url is not supported: indexes are"),
            ("click==8.1.7 --hash=sha256:00", "requirements.in:2: per-requirement options"),
            ("-r missing.in", "requirements.in:2: cannot read"),
        ],
    )
    def test_unsupported_lines_are_refused_before_anything_is_sent(
        self, tmp_path: Path, line: str, message: str
    ) -> None:
        """Exit 2 naming the file and line; no server is needed to say so."""
        requirements = write(tmp_path / "requirements.in", f"flask\n{line}\n")
        result = run_submit(
            str(requirements), "--url", f"http://127.0.0.1:{free_port()}", cwd=tmp_path
        )
        assert result.returncode == 2
        assert message in result.stderr

    def test_an_invalid_requirement_is_named_by_file_and_line(
        self, served: Cluster, tmp_path: Path
    ) -> None:
        """The server's 422 names ``requirements[1]``; the command names the line it read."""
        requirements = write(tmp_path / "requirements.in", "flask\n\nclick[oops\n")
        result = run_submit(str(requirements), "--url", served.base_url, cwd=tmp_path)
        assert result.returncode == 2
        assert f"{requirements}:3: click[oops:" in result.stderr


class TestSubmitWithALock:
    """Like ``uv pip compile``: an existing ``-o FILE`` is the lock whose pins are kept."""

    def test_an_existing_output_keeps_its_pins_until_a_package_is_lifted(
        self, served: Cluster, requirements_in: Path, tmp_path: Path
    ) -> None:
        """The first run locks flask 2.3.3 (constrained below 3). Without the constraint, the
        second keeps it (no changes); ``-P flask --diff`` lifts it and prints the table."""
        output = tmp_path / "requirements.txt"
        args = ("--url", served.base_url, "-o", str(output))
        first = run_submit(str(requirements_in), *args, cwd=tmp_path)
        assert first.returncode == 0, first.stderr
        assert "from the existing lock" not in first.stderr
        unconstrained = write(tmp_path / "requirements.in", "flask>=2\n")
        kept = run_submit(str(unconstrained), *args, cwd=tmp_path)
        assert kept.returncode == 0, kept.stderr
        assert "resolvd: no changes from the existing lock" in kept.stderr
        assert "flask==2.3.3 \\\n" in output.read_text()
        lifted = run_submit(str(unconstrained), *args, "-P", "flask", "--diff", cwd=tmp_path)
        assert lifted.returncode == 0, lifted.stderr
        assert lifted.stdout == (
            "| Package | From | To | Change | Reason |\n"
            "|---|---|---|---|---|\n"
            "| flask | 2.3.3 | 3.0.0 | upgraded | upgrade requested |\n"
            "| itsdangerous |  | 2.2.0 | added |  |\n"
        )
        assert "resolvd: 2 changes from the existing lock:\n" in lifted.stderr
        assert "  upgraded   flask 2.3.3 -> 3.0.0: upgrade requested\n" in lifted.stderr
        assert "flask==3.0.0 \\\n" in output.read_text()

    def test_an_unreadable_existing_output_is_named(self, served: Cluster, tmp_path: Path) -> None:
        """The server's 422 on ``lock.content`` points at the existing file; exit 2."""
        requirements = write(tmp_path / "requirements.in", "flask\n")
        output = write(tmp_path / "pylock.toml", "this is = not [toml\n")
        result = run_submit(
            str(requirements), "--url", served.base_url, "-o", str(output), cwd=tmp_path
        )
        assert result.returncode == 2
        assert f"{output} (the existing lock): unreadable pylock lock: not valid TOML" in (
            result.stderr
        )

    def test_diff_needs_an_output_file(self, tmp_path: Path) -> None:
        requirements = write(tmp_path / "requirements.in", "flask\n")
        result = run_submit(
            str(requirements), "--url", f"http://127.0.0.1:{free_port()}", "--diff", cwd=tmp_path
        )
        assert result.returncode == 2
        assert "--diff needs -o FILE" in result.stderr


class TestSubmitWithTokens:
    @pytest.fixture
    def guarded(self, cluster: Cluster) -> Cluster:
        cluster.serve(
            env={"RESOLVD_AUTH_TOKENS_ENV": "SUBMIT_TOKENS", "SUBMIT_TOKENS": f"ci:{TOKEN}"}
        )
        cluster.wait_ready()
        return cluster

    def test_the_token_is_sent_and_never_printed(
        self, guarded: Cluster, requirements_in: Path, tmp_path: Path
    ) -> None:
        """``--token-env`` names the variable; the token reaches the server, not the output."""
        result = run_submit(
            str(requirements_in),
            "--url",
            guarded.base_url,
            "--token-env",
            "CI_TOKEN",
            cwd=tmp_path,
            env={"CI_TOKEN": TOKEN},
        )
        assert result.returncode == 0, result.stderr
        assert TOKEN not in result.stdout + result.stderr

    def test_without_a_token_the_command_says_how_to_give_one(
        self, guarded: Cluster, requirements_in: Path, tmp_path: Path
    ) -> None:
        """401: exit 2, pointing at ``$RESOLVD_TOKEN`` and ``--token-env``."""
        result = run_submit(str(requirements_in), "--url", guarded.base_url, cwd=tmp_path)
        assert result.returncode == 2
        assert "$RESOLVD_TOKEN" in result.stderr
        assert "--token-env" in result.stderr


def test_on_a_terminal_the_progress_is_a_rich_bar(
    served: Cluster, requirements_in: Path, tmp_path: Path
) -> None:
    """stderr a pseudo-terminal: no plain progress lines, and the lock still written."""
    controller, terminal = pty.openpty()
    output = tmp_path / "pylock.toml"
    environ = {k: v for k, v in os.environ.items() if not k.startswith("RESOLVD_")}
    try:
        process = subprocess.run(
            [
                sys.executable,
                "-m",
                "service",
                "submit",
                str(requirements_in),
                "--url",
                served.base_url,
                "-o",
                str(output),
            ],
            cwd=tmp_path,
            env={**environ, "PYTHONPATH": str(ROOT), "TERM": "xterm", "COLUMNS": "100"},
            stdout=subprocess.PIPE,
            stderr=terminal,
            timeout=90,
            check=False,
        )
        os.close(terminal)
        terminal = -1
        drawn = b""
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:
                break
            if not chunk:
                break
            drawn += chunk
    finally:
        os.close(controller)
        if terminal != -1:
            os.close(terminal)
    assert process.returncode == 0, drawn.decode(errors="replace")
    assert "packages locked as pylock" in drawn.decode(errors="replace")
    assert b"\x1b[?25l" in drawn  # rich's live display hid the cursor while it drew
    assert b"resolvd: job " not in drawn
    assert tomllib.loads(output.read_text())["created-by"] == "resolvd"
