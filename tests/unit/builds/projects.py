"""Projects to build: sdists with a real ``setup.py``, and a real setuptools wheel to build with.

The setuptools wheel is repackaged from the one installed in this environment (a dev
dependency), so the loopback index serves the build backend without any download.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import io
import zipfile
from importlib import metadata

from service.index.models import DistFile
from tests.indexserver import Project, Release

__all__ = [
    "BUILD_SYSTEM",
    "HOSTILE_SETUPS",
    "computed_project",
    "hostile_project",
    "installed_wheel",
    "sdist_file",
    "setuptools_project",
]

BUILD_SYSTEM = (
    '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n'
)

# install_requires computed at build time: what an sdist's PKG-INFO 2.1 cannot say statically.
COMPUTED_SETUP = """\
from setuptools import setup

parts = ["click", "blinker"]
setup(
    name="computed",
    version="{version}",
    install_requires=[name + ">=1" for name in parts],
    py_modules=[],
)
"""

HOSTILE_SETUPS = {
    # Reaching the loopback index server from inside the sandbox (its own loopback is empty).
    "network": """\
import socket, sys
try:
    socket.create_connection(("127.0.0.1", {port}), timeout=3).close()
except OSError as exc:
    sys.exit(f"network blocked: {{exc}}")
open("{marker}", "w").write("the sandbox let a connection out")
""",
    # Writing beside the service's code, outside the build's temporary directory.
    "write": """\
import sys
try:
    open("{marker}", "w").write("the sandbox let a write out")
except OSError as exc:
    sys.exit(f"write blocked: {{exc}}")
""",
    # Allocating far past memory_mb.
    "memory": """\
hog = bytearray(4 * 1024 * 1024 * 1024)
""",
}


@functools.cache
def installed_wheel(name: str) -> tuple[str, bytes]:
    """A wheel of the installed distribution ``name``: ``(filename, bytes)``, RECORD rewritten."""
    dist = metadata.distribution(name)
    members: dict[str, bytes] = {}
    for path in dist.files or ():
        text = str(path)
        if text.startswith("..") or "__pycache__" in text or text.endswith((".pyc", "RECORD")):
            continue
        if text.endswith(("INSTALLER", "REQUESTED", "direct_url.json")):
            continue
        located = dist.locate_file(path)
        members[text] = located.read_bytes()  # type: ignore[attr-defined]
    dist_info = next(p.split("/")[0] for p in members if p.split("/")[0].endswith(".dist-info"))

    def digest(data: bytes) -> str:
        raw = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
        return f"sha256={raw.decode()}"

    record = "".join(f"{p},{digest(d)},{len(d)}\n" for p, d in members.items())
    members[f"{dist_info}/RECORD"] = (record + f"{dist_info}/RECORD,,\n").encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for member, data in sorted(members.items()):
            info = zipfile.ZipInfo(member, date_time=(2020, 2, 2, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    filename = f"{dist.metadata['Name'].replace('-', '_')}-{dist.version}-py3-none-any.whl"
    return filename, buffer.getvalue()


def setuptools_project() -> Project:
    """setuptools, published as a wheel only (the build backend the test sdists name)."""
    filename, content = installed_wheel("setuptools")
    version = filename.split("-")[1]
    return Project("setuptools", [Release(version, wheel=False, prebuilt=[(filename, content)])])


def computed_project(version: str = "1.0") -> Project:
    """``computed``: an sdist only, whose setup.py computes install_requires (click, blinker)."""
    files = {"pyproject.toml": BUILD_SYSTEM, "setup.py": COMPUTED_SETUP.format(version=version)}
    release = Release(
        version, wheel=False, sdist=True, sdist_metadata_version="2.1", sdist_files=files
    )
    return Project("computed", [release])


def hostile_project(name: str, setup: str, version: str = "1.0") -> Project:
    """An sdist whose setup.py does ``setup`` (one of ``HOSTILE_SETUPS``, formatted)."""
    files = {"pyproject.toml": BUILD_SYSTEM, "setup.py": setup}
    release = Release(
        version, wheel=False, sdist=True, sdist_metadata_version="2.1", sdist_files=files
    )
    return Project(name, [release])


def sdist_file(sha256: str, name: str = "demo", version: str = "1.0") -> DistFile:
    """A page's entry for an sdist nobody serves (port 9 discards), named by ``sha256``."""
    filename = f"{name}-{version}.tar.gz"
    return DistFile(
        filename=filename,
        url=f"http://127.0.0.1:9/files/{filename}",
        kind="sdist",
        version=version,
        hashes={"sha256": sha256},
    )
