"""Lock exports, end to end: a real cluster resolves, and real installers consume the exports.

The job resolves ``flask`` from the configured ``corp`` index and ``toolbelt[cli]`` from a
second index named by URL, for the Python running these tests, so pip and uv can check the
exports against this interpreter: ``pip install --dry-run --require-hashes -r
requirements.txt``, ``pip install --dry-run -r pylock.toml`` and ``uv pip install --dry-run -r
pylock.toml`` must all accept them and pick exactly the resolved versions, from the loopback
indexes only (no configuration, cache or index of the machine is seen). The pip report must
describe what pip itself would download.
"""

from __future__ import annotations

import platform
import re
import sys
import tomllib
from pathlib import Path

import httpx
import pytest

from tests.indexserver import IndexServer, IndexSpec, Project, Release
from tests.support.cluster import Cluster, assert_not_internal
from tests.support.installers import VENV_BIN, installed, pip_install_dry_run, run_tool

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

PYTHON_VERSION = f"{sys.version_info.major}.{sys.version_info.minor}"

MIRROR = IndexSpec(
    "mirror",
    [
        Project("toolbelt", [Release("1.2.0", extras={"cli": ["click>=8"]})]),
    ],
)
PINS = {
    "flask": "3.0.0",
    "click": "8.1.7",
    "blinker": "1.8.2",
    "itsdangerous": "2.2.0",
    "toolbelt": "1.2.0",
}


def this_platform() -> str:
    """The uv platform name of this machine (the world's wheels are all ``py3-none-any``)."""
    if sys.platform != "linux":
        pytest.skip("the installers are checked on Linux, where the target is manylinux")
    return f"{platform.machine()}-manylinux_2_28"


# What each format travels as: media type and attachment filename.
LOCK_FILES = {
    "pylock": ("application/toml", "pylock.toml"),
    "requirements": ("text/plain; charset=utf-8", "requirements.txt"),
    "pip-report": ("application/json", "pip-report.json"),
}


def fetch_lock(cluster: Cluster, job_id: str, lock_format: str) -> httpx.Response:
    """``GET /jobs/{id}/lock?format=``, which must succeed as an attachment of its type."""
    response = cluster.http.get(f"/jobs/{job_id}/lock", params={"format": lock_format})
    assert response.status_code == 200, response.text
    media_type, filename = LOCK_FILES[lock_format]
    assert response.headers["content-type"] == media_type
    assert response.headers["content-disposition"] == f'attachment; filename="{filename}"'
    return response


@pytest.fixture
def mirror(index_server: IndexServer) -> str:
    return index_server.add_index(MIRROR)


@pytest.fixture
def locked(cluster: Cluster, world: str, mirror: str) -> tuple[Cluster, str]:
    """A cluster and the id of a job it resolved for this interpreter from both indexes."""
    cluster.serve()
    cluster.wait_ready()
    body = {
        "requirements": ["flask>=2", "toolbelt[cli]"],
        "indexes": [{"name": "corp"}, {"url": mirror}],
        "environment": {"python_version": PYTHON_VERSION, "platform": this_platform()},
    }
    response = cluster.submit(body)
    assert response.status_code == 202, response.text
    document = cluster.wait_job(response.json()["id"])
    assert_not_internal(document)
    assert document["status"] == "succeeded", document["failure"]
    assert {p["name"]: p["version"] for p in document["result"]["packages"]} == PINS
    return cluster, document["id"]


class TestRequirementsExport:
    def test_pip_installs_it_in_hash_checking_mode(
        self, locked: tuple[Cluster, str], world: str, mirror: str, tmp_path: Path
    ) -> None:
        """``pip install --require-hashes -r requirements.txt`` picks exactly the resolution."""
        cluster, job_id = locked
        response = cluster.http.get(f"/jobs/{job_id}/lock", params={"format": "requirements"})
        assert response.status_code == 200, response.text
        text = response.text
        assert f"--index-url {world}\n--extra-index-url {mirror}\n" in text
        assert "toolbelt[cli]==1.2.0 \\\n" in text
        assert "    # via -r requirements.in\n" in text
        lock = tmp_path / "requirements.txt"
        lock.write_text(text)
        report = pip_install_dry_run(tmp_path, lock, [world, mirror], "--require-hashes")
        assert installed(report) == PINS


