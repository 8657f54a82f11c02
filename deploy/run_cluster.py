"""``make run-cluster``: the topology of ``deploy/compose.yaml`` as local processes.

    python -m deploy.run_cluster            # start it, print the URLs, run until Ctrl-C
    python -m deploy.run_cluster --check    # an end-to-end check on a loopback index; exit 0/1

The topology is read from compose.yaml, not restated. A service whose command is a
``redis-server`` runs as a local redis-server with the same arguments plus a loopback port and
a data directory; every other service runs as ``deploy.replicas`` processes of
``python -m service <command>`` (the image's entrypoint is ``resolvd``), a ``serve`` bound to
127.0.0.1 on a free port per replica. Each gets its compose environment, in which
``<service>:<port>`` addresses become the loopback ports and mounted paths the files they
mount. The env file is read when it exists (never by ``--check``); when the configuration asks
for bearer tokens and none are set, a token is made for the run and printed.

Processes run in sessions of their own, log to files in the run's directory and are always
stopped on the way out (SIGTERM, then SIGKILL): the APIs, then the workers, then Redis. The
directory is removed after a clean run and kept, with its path printed, otherwise. ``--check``
serves its packages from ``tests.indexserver`` on loopback and touches no other host.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
import redis
import yaml

from service.jobs.queue import QUEUE_NAME
from service.jobs.runner import STOP_GRACE_SECONDS
from service.jobs.worker import DRAIN_GRACE_SECONDS
from service.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "deploy" / "compose.yaml"
REDIS_PORT = 6379
# A draining worker's running jobs get this long to finish, then to stop, before a SIGKILL.
STOP_TIMEOUT_SECONDS = DRAIN_GRACE_SECONDS + STOP_GRACE_SECONDS + 10
START_TIMEOUT_SECONDS = 90.0


# -- the topology ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServiceSpec:
    """One compose service, as far as running it locally needs."""

    name: str
    command: tuple[str, ...]
    replicas: int
    environment: Mapping[str, str]
    # container path -> host path, for bind mounts
    mounts: Mapping[str, Path]
    env_files: tuple[Path, ...]

    @property
    def is_redis(self) -> bool:
        return Path(self.command[0]).name == "redis-server"

    @property
    def serves_http(self) -> bool:
        return not self.is_redis and self.command[0] == "serve"

    @property
    def redis_port(self) -> int:
        """The port a Redis service listens on inside its container."""
        flag = "--port"
        if flag in self.command:
            return int(self.command[self.command.index(flag) + 1])
        return REDIS_PORT


def _bind_mounts(volumes: Sequence[str], base: Path) -> dict[str, Path]:
    mounts = {}
    for volume in volumes:
        source, target, *_ = volume.split(":")
        if source.startswith((".", "/")):  # anything else names a volume, not a host path
            mounts[target] = (base / source).resolve()
    return mounts


def load_services(path: Path = COMPOSE_FILE) -> list[ServiceSpec]:
    """The services of a compose file, with anchors and merge keys applied."""
    document = yaml.safe_load(path.read_text())
    services = []
    for name, service in document["services"].items():
        env_files = [
            entry if isinstance(entry, str) else entry["path"]
            for entry in service.get("env_file", [])
        ]
        services.append(
            ServiceSpec(
                name=name,
                command=tuple(str(arg) for arg in service["command"]),
                replicas=int(service.get("deploy", {}).get("replicas", 1)),
                environment={k: str(v) for k, v in service.get("environment", {}).items()},
                mounts=_bind_mounts(service.get("volumes", []), path.parent),
                env_files=tuple((path.parent / env_file).resolve() for env_file in env_files),
            )
        )
    return services


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines, as compose reads them (blank lines and ``#`` comments skipped)."""
    values = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def _localize(value: str, addresses: Mapping[str, str], mounts: Mapping[str, Path]) -> str:
    """A compose environment value as seen from this host."""
    for address, local in addresses.items():
        value = re.sub(rf"//{re.escape(address)}\b", f"//{local}", value)
    return str(mounts[value]) if value in mounts else value


