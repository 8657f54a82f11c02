"""Metadata builds end to end: real API, worker and builder processes, a real sandbox.

The loopback index publishes ``computed``, an sdist whose ``setup.py`` computes its
``install_requires`` (so its PKG-INFO cannot be trusted), setuptools as a wheel, and sdists
whose ``setup.py`` tries to escape: to reach the network, write outside its work directory,
allocate past the memory limit. With builds on, ``computed`` resolves and is built once for
the whole fleet; the hostile ones fail as ``build_failed`` and nothing reaches out; with builds
off, the job fails with the hint naming ``dependency_metadata`` and ``[builds] enabled``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.indexserver import IndexServer, IndexSpec
from tests.support.cluster import PROJECTS, Cluster, assert_not_internal
from tests.unit.builds.projects import (
    HOSTILE_SETUPS,
    computed_project,
    hostile_project,
    setuptools_project,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

# Where a hostile build would leave its mark: inside the service's own installation, which the
# sandbox sees read-only.
MARKER = Path(sys.prefix) / "resolvd-escaped-the-sandbox"


def build_env(**extra: str) -> dict[str, str]:
    return {
        "RESOLVD_BUILDS_ENABLED": "true",
        "RESOLVD_BUILDS_MEMORY_MB": "512",
        "RESOLVD_BUILDS_TIMEOUT_SECONDS": "240",
        **extra,
    }


@pytest.fixture
def buildable(index_server: IndexServer, world: str) -> str:
    """The ``corp`` index with the small world plus what builds need and the hostile sdists."""
    hostile = [
        hostile_project(f"hostile-{kind}", setup.format(port=index_server.port, marker=MARKER))
        for kind, setup in HOSTILE_SETUPS.items()
    ]
    spec = IndexSpec("corp", [*PROJECTS, setuptools_project(), computed_project(), *hostile])
    return index_server.add_index(spec)


def job(cluster: Cluster, requirements: list[str], deadline: float = 300) -> dict[str, Any]:
    response = cluster.submit({"requirements": requirements, "deadline_seconds": deadline})
    assert response.status_code in (200, 202), response.text
    document = cluster.wait_job(response.json()["id"], timeout=deadline + 30)
    assert_not_internal(document)
    return document


def metric(cluster: Cluster, line_prefix: str) -> float:
    for line in cluster.http.get("/metrics").text.splitlines():
        if line.startswith(line_prefix):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def pins(document: dict[str, Any]) -> dict[str, str]:
    assert document["status"] == "succeeded", document["failure"]
    return {p["name"]: p["version"] for p in document["result"]["packages"]}


class TestBuildsOn:
    def test_built_once_for_the_fleet(self, cluster: Cluster, buildable: str) -> None:
        """The sdist resolves; a second job on a second worker (cold cache) reuses the build."""
        env = build_env()
        cluster.env.update(env)
        cluster.serve("--no-worker")
        builder = cluster.start("builder", "builder")
        first = cluster.worker("worker-1")
        cluster.wait_ready()
        assert pins(job(cluster, ["computed"])) == {
            "computed": "1.0",
            "click": "8.1.7",
            "blinker": "1.8.2",
        }
        assert metric(cluster, 'resolvd_builds_total{outcome="built"}') == 1
        first.stop()
        cluster.services.remove(first)
        # Another worker, whose metadata cache is its own memory (no Redis answers at port 9):
        # only the build store can answer it.
        cluster.start(
            "worker-2",
            "worker",
            "--concurrency",
            "2",
            env={"RESOLVD_CACHE_URL": "redis://127.0.0.1:9/0"},
        )
        cluster.wait_ready()
        assert pins(job(cluster, ["computed", "flask"]))["computed"] == "1.0"
        assert metric(cluster, 'resolvd_builds_total{outcome="built"}') == 1
        assert metric(cluster, 'resolvd_builds_total{outcome="reused"}') >= 1
        assert builder.output().count("built the metadata of computed-1.0.tar.gz") == 1

    def test_hostile_builds_are_stopped_and_reported(
        self, cluster: Cluster, buildable: str
    ) -> None:
        """Network, writes outside the work directory and memory hogs fail as build_failed."""
        cluster.env.update(build_env())
        cluster.serve("--no-worker")
        cluster.start("builder", "builder", "--concurrency", "3")
        worker = cluster.worker()
        cluster.wait_ready()
        stages = {}
        for kind in HOSTILE_SETUPS:
            document = job(cluster, [f"hostile-{kind}"])
            assert document["status"] == "failed"
            failure = document["failure"]
            assert failure["kind"] == "unsatisfiable"
            assert "metadata build failed" in failure["message"]
            [hint] = [h for h in failure["hints"] if h["code"] == "build_failed"]
            assert (hint["package"], hint["version"]) == (f"hostile-{kind}", "1.0")
            [error] = [e for e in failure["fetch_errors"] if e["code"] == "build_failed"]
            stages[kind] = (error["data"]["stage"], error["data"]["log_tail"])
        assert stages["network"][0] == "backend"
        assert "network blocked" in stages["network"][1]
        assert stages["write"][0] == "backend"
        assert "write blocked" in stages["write"][1]
        assert "Read-only file system" in stages["write"][1]
        assert stages["memory"][0] == "memory"
        assert not MARKER.exists()
        # The worker is unharmed: still running, and the next job resolves.
        assert worker.process.poll() is None
        assert pins(job(cluster, ["flask"]))["flask"] == "3.0.0"
        assert metric(cluster, 'resolvd_build_failures_total{stage="memory"}') == 1

    def test_a_failed_build_is_remembered(self, cluster: Cluster, buildable: str) -> None:
        """The same failing sdist in a second job is not built again."""
        cluster.env.update(build_env())
        cluster.serve()  # its in-process worker and builder
        cluster.wait_ready()
        for deadline in (200, 199):  # two bodies, or the second would get the first job
            document = job(cluster, ["hostile-write"], deadline=deadline)
            assert document["status"] == "failed"
        assert metric(cluster, 'resolvd_build_failures_total{stage="backend"}') == 1
        assert metric(cluster, 'resolvd_builds_total{outcome="reused"}') >= 1


class TestBuildsOff:
    def test_dynamic_metadata_fails_with_the_hint(self, cluster: Cluster, buildable: str) -> None:
        """Without builds the job fails as before, and the hint names both ways out."""
        cluster.serve()
        cluster.wait_ready()
        started = time.monotonic()
        document = job(cluster, ["computed"], deadline=60)
        assert time.monotonic() - started < 60
        failure = document["failure"]
        [hint] = [h for h in failure["hints"] if h["code"] == "sdist_dynamic_metadata"]
        assert "dependency_metadata" in hint["message"]
        assert "[builds] enabled" in hint["message"]
        assert hint["data"]["settings"] == ["dependency_metadata", "builds.enabled"]

    def test_the_builder_refuses_to_start(self, cluster: Cluster) -> None:
        """``resolvd builder`` with builds off says so and exits."""
        builder = cluster.start("builder", "builder")
        assert builder.process.wait(30) == 2
        assert "[builds] enabled = true" in builder.output()
