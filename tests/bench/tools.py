"""One timed run of ``uv pip compile`` or ``pip install --dry-run``, confined to loopback.

Both clients run with an environment built from nothing (``make_tool_env``): no ``PIP_*`` or
``UV_*`` variable leaks in from the machine (this one sets ``PIP_FIND_LINKS`` and a pip
constraints file in ``/etc/xdg/pip``), config files are off (``--no-config``,
``PIP_CONFIG_FILE=/dev/null``), and every proxy variable points at a closed loopback port with
only loopback exempt, so a request to any other host fails instead of leaving the machine. The
index server's request log then shows what each client really fetched.
"""

from __future__ import annotations

import json
import os
import re
import resource
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from packaging.utils import canonicalize_name

__all__ = [
    "PLATFORM",
    "PYTHON_VERSION",
    "UNIVERSAL_DOMAIN",
    "ToolRun",
    "make_tool_env",
    "merge_pins",
    "pip_platform_tags",
    "run_pip",
    "run_uv",
]

PYTHON_VERSION = "3.11"
# The universal rows' domain (``requires_python``, ``environments``): every Linux machine and
# interpreter of CPython 3.11's line, what the /opt wheels can serve.
UNIVERSAL_DOMAIN = (">=3.11, <3.12", ("sys_platform == 'linux'",))
# uv's ``--python-platform`` spelling, also what resolvd's ``environment.platform`` takes. Not
# 2_28: the wheels under /opt were fetched for this glibc 2.36 host and a few that jupyter needs
# (debugpy 1.8.22, cryptography 50) only ship manylinux_2_34, so 2_28 leaves jupyter unsolvable.
PLATFORM = "x86_64-manylinux_2_34"
# Any port nothing listens on: a request that ignores NO_PROXY fails fast here.
_DEAD_PROXY = "http://127.0.0.1:9"
_MANYLINUX = re.compile(r"^(?P<arch>[a-z0-9_]+)-manylinux_2_(?P<minor>\d+)$")
_UV_PIN = re.compile(r"^(?P<name>[A-Za-z0-9._-]+)(?:\[[^\]]*\])?==(?P<version>\S+)")


@dataclass(frozen=True)
class ToolRun:
    """How one client run went: wall seconds, CPU seconds (user + system, children included),
    and the resolution when it printed one."""

    seconds: float
    ok: bool
    error: str = ""
    timed_out: bool = False
    resolution: dict[str, str] = field(default_factory=dict)
    cpu_seconds: float | None = None


def pip_platform_tags(platform: str = PLATFORM) -> list[str]:
    """pip ``--platform`` values equivalent to uv's ``<arch>-manylinux_2_<N>``.

    pip takes ``--platform`` literally (it only widens the legacy ``manylinux2014``/``2010``
    aliases), so a glibc floor has to be spelled out as every older tag too.
    """
    match = _MANYLINUX.match(platform)
    if match is None:
        raise ValueError(f"not an <arch>-manylinux_2_<N> platform: {platform!r}")
    arch, minor = match["arch"], int(match["minor"])
    tags = [f"manylinux_2_{m}_{arch}" for m in range(minor, 4, -1)]
    legacy = [(17, "manylinux2014"), (12, "manylinux2010"), (5, "manylinux1")]
    return tags + [f"{alias}_{arch}" for floor, alias in legacy if minor >= floor]


def make_tool_env(home: Path, *, live: bool = False) -> dict[str, str]:
    """A clean environment for a client: loopback only, no inherited pip/uv configuration.

    ``live``: the real index may be reached (no dead proxy), trusting the machine's CA bundle
    (``SSL_CERT_FILE``) as uv does when told to.
    """
    home.mkdir(parents=True, exist_ok=True)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_CACHE_HOME": str(home / "cache"),
        "LANG": "C.UTF-8",
        "UV_NO_CONFIG": "1",
        "UV_PYTHON_DOWNLOADS": "never",
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_CONSTRAINT": "",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PIP_NO_INPUT": "1",
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }
    if live:
        for variable in ("SSL_CERT_FILE", "SSL_CERT_DIR"):
            if variable in os.environ:
                env[variable] = os.environ[variable]
        return env
    for variable in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        env[variable] = env[variable.lower()] = _DEAD_PROXY
    return env


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run(
    command: Sequence[str], env: dict[str, str], timeout: float
) -> tuple[float, str, bool, float | None]:
    """Run ``command``; ``(wall seconds, error text or "", timed out, CPU seconds)``.

    CPU is the growth of this process's reaped-children usage: the benchmark runs one client
    at a time from one thread, so it is the client's (its own children included).
    """
    started, cpu = time.perf_counter(), _children_cpu()
    try:
        done = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        return time.perf_counter() - started, f"timed out after {timeout:.0f}s", True, None
    elapsed = time.perf_counter() - started
    error = "" if done.returncode == 0 else (done.stderr.strip() or done.stdout.strip())
    return elapsed, error[-2000:], False, _children_cpu() - cpu


