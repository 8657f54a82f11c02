"""``make run-cluster``: the topology of ``deploy/compose.yaml`` as local processes.

    python -m deploy.run_cluster            # start it, print the URLs, run until Ctrl-C

The topology is read from compose.yaml, not restated. A service whose command is a
``redis-server`` runs as a local redis-server with the same arguments plus a loopback port and
a data directory; every other service runs as ``deploy.replicas`` processes of
``python -m service <command>`` (the image's entrypoint is ``resolvd``), a ``serve`` bound to
127.0.0.1 on a free port per replica. Each gets its compose environment, in which
``<service>:<port>`` addresses become the loopback ports and mounted paths the files they
mount. The env file is read when it exists (``running_cluster(read_env_files=False)`` skips
it); when the configuration asks for bearer tokens and none are set, a token is made for the run
and printed.

Processes run in sessions of their own (``tests.support.processes``), log to files in the run's
directory and are always stopped on the way out (SIGTERM, then SIGKILL): the APIs, then the
workers, then Redis. The directory is removed after a clean run and kept, with its path printed,
otherwise. The end-to-end check of this topology is ``tests/deploy/test_run_cluster.py`` (part
of ``make test``), over ``running_cluster``.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import secrets
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import yaml

from service.jobs.runner import STOP_GRACE_SECONDS
from service.jobs.worker import DRAIN_GRACE_SECONDS
from service.settings import Settings, load_settings
from tests.support.processes import (
    ROOT,
    Service,
    StartError,
    free_port,
    make_service_env,
    resolvd_command,
    wait_http_ready,
)
from tests.support.redis import RedisServer

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
        if service.get("profiles"):
            continue  # as `docker compose up` without --profile: opt-in services stay off
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


# -- processes -----------------------------------------------------------------------------


@dataclass
class Api:
    service: Service
    url: str

    @property
    def name(self) -> str:
        return self.service.name


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
    redis: dict[str, RedisServer] = field(default_factory=dict)
    workers: list[Service] = field(default_factory=list)
    exit_statuses: dict[str, int] = field(default_factory=dict)

    @property
    def redis_urls(self) -> dict[str, str]:
        return {name: server.url for name, server in self.redis.items()}

    @property
    def tiers(self) -> list[list[Service]]:
        """The processes in start order: Redis, workers, APIs (stopped in reverse)."""
        redis = [server.service for server in self.redis.values() if server.service]
        return [redis, self.workers, [api.service for api in self.apis]]

    @property
    def processes(self) -> list[Service]:
        return [process for tier in self.tiers for process in tier]

    @property
    def worker_count(self) -> int:
        return sum(s.replicas for s in self.services if not s.is_redis and not s.serves_http)

    def start(self) -> None:
        """Start Redis, then the workers and APIs; return once every API sees every worker.

        ``StartError`` (its ``MissingToolError`` when redis-server is not installed) names the
        process that exited or what never happened."""
        if self.read_env_files:
            env_files = {path for service in self.services for path in service.env_files}
            for missing in sorted(path for path in env_files if not path.is_file()):
                print(f"note: {missing} does not exist (compose needs it); running without it")
        for service in self.services:
            if service.is_redis:
                self.redis[service.name] = RedisServer(
                    self.workdir / service.name, options=service.command[1:], name=service.name
                )
        addresses = {
            f"{s.name}:{s.redis_port}": f"127.0.0.1:{self.redis[s.name].port}"
            for s in self.services
            if s.is_redis
        }
        for server in self.redis.values():
            server.start(START_TIMEOUT_SECONDS)
        for service in self.services:
            if not service.is_redis:
                self._start_resolvd(service, self._environment(service, addresses))
        self._wait_ready()

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
            argv = resolvd_command(*service.command)
            log = self.workdir / f"{name}.log"
            if not service.serves_http:
                self.workers.append(Service(name, argv, env, log))
                continue
            port = free_port()
            argv = _with_option(_with_option(argv, "--host", "127.0.0.1"), "--port", str(port))
            # uvicorn re-raises the SIGTERM it handled once its graceful shutdown is done.
            process = Service(name, argv, env, log, clean_exits=(0, -signal.SIGTERM))
            self.apis.append(Api(process, f"http://127.0.0.1:{port}"))

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def _wait_ready(self) -> None:
        """Every API answers /readyz and sees every worker's heartbeat."""
        for api in self.apis:
            wait_http_ready(
                f"{api.url}/readyz",
                services=self.processes,
                timeout=START_TIMEOUT_SECONDS,
                headers=self.headers(),
                accept=lambda r: r.status_code == 200 and r.json()["workers"] >= self.worker_count,
            )

    def find_exited(self) -> Service | None:
        return next((process for process in self.processes if process.exited()), None)

    def stop(self) -> None:
        """SIGTERM each tier (APIs, workers, Redis), wait for it, record the exit statuses."""
        for tier in reversed(self.tiers):
            for process in tier:
                process.terminate()
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
    extra_env: Mapping[str, str] | None = None,
    *,
    read_env_files: bool = True,
    workdir: Path | None = None,
) -> Iterator[LocalCluster]:
    """A started cluster, stopped on exit. Its logs go to ``workdir`` when given (left in
    place), else to a new directory that is removed if all went well."""
    owned = workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="resolvd-cluster-")) if workdir is None else workdir
    # The cluster is configured by compose.yaml alone, not by this shell's RESOLVD_* settings.
    env = make_service_env(extra_env)
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
        if owned and clean and not cluster.unclean_exits:
            shutil.rmtree(workdir, ignore_errors=True)
        elif owned:
            print(f"logs kept in {workdir}")


# -- the foreground run --------------------------------------------------------------------


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _print_summary(cluster: LocalCluster) -> None:
    print(f"resolvd cluster from {COMPOSE_FILE.relative_to(ROOT)}; logs in {cluster.workdir}")
    for api in cluster.apis:
        print(f"  {api.name:<12} {api.url}")
    for process in cluster.workers:
        print(f"  {process.name:<12} pid {process.pid}")
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
            print(f"{dead.name} exited unexpectedly (status {dead.process.returncode}):")
            print(dead.tail())
            return 1
    except KeyboardInterrupt:
        print("stopped while starting")
        return 1
    except StartError as exc:
        print(f"run-cluster: {exc}", file=sys.stderr)
        return 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m deploy.run_cluster",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so that the cluster is stopped either way.
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        return run_foreground()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
