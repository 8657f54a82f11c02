"""Universal locks, end to end: one job, its exports installed by real pip and uv on two targets.

The index holds a project whose dependencies differ by platform and Python version
(``maclib`` on macOS only; ``numpyish>=2`` from Python 3.11, ``<2`` before) and a wheel-only
``core`` with one wheel per Python and platform. A universal job for Python ``>=3.10`` must
produce one lock whose ``requirements`` and ``pylock`` exports uv installs correctly for Linux
x86_64 with Python 3.12 and for macOS arm64 with Python 3.10 (``--python-platform`` and
``--python-version`` make uv evaluate the markers for that target), and pip for the Python and
platform running these tests (pip evaluates markers only for its own interpreter).
"""

from __future__ import annotations

import platform
import re
import sys
import tomllib
from pathlib import Path

import pytest

from tests.indexserver import IndexServer, IndexSpec, Project, Release
from tests.support.cluster import Cluster, assert_not_internal
from tests.support.installers import VENV_BIN, installed, pip_install_dry_run, run_tool

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

CORE_TAGS = tuple(
    f"cp3{minor}-cp3{minor}-{platform_tag}"
    for minor in (10, 11, 12)
    for platform_tag in (
        "manylinux_2_17_x86_64",
        "manylinux_2_17_aarch64",
        "macosx_11_0_arm64",
    )
)
SPEC = IndexSpec(
    "uni",
    [
        Project(
            "app",
            [
                Release(
                    "1.0",
                    requires=[
                        "maclib; sys_platform == 'darwin'",
                        "core",
                        "numpyish>=2; python_version >= '3.11'",
                        "numpyish<2; python_version < '3.11'",
                    ],
                )
            ],
        ),
        Project("maclib", [Release("1.0")]),
        Project("numpyish", [Release("1.5"), Release("2.1")]),
        Project("core", [Release("1.0", wheel_tags=CORE_TAGS)]),
    ],
)
LINUX_312 = {"app": "1.0", "core": "1.0", "numpyish": "2.1"}
MACOS_310 = {"app": "1.0", "core": "1.0", "maclib": "1.0", "numpyish": "1.5"}


@pytest.fixture
def universal_job(cluster: Cluster, index_server: IndexServer) -> tuple[Cluster, str, str]:
    """A cluster, the id of its universal job for Python >=3.10, and the index URL."""
    url = index_server.add_index(SPEC)
    cluster.serve()
    cluster.wait_ready()
    body = {
        "requirements": ["app"],
        "indexes": [{"url": url}],
        "universal": True,
        "requires_python": ">=3.10",
    }
    response = cluster.submit(body)
    assert response.status_code == 202, response.text
    document = cluster.wait_job(response.json()["id"])
    assert_not_internal(document)
    assert document["status"] == "succeeded", document["failure"]
    return cluster, document["id"], url


def uv_would_install(
    tmp_path: Path, lock: Path, url: str, python_platform: str, python_version: str
) -> dict[str, str]:
    target = tmp_path / f"target-{python_platform}-{python_version}"
    result = run_tool(
        [
            str(VENV_BIN / "uv"),
            "pip",
            "install",
            "--dry-run",
            "--python",
            sys.executable,
            "--target",
            str(target),
            "--python-platform",
            python_platform,
            "--python-version",
            python_version,
            "--index-url",
            url,
            "-r",
            str(lock),
        ],
        tmp_path,
    )
    return dict(re.findall(r"^ \+ (\S+)==(\S+)$", result.stderr, flags=re.MULTILINE))


def host_pins() -> dict[str, str]:
    """What pip on this interpreter must pick from the lock."""
    if sys.platform != "linux" or platform.machine() not in ("x86_64", "aarch64"):
        pytest.skip("pip checks the lock on Linux x86_64/aarch64, where the test wheels are")
    pins = {"app": "1.0", "core": "1.0"}
    pins["numpyish"] = "2.1" if sys.version_info >= (3, 11) else "1.5"
    return pins