def run_uv(
    requirements: Path,
    index_url: str,
    *,
    home: Path,
    cache_dir: Path | None,
    timeout: float,
    output: Path | None = None,
    offline: bool = False,
    live: bool = False,
    universal: bool = False,
) -> ToolRun:
    """``uv pip compile``: ``cache_dir=None`` means ``--no-cache`` (cold); ``offline`` adds
    ``--offline`` (the warm cache only, nothing revalidated); ``live`` may reach a real index;
    ``universal``: ``uv lock`` over ``UNIVERSAL_DOMAIN`` instead (see ``run_uv_lock``)."""
    if universal:
        return run_uv_lock(
            requirements,
            index_url,
            home=home,
            cache_dir=cache_dir,
            timeout=timeout,
            output=output,
            offline=offline,
        )
    uv = Path(sys.executable).with_name("uv")
    command = [
        str(uv),
        "pip",
        "compile",
        "--no-config",
        "--python",
        sys.executable,
        "--python-version",
        PYTHON_VERSION,
        *(("--universal",) if universal else ("--python-platform", PLATFORM)),
        "--index-url",
        index_url,
        "--no-header",
        "--no-annotate",
        "--quiet",
        "--output-file",
        str(output) if output else os.devnull,
    ]
    command += ["--no-cache"] if cache_dir is None else ["--cache-dir", str(cache_dir)]
    command += ["--offline"] if offline else []
    command += ["--native-tls"] if live else []
    command.append(str(requirements))
    if output is not None:
        output.unlink(missing_ok=True)
    seconds, error, timed_out, cpu = _run(command, make_tool_env(home, live=live), timeout)
    resolution = _read_uv_output(output) if output is not None and not error else {}
    return ToolRun(seconds, not error, error, timed_out, resolution, cpu)


def run_uv_lock(
    requirements: Path,
    index_url: str,
    *,
    home: Path,
    cache_dir: Path | None,
    timeout: float,
    output: Path | None = None,
    offline: bool = False,
) -> ToolRun:
    """``uv lock`` of a project whose dependencies are ``requirements``' lines, over
    ``UNIVERSAL_DOMAIN`` (``uv pip compile --universal`` takes no ``environments``, and the
    /opt indexes hold Linux wheels only). The lock is removed first: every run resolves anew.
    ``output`` receives the lock's pins as ``name==version`` lines."""
    project = requirements.with_suffix("")
    project.mkdir(parents=True, exist_ok=True)
    dependencies = [line for line in requirements.read_text().splitlines() if line.strip()]
    requires_python, environments = UNIVERSAL_DOMAIN
    (project / "pyproject.toml").write_text(
        f'[project]\nname = "bench-project"\nversion = "0"\n'
        f"requires-python = {json.dumps(requires_python)}\n"
        f"dependencies = {json.dumps(dependencies)}\n"
        f"[tool.uv]\npackage = false\nenvironments = {json.dumps(list(environments))}\n"
    )
    lock = project / "uv.lock"
    lock.unlink(missing_ok=True)
    uv = Path(sys.executable).with_name("uv")
    command = [
        str(uv),
        "lock",
        "--quiet",
        "--directory",
        str(project),
        "--python",
        sys.executable,
        "--default-index",
        index_url,
    ]
    command += ["--no-cache"] if cache_dir is None else ["--cache-dir", str(cache_dir)]
    command += ["--offline"] if offline else []
    seconds, error, timed_out, cpu = _run(command, make_tool_env(home), timeout)
    resolution: dict[str, str] = {}
    if not error:
        packages = tomllib.loads(lock.read_text()).get("package", [])
        resolution = merge_pins(
            (p["name"], p["version"]) for p in packages if p["name"] != "bench-project"
        )
    if output is not None:
        output.write_text("".join(f"{name}=={v}\n" for name, v in resolution.items()))
    return ToolRun(seconds, not error, error, timed_out, resolution, cpu)


def run_pip(
    requirements: Path,
    index_url: str,
    *,
    home: Path,
    report: Path,
    timeout: float,
) -> ToolRun:
    """``pip install --dry-run --report``: a full resolution for the target, nothing installed."""
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--dry-run",
        "--quiet",
        "--ignore-installed",
        "--no-cache-dir",
        "--report",
        str(report),
        "--index-url",
        index_url,
        "--python-version",
        PYTHON_VERSION,
        "--only-binary=:all:",
    ]
    for tag in pip_platform_tags():
        command += ["--platform", tag]
    command += ["-r", str(requirements)]
    report.unlink(missing_ok=True)
    seconds, error, timed_out, cpu = _run(command, make_tool_env(home), timeout)
    resolution = _read_pip_report(report) if not error else {}
    return ToolRun(seconds, not error, error, timed_out, resolution, cpu)


def _read_uv_output(path: Path) -> dict[str, str]:
    pins = (
        (match["name"], match["version"])
        for line in path.read_text().splitlines()
        if (match := _UV_PIN.match(line.strip()))
    )
    return merge_pins(pins)


def merge_pins(pins: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Normalized name -> version; a universal lock's several versions of one name (under
    disjoint markers) become one sorted, comma-joined value, so locks compare as dicts."""
    versions: dict[str, set[str]] = {}
    for name, version in pins:
        versions.setdefault(str(canonicalize_name(name)), set()).add(version)
    return {name: ",".join(sorted(found)) for name, found in versions.items()}


def _read_pip_report(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    report = json.loads(path.read_text())
    return {
        str(canonicalize_name(item["metadata"]["name"])): item["metadata"]["version"]
        for item in report.get("install", [])
    }