def _with_option(args: Sequence[str], option: str, value: str) -> list[str]:
    if option in args:
        at = list(args).index(option)
        return [*args[: at + 1], value, *args[at + 2 :]]
    return [*args, option, value]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- processes -----------------------------------------------------------------------------


class Process:
    """A started process in its own session, logging to a file."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        env: Mapping[str, str],
        log: Path,
        *,
        clean_exits: Sequence[int] = (0,),
    ) -> None:
        self.name = name
        self.log = log
        self.clean_exits = clean_exits
        with log.open("wb") as output:
            self.popen = subprocess.Popen(
                list(argv),
                cwd=ROOT,
                env=dict(env),
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def exited(self) -> bool:
        return self.popen.poll() is not None

    def signal(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signum)

    def wait_stopped(self, timeout: float) -> int:
        """Wait for the exit status, SIGKILLing the session if it takes longer than ``timeout``."""
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            self.popen.wait(5)
        self.signal(signal.SIGKILL)  # anything the process left behind in its session
        return self.popen.returncode

    def tail(self, lines: int = 30) -> str:
        text = self.log.read_text(errors="replace").splitlines()[-lines:]
        return "\n".join(f"  | {line}" for line in text)


@dataclass
class Api:
    process: Process
    url: str

    @property
    def name(self) -> str:
        return self.process.name


@dataclass
class LocalCluster:
    """compose.yaml's services as local processes; ``start()``, then always ``stop()``."""

    services: Sequence[ServiceSpec]
    workdir: Path
    base_env: Mapping[str, str]
    read_env_files: bool = True
    apis: list[Api] = field(default_factory=list)
    token: str | None = None
    settings: Settings = field(default_factory=Settings)
    redis: list[Process] = field(default_factory=list)
    redis_urls: dict[str, str] = field(default_factory=dict)
    workers: list[Process] = field(default_factory=list)
    exit_statuses: dict[str, int] = field(default_factory=dict)
    # Set when something went wrong that the processes' exits do not show (a failed check).
    keep_logs: bool = False

    @property
    def tiers(self) -> list[list[Process]]:
        """The processes in start order: Redis, workers, APIs (stopped in reverse)."""
        return [self.redis, self.workers, [api.process for api in self.apis]]

    @property
    def processes(self) -> list[Process]:
        return [process for tier in self.tiers for process in tier]

    @property
    def worker_count(self) -> int:
        return sum(s.replicas for s in self.services if not s.is_redis and not s.serves_http)

    def start(self) -> None:
        if self.read_env_files:
            env_files = {path for service in self.services for path in service.env_files}
            for missing in sorted(path for path in env_files if not path.is_file()):
                print(f"note: {missing} does not exist (compose needs it); running without it")
        ports = {s.name: free_port() for s in self.services if s.is_redis}
        addresses = {
            f"{s.name}:{s.redis_port}": f"127.0.0.1:{ports[s.name]}"
            for s in self.services
            if s.is_redis
        }
        for service in self.services:
            if service.is_redis:
                self._start_redis(service, ports[service.name])
        for service in self.services:
            if not service.is_redis:
                self._start_resolvd(service, self._environment(service, addresses))
        self._wait_ready()

    def _start_redis(self, service: ServiceSpec, port: int) -> None:
        binary = shutil.which(service.command[0])
        if binary is None:
            raise ClusterError(f"{service.command[0]} is not installed (`make redis` installs it)")
        data = self.workdir / service.name
        data.mkdir()
        argv = [binary, *service.command[1:], "--port", str(port), "--bind", "127.0.0.1"]
        argv += ["--dir", str(data)]
        self.redis.append(Process(service.name, argv, self.base_env, self._log(service.name)))
        url = f"redis://127.0.0.1:{port}/0"
        self.redis_urls[service.name] = url
        _wait_until(f"{service.name} answering", lambda: _redis_answers(url), self.processes)

    def _environment(self, service: ServiceSpec, addresses: Mapping[str, str]) -> dict[str, str]:
        env = dict(self.base_env)
        for env_file in service.env_files if self.read_env_files else ():
            if env_file.is_file():
                env.update(read_env_file(env_file))
        for key, value in service.environment.items():
            env[key] = _localize(value, addresses, service.mounts)
        self.settings = load_settings(environ=env)
        tokens_env = self.settings.auth.tokens_env
        if tokens_env and not env.get(tokens_env):
            self.token = self.token or secrets.token_urlsafe(24)
            env[tokens_env] = f"local:{self.token}"
        elif tokens_env:
            self.token = env[tokens_env].replace(",", " ").split()[0].partition(":")[2]
        return env

    def _start_resolvd(self, service: ServiceSpec, env: Mapping[str, str]) -> None:
        for replica in range(1, service.replicas + 1):
            name = f"{service.name}-{replica}"
            argv = [sys.executable, "-m", "service", *service.command]
            if not service.serves_http:
                self.workers.append(Process(name, argv, env, self._log(name)))
                continue
            port = free_port()
            argv = _with_option(_with_option(argv, "--host", "127.0.0.1"), "--port", str(port))
            # uvicorn re-raises the SIGTERM it handled once its graceful shutdown is done.
            process = Process(name, argv, env, self._log(name), clean_exits=(0, -signal.SIGTERM))
            self.apis.append(Api(process, f"http://127.0.0.1:{port}"))

    def _log(self, name: str) -> Path:
        return self.workdir / f"{name}.log"

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def _wait_ready(self) -> None:
        """Every API answers /readyz and sees every worker's heartbeat."""
        for api in self.apis:

            def ready(api: Api = api) -> bool:
                try:
                    response = httpx.get(f"{api.url}/readyz", headers=self.headers(), timeout=2)
                except httpx.TransportError:
                    return False
                return response.status_code == 200 and (
                    response.json()["workers"] >= self.worker_count
                )

            _wait_until(f"{api.name} ready with {self.worker_count} workers", ready, self.processes)

    def find_exited(self) -> Process | None:
        return next((process for process in self.processes if process.exited()), None)

    def stop(self) -> None:
        """SIGTERM each tier (APIs, workers, Redis), wait for it, record the exit statuses."""
        for tier in reversed(self.tiers):
            for process in tier:
                process.signal(signal.SIGTERM)
            for process in tier:
                self.exit_statuses[process.name] = process.wait_stopped(STOP_TIMEOUT_SECONDS)

    @property
    def unclean_exits(self) -> dict[str, int | None]:
        """Processes that exited other than cleanly (``None``: never stopped)."""
        statuses = {
            process.name: self.exit_statuses.get(process.name) for process in self.processes
        }
        return {
            process.name: statuses[process.name]
            for process in self.processes
            if statuses[process.name] not in process.clean_exits
        }


