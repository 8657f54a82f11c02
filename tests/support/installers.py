"""Real installers (pip and uv) reading exported locks, seeing nothing of this machine's setup."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement

__all__ = [
    "VENV_BIN",
    "installed",
    "pins_of",
    "pip_install_dry_run",
    "run_tool",
    "tool_env",
    "uv_compile_pins",
]

VENV_BIN = Path(sys.executable).parent


def tool_env(tmp_path: Path) -> dict[str, str]:
    """An environment in which pip and uv see no configuration, cache or credentials."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_CONFIG_DIRS": str(home / "xdg"),  # hides /etc/xdg/pip/pip.conf
        "XDG_CACHE_HOME": str(home / ".cache"),
        "PIP_CONFIG_FILE": os.devnull,  # pip then reads no configuration file at all
        "PIP_NO_CACHE_DIR": "1",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PIP_NO_INPUT": "1",
        "UV_NO_CONFIG": "1",
        "UV_NO_CACHE": "1",
        "UV_PYTHON_DOWNLOADS": "never",
        "NO_COLOR": "1",
    }


def run_tool(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        args,
        env=tool_env(tmp_path),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"{args}\n{result.stdout}\n{result.stderr}"
    return result


def pip_install_dry_run(
    tmp_path: Path, lock: Path, index_urls: list[str], *extra: str
) -> dict[str, Any]:
    """Run the real pip on ``lock``; returns its installation report."""
    report = tmp_path / f"{lock.name}.report.json"
    first, *rest = index_urls
    run_tool(
        [
            str(VENV_BIN / "pip"),
            "install",
            "--dry-run",
            "--ignore-installed",
            "--only-binary=:all:",
            "--no-cache-dir",
            "--index-url",
            first,
            *(arg for url in rest for arg in ("--extra-index-url", url)),
            "--report",
            str(report),
            *extra,
            "-r",
            str(lock),
        ],
        tmp_path,
    )
    result: dict[str, Any] = json.loads(report.read_text())
    return result


def uv_compile_pins(
    tmp_path: Path, source: str, index_url: str, target: tuple[str, str], *options: str
) -> dict[str, str]:
    """``uv pip compile SOURCE --index-url URL`` for ``target`` (Python version, uv platform)
    with ``options``, run in ``tmp_path``: ``{name: version}`` of the pins it prints or writes
    (with ``-o FILE`` among the options, read from that file)."""
    python_version, platform = target
    result = run_tool(
        [
            str(VENV_BIN / "uv"),
            "pip",
            "compile",
            source,
            "--index-url",
            index_url,
            "--python-version",
            python_version,
            "--python-platform",
            platform,
            "--no-header",
            *options,
        ],
        tmp_path,
    )
    output = options[options.index("-o") + 1] if "-o" in options else None
    text = (tmp_path / output).read_text() if output else result.stdout
    return pins_of(text)


def pins_of(requirements_txt: str) -> dict[str, str]:
    """``{name: version}`` of a requirements.txt's ``name==version`` lines (``name @ URL``
    lines: ``{name: URL}``)."""
    found = {}
    for line in requirements_txt.splitlines():
        if line and not line.startswith((" ", "#", "-")):
            requirement = Requirement(line.rstrip(" \\"))
            found[requirement.name] = requirement.url or next(iter(requirement.specifier)).version
    return found


def installed(report: Mapping[str, Any]) -> dict[str, str]:
    return {item["metadata"]["name"]: item["metadata"]["version"] for item in report["install"]}
