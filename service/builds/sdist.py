"""Reading an sdist without running it: its ``[build-system]`` requirements.

Pure and bounded: the archive is opened, never unpacked, and only ``<root>/pyproject.toml`` is
read (at most ``MAX_PYPROJECT_BYTES``). PEP 517/518 defaults apply to an sdist without one.
"""

from __future__ import annotations

import tarfile
import tomllib
import zipfile
from pathlib import Path

__all__ = ["DEFAULT_REQUIRES", "MAX_PYPROJECT_BYTES", "SdistError", "read_build_requires"]

# What pip and build assume for a project without [build-system] (PEP 517's legacy backend).
DEFAULT_REQUIRES = ("setuptools>=40.8.0",)
MAX_PYPROJECT_BYTES = 1024 * 1024


class SdistError(ValueError):
    """An sdist that cannot be read, or whose pyproject.toml is invalid."""


def _read_pyproject(archive: Path) -> bytes | None:
    def at_root(name: str) -> bool:
        parts = name.strip("/").split("/")
        return len(parts) == 2 and parts[1] == "pyproject.toml"

    if archive.name.endswith(".zip"):
        with zipfile.ZipFile(archive) as opened:
            info = next((i for i in opened.infolist() if at_root(i.filename)), None)
            if info is None:
                return None
            if info.file_size > MAX_PYPROJECT_BYTES:
                raise SdistError("pyproject.toml is too large")
            return opened.read(info)
    with tarfile.open(archive) as tar:
        for member in tar:
            if member.isfile() and at_root(member.name):
                if member.size > MAX_PYPROJECT_BYTES:
                    raise SdistError("pyproject.toml is too large")
                extracted = tar.extractfile(member)
                return None if extracted is None else extracted.read(MAX_PYPROJECT_BYTES)
    return None


def read_build_requires(archive: Path) -> list[str]:
    """The sdist's ``build-system.requires`` (PEP 518), or the default without one."""
    try:
        raw = _read_pyproject(archive)
    except (tarfile.TarError, zipfile.BadZipFile, OSError, EOFError) as exc:
        raise SdistError(f"the sdist cannot be read: {exc}") from exc
    if raw is None:
        return list(DEFAULT_REQUIRES)
    try:
        pyproject = tomllib.loads(raw.decode())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SdistError(f"pyproject.toml is invalid: {exc}") from exc
    build_system = pyproject.get("build-system")
    if build_system is None:
        return list(DEFAULT_REQUIRES)
    requires = build_system.get("requires") if isinstance(build_system, dict) else None
    if not isinstance(requires, list) or not all(isinstance(r, str) for r in requires):
        raise SdistError("pyproject.toml's [build-system] has no list of strings 'requires'")
    return list(requires)