class ClusterError(Exception):
    """The cluster could not be started; the message says what is missing or which process."""


def _redis_answers(url: str) -> bool:
    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


def _wait_until(what: str, condition: Callable[[], bool], processes: Sequence[Process]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while not condition():
        if dead := next((p for p in processes if p.exited()), None):
            raise ClusterError(f"{dead.name} exited while waiting for {what}:\n{dead.tail()}")
        if time.monotonic() > deadline:
            raise ClusterError(f"gave up waiting for {what} after {START_TIMEOUT_SECONDS:g} s")
        time.sleep(0.2)


@contextlib.contextmanager
def _signals_ignored(*signums: int) -> Iterator[None]:
    previous = {signum: signal.signal(signum, signal.SIG_IGN) for signum in signums}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextlib.contextmanager
def running_cluster(
    extra_env: Mapping[str, str] | None = None, *, read_env_files: bool = True
) -> Iterator[LocalCluster]:
    """A started cluster; stopped (and its directory removed if all went well) on exit."""
    workdir = Path(tempfile.mkdtemp(prefix="resolvd-cluster-"))
    # The cluster is configured by compose.yaml alone, not by this shell's RESOLVD_* settings.
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESOLVD_")}
    env.update({"PYTHONUNBUFFERED": "1", **(extra_env or {})})
    cluster = LocalCluster(load_services(), workdir, env, read_env_files=read_env_files)
    clean = False
    try:
        cluster.start()
        yield cluster
        clean = True
    finally:
        # A second Ctrl-C must not cut the stop short and leave processes behind.
        with _signals_ignored(signal.SIGINT, signal.SIGTERM):
            cluster.stop()
        if cluster.unclean_exits:
            print(f"processes that did not stop cleanly on SIGTERM: {cluster.unclean_exits}")
        if clean and not cluster.unclean_exits and not cluster.keep_logs:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"logs kept in {workdir}")


