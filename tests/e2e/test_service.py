"""The service as deployed: an API process and separate worker processes sharing Redis."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from typing import Any

import pytest

from tests.indexserver import IndexServer
from tests.support.cluster import Cluster, assert_not_internal
from tests.support.processes import ROOT

pytestmark = pytest.mark.e2e

FLASK = {"requirements": ["flask>=2"], "indexes": [{"name": "corp"}]}


def wait_status(cluster: Cluster, job_id: str, status: str, timeout: float = 20) -> dict[str, Any]:
    until = time.monotonic() + timeout
    while time.monotonic() < until:
        document: dict[str, Any] = cluster.http.get(f"/jobs/{job_id}").json()
        if document["status"] == status:
            return document
        time.sleep(0.05)
    pytest.fail(f"job {job_id} never became {status}:\n{cluster.logs()}")


@pytest.fixture
def api_and_workers(cluster: Cluster) -> Cluster:
    """``serve --no-worker`` plus two ``worker`` processes, ready."""
    cluster.serve("--no-worker")
    cluster.worker("worker-1")
    cluster.worker("worker-2")
    cluster.wait_ready()
    return cluster


class TestJobs:
    def test_a_job_is_resolved_by_a_worker_process(self, api_and_workers: Cluster) -> None:
        """Submit, wait, read the pinned packages from the loopback index."""
        response = api_and_workers.submit(FLASK)
        assert response.status_code == 202, response.text
        document = api_and_workers.wait_job(response.json()["id"])
        assert_not_internal(document)
        assert document["status"] == "succeeded", document["failure"]
        pins = {p["name"]: p["version"] for p in document["result"]["packages"]}
        assert pins == {
            "flask": "3.0.0",
            "click": "8.1.7",
            "blinker": "1.8.2",
            "itsdangerous": "2.2.0",
        }
        assert {p["index"] for p in document["result"]["packages"]} == {"corp"}

    def test_an_index_named_by_allowed_url(
        self, api_and_workers: Cluster, index_server: IndexServer
    ) -> None:
        """An allowed URL works as an index; results name it by its (redacted) URL."""
        url = index_server.url("corp")
        response = api_and_workers.submit({"requirements": ["click"], "indexes": [{"url": url}]})
        document = api_and_workers.wait_job(response.json()["id"])
        assert_not_internal(document)
        assert document["status"] == "succeeded", document["failure"]
        assert document["result"]["packages"][0]["index"] == url

    def test_many_jobs_spread_over_the_workers(self, api_and_workers: Cluster) -> None:
        """Ten distinct jobs all finish."""
        ids = [
            api_and_workers.submit(
                {"requirements": [f"flask<3.{n}"], "indexes": [{"name": "corp"}]}
            ).json()["id"]
            for n in range(10)
        ]
        documents = [api_and_workers.wait_job(job_id) for job_id in ids]
        assert_not_internal(documents[0])
        assert {d["status"] for d in documents} == {"succeeded"}

    def test_an_unsatisfiable_request_fails_with_an_explanation(
        self, api_and_workers: Cluster
    ) -> None:
        """A failed job carries the failure kind and a human message."""
        response = api_and_workers.submit(
            {"requirements": ["flask>=9"], "indexes": [{"name": "corp"}]}
        )
        document = api_and_workers.wait_job(response.json()["id"])
        assert_not_internal(document)
        assert document["status"] == "failed"
        assert document["failure"]["kind"] == "unsatisfiable"
        assert "flask" in document["failure"]["message"]

    def test_an_identical_request_gets_the_same_job(self, api_and_workers: Cluster) -> None:
        """Dedupe: 202 with the same id while live, 200 with it once finished."""
        first = api_and_workers.submit(FLASK).json()
        again = api_and_workers.submit(FLASK)
        assert again.json()["id"] == first["id"]
        document = api_and_workers.wait_job(first["id"])
        assert_not_internal(document)
        finished = api_and_workers.submit(FLASK)
        assert finished.status_code == 200
        assert finished.json()["id"] == first["id"]

    def test_unknown_jobs_are_404(self, api_and_workers: Cluster) -> None:
        """An id nobody issued: 404 problem."""
        response = api_and_workers.http.get("/jobs/nope")
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"

    def test_invalid_requests_are_refused_before_queuing(self, api_and_workers: Cluster) -> None:
        """422 naming the field; the queue stays empty (nothing for workers to pick up)."""
        response = api_and_workers.submit({"requirements": ["flask>>2"]})
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "requirements[0]"


class TestCancel:
    def test_a_running_job_is_cancelled(
        self, api_and_workers: Cluster, index_server: IndexServer
    ) -> None:
        """DELETE while a worker resolves: cancelled, and it stays cancelled."""
        index_server.inject("/corp/simple/slowpoke/*", delay=3)
        job = api_and_workers.submit(
            {"requirements": ["slowpoke"], "indexes": [{"name": "corp"}]}
        ).json()
        wait_status(api_and_workers, job["id"], "running")
        response = api_and_workers.http.delete(f"/jobs/{job['id']}")
        assert response.status_code == 200
        assert response.json()["status"] == "cancelled"
        time.sleep(3.5)
        final = api_and_workers.http.get(f"/jobs/{job['id']}").json()
        assert final["status"] == "cancelled"
        assert final["result"] is None


class TestWorkerLifecycle:
    def test_sigterm_lets_the_running_job_finish(
        self, cluster: Cluster, index_server: IndexServer
    ) -> None:
        """A draining worker finishes its job, then exits 0."""
        index_server.inject("/corp/simple/slowpoke/*", delay=2)
        cluster.serve("--no-worker")
        worker = cluster.worker()
        cluster.wait_ready()
        job = cluster.submit({"requirements": ["slowpoke"], "indexes": [{"name": "corp"}]}).json()
        wait_status(cluster, job["id"], "running")
        worker.signal_group(signal.SIGTERM)
        assert worker.process.wait(20) == 0, worker.output()
        document = cluster.http.get(f"/jobs/{job['id']}").json()
        assert_not_internal(document)
        assert document["status"] == "succeeded", document

    def test_a_job_whose_worker_dies_is_retried_elsewhere(
        self, cluster: Cluster, index_server: IndexServer
    ) -> None:
        """SIGKILL mid-job: the job's heartbeat stops, it is swept and another worker runs it."""
        index_server.inject("/corp/simple/slowpoke/*", delay=4)
        cluster.serve("--no-worker")
        doomed = cluster.worker("doomed")
        cluster.wait_ready()
        job = cluster.submit({"requirements": ["slowpoke"], "indexes": [{"name": "corp"}]}).json()
        wait_status(cluster, job["id"], "running")
        doomed.signal_group(signal.SIGKILL)
        doomed.process.wait(5)
        cluster.worker("survivor")
        document = cluster.wait_job(job["id"], timeout=60)
        assert_not_internal(document)
        assert document["status"] == "succeeded", cluster.logs()


