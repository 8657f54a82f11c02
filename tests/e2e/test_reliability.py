"""Reliability under crashes and outages: real worker processes, real Redis servers.

Every test runs ``python -m service serve --no-worker`` and ``worker`` processes (the
``cluster`` fixture) against the loopback index. Faults are real: workers die by SIGKILL; the
job store and the metadata cache are ``redis-server`` processes this module starts on free
loopback ports, stops, freezes and starts again (never the test Redis).

The kill storm and the poison job print their figures (``pytest -rP`` shows them).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import random
import re
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from service.jobs.backend import open_backend
from service.jobs.model import GAVE_UP_MESSAGE
from tests.indexserver import IndexServer, IndexSpec, Project, Release
from tests.support.cluster import PROJECTS, Cluster, assert_not_internal
from tests.support.processes import Service
from tests.support.redis import RedisServer
from tests.support.settings import make_test_settings

pytestmark = pytest.mark.e2e

# The cluster fixture's heartbeat. Workers sweep as often, and a sweep waits up to
# SWEEP_ABORT_SECONDS (service.jobs.queue) for a stuck job's worker before handing it on.
HEARTBEAT_SECONDS = 2
SWEEP_SECONDS = HEARTBEAT_SECONDS
SWEEP_ABORT_SECONDS = 1
TERMINAL = ("succeeded", "failed", "cancelled")
# Projects whose pages the tests delay, so that a job is reliably still running when its
# worker or its Redis goes away.
SLOW_PROJECTS = [Project(f"slow-{n:02d}", [Release("1.0", requires=["click"])]) for n in range(40)]
HOG = Project("hog", [Release("1.0")])
JOB_KEY = "resolvd:job:{}"
STATS_TOTAL_KEY = "resolvd:stats:total"


def slow_job(n: int) -> dict[str, Any]:
    return {"requirements": [f"slow-{n:02d}"], "indexes": [{"name": "corp"}]}


@pytest.fixture
def slow_world(index_server: IndexServer, world: str) -> str:
    """The cluster's ``corp`` index (same URL) plus the ``slow-NN`` projects and ``hog``."""
    return index_server.add_index(IndexSpec("corp", [*PROJECTS, *SLOW_PROJECTS, HOG]))


# -- Redis servers of our own -------------------------------------------------------------


# The job store as the README says to run it: AOF with fsync on every write, no RDB snapshots,
# no eviction.
JOB_STORE_OPTIONS = (
    "--appendonly", "yes",
    "--appendfsync", "always",
    "--save", "",
    "--maxmemory-policy", "noeviction",
)  # fmt: skip


@pytest.fixture
def redis_servers(tmp_path: Path) -> Iterator[Callable[..., RedisServer]]:
    """``make(name, password=None)`` starts a ``RedisServer`` in ``tmp_path / name``; all are
    stopped when the test ends."""
    servers: list[RedisServer] = []

    def make(name: str, *, password: str | None = None) -> RedisServer:
        server = RedisServer(tmp_path / name, options=JOB_STORE_OPTIONS, password=password)
        servers.append(server)
        server.start()
        return server

    try:
        yield make
    finally:
        for server in servers:
            server.stop()


# -- reading the store directly -----------------------------------------------------------


@pytest.fixture
def store(clean_redis: str) -> Iterator[redis.Redis]:
    """A client on the cluster's job store: the test Redis database."""
    client = redis.Redis.from_url(clean_redis)
    try:
        yield client
    finally:
        client.close()