# -- the foreground run --------------------------------------------------------------------


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _print_summary(cluster: LocalCluster) -> None:
    print(f"resolvd cluster from {COMPOSE_FILE.relative_to(ROOT)}; logs in {cluster.workdir}")
    for api in cluster.apis:
        print(f"  {api.name:<12} {api.url}")
    for process in cluster.workers:
        print(f"  {process.name:<12} pid {process.popen.pid}")
    for name, url in cluster.redis_urls.items():
        print(f"  {name:<12} {url}")
    if cluster.token:
        print(f"  token        Authorization: Bearer {cluster.token}")
    indexes = ", ".join(f"{index.name} ({index.url})" for index in cluster.settings.index)
    print(f"  indexes      {indexes}")
    print("Ctrl-C stops everything.", flush=True)


def run_foreground() -> int:
    """Run until Ctrl-C or SIGTERM (0), or until a process exits on its own (1)."""
    print("starting the processes of deploy/compose.yaml", flush=True)
    try:
        with running_cluster() as cluster:
            _print_summary(cluster)
            try:
                while (dead := cluster.find_exited()) is None:
                    time.sleep(0.5)
            except KeyboardInterrupt:
                print("stopping", flush=True)
                return 0
            print(f"{dead.name} exited unexpectedly (status {dead.popen.returncode}):")
            print(dead.tail())
            return 1
    except KeyboardInterrupt:
        print("stopped while starting")
        return 1
    except ClusterError as exc:
        print(f"run-cluster: {exc}", file=sys.stderr)
        return 1


# -- the end-to-end check ----------------------------------------------------------------------


class Report:
    """Prints one line a check; ``failed`` counts the failures."""

    def __init__(self) -> None:
        self.failed = 0

    def check(self, passed: bool, what: str, detail: object = "") -> bool:
        print(f"{'ok  ' if passed else 'FAIL'} {what}" + ("" if passed else f": {detail}"))
        self.failed += not passed
        return passed


# Five libraries on one shared core: each job resolves two libraries (all ten pairs, so that no
# job is deduplicated onto another), and later jobs find the core's page in the shared cache.
LIBRARIES = ("alpha", "bravo", "charlie", "delta", "echo")
CHECK_REQUESTS = [list(pair) for pair in itertools.combinations(LIBRARIES, 2)]


def _world() -> list[Any]:
    from tests.indexserver import Project, Release  # noqa: PLC0415 - only --check serves an index

    libraries = [
        Project(name, [Release("1.0", requires=["core>=1"]), Release("2.0", requires=["core>=2"])])
        for name in LIBRARIES
    ]
    return [Project("core", [Release("1.0"), Release("2.0")]), *libraries]


JOB_TIMEOUT_SECONDS = 60.0