class TestServeModes:
    def test_serve_with_its_own_worker_and_several_processes(self, cluster: Cluster) -> None:
        """``serve --workers 2``: two API processes, each with an in-process worker."""
        cluster.serve("--workers", "2")
        cluster.wait_ready()
        ids = [
            cluster.submit(
                {"requirements": [f"flask<3.{n}"], "indexes": [{"name": "corp"}]}
            ).json()["id"]
            for n in range(4)
        ]
        documents = [cluster.wait_job(job_id) for job_id in ids]
        assert_not_internal(documents[0])
        assert {d["status"] for d in documents} == {"succeeded"}

    def test_without_redis_serve_falls_back_to_memory(self, cluster: Cluster) -> None:
        """Redis unreachable: one clear log line, and jobs still run in the server process."""
        unreachable = {
            "RESOLVD_REDIS_URL": "redis://127.0.0.1:1/0",
            "RESOLVD_CACHE_URL": "redis://127.0.0.1:1/0",
        }
        api = cluster.serve(env=unreachable)
        cluster.wait_ready()
        job = cluster.submit(FLASK).json()
        document = cluster.wait_job(job["id"])
        assert_not_internal(document)
        assert document["status"] == "succeeded"
        assert cluster.http.get("/readyz").json()["store"] == "memory"
        assert api.output().count("using an in-process job store") == 1

    def test_without_redis_a_worker_exits_with_a_clear_message(self, cluster: Cluster) -> None:
        """``resolvd worker`` needs Redis: it says so and exits 1."""
        worker = cluster.start(
            "worker", "worker", env={"RESOLVD_REDIS_URL": "redis://127.0.0.1:1/0"}
        )
        assert worker.process.wait(20) == 1
        assert "127.0.0.1:1" in worker.output()


def test_openapi_command_prints_the_committed_document() -> None:
    """``python -m service openapi`` prints exactly ``openapi/openapi.json``."""
    printed = subprocess.run(
        [sys.executable, "-m", "service", "openapi"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert printed == (ROOT / "openapi" / "openapi.json").read_text()