def read_records(client: redis.Redis, job_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The stored ``JobRecord``s (version, attempts, document) of the jobs that still exist."""
    raw = client.mget([JOB_KEY.format(job_id) for job_id in job_ids])
    return {
        job_id: json.loads(value)
        for job_id, value in zip(job_ids, raw, strict=True)
        if value is not None
    }


def saq_active_jobs(client: redis.Redis) -> dict[str, str]:
    """Job id -> SAQ worker id, for the jobs SAQ has on its active list as running."""
    ids = client.lrange("saq:resolvd:active", 0, -1)
    found = {}
    for raw in client.mget(ids) if ids else []:
        if raw is not None and (job := json.loads(raw))["status"] == "active":
            found[job["key"]] = job["worker_id"]
    return found


def parse_time(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


# -- workers ------------------------------------------------------------------------------

_WORKER_ID = re.compile(r"worker (\S+) consuming the Redis queue")
_SWEEPING = re.compile(r"sweeping job (\S+)")


@dataclass
class Worker:
    """A worker process and the id it works under in SAQ (read from its log once it starts)."""

    service: Service
    saq_id: str | None = None
    sweeps_seen: int = 0

    @property
    def name(self) -> str:
        return self.service.name

    def new_sweep(self) -> str | None:
        """The job this worker began to sweep since the last call, if it began one."""
        sweeps = _SWEEPING.findall(self.service.output())
        if len(sweeps) == self.sweeps_seen:
            return None
        self.sweeps_seen = len(sweeps)
        return str(sweeps[-1])

    def find_saq_id(self) -> str | None:
        if self.saq_id is None and (match := _WORKER_ID.search(self.service.output())):
            self.saq_id = match[1]
        return self.saq_id

    def rss_mb(self) -> float:
        """Resident memory, as a container runtime counts it against a memory limit."""
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{self.service.process.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return 0.0

    def kill(self) -> None:
        self.service.signal_group(signal.SIGKILL)
        self.service.process.wait(10)


def start_worker(cluster: Cluster, name: str, concurrency: int = 2) -> Worker:
    return Worker(cluster.start(name, "worker", "--concurrency", str(concurrency)))


def wait_until_running(cluster: Cluster, job_ids: list[str], timeout: float = 30) -> None:
    until = time.monotonic() + timeout
    while time.monotonic() < until:
        statuses = {cluster.http.get(f"/jobs/{job_id}").json()["status"] for job_id in job_ids}
        if "running" in statuses:
            return
        time.sleep(0.1)
    pytest.fail(f"none of {job_ids} started:\n{cluster.logs()}")


def submit_all(cluster: Cluster, bodies: list[dict[str, Any]]) -> list[str]:
    ids = []
    for body in bodies:
        response = cluster.submit(body)
        assert response.status_code == 202, response.text
        ids.append(response.json()["id"])
    return ids


# -- 1. kill storm ------------------------------------------------------------------------

STORM_JOBS = 30
STORM_KILLS = 6
# Of which this many hit a worker just as it began to hand a dead worker's job on.
STORM_SWEEPER_KILLS = 2
STORM_KILL_EVERY_SECONDS = 2.0
# The first strike freezes a busy worker (SIGSTOP) instead, long enough for its jobs to be
# swept and handed on, then wakes it: its stale attempts run on and race the new ones.
STORM_FREEZE_SECONDS = HEARTBEAT_SECONDS + SWEEP_SECONDS + SWEEP_ABORT_SECONDS + 3
# A killed job restarts within heartbeat + sweep + abort wait (plus the lapse of a dead
# sweeper's claim, 6 s), plus however long it then waits for a free slot while replacement
# workers start; this bound is only there to catch a job that hangs.
STORM_RESTART_BOUND_SECONDS = 40


@dataclass
class Kill:
    """One SIGKILL: when, whom, the jobs it was running, the job it was handing on."""

    at: float
    worker: str
    jobs: list[str] = field(default_factory=list)
    handing_on: str | None = None


@dataclass
class Freeze:
    """The one SIGSTOP: the worker, the jobs it was running, when to wake it."""

    worker: Worker
    jobs: list[str]
    thaw_at: float


class Storm:
    """Kills a busy worker every few seconds, or one caught sweeping, and starts another;
    once, freezes a busy worker for a while instead.

    ``run`` also notes each job's record the first time it is seen terminal.
    """

    def __init__(self, cluster: Cluster, store: redis.Redis, job_ids: list[str]) -> None:
        self.cluster = cluster
        self.store = store
        self.job_ids = job_ids
        self.workers = [start_worker(cluster, f"worker-{n}") for n in range(3)]
        self.kills: list[Kill] = []
        self.freeze: Freeze | None = None
        self.first_terminal: dict[str, dict[str, Any]] = {}
        self._rng = random.Random(5)
        self._started = 3

    def run(self, timeout: float) -> None:
        next_kill = time.monotonic() + 1.0
        until = time.monotonic() + timeout
        try:
            while len(self.first_terminal) < len(self.job_ids) and time.monotonic() < until:
                pending = [job_id for job_id in self.job_ids if job_id not in self.first_terminal]
                for job_id, record in read_records(self.store, pending).items():
                    if record["document"]["status"] in TERMINAL:
                        self.first_terminal[job_id] = record
                if self.freeze is not None and time.monotonic() >= self.freeze.thaw_at:
                    self.freeze.worker.service.signal_group(signal.SIGCONT)
                if len(self.kills) < STORM_KILLS and self._strike(time.monotonic() >= next_kill):
                    next_kill = time.monotonic() + STORM_KILL_EVERY_SECONDS
                time.sleep(0.1)
        finally:
            if self.freeze is not None:
                self.freeze.worker.service.signal_group(signal.SIGCONT)

    def _strike(self, due: bool) -> bool:
        if due and self.freeze is None:
            return self._freeze_a_busy_worker()
        return self._kill_a_sweeper() or (due and self._kill_a_busy_worker())

    def _freeze_a_busy_worker(self) -> bool:
        busy = [w for w in self.workers if self._jobs_on(w)]
        if not busy:
            return False
        victim = self._rng.choice(busy)
        jobs = self._jobs_on(victim)
        victim.service.signal_group(signal.SIGSTOP)
        self.freeze = Freeze(victim, jobs, time.monotonic() + STORM_FREEZE_SECONDS)
        return True

    def _kill_a_sweeper(self) -> bool:
        # The frozen worker and its jobs are left alone: they are to race each other.
        frozen = self.freeze.jobs if self.freeze else []
        sweepers = [
            (w, job_id)
            for w in self._killable()
            if (job_id := w.new_sweep()) and job_id not in frozen
        ]
        if not sweepers or sum(bool(k.handing_on) for k in self.kills) >= STORM_SWEEPER_KILLS:
            return False
        victim, job_id = sweepers[0]
        self._kill(victim, handing_on=job_id)
        return True

    def _kill_a_busy_worker(self) -> bool:
        busy = [w for w in self._killable() if self._jobs_on(w)]
        if not busy:
            return False
        self._kill(self._rng.choice(busy))
        return True

    def _killable(self) -> list[Worker]:
        return [w for w in self.workers if self.freeze is None or w is not self.freeze.worker]

    def _jobs_on(self, worker: Worker) -> list[str]:
        owner = worker.find_saq_id()
        return [job_id for job_id, wid in saq_active_jobs(self.store).items() if wid == owner]

    def _kill(self, victim: Worker, handing_on: str | None = None) -> None:
        jobs = self._jobs_on(victim)
        victim.kill()
        self.kills.append(Kill(time.time(), victim.name, jobs, handing_on))
        self.workers.remove(victim)
        self.workers.append(start_worker(self.cluster, f"worker-{self._started}"))
        self._started += 1


class TestKillStorm:
    def test_every_job_completes_exactly_once_while_workers_are_killed(
        self,
        cluster: Cluster,
        store: redis.Redis,
        index_server: IndexServer,
        slow_world: str,
    ) -> None:
        """30 jobs, 3 workers; a worker is SIGKILLed mid-job every 2 s, or as it starts to hand
        a dead worker's job on, 6 times, and replaced; one is frozen past its heartbeat and
        woken, so that two attempts of its jobs run. Every job ends succeeded, with one
        terminal write, never overwritten afterwards."""
        # Enough tries that no job can run out of them: losing one would be a bug, not policy.
        cluster.env["RESOLVD_JOBS_MAX_TRIES"] = str(STORM_KILLS + 2)
        index_server.inject("/corp/simple/slow-*", delay=1.5)
        cluster.serve("--no-worker")
        job_ids: list[str] = []
        storm = Storm(cluster, store, job_ids)
        cluster.wait_ready()
        job_ids += submit_all(cluster, [slow_job(n) for n in range(STORM_JOBS)])
        storm.run(timeout=150)
        assert len(storm.first_terminal) == STORM_JOBS, f"jobs never ended:\n{cluster.logs()}"
        assert len(storm.kills) == STORM_KILLS, "the jobs ended before every kill was made"

        # Give any attempt still running somewhere (a job swept while alive) time to finish,
        # and so to try a second terminal write.
        time.sleep(HEARTBEAT_SECONDS + SWEEP_SECONDS + SWEEP_ABORT_SECONDS)
        documents = [cluster.http.get(f"/jobs/{job_id}").json() for job_id in job_ids]
        lost = [d["id"] for d in documents if d["status"] != "succeeded"]
        recorded = int(store.hget(STATS_TOTAL_KEY, "job\x1fsucceeded") or 0)
        final = read_records(store, job_ids)
        overwritten = [
            job_id
            for job_id, record in storm.first_terminal.items()
            if final[job_id]["version"] != record["version"]
        ]
        last_kill = {
            job_id: kill
            for kill in storm.kills
            for job_id in [*kill.jobs, *filter(None, [kill.handing_on])]
        }
        restart_delays = [
            parse_time(final[job_id]["document"]["started_at"]) - kill.at
            for job_id, kill in last_kill.items()
        ]
        duplicates = recorded - STORM_JOBS
        extra_attempts = sum(r["attempts"] for r in final.values()) - STORM_JOBS
        assert storm.freeze is not None, "no worker was frozen"
        # The frozen worker's jobs that another worker handed on, and that it finished anyway
        # when it woke: two attempts, and two workers that could write an outcome.
        frozen_log = storm.freeze.worker.service.output()
        others_logs = "".join(service.output() for service in cluster.services)
        raced = [
            job_id
            for job_id in storm.freeze.jobs
            if f"sweeping job {job_id}" in others_logs
            and f"resolvd, key: {job_id}, attempts: 1, completed" in frozen_log
        ]
        print(
            f"kill storm: {STORM_JOBS} jobs on 3 workers x 2 slots; {len(storm.kills)} workers "
            f"SIGKILLed, {sum(bool(k.handing_on) for k in storm.kills)} of them while handing "
            f"a dead worker's job on; {sum(len(k.jobs) for k in storm.kills)} running attempts "
            f"interrupted, {len(last_kill)} jobs delayed; 1 worker frozen for "
            f"{STORM_FREEZE_SECONDS} s: {len(raced)} of its jobs handed on and finished by it "
            f"anyway on waking; {len(lost)} lost, {duplicates} "
            f"duplicate completions, {len(overwritten)} overwritten after finishing, "
            f"{extra_attempts} extra attempts; a delayed job restarted at worst "
            f"{max(restart_delays):.1f} s after the kill (heartbeat {HEARTBEAT_SECONDS} + sweep "
            f"{SWEEP_SECONDS} + abort wait {SWEEP_ABORT_SECONDS} s, then a free slot)"
        )
        assert lost == [], cluster.logs()
        assert_not_internal(documents[0])
        assert recorded == STORM_JOBS
        assert overwritten == []
        assert any(kill.handing_on for kill in storm.kills), "no worker was caught sweeping"
        assert raced, "no job of the frozen worker was handed on and finished by it anyway"
        assert max(restart_delays) < STORM_RESTART_BOUND_SECONDS
        for worker in storm.workers:
            worker.service.signal_group(signal.SIGTERM)
        for worker in storm.workers:
            assert worker.service.process.wait(30) == 0, worker.service.output()


# -- 2. poison job ------------------------------------------------------------------------

# Stand-in for a container memory limit: the kernel's OOM killer SIGKILLs a worker that
# goes past its cgroup's limit. Tests cannot make cgroups, so the test does what the kernel
# would, from the worker's real resident memory. An idle worker holds about 50 MB.
MEMORY_LIMIT_MB = 200
# hog's page lists this many (fake, newer) files besides its real 1.0: about 40 MB of PEP 691
# JSON, within fetch.max_page_bytes (64 MiB) and, in this test, fetch.max_page_files. Each
# needs a Python hog has not, so the finder judges every one of them before it reaches 1.0,
# and a worker holds several hundred MB of files, verdicts and rejections. Without the limit
# the job succeeds (hog 1.0), slowly.
HOG_EXTRA_FILES = 150_000
MAX_TRIES = 3


def make_hog_page(index_server: IndexServer) -> bytes:
    page = httpx.get(
        index_server.url("corp") + "/hog/",
        headers={"Accept": "application/vnd.pypi.simple.v1+json"},
    ).json()
    files = [
        {
            "filename": f"hog-9.{n}-py3-none-any.whl",
            "url": f"{index_server.base_url}/corp/files/hog-9.{n}-py3-none-any.whl",
            "hashes": {"sha256": hashlib.sha256(b"%d" % n).hexdigest()},
            "requires-python": ">=4",
            "yanked": False,
            "size": 1000,
        }
        for n in range(HOG_EXTRA_FILES)
    ]
    page["files"] = files + page["files"]
    page["versions"] = [f"9.{n}" for n in range(HOG_EXTRA_FILES)] + page["versions"]
    return json.dumps(page, separators=(",", ":")).encode()


class TestPoisonJob:
    def test_a_job_that_kills_every_worker_fails_after_max_tries(
        self, cluster: Cluster, store: redis.Redis, index_server: IndexServer, slow_world: str
    ) -> None:
        """Each try of the hog job takes its worker past the memory limit and gets it killed;
        after jobs.max_tries kills it fails (internal, saying so) and is never run again,
        while other jobs keep succeeding on the other (and replacement) workers."""
        cluster.env["RESOLVD_JOBS_MAX_TRIES"] = str(MAX_TRIES)
        cluster.env["RESOLVD_FETCH_MAX_PAGE_FILES"] = str(2 * HOG_EXTRA_FILES)
        index_server.inject(
            "/corp/simple/hog/",
            status=200,
            body=make_hog_page(index_server),
            headers={"Content-Type": "application/vnd.pypi.simple.v1+json"},
        )
        cluster.serve("--no-worker")
        workers = [start_worker(cluster, f"worker-{n}", concurrency=1) for n in range(2)]
        cluster.wait_ready()
        poison = submit_all(cluster, [{"requirements": ["hog"], "indexes": [{"name": "corp"}]}])[0]

        kills: list[Kill] = []
        others: list[str] = []
        until = time.monotonic() + 120
        while time.monotonic() < until:
            for worker in list(workers):
                if worker.rss_mb() > MEMORY_LIMIT_MB:
                    worker.kill()
                    kills.append(Kill(time.time(), worker.name))
                    workers.remove(worker)
                    workers.append(start_worker(cluster, f"worker-{len(kills) + 1}", 1))
                    # Someone else's job, submitted while the poison job is being retried.
                    others += submit_all(cluster, [slow_job(len(kills))])
            record = read_records(store, [poison])[poison]
            if record["document"]["status"] in TERMINAL:
                break
            time.sleep(0.05)
        document = cluster.http.get(f"/jobs/{poison}").json()
        saq_job = json.loads(store.get(f"saq:job:resolvd:{poison}") or "{}")
        print(
            f"poison job: {len(kills)} workers killed at the {MEMORY_LIMIT_MB} MB limit, then "
            f"{document['status']} ({(document['failure'] or {}).get('kind')}) after "
            f"{record['attempts']} tries; SAQ: {saq_job.get('status')}"
        )
        assert document["status"] == "failed", cluster.logs()
        assert document["failure"]["kind"] == "internal"
        assert document["failure"]["message"] == GAVE_UP_MESSAGE.format(tries=MAX_TRIES)
        # Every try ends in a kill, unless a loaded machine starves the worker's heartbeat
        # long enough for a sweep to hand the try on first: either way it is one try used.
        assert 1 <= len(kills) <= MAX_TRIES
        assert record["attempts"] == MAX_TRIES
        # Given up for good: nothing left to sweep or to run.
        assert saq_job["status"] == "aborted"
        queued_or_active = store.lrange("saq:resolvd:queued", 0, -1) + store.lrange(
            "saq:resolvd:active", 0, -1
        )
        assert f"saq:job:resolvd:{poison}".encode() not in queued_or_active
        finished_others = [cluster.wait_job(job_id) for job_id in others]
        assert [d["status"] for d in finished_others] == ["succeeded"] * len(others)
        assert min(parse_time(d["finished_at"]) for d in finished_others) < parse_time(
            document["finished_at"]
        ), "no other job finished while the poison job was being retried"
        failures = int(store.hget(STATS_TOTAL_KEY, "failure\x1finternal") or 0)
        assert failures == 1, "the give-up was not counted once"


# -- 3. job store restart -----------------------------------------------------------------

# A request to an API whose Redis is down must be answered, and within this long.
OUTAGE_ANSWER_SECONDS = 15


def timed(call: Callable[[], httpx.Response]) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


class TestJobStoreRestart:
    def test_the_api_answers_503_and_accepted_jobs_survive_a_restart(
        self,
        cluster: Cluster,
        index_server: IndexServer,
        slow_world: str,
        redis_servers: Callable[..., RedisServer],
    ) -> None:
        """Redis stops: every route answers 503 with Retry-After, promptly; Redis comes back on
        the same port and AOF: the same workers reconnect and finish every accepted job, each
        in at most one more attempt."""
        store = redis_servers("store")
        cluster.env["RESOLVD_REDIS_URL"] = store.url
        index_server.inject("/corp/simple/slow-*", delay=2)
        cluster.serve("--no-worker")
        workers = [start_worker(cluster, "worker-1"), start_worker(cluster, "worker-2")]
        cluster.wait_ready()
        accepted = submit_all(cluster, [slow_job(n) for n in range(6)])
        wait_until_running(cluster, accepted)

        store.stop()
        outage_started = time.monotonic()
        probes: dict[str, Callable[[], httpx.Response]] = {
            "POST /resolve": lambda: cluster.submit(slow_job(30)),
            "GET /jobs/{id}": lambda: cluster.http.get(f"/jobs/{accepted[0]}"),
            "GET /jobs/{id}?wait=2": lambda: cluster.http.get(
                f"/jobs/{accepted[0]}", params={"wait": 2}
            ),
            "DELETE /jobs/{id}": lambda: cluster.http.delete(f"/jobs/{accepted[-1]}"),
            "GET /readyz": lambda: cluster.http.get("/readyz"),
            "GET /metrics": lambda: cluster.http.get("/metrics"),
        }
        for name, probe in probes.items():
            response, elapsed = timed(probe)
            assert response.status_code == 503, f"{name}: {response.status_code} {response.text}"
            assert response.headers.get("retry-after"), f"{name}: no Retry-After"
            assert elapsed < OUTAGE_ANSWER_SECONDS, f"{name} took {elapsed:.1f} s"
        # Long enough for every running job's heartbeat to lapse.
        time.sleep(max(0.0, 2 * HEARTBEAT_SECONDS - (time.monotonic() - outage_started)))
        store.start()

        # The API's pooled connections are checked before use: the first answer is not a 503.
        first = cluster.http.get(f"/jobs/{accepted[0]}")
        assert first.status_code == 200, first.text
        cluster.wait_ready()
        late = submit_all(cluster, [slow_job(31)])
        for job_id in accepted + late:
            document = cluster.wait_job(job_id, timeout=90)
            assert_not_internal(document)
            assert document["status"] == "succeeded", cluster.logs()
        assert [w.service.process.poll() for w in workers] == [None, None], cluster.logs()
        with contextlib.closing(store.client()) as client:
            attempts = {
                job_id: r["attempts"] for job_id, r in read_records(client, accepted).items()
            }
        assert max(attempts.values()) <= 2, attempts


class TestReconnect:
    async def test_connections_pooled_before_a_restart_work_after_it(
        self, redis_servers: Callable[..., RedisServer]
    ) -> None:
        """Redis restarted: no connection pooled before fails its next command (by default
        redis-py resends nothing; the backend resends a command once on a new connection)."""
        server = redis_servers("store")
        async with open_backend(make_test_settings(server.url), "redis") as backend:
            # Eight commands at once leave eight connections in the pool.
            await asyncio.gather(*(backend.store.get(f"job-{n}") for n in range(8)))
            server.stop()
            server.start()
            answers = await asyncio.gather(
                *(backend.store.get(f"job-{n}") for n in range(8)), return_exceptions=True
            )
        assert answers == [None] * 8


# -- 4. cache outage ----------------------------------------------------------------------

CACHE_PASSWORD = "cache-secret-7f3a"
# A hung cache times a call out after 2 s; the flask job makes about a dozen cache calls.
# Asking a hung cache every time would take it past this deadline.
CACHE_OUTAGE_DEADLINE_SECONDS = 15


class TestCacheOutage:
    def test_jobs_succeed_from_the_index_while_the_cache_hangs_or_is_down(
        self, cluster: Cluster, slow_world: str, redis_servers: Callable[..., RedisServer]
    ) -> None:
        """A frozen cache, then a stopped one: jobs fetch from the index instead, within their
        deadline; each outage is logged once, redacted, and the cache is used again after."""
        cache = redis_servers("cache", password=CACHE_PASSWORD)
        cluster.env["RESOLVD_CACHE_URL"] = cache.url
        cluster.serve("--no-worker")
        worker = start_worker(cluster, "worker")
        cluster.wait_ready()

        def resolve(requirements: list[str]) -> dict[str, Any]:
            body = {
                "requirements": requirements,
                "indexes": [{"name": "corp"}],
                "deadline_seconds": CACHE_OUTAGE_DEADLINE_SECONDS,
            }
            document = cluster.wait_job(submit_all(cluster, [body])[0])
            assert_not_internal(document)
            assert document["status"] == "succeeded", document["failure"]
            return document

        resolve(["click"])
        cache.freeze()
        pins = {p["name"] for p in resolve(["flask"])["result"]["packages"]}
        assert pins == {"flask", "click", "blinker", "itsdangerous"}
        cache.thaw()
        # The cache is tried again within its retry interval (5 s), then used for new pages.
        fresh = (f"slow-{n:02d}" for n in range(10, 40))
        until = time.monotonic() + 30
        while "is answering again" not in worker.service.output():
            assert time.monotonic() < until, worker.service.output()
            resolve([next(fresh)])
            time.sleep(0.5)
        resolve(["slow-00"])
        with contextlib.closing(cache.client()) as client:
            assert any(b"slow-00" in key for key in client.keys("resolvd:cache:*"))
        cache.stop()
        resolve(["slow-01"])

        log = worker.service.output()
        assert CACHE_PASSWORD not in log
        outages = re.findall(r"page cache at (\S+) failed \((.*?)\)", log)
        assert [(url, error.split(": ")[1]) for url, error in outages] == [
            (f"redis://:****@127.0.0.1:{cache.port}/0", "TimeoutError"),
            (f"redis://:****@127.0.0.1:{cache.port}/0", "ConnectionError"),
        ], log
        assert worker.service.process.poll() is None


# -- 5. expiry and idempotency ------------------------------------------------------------

RESULT_TTL_SECONDS = 4
FLASK = {"requirements": ["flask>=2"], "indexes": [{"name": "corp"}]}


class TestExpiry:
    def test_a_job_past_its_ttl_is_404_and_an_identical_request_makes_a_new_job(
        self, cluster: Cluster, slow_world: str
    ) -> None:
        """jobs.result_ttl_seconds after it finished, a job is gone: 404, and neither
        deduplication nor its Idempotency-Key hands it out any more."""
        cluster.env["RESOLVD_JOBS_RESULT_TTL_SECONDS"] = str(RESULT_TTL_SECONDS)
        cluster.serve("--no-worker")
        start_worker(cluster, "worker")
        cluster.wait_ready()
        first = cluster.submit(FLASK, headers={"Idempotency-Key": "nightly-1"}).json()
        document = cluster.wait_job(first["id"])
        assert document["status"] == "succeeded", document["failure"]
        assert cluster.submit(FLASK).json()["id"] == first["id"]

        expires = parse_time(document["finished_at"]) + RESULT_TTL_SECONDS
        time.sleep(max(0.0, expires - time.time()))
        until = time.monotonic() + 10
        while (response := cluster.http.get(f"/jobs/{first['id']}")).status_code != 404:
            assert time.monotonic() < until, f"job outlived its TTL: {response.text}"
            time.sleep(0.2)
        assert response.json()["type"] == "urn:resolvd:problem:job-not-found"

        again = cluster.submit(FLASK)
        assert again.status_code == 202
        assert again.json()["id"] != first["id"]
        other = {"requirements": ["click"], "indexes": [{"name": "corp"}]}
        reused = cluster.submit(other, headers={"Idempotency-Key": "nightly-1"})
        assert reused.status_code == 202, reused.text
        assert cluster.wait_job(again.json()["id"])["status"] == "succeeded"


class TestIdempotencyKey:
    def test_a_key_reused_with_another_body_is_422_and_queues_nothing(
        self, cluster: Cluster, store: redis.Redis
    ) -> None:
        """Same key, same body: the same job; same key, another body: 422, nothing queued."""
        cluster.serve("--no-worker")
        cluster.wait_ready("/healthz")
        key = {"Idempotency-Key": "deploy-42"}
        first = cluster.submit(FLASK, headers=key)
        assert first.status_code == 202
        assert cluster.submit(FLASK, headers=key).json()["id"] == first.json()["id"]
        queued = store.llen("saq:resolvd:queued")

        conflict = cluster.submit({"requirements": ["click"]}, headers=key)
        assert conflict.status_code == 422
        assert conflict.headers["content-type"] == "application/problem+json"
        assert conflict.json()["type"] == "urn:resolvd:problem:idempotency-key-reused"
        assert conflict.json()["errors"][0]["field"] == "Idempotency-Key"
        assert store.llen("saq:resolvd:queued") == queued
