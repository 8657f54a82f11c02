"""``make run-cluster``: compose.yaml's topology as local processes works end to end.

One cluster for the module (``deploy.run_cluster.running_cluster``): two redis-servers on free
loopback ports, two APIs and three workers configured from compose.yaml, and a small index on
loopback whose pages are slow, so that the queue spreads the jobs over the workers. Ten jobs,
each naming two of five libraries on one shared core, are submitted to the APIs in turn and read
from the other API. Nothing here uses the test Redis. The last test stops the cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import redis
from saq.queue.redis import RedisQueue

from deploy.run_cluster import LocalCluster, running_cluster
from service.jobs.queue import QUEUE_NAME
from tests.indexserver import IndexServer, IndexSpec, Project, Release

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

# Five libraries on one shared core: each job resolves two libraries (all ten pairs, so that no
# job is deduplicated onto another), and later jobs find the core's page in the shared cache.
LIBRARIES = ("alpha", "bravo", "charlie", "delta", "echo")
REQUESTS = [list(pair) for pair in itertools.combinations(LIBRARIES, 2)]
WORLD = [
    Project("core", [Release("1.0"), Release("2.0")]),
    *(
        Project(name, [Release("1.0", requires=["core>=1"]), Release("2.0", requires=["core>=2"])])
        for name in LIBRARIES
    ),
]
JOB_TIMEOUT_SECONDS = 60.0
SUCCEEDED_METRIC = re.compile(
    r'^resolvd_jobs_finished_total\{status="succeeded"\} (\S+)$', re.MULTILINE
)


@dataclass
class Deployment:
    """The running cluster, a client per API, and the loopback index URL."""

    cluster: LocalCluster
    clients: list[httpx.Client]
    index_url: str

    @property
    def jobs_url(self) -> str:
        return self.cluster.settings.redis.url

    @property
    def cache_url(self) -> str:
        return self.cluster.settings.cache_url

    def body(self, requirements: Sequence[str]) -> dict[str, Any]:
        return {"requirements": list(requirements), "indexes": [{"url": self.index_url}]}

    def other(self, n: int) -> httpx.Client:
        """The client of an API that job ``n`` was not submitted to."""
        return self.clients[(n + 1) % len(self.clients)]


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    with IndexServer() as index:
        index_url = index.add_index(IndexSpec("local", WORLD))
        # Slow pages keep each job busy long enough for the queue to spread jobs over workers.
        index.inject("/local/simple/*", delay=0.3)
        with (
            running_cluster(
                {"RESOLVD_ALLOWED_INDEX_URLS": index.base_url + "/"},
                read_env_files=False,
                workdir=tmp_path_factory.mktemp("cluster"),
            ) as cluster,
            contextlib.ExitStack() as clients,
        ):
            yield Deployment(
                cluster,
                [
                    clients.enter_context(
                        httpx.Client(base_url=api.url, headers=cluster.headers(), timeout=30)
                    )
                    for api in cluster.apis
                ],
                index_url,
            )


def wait_job(client: httpx.Client, job_id: str) -> dict[str, Any]:
    """The job document once the job has ended (or as it is when the time is up)."""
    until = time.monotonic() + JOB_TIMEOUT_SECONDS
    document: dict[str, Any] = {}
    while time.monotonic() < until:
        document = client.get(f"/jobs/{job_id}", params={"wait": 10}).json()
        if document["status"] in ("succeeded", "failed", "cancelled"):
            break
    return document


@contextlib.contextmanager
def redis_client(url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(url, decode_responses=True)
    try:
        yield client
    finally:
        client.close()


def redis_config(url: str, *names: str) -> tuple[str, ...]:
    with redis_client(url) as client:
        return tuple(str(client.config_get(name)[name]) for name in names)


def count_keys(url: str, pattern: str) -> int:
    with redis_client(url) as client:
        return sum(1 for _ in client.scan_iter(match=pattern, count=1000))


async def find_workers_that_ran(jobs_url: str, job_ids: Sequence[str]) -> list[str | None]:
    """The id of the SAQ worker that ran each job (SAQ keeps it with the job)."""
    queue = RedisQueue.from_url(jobs_url, name=QUEUE_NAME)
    try:
        jobs = [await queue.job(job_id) for job_id in job_ids]
    finally:
        await queue.disconnect()
    return [job.worker_id if job else None for job in jobs]


@pytest.fixture(scope="module")
def finished(deployment: Deployment) -> dict[str, dict[str, Any]]:
    """Job id -> final document of the ten jobs, submitted to the APIs in turn and each read
    from an API it was not submitted to."""
    ids = []
    for n, requirements in enumerate(REQUESTS):
        client = deployment.clients[n % len(deployment.clients)]
        response = client.post("/resolve", json=deployment.body(requirements))
        assert response.status_code == 202, response.text
        ids.append(response.json()["id"])
    return {job_id: wait_job(deployment.other(n), job_id) for n, job_id in enumerate(ids)}


class TestRedis:
    def test_the_job_store_persists_and_never_evicts(self, deployment: Deployment) -> None:
        """The job-store Redis runs with AOF and ``noeviction``."""
        config = redis_config(deployment.jobs_url, "appendonly", "maxmemory-policy")
        assert config == ("yes", "noeviction")

    def test_the_cache_is_bounded_and_evicts_least_recently_used(
        self, deployment: Deployment
    ) -> None:
        """The cache Redis has a memory bound and ``allkeys-lru``."""
        policy, maxmemory = redis_config(deployment.cache_url, "maxmemory-policy", "maxmemory")
        assert (policy, int(maxmemory) > 0) == ("allkeys-lru", True)


class TestJobs:
    def test_jobs_submitted_to_either_api_succeed_read_from_the_other(
        self, deployment: Deployment, finished: dict[str, dict[str, Any]]
    ) -> None:
        """Ten jobs submitted to the two APIs in turn all succeed, each read from the API it was
        not submitted to."""
        unfinished = [
            (d.get("status"), d.get("failure"))
            for d in finished.values()
            if d.get("status") != "succeeded"
        ]
        assert len(finished) == len(REQUESTS)
        assert not unfinished

    def test_an_identical_request_on_another_api_gets_the_same_finished_job(
        self, deployment: Deployment, finished: dict[str, dict[str, Any]]
    ) -> None:
        """The first request again, on the other API: 200 with the first job's id."""
        first_id = next(iter(finished))
        again = deployment.other(0).post("/resolve", json=deployment.body(REQUESTS[0]))
        assert (again.status_code, again.json()["id"]) == (200, first_id), again.text[:300]

    def test_the_jobs_ran_on_more_than_one_worker(
        self, deployment: Deployment, finished: dict[str, dict[str, Any]]
    ) -> None:
        """SAQ ran the jobs on several workers, all of them heartbeating, and every worker
        compose.yaml asks for heartbeats."""
        ran_on = set(asyncio.run(find_workers_that_ran(deployment.jobs_url, list(finished))))
        with redis_client(deployment.jobs_url) as client:
            alive = set(client.zrange("resolvd:workers", 0, -1))
        assert len(ran_on) > 1, ran_on
        assert ran_on <= alive, (ran_on, alive)
        assert len(alive) == deployment.cluster.worker_count == 3, alive

    def test_pages_and_metadata_are_cached_in_the_cache_redis_only(
        self, deployment: Deployment, finished: dict[str, dict[str, Any]]
    ) -> None:
        """Cache keys land in the cache Redis, none in the job store."""
        cached = count_keys(deployment.cache_url, "resolvd:cache:*")
        misplaced = count_keys(deployment.jobs_url, "resolvd:cache:*")
        assert cached > 0
        assert misplaced == 0

    def test_job_documents_are_in_the_job_store_only(
        self, deployment: Deployment, finished: dict[str, dict[str, Any]]
    ) -> None:
        """One job document a job in the job-store Redis, none in the cache."""
        assert count_keys(deployment.jobs_url, "resolvd:job:*") == len(finished)
        assert count_keys(deployment.cache_url, "resolvd:job:*") == 0

    def test_every_apis_metrics_count_the_whole_fleets_finished_jobs(
        self, deployment: Deployment, finished: dict[str, dict[str, Any]]
    ) -> None:
        """Each API's ``/metrics`` counts every succeeded job, wherever it was submitted."""
        counts = []
        for client in deployment.clients:
            match = SUCCEEDED_METRIC.search(client.get("/metrics").text)
            counts.append(float(match.group(1)) if match else None)
        assert all(count is not None and count >= len(finished) for count in counts), counts


def test_every_process_stops_cleanly_on_sigterm(deployment: Deployment) -> None:
    """SIGTERM to the APIs, then the workers, then Redis: each exits cleanly. (Last: it stops
    the module's cluster.)"""
    deployment.cluster.stop()
    assert deployment.cluster.unclean_exits == {}