class TestUniversalExports:
    def test_the_result_holds_both_forks_with_markers(
        self, universal_job: tuple[Cluster, str, str]
    ) -> None:
        """Each Python range gets its numpyish; maclib is marked for macOS; core lists every
        wheel usable for Python >=3.10."""
        cluster, job_id, _ = universal_job
        result = cluster.http.get(f"/jobs/{job_id}").json()["result"]
        entries = {(p["name"], p["version"]): p for p in result["packages"]}
        assert entries[("numpyish", "1.5")]["markers"] == "python_full_version < '3.11'"
        assert entries[("numpyish", "2.1")]["markers"] == "python_full_version >= '3.11'"
        assert entries[("maclib", "1.0")]["markers"] == "sys_platform == 'darwin'"
        assert entries[("core", "1.0")]["markers"] is None
        assert len(entries[("core", "1.0")]["files"]) == len(CORE_TAGS)
        assert result["requires_python"] == ">=3.10"

    def test_requirements_installs_on_each_target(
        self, universal_job: tuple[Cluster, str, str], tmp_path: Path
    ) -> None:
        """uv picks each target's entries from requirements.txt; pip (hash-checking) picks this
        interpreter's."""
        cluster, job_id, url = universal_job
        response = cluster.http.get(f"/jobs/{job_id}/lock", params={"format": "requirements"})
        assert response.status_code == 200, response.text
        text = response.text
        assert "maclib==1.0 ; sys_platform == 'darwin' \\\n" in text
        # core: every wheel of the domain; app, maclib and both numpyish: their one wheel each.
        assert text.count("--hash=sha256:") == len(CORE_TAGS) + 4
        lock = tmp_path / "requirements.txt"
        lock.write_text(text)
        assert uv_would_install(tmp_path, lock, url, "x86_64-manylinux_2_28", "3.12") == LINUX_312
        assert uv_would_install(tmp_path, lock, url, "aarch64-apple-darwin", "3.10") == MACOS_310
        report = pip_install_dry_run(tmp_path, lock, [url], "--require-hashes")
        assert installed(report) == host_pins()

    def test_pylock_installs_on_each_target(
        self, universal_job: tuple[Cluster, str, str], tmp_path: Path
    ) -> None:
        """The pylock.toml carries requires-python, markers and every wheel; uv and pip install
        the right entries from it."""
        cluster, job_id, url = universal_job
        response = cluster.http.get(f"/jobs/{job_id}/lock", params={"format": "pylock"})
        assert response.status_code == 200, response.text
        document = tomllib.loads(response.text)
        assert document["requires-python"] == ">=3.10"
        assert "environments" not in document
        core = next(p for p in document["packages"] if p["name"] == "core")
        assert len(core["wheels"]) == len(CORE_TAGS)
        markers = {(p["name"], p["version"]): p.get("marker") for p in document["packages"]}
        assert markers[("maclib", "1.0")] == 'sys_platform == "darwin"'
        lock = tmp_path / "pylock.toml"
        lock.write_text(response.text)
        assert uv_would_install(tmp_path, lock, url, "x86_64-manylinux_2_28", "3.12") == LINUX_312
        assert uv_would_install(tmp_path, lock, url, "aarch64-apple-darwin", "3.10") == MACOS_310
        assert installed(pip_install_dry_run(tmp_path, lock, [url])) == host_pins()

    def test_pip_report_is_refused_for_a_universal_lock(
        self, universal_job: tuple[Cluster, str, str]
    ) -> None:
        """A pip report describes one installation: 409 naming the formats that fit."""
        cluster, job_id, _ = universal_job
        response = cluster.http.get(f"/jobs/{job_id}/lock", params={"format": "pip-report"})
        assert response.status_code == 409
        assert "pylock" in response.json()["detail"]