def _wait_job(client: httpx.Client, job_id: str) -> dict[str, Any]:
    """The job document once the job has ended (or as it is when the time is up)."""
    deadline = time.monotonic() + JOB_TIMEOUT_SECONDS
    document: dict[str, Any] = {}
    while time.monotonic() < deadline:
        document = client.get(f"/jobs/{job_id}", params={"wait": 10}).json()
        if document["status"] in ("succeeded", "failed", "cancelled"):
            break
    return document


@contextlib.contextmanager
def _redis_client(url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(url, decode_responses=True)
    try:
        yield client
    finally:
        client.close()


def _redis_config(url: str, *names: str) -> tuple[str, ...]:
    with _redis_client(url) as client:
        return tuple(str(client.config_get(name)[name]) for name in names)


def _count_keys(url: str, pattern: str) -> int:
    with _redis_client(url) as client:
        return sum(1 for _ in client.scan_iter(match=pattern, count=1000))


async def _find_workers_that_ran(jobs_url: str, job_ids: Sequence[str]) -> list[str | None]:
    """The id of the SAQ worker that ran each job (SAQ keeps it with the job)."""
    from saq.queue.redis import RedisQueue  # noqa: PLC0415 - only --check reads the queue

    queue = RedisQueue.from_url(jobs_url, name=QUEUE_NAME)
    try:
        jobs = [await queue.job(job_id) for job_id in job_ids]
    finally:
        await queue.disconnect()
    return [job.worker_id if job else None for job in jobs]


_SUCCEEDED_METRIC = re.compile(r'^resolvd_jobs_finished\{status="succeeded"\} (\S+)$', re.M)


class ClusterCheck:
    """The end-to-end checks on a running cluster, each reported as it runs."""

    def __init__(self, cluster: LocalCluster, index_url: str, report: Report) -> None:
        self.cluster = cluster
        self.index_url = index_url
        self.report = report
        self.jobs_url = cluster.settings.redis.url
        self.cache_url = cluster.settings.cache_url
        self.clients = [
            httpx.Client(base_url=api.url, headers=cluster.headers(), timeout=30)
            for api in cluster.apis
        ]

    def run(self) -> None:
        try:
            self.check_redis_policies()
            ids = self.check_jobs_across_apis()
            if ids:
                self.check_dedupe_across_apis(ids[0])
                self.check_workers(ids)
                self.check_redis_roles(ids)
                self.check_fleet_metrics(len(ids))
        finally:
            for client in self.clients:
                client.close()

    def _body(self, requirements: Sequence[str]) -> dict[str, Any]:
        return {"requirements": list(requirements), "indexes": [{"url": self.index_url}]}

    def _other(self, n: int) -> httpx.Client:
        return self.clients[(n + 1) % len(self.clients)]

    def check_redis_policies(self) -> None:
        jobs = _redis_config(self.jobs_url, "appendonly", "maxmemory-policy")
        self.report.check(
            jobs == ("yes", "noeviction"),
            "the job-store Redis persists (AOF) and never evicts",
            f"appendonly, maxmemory-policy = {jobs}",
        )
        policy, maxmemory = _redis_config(self.cache_url, "maxmemory-policy", "maxmemory")
        self.report.check(
            policy == "allkeys-lru" and int(maxmemory) > 0,
            "the cache Redis is bounded and evicts least recently used keys",
            f"maxmemory-policy, maxmemory = {policy}, {maxmemory}",
        )

    def check_jobs_across_apis(self) -> list[str]:
        """Submit to the APIs in turn, read each job from another API; the ids if all ran."""
        ids = []
        for n, requirements in enumerate(CHECK_REQUESTS):
            response = self.clients[n % len(self.clients)].post(
                "/resolve", json=self._body(requirements)
            )
            if response.status_code != 202:
                self.report.check(
                    False, f"job {n} accepted", f"{response.status_code} {response.text}"
                )
                return []
            ids.append(response.json()["id"])
        documents = [_wait_job(self._other(n), job_id) for n, job_id in enumerate(ids)]
        unfinished = [
            (d.get("status"), d.get("failure")) for d in documents if d.get("status") != "succeeded"
        ]
        passed = self.report.check(
            not unfinished,
            f"{len(ids)} jobs submitted to {len(self.clients)} APIs in turn succeeded, "
            "each read from an API it was not submitted to",
            unfinished,
        )
        return ids if passed else []

    def check_dedupe_across_apis(self, first_id: str) -> None:
        again = self._other(0).post("/resolve", json=self._body(CHECK_REQUESTS[0]))
        self.report.check(
            again.status_code == 200 and again.json()["id"] == first_id,
            "an identical request on another API is answered with the same finished job",
            f"{again.status_code} {again.text[:300]}",
        )

    def check_workers(self, ids: Sequence[str]) -> None:
        ran_on = set(asyncio.run(_find_workers_that_ran(self.jobs_url, ids)))
        with _redis_client(self.jobs_url) as client:
            alive = set(client.zrange("resolvd:workers", 0, -1))
        expected = self.cluster.worker_count
        self.report.check(
            len(ran_on) > 1 and ran_on <= alive and len(alive) == expected,
            f"the jobs ran on {len(ran_on)} of the {expected} workers",
            f"ran on {sorted(map(str, ran_on))}, heartbeats from {sorted(alive)}",
        )

    def check_redis_roles(self, ids: Sequence[str]) -> None:
        cached = _count_keys(self.cache_url, "resolvd:cache:*")
        misplaced_cache = _count_keys(self.jobs_url, "resolvd:cache:*")
        self.report.check(
            cached > 0 and misplaced_cache == 0,
            "pages and metadata are cached in the cache Redis only",
            f"{cached} keys in the cache, {misplaced_cache} in the job store",
        )
        stored = _count_keys(self.jobs_url, "resolvd:job:*")
        misplaced_jobs = _count_keys(self.cache_url, "resolvd:job:*")
        self.report.check(
            stored == len(ids) and misplaced_jobs == 0,
            "job documents are in the job-store Redis only",
            f"{stored} in the job store, {misplaced_jobs} in the cache",
        )

    def check_fleet_metrics(self, jobs: int) -> None:
        counts = []
        for client in self.clients:
            match = _SUCCEEDED_METRIC.search(client.get("/metrics").text)
            counts.append(float(match.group(1)) if match else None)
        self.report.check(
            all(count is not None and count >= jobs for count in counts),
            "every API's /metrics counts the whole fleet's finished jobs",
            f'resolvd_jobs_finished{{status="succeeded"}} per API: {counts}',
        )


def run_check() -> int:
    from tests.indexserver import IndexServer, IndexSpec  # noqa: PLC0415

    report = Report()
    with IndexServer() as index:
        index_url = index.add_index(IndexSpec("local", _world()))
        # Slow pages keep each job busy long enough for the queue to spread jobs over workers.
        index.inject("/local/simple/*", delay=0.3)
        try:
            with running_cluster(
                {"RESOLVD_ALLOWED_INDEX_URLS": index.base_url + "/"}, read_env_files=False
            ) as cluster:
                names = ", ".join(process.name for process in cluster.processes)
                print(f"started {names}")
                ClusterCheck(cluster, index_url, report).run()
                cluster.keep_logs = report.failed > 0
        except ClusterError as exc:
            report.check(False, "the cluster started", exc)
        else:
            report.check(
                not cluster.unclean_exits,
                "every process stopped cleanly on SIGTERM",
                cluster.unclean_exits,
            )
    print(f"{'FAILED' if report.failed else 'passed'}: {report.failed} check(s) failed")
    return 1 if report.failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m deploy.run_cluster",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--check", action="store_true", help="run the end-to-end check and exit 0/1"
    )
    args = parser.parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so that the cluster is stopped either way.
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        return run_check() if args.check else run_foreground()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
