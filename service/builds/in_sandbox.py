"""The program a metadata build runs inside its sandbox; it imports nothing from ``service``.

``python -I in_sandbox.py WORK`` reads ``WORK/job.json`` (the sdist's file name) and:

1. makes an empty virtual environment ``WORK/env`` and installs the wheels in ``WORK/wheels``
   into it with pip, offline (``--no-index --no-deps``): the build requirements, resolved and
   downloaded by the builder before the sandbox started;
2. unpacks the sdist into ``WORK/src`` (tar's ``data`` filter: no links or paths out of it);
3. asks the backend for its wheel build requirements (PEP 517 ``get_requires_for_build_wheel``,
   through ``build.ProjectBuilder``); any that the environment does not satisfy are written to
   ``WORK/result.json`` as ``{"needs": [...]}`` and the builder comes back with them installed;
4. otherwise runs ``prepare_metadata_for_build_wheel`` (``build`` falls back to ``build_wheel``
   and reads METADATA from the wheel) and copies METADATA to ``WORK/out/METADATA``.

Everything the backend prints goes to this process's output, which the builder caps and keeps
the tail of. Any failure exits non-zero with the reason on the last line.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile
import venv
import zipfile
from importlib import metadata
from pathlib import Path

from build import BuildBackendException, BuildException, ProjectBuilder
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name


def _install(work: Path, python: Path) -> None:
    wheels = sorted(str(path) for path in (work / "wheels").glob("*.whl"))
    if not wheels:
        return
    command = [sys.executable, "-m", "pip", "--python", str(python), "install", "--isolated"]
    command += ["--no-index", "--no-deps", "--no-compile", "--no-cache-dir", "--quiet"]
    command += ["--disable-pip-version-check", "--no-warn-script-location", *wheels]
    subprocess.run(command, check=True)


def _unpack(archive: Path, destination: Path) -> Path:
    destination.mkdir()
    if archive.name.endswith(".zip"):
        with zipfile.ZipFile(archive) as opened:
            opened.extractall(destination)
    else:
        with tarfile.open(archive) as opened:
            opened.extractall(destination, filter="data")
    entries = list(destination.iterdir())
    return entries[0] if len(entries) == 1 and entries[0].is_dir() else destination


def _site_packages(env: Path) -> list[str]:
    return [str(path) for path in env.glob("lib/python*/site-packages")]


def _missing(requirements: set[str], env: Path) -> list[str]:
    """The requirements the environment's installed distributions do not satisfy."""
    installed = {
        canonicalize_name(dist.metadata["Name"]): dist.version
        for dist in metadata.distributions(path=_site_packages(env))
    }
    missing = []
    for line in sorted(requirements):
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            missing.append(line)
            continue
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue
        version = installed.get(canonicalize_name(requirement.name))
        if version is None or not requirement.specifier.contains(version, prereleases=True):
            missing.append(line)
    return missing


def main(work: Path) -> int:
    job = json.loads((work / "job.json").read_text())
    env = work / "env"
    venv.EnvBuilder(with_pip=False, symlinks=True, clear=True).create(env)
    python = env / "bin" / "python"
    _install(work, python)
    source = _unpack(work / job["sdist"], work / "src")
    builder = ProjectBuilder(source, python_executable=str(python))
    needed = _missing(builder.build_system_requires, env)
    needed += _missing(builder.get_requires_for_build("wheel"), env)
    if needed:
        (work / "result.json").write_text(json.dumps({"needs": sorted(set(needed))}))
        return 0
    out = work / "out"
    out.mkdir()
    found = Path(builder.metadata_path(out)) / "METADATA"
    shutil.copyfile(found, out / "METADATA")
    (work / "result.json").write_text(json.dumps({"metadata": "out/METADATA"}))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(Path(sys.argv[1])))
    except BuildBackendException as exc:
        print(f"resolvd: the build backend failed: {exc}", flush=True)
    except (BuildException, subprocess.CalledProcessError, OSError, ValueError) as exc:
        print(f"resolvd: {type(exc).__name__}: {exc}", flush=True)
    except MemoryError:
        print("resolvd: MemoryError: the build ran out of memory", flush=True)
    sys.exit(1)