class TestPylockExport:
    def test_pip_and_uv_install_it(
        self, locked: tuple[Cluster, str], world: str, mirror: str, tmp_path: Path
    ) -> None:
        """pip's and uv's pylock readers accept the lock and pick exactly the resolution."""
        cluster, job_id = locked
        response = fetch_lock(cluster, job_id, "pylock")
        document = tomllib.loads(response.text)
        assert document["created-by"] == "resolvd"
        assert {p["name"]: p["index"] for p in document["packages"]} == {
            name: mirror if name == "toolbelt" else world for name in PINS
        }
        lock = tmp_path / "pylock.toml"
        lock.write_text(response.text)

        assert installed(pip_install_dry_run(tmp_path, lock, [world, mirror])) == PINS

        venv = tmp_path / "venv"
        run_tool([str(VENV_BIN / "uv"), "venv", "--python", sys.executable, str(venv)], tmp_path)
        uv = run_tool(
            [
                str(VENV_BIN / "uv"),
                "pip",
                "install",
                "--dry-run",
                "--python",
                str(venv / "bin" / "python"),
                "--index-url",
                world,
                "-r",
                str(lock),
            ],
            tmp_path,
        )
        would_install = dict(re.findall(r"^ \+ (\S+)==(\S+)$", uv.stderr, flags=re.MULTILINE))
        assert would_install == PINS, uv.stderr


class TestPipReportExport:
    def test_it_describes_what_pip_would_download(
        self, locked: tuple[Cluster, str], world: str, mirror: str, tmp_path: Path
    ) -> None:
        """Version "1", the resolution's pins, and pip's own ``download_info`` for each file."""
        cluster, job_id = locked
        response = fetch_lock(cluster, job_id, "pip-report")
        ours = response.json()
        assert ours["version"] == "1"
        assert installed(ours) == PINS
        requested = {item["metadata"]["name"] for item in ours["install"] if item["requested"]}
        assert requested == {"flask", "toolbelt"}

        lock = tmp_path / "requirements.txt"
        lock.write_text(fetch_lock(cluster, job_id, "requirements").text)
        pips = pip_install_dry_run(tmp_path, lock, [world, mirror], "--require-hashes")
        assert {i["metadata"]["name"]: i["download_info"] for i in ours["install"]} == {
            i["metadata"]["name"]: i["download_info"] for i in pips["install"]
        }
        assert ours["environment"].keys() == pips["environment"].keys()
        for key in ("python_version", "sys_platform", "platform_machine", "implementation_name"):
            assert ours["environment"][key] == pips["environment"][key]


class TestLockRefusals:
    def test_a_job_without_a_resolution_has_no_lock(
        self, cluster: Cluster, index_server: IndexServer
    ) -> None:
        """409 naming the status, for a running job and for a failed one."""
        cluster.serve()
        cluster.wait_ready()
        index_server.inject("/corp/simple/slowpoke/*", delay=3)
        slow = cluster.submit({"requirements": ["slowpoke"], "indexes": [{"name": "corp"}]})
        running = cluster.http.get(f"/jobs/{slow.json()['id']}/lock")
        assert running.status_code == 409
        assert running.headers["content-type"] == "application/problem+json"
        assert running.json()["type"] == "urn:resolvd:problem:job-not-succeeded"
        assert re.search(r"is (queued|running):", running.json()["detail"])

        failing = cluster.submit({"requirements": ["flask>=9"], "indexes": [{"name": "corp"}]})
        document = cluster.wait_job(failing.json()["id"])
        assert document["status"] == "failed"
        failed = cluster.http.get(f"/jobs/{document['id']}/lock", params={"format": "pylock"})
        assert failed.status_code == 409
        assert "is failed (unsatisfiable):" in failed.json()["detail"]

    def test_unknown_jobs_and_formats_are_refused(self, locked: tuple[Cluster, str]) -> None:
        """404 for a job nobody issued; 400 naming ``format`` for a format nobody offers."""
        cluster, job_id = locked
        unknown = cluster.http.get("/jobs/nope/lock")
        assert unknown.status_code == 404
        assert unknown.json()["type"] == "urn:resolvd:problem:job-not-found"
        bad = cluster.http.get(f"/jobs/{job_id}/lock", params={"format": "poetry"})
        assert bad.status_code == 400
        assert bad.headers["content-type"] == "application/problem+json"
        assert [error["field"] for error in bad.json()["errors"]] == ["format"]

    def test_a_lock_is_visible_only_to_the_client_that_made_the_job(self, cluster: Cluster) -> None:
        """With tokens on, another client's job is 404, like ``GET /jobs/{id}``."""
        cluster.serve(
            env={
                "RESOLVD_AUTH_TOKENS_ENV": "LOCK_TEST_TOKENS",
                "LOCK_TEST_TOKENS": "alice:alice-token bob:bob-token",
            }
        )
        alice = {"Authorization": "Bearer alice-token"}
        bob = {"Authorization": "Bearer bob-token"}
        cluster.wait_ready()
        job = cluster.submit(
            {"requirements": ["click"], "indexes": [{"name": "corp"}]}, headers=alice
        ).json()
        until_done = cluster.http.get(f"/jobs/{job['id']}", params={"wait": 30}, headers=alice)
        assert until_done.json()["status"] == "succeeded"
        assert cluster.http.get(f"/jobs/{job['id']}/lock", headers=alice).status_code == 200
        assert cluster.http.get(f"/jobs/{job['id']}/lock", headers=bob).status_code == 404
