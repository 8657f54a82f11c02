"""deploy/: the Dockerfile, compose.yaml and the Kubernetes manifests, held against the code.

Neither Docker nor a cluster runs here, so the files are parsed and checked against what the
service really reads and serves: environment names derived from ``Settings``, commands parsed by
the CLI's own parser, probe paths among the app's routes, autoscaling metrics among those
``/metrics`` exposes, configuration loaded by ``load_settings``. ``test_run_cluster.py`` runs the
same topology as real processes.
"""

from __future__ import annotations

import argparse
import fnmatch
import functools
import re
import shlex
import shutil
import subprocess
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import msgspec
import pytest
import yaml
from litestar.testing import TestClient
from packaging.specifiers import SpecifierSet

from deploy.run_cluster import load_services
from service.api import create_app
from service.cli import _GRACEFUL_SHUTDOWN_SECONDS, _make_parser
from service.jobs.runner import STOP_GRACE_SECONDS
from service.jobs.worker import DRAIN_GRACE_SECONDS
from service.settings import _SCALAR_SECTIONS, Settings, load_settings

ROOT = Path(__file__).parents[2]
DEPLOY = ROOT / "deploy"
CONFIG = DEPLOY / "resolvd.toml"
ENV_NAME = re.compile(r"\bRESOLVD_[A-Z0-9_]*[A-Z0-9]\b")


# -- reading the files -------------------------------------------------------------------------


@functools.cache
def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return document


def compose_service(name: str) -> dict[str, Any]:
    service: dict[str, Any] = compose()["services"][name]
    return service


@functools.cache
def k8s_documents() -> tuple[dict[str, Any], ...]:
    return tuple(
        document
        for path in sorted((DEPLOY / "k8s").glob("*.yaml"))
        for document in yaml.safe_load_all(path.read_text())
        if document
    )


def k8s(kind: str, name: str) -> dict[str, Any]:
    for document in k8s_documents():
        if document["kind"] == kind and document["metadata"]["name"] == name:
            return document
    pytest.fail(f"no {kind} {name} in deploy/k8s")


def pod_spec(workload: Mapping[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = workload["spec"]["template"]["spec"]
    return spec


def container(workload: Mapping[str, Any]) -> dict[str, Any]:
    (only,) = pod_spec(workload)["containers"]
    return dict(only)


def workloads() -> list[dict[str, Any]]:
    return [d for d in k8s_documents() if d["kind"] in ("Deployment", "StatefulSet")]


def kustomize(directory: Path) -> list[dict[str, Any]]:
    """What `kubectl kustomize` (offline) renders from ``directory``; skips without kubectl."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed")
    rendered = subprocess.run(
        [kubectl, "kustomize", str(directory)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    return [document for document in yaml.safe_load_all(rendered) if document]


class Instruction(msgspec.Struct, frozen=True):
    keyword: str
    arguments: str

    def exec_form(self) -> list[str]:
        """The JSON (exec) form of CMD, ENTRYPOINT or HEALTHCHECK's CMD."""
        text = self.arguments.partition("CMD ")[2] if self.keyword == "HEALTHCHECK" else ""
        return msgspec.json.decode(text or self.arguments, type=list[str])


@functools.cache
def dockerfile() -> tuple[Instruction, ...]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    instructions: list[Instruction] = []
    pending = ""
    continuation = "\\"
    for raw in (DEPLOY / "Dockerfile").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        pending = f"{pending} {line.removesuffix(continuation)}".strip()
        if not line.endswith(continuation):
            keyword, _, arguments = pending.partition(" ")
            instructions.append(Instruction(keyword.upper(), re.sub(r"\s+", " ", arguments)))
            pending = ""
    return tuple(instructions)


def instructions(keyword: str) -> list[Instruction]:
    return [i for i in dockerfile() if i.keyword == keyword]


def stages() -> list[tuple[str, str]]:
    """``(image, stage name)`` of each FROM, with build ARG defaults substituted."""
    defaults = dict(i.arguments.split("=", 1) for i in instructions("ARG") if "=" in i.arguments)
    found = []
    for instruction in instructions("FROM"):
        image, _, name = instruction.arguments.partition(" AS ")
        for arg, value in defaults.items():
            image = image.replace(f"${{{arg}}}", value)
        found.append((image, name))
    return found


def runtime_stage() -> list[Instruction]:
    """The instructions after the last FROM."""
    last_from = max(n for n, i in enumerate(dockerfile()) if i.keyword == "FROM")
    return list(dockerfile()[last_from + 1 :])


def dockerfile_env() -> dict[str, str]:
    pairs = [p for i in instructions("ENV") for p in shlex.split(i.arguments)]
    return dict(pair.split("=", 1) for pair in pairs)


def parse_resolvd(argv: Sequence[str]) -> argparse.Namespace:
    """``resolvd <argv>`` as the real CLI parses it; a failure names the command."""
    try:
        return _make_parser().parse_args(list(argv))
    except SystemExit:
        pytest.fail(f"`resolvd {shlex.join(argv)}` is not a valid resolvd command line")


def redis_options(command: Sequence[str]) -> dict[str, str]:
    """``redis-server --key value …`` as a mapping."""
    assert command[0] == "redis-server", command
    flags = command[1:]
    assert len(flags) % 2 == 0 and all(f.startswith("--") for f in flags[::2]), command
    return {
        key.removeprefix("--"): value for key, value in zip(flags[::2], flags[1::2], strict=True)
    }


def memory_bytes(text: str) -> int:
    """Redis (``256mb``) and Kubernetes (``384Mi``) memory sizes, in bytes."""
    units = {"kb": 1024, "mb": 1024**2, "gb": 1024**3, "ki": 1024, "mi": 1024**2, "gi": 1024**3}
    match = re.fullmatch(r"(\d+)([a-zA-Z]*)", text)
    assert match, text
    return int(match[1]) * units.get(match[2].lower(), 1)


def env_file_names(path: Path) -> set[str]:
    lines = [line.strip() for line in path.read_text().splitlines()]
    return {line.split("=", 1)[0] for line in lines if line and not line.startswith("#")}


# -- what the code reads and serves --------------------------------------------------------


class _RecordingEnviron(dict[str, str]):
    """An empty environment that records every name looked up in it."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        self.asked.add(key)
        return super().get(key, default)


@functools.cache
def settings_env_names() -> frozenset[str]:
    """Every ``RESOLVD_*`` name ``load_settings`` reads.

    The names it looks up are recorded; the ``RESOLVD_<SECTION>_<KEY>`` names it takes by prefix
    come from the fields of each such section of ``Settings``.
    """
    environ = _RecordingEnviron()
    load_settings(environ=environ)
    sections = {f.name: f.type for f in msgspec.structs.fields(Settings)}
    prefixed = {
        f"RESOLVD_{section}_{field.name}".upper()
        for section in _SCALAR_SECTIONS
        for field in msgspec.structs.fields(sections[section])
    }
    return frozenset(environ.asked | prefixed)


def referenced_secrets(settings: Settings) -> set[str]:
    """The environment variables a configuration names for credentials and tokens."""
    names = {
        name
        for index in settings.index
        for name in (index.username_env, index.password_env, index.token_env)
        if name
    }
    return names | ({settings.auth.tokens_env} if settings.auth.tokens_env else set())


@functools.cache
def route_paths() -> frozenset[str]:
    return frozenset(route.path for route in create_app(Settings(), environ={}).routes)


@functools.cache
def exposed_metrics() -> frozenset[str]:
    """The metric family names ``GET /metrics`` exposes (an app on the in-process store)."""
    with TestClient(app=create_app(Settings(), backend="memory", environ={})) as client:
        text = client.get("/metrics").text
    return frozenset(re.findall(r"^# TYPE (\S+) ", text, re.M))


def deploy_text_files() -> Iterator[Path]:
    for path in sorted(DEPLOY.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            yield path


# -- .dockerignore -------------------------------------------------------------------------


def _glob_regex(pattern: str) -> re.Pattern[str]:
    parts = re.split(r"(\*\*/?|\*|\?)", pattern)
    wildcards = {"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}
    return re.compile("".join(wildcards.get(part, re.escape(part)) for part in parts))


def dockerignored(path: str) -> bool:
    """Whether the build context leaves ``path`` out, by the rules Docker applies.

    Patterns apply in order and the last that matches decides (``!`` re-includes); a pattern
    matching a directory matches everything below it.
    """
    patterns = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()]
    excluded = False
    parts = path.split("/")
    for pattern in patterns:
        if not pattern or pattern.startswith("#"):
            continue
        negated = pattern.startswith("!")
        regex = _glob_regex(pattern.removeprefix("!").strip("/"))
        if any(regex.fullmatch("/".join(parts[:n])) for n in range(1, len(parts) + 1)):
            excluded = not negated
    return excluded


# -- the tests ---------------------------------------------------------------------------------


class TestDockerfile:
    def test_it_builds_in_one_stage_and_runs_in_a_slim_python_that_resolvd_supports(self) -> None:
        """A builder stage makes the wheels; the runtime is a python:3.x-slim pyproject allows."""
        found = stages()
        assert len(found) >= 2 and found[0][1] == "builder", found
        image, _ = found[-1]
        match = re.fullmatch(r"python:(\d+\.\d+)-slim", image)
        assert match, f"runtime image {image} is not a python:3.x-slim"
        pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
        assert match[1] in SpecifierSet(pyproject["project"]["requires-python"])
        # COPY --from=builder or RUN --mount=...,from=builder
        takes_from_builder = any("from=builder" in i.arguments for i in runtime_stage())
        assert takes_from_builder, "the runtime stage takes nothing from the builder"

    def test_it_runs_as_a_numeric_non_root_user_that_the_pods_name(self) -> None:
        """USER is numeric (Kubernetes can verify runAsNonRoot only then) and not 0."""
        (user,) = [i for i in runtime_stage() if i.keyword == "USER"]
        uid, _, gid = user.arguments.partition(":")
        assert uid.isdigit() and int(uid) != 0, user
        for name in ("resolvd-api", "resolvd-worker"):
            context = pod_spec(k8s("Deployment", name))["securityContext"]
            assert (str(context["runAsUser"]), str(context["runAsGroup"])) == (uid, gid or uid)

    def test_the_healthcheck_gets_healthz_on_the_served_port_with_python(self) -> None:
        """No curl in slim images: HEALTHCHECK runs python against /healthz on the exposed port."""
        (healthcheck,) = instructions("HEALTHCHECK")
        command = healthcheck.exec_form()
        assert command[0] == "python", command
        url = urlsplit(re.findall(r"https?://[^'\"]+", command[-1])[0])
        (expose,) = instructions("EXPOSE")
        (cmd,) = instructions("CMD")
        assert url.port == int(expose.arguments) == parse_resolvd(cmd.exec_form()).port
        assert url.path in route_paths()

    def test_the_entrypoint_is_resolvd_and_the_default_command_serves_without_a_worker(
        self,
    ) -> None:
        """ENTRYPOINT is the console script pyproject declares; CMD is a real API command."""
        pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
        (entrypoint,) = instructions("ENTRYPOINT")
        assert entrypoint.exec_form() == ["resolvd"]
        assert "resolvd" in pyproject["project"]["scripts"]
        (cmd,) = instructions("CMD")
        args = parse_resolvd(cmd.exec_form())
        assert (args.command, args.no_worker, args.host) == ("serve", True, "0.0.0.0")

    def test_what_it_copies_exists_and_reaches_the_build_context(self) -> None:
        """Each COPY source is in the repository and not left out by .dockerignore."""
        sources = [
            source
            for copy in instructions("COPY")
            if not copy.arguments.startswith("--from=")
            for source in shlex.split(copy.arguments)[:-1]
        ]
        assert "service" in sources and "pyproject.toml" in sources, sources
        for source in sources:
            path = ROOT / source
            assert path.exists(), f"COPY {source}: not in the repository"
            files = [path] if path.is_file() else list(path.rglob("*"))
            for file in files:
                relative = file.relative_to(ROOT).as_posix()
                if file.is_dir() or "__pycache__" in file.parts:
                    continue
                assert not dockerignored(relative), f"{relative} is left out of the build context"

    def test_the_configuration_it_carries_is_where_RESOLVD_CONFIG_points(self) -> None:
        """The copied resolvd.toml lands at $RESOLVD_CONFIG (where k8s mounts the ConfigMap too)."""
        destinations = {
            shlex.split(c.arguments)[-1]: shlex.split(c.arguments)[0] for c in instructions("COPY")
        }
        config_path = dockerfile_env()["RESOLVD_CONFIG"]
        assert destinations[config_path] == CONFIG.relative_to(ROOT).as_posix()

    def test_the_build_context_leaves_local_state_out(self) -> None:
        """No virtualenv, git data, tests, caches or local secrets are sent to the daemon."""
        for path in (
            ".venv/bin/python",
            ".git/HEAD",
            "tests/conftest.py",
            "deploy/resolvd.env",
            "service/__pycache__/cli.cpython-311.pyc",
        ):
            assert dockerignored(path), f"{path} would be sent to the Docker daemon"

    def test_files_under_service_that_are_not_python_are_declared_package_data(self) -> None:
        """The image installs the wheel, and a wheel carries only declared data files."""
        pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
        declared = pyproject.get("tool", {}).get("setuptools", {}).get("package-data", {})
        for path in (ROOT / "service").rglob("*"):
            if not path.is_file() or path.suffix in (".py", ".pyc") or "__pycache__" in path.parts:
                continue
            relative = path.relative_to(ROOT).as_posix()
            covered = any(
                fnmatch.fnmatch(relative, f"{package.replace('.', '/')}/{pattern}")
                for package, patterns in declared.items()
                for pattern in patterns
            )
            assert covered, f"{relative} is not package data: the image would not have it"


class TestCompose:
    def test_the_api_and_workers_run_real_resolvd_commands(self) -> None:
        """api: `serve --no-worker` on all interfaces at the exposed port; worker: `worker`."""
        api = parse_resolvd(compose_service("api")["command"])
        (expose,) = instructions("EXPOSE")
        assert (api.command, api.no_worker, api.host, api.port) == (
            "serve",
            True,
            "0.0.0.0",
            int(expose.arguments),
        )
        assert parse_resolvd(compose_service("worker")["command"]).command == "worker"

    def test_it_runs_two_api_replicas_and_three_workers(self) -> None:
        """The topology `make run-cluster` runs locally."""
        assert compose_service("api")["deploy"]["replicas"] == 2
        assert compose_service("worker")["deploy"]["replicas"] == 3

    def test_the_job_store_persists_and_never_evicts_and_the_cache_is_a_bounded_lru(
        self,
    ) -> None:
        """Which Redis is which follows the URLs the services are given."""
        environment = compose_service("api")["environment"]
        jobs_host = urlsplit(environment["RESOLVD_REDIS_URL"]).hostname
        cache_host = urlsplit(environment["RESOLVD_CACHE_URL"]).hostname
        assert jobs_host != cache_host
        jobs = redis_options(compose_service(jobs_host)["command"])
        assert (jobs["appendonly"], jobs["maxmemory-policy"]) == ("yes", "noeviction")
        cache = redis_options(compose_service(cache_host)["command"])
        assert cache["maxmemory-policy"] == "allkeys-lru"
        assert memory_bytes(cache["maxmemory"]) > 0
        assert cache["save"] == ""

    def test_resolvd_waits_for_healthy_redis(self) -> None:
        """api and worker start once both Redis answer their healthchecks."""
        for name in ("api", "worker"):
            depends_on = compose_service(name)["depends_on"]
            for redis_name in ("redis-jobs", "redis-cache"):
                assert depends_on[redis_name]["condition"] == "service_healthy"
                assert "redis-cli" in compose_service(redis_name)["healthcheck"]["test"]

    def test_only_the_api_is_health_checked_over_http(self) -> None:
        """The api keeps the image's HEALTHCHECK; the worker, which serves nothing, disables it."""
        assert "healthcheck" not in compose_service("api")
        assert compose_service("worker")["healthcheck"] == {"disable": True}

    def test_the_mounted_configuration_is_where_RESOLVD_CONFIG_points(self) -> None:
        """deploy/resolvd.toml is mounted read-only at $RESOLVD_CONFIG."""
        for name in ("api", "worker"):
            service = compose_service(name)
            mounts = {
                target: (DEPLOY / source).resolve()
                for source, target, *_ in (v.split(":") for v in service["volumes"])
            }
            assert mounts[service["environment"]["RESOLVD_CONFIG"]] == CONFIG

    def test_secrets_come_from_an_env_file_whose_example_names_what_the_config_needs(
        self,
    ) -> None:
        """resolvd.env (from resolvd.env.example) holds exactly the variables resolvd.toml names."""
        for name in ("api", "worker"):
            (env_file,) = compose_service(name)["env_file"]
            assert env_file == {"path": "resolvd.env", "required": True}
        expected = referenced_secrets(load_settings(CONFIG, environ={}))
        assert env_file_names(DEPLOY / "resolvd.env.example") == expected

    def test_the_root_filesystem_is_read_only_with_a_writable_tmp(self) -> None:
        """The index client spools large wheels to a temporary file."""
        for name in ("api", "worker"):
            service = compose_service(name)
            assert service["read_only"] is True
            assert "/tmp" in service["tmpfs"]

    def test_stop_grace_periods_outlast_the_drains(self) -> None:
        """Docker must not SIGKILL a worker still draining, nor an API finishing requests."""
        worker = int(compose_service("worker")["stop_grace_period"].removesuffix("s"))
        assert worker > DRAIN_GRACE_SECONDS + STOP_GRACE_SECONDS
        api = int(compose_service("api")["stop_grace_period"].removesuffix("s"))
        assert api > _GRACEFUL_SHUTDOWN_SECONDS

    def test_the_image_is_built_from_the_repository_root_with_the_dockerfile(self) -> None:
        for name in ("api", "worker"):
            build = compose_service(name)["build"]
            assert (DEPLOY / build["context"]).resolve() == ROOT
            assert (ROOT / build["dockerfile"]) == DEPLOY / "Dockerfile"


class TestKubernetes:
    def test_the_configmap_holds_deploy_resolvd_toml_and_it_loads(self) -> None:
        """One configuration for every topology: the ConfigMap's copy is the file, verbatim."""
        text = k8s("ConfigMap", "resolvd-config")["data"]["resolvd.toml"]
        assert text == CONFIG.read_text(), "copy deploy/resolvd.toml into k8s/configmap.yaml"
        settings = load_settings(CONFIG, environ={})
        assert [index.name for index in settings.index] == ["corp", "pypi"]

    def test_the_secret_template_holds_exactly_the_variables_the_config_names(self) -> None:
        """username_env, password_env and auth.tokens_env each have a key, and nothing else."""
        secret = k8s("Secret", "resolvd-secrets")
        expected = referenced_secrets(load_settings(CONFIG, environ={}))
        assert set(secret["stringData"]) == expected

    def test_both_roles_get_the_config_the_environment_and_the_secret(self) -> None:
        """envFrom names the env ConfigMap and the Secret; the config volume is mounted at
        $RESOLVD_CONFIG's directory with the file under its key."""
        environment = k8s("ConfigMap", "resolvd-env")["data"]
        config_dir, _, config_file = environment["RESOLVD_CONFIG"].rpartition("/")
        for name in ("resolvd-api", "resolvd-worker"):
            workload = k8s("Deployment", name)
            sources = container(workload)["envFrom"]
            assert {"configMapRef": {"name": "resolvd-env"}} in sources
            assert {"secretRef": {"name": "resolvd-secrets"}} in sources
            volumes = {v["name"]: v for v in pod_spec(workload)["volumes"]}
            (mount,) = [
                m for m in container(workload)["volumeMounts"] if m["mountPath"] == config_dir
            ]
            config_map = k8s("ConfigMap", volumes[mount["name"]]["configMap"]["name"])
            assert config_file in config_map["data"]

    def test_the_deployments_run_real_resolvd_commands_on_one_port(self) -> None:
        """containerPort = --port = EXPOSE = the Service's targetPort = the probes' port."""
        api = k8s("Deployment", "resolvd-api")
        args = parse_resolvd(container(api)["args"])
        assert (args.command, args.no_worker, args.host) == ("serve", True, "0.0.0.0")
        ports = {p["name"]: p["containerPort"] for p in container(api)["ports"]}

        def resolve(port: str | int) -> int:
            return ports[port] if isinstance(port, str) else port

        (expose,) = instructions("EXPOSE")
        assert set(ports.values()) == {args.port} == {int(expose.arguments)}
        (service_port,) = k8s("Service", "resolvd-api")["spec"]["ports"]
        assert resolve(service_port["targetPort"]) == args.port
        for probe in ("livenessProbe", "readinessProbe"):
            assert resolve(container(api)[probe]["httpGet"]["port"]) == args.port
        worker = parse_resolvd(container(k8s("Deployment", "resolvd-worker"))["args"])
        assert worker.command == "worker"

    def test_liveness_is_healthz_and_readiness_is_readyz(self) -> None:
        """Both are routes of the app."""
        api = container(k8s("Deployment", "resolvd-api"))
        assert api["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert api["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert {"/healthz", "/readyz"} <= route_paths()

    def test_the_service_selects_api_pods_and_no_others(self) -> None:
        selector = k8s("Service", "resolvd-api")["spec"]["selector"]
        for workload in workloads():
            labels = workload["spec"]["template"]["metadata"]["labels"]
            selected = selector.items() <= labels.items()
            assert selected == (workload["metadata"]["name"] == "resolvd-api"), workload["metadata"]
            assert workload["spec"]["selector"]["matchLabels"].items() <= labels.items()

    def test_the_api_scales_on_cpu_which_its_pods_request(self) -> None:
        """A CPU utilization target needs a CPU request to be a percentage of."""
        hpa = k8s("HorizontalPodAutoscaler", "resolvd-api")
        assert hpa["spec"]["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": "resolvd-api",
        }
        assert [m["resource"]["name"] for m in hpa["spec"]["metrics"]] == ["cpu"]
        assert hpa["spec"]["minReplicas"] >= 2
        assert "cpu" in container(k8s("Deployment", "resolvd-api"))["resources"]["requests"]

    def test_workers_scale_on_the_queue_depth_that_metrics_exposes(self) -> None:
        """The KEDA trigger's query names only metrics GET /metrics really exposes."""
        scaled = k8s("ScaledObject", "resolvd-worker")
        assert scaled["spec"]["scaleTargetRef"]["name"] == "resolvd-worker"
        (trigger,) = scaled["spec"]["triggers"]
        names = set(re.findall(r"resolvd_\w+", trigger["metadata"]["query"]))
        assert names == {"resolvd_queue_depth"}
        assert names <= exposed_metrics()
        assert float(trigger["metadata"]["threshold"]) > 0

    def test_the_autoscalers_own_the_replica_counts(self) -> None:
        """No `replicas` in a scaled Deployment, or every `kubectl apply` would reset it."""
        for name in ("resolvd-api", "resolvd-worker"):
            assert "replicas" not in k8s("Deployment", name)["spec"]

    def test_every_pod_runs_locked_down_within_its_resources(self) -> None:
        """Non-root, read-only root, no privilege escalation, no capabilities; memory bounded."""
        for workload in workloads():
            assert pod_spec(workload)["securityContext"]["runAsNonRoot"] is True
            main = container(workload)
            security = main["securityContext"]
            assert security["readOnlyRootFilesystem"] is True
            assert security["allowPrivilegeEscalation"] is False
            assert security["capabilities"]["drop"] == ["ALL"]
            assert {"cpu", "memory"} <= main["resources"]["requests"].keys()
            assert "memory" in main["resources"]["limits"]

    def test_resolvd_pods_have_a_writable_tmp(self) -> None:
        """The index client spools large wheels to a temporary file."""
        for name in ("resolvd-api", "resolvd-worker"):
            workload = k8s("Deployment", name)
            volumes = {v["name"]: v for v in pod_spec(workload)["volumes"]}
            (tmp,) = [m for m in container(workload)["volumeMounts"] if m["mountPath"] == "/tmp"]
            assert "emptyDir" in volumes[tmp["name"]] and not tmp.get("readOnly")

    def test_termination_grace_outlasts_the_drains(self) -> None:
        """The kubelet must not SIGKILL a draining worker, nor an API in its preStop pause."""
        worker = pod_spec(k8s("Deployment", "resolvd-worker"))
        assert worker["terminationGracePeriodSeconds"] > DRAIN_GRACE_SECONDS + STOP_GRACE_SECONDS
        api = pod_spec(k8s("Deployment", "resolvd-api"))
        pre_stop = container(k8s("Deployment", "resolvd-api"))["lifecycle"]["preStop"]
        pause = float(re.findall(r"sleep\((\d+)\)", pre_stop["exec"]["command"][-1])[0])
        assert api["terminationGracePeriodSeconds"] > pause + _GRACEFUL_SHUTDOWN_SECONDS

    def test_the_redis_urls_name_the_redis_services(self) -> None:
        """RESOLVD_REDIS_URL and RESOLVD_CACHE_URL point at the Services in front of the pods."""
        environment = k8s("ConfigMap", "resolvd-env")["data"]
        for variable in ("RESOLVD_REDIS_URL", "RESOLVD_CACHE_URL"):
            url = urlsplit(environment[variable])
            (port,) = k8s("Service", url.hostname or "")["spec"]["ports"]
            assert port["port"] == url.port

    def test_redis_runs_as_in_compose_with_its_data_where_redis_keeps_it(self) -> None:
        """Same commands and image as compose; the job store on a persistent volume; the cache's
        memory limit above its maxmemory."""
        environment = k8s("ConfigMap", "resolvd-env")["data"]
        jobs = k8s("StatefulSet", urlsplit(environment["RESOLVD_REDIS_URL"]).hostname or "")
        cache = k8s("StatefulSet", urlsplit(environment["RESOLVD_CACHE_URL"]).hostname or "")
        for workload, compose_name in ((jobs, "redis-jobs"), (cache, "redis-cache")):
            assert container(workload)["command"] == compose_service(compose_name)["command"]
            assert container(workload)["image"] == compose_service(compose_name)["image"]
        claims = [t["metadata"]["name"] for t in jobs["spec"]["volumeClaimTemplates"]]
        assert [m["name"] for m in container(jobs)["volumeMounts"]] == claims
        maxmemory = memory_bytes(redis_options(container(cache)["command"])["maxmemory"])
        assert memory_bytes(container(cache)["resources"]["limits"]["memory"]) > maxmemory

    def test_the_kustomization_lists_every_manifest_but_the_secret_template(self) -> None:
        """Applying it must never overwrite real credentials with the template's placeholders."""
        kustomization = yaml.safe_load((DEPLOY / "k8s" / "kustomization.yaml").read_text())
        manifests = {p.name for p in (DEPLOY / "k8s").glob("*.yaml")}
        assert set(kustomization["resources"]) == manifests - {"kustomization.yaml", "secret.yaml"}
        assert "namespace" not in kustomization

    def test_kustomize_renders_the_listed_manifests(self) -> None:
        """`kubectl kustomize` (offline) accepts the kustomization and renders what it lists."""
        rendered = kustomize(DEPLOY / "k8s")
        kustomization = yaml.safe_load((DEPLOY / "k8s" / "kustomization.yaml").read_text())
        listed = {
            (document["kind"], document["metadata"]["name"])
            for resource in kustomization["resources"]
            for document in yaml.safe_load_all((DEPLOY / "k8s" / resource).read_text())
        }
        assert {(d["kind"], d["metadata"]["name"]) for d in rendered} == listed


class TestBuilds:
    """The opt-in builder: compose's `builds` profile and the deploy/k8s-builds overlay."""

    @staticmethod
    def overlay() -> tuple[dict[str, Any], dict[str, Any]]:
        directory = DEPLOY / "k8s-builds"
        kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
        (builder,) = yaml.safe_load_all((directory / "builder.yaml").read_text())
        return kustomization, builder

    def test_the_image_carries_bubblewrap(self) -> None:
        installs = [i.arguments for i in runtime_stage() if i.keyword == "RUN"]
        assert any("apt-get install" in i and "bubblewrap" in i for i in installs), installs

    def test_compose_runs_a_builder_only_with_the_builds_profile(self) -> None:
        """`builder` with builds enabled, the same image, and out of `make run-cluster`."""
        builder = compose_service("builder")
        assert builder["profiles"] == ["builds"]
        args = parse_resolvd(builder["command"])
        assert args.command == "builder"
        assert builder["image"] == compose_service("worker")["image"]
        settings = load_settings(CONFIG, environ=builder["environment"])
        assert settings.builds.enabled
        assert settings.redis.url == compose_service("worker")["environment"]["RESOLVD_REDIS_URL"]
        assert "builder" not in {s.name for s in load_services()}

    def test_compose_lets_only_the_builder_make_user_namespaces(self) -> None:
        assert "seccomp:unconfined" in compose_service("builder")["security_opt"]
        for name in ("api", "worker"):
            assert "security_opt" not in compose_service(name)

    def test_the_builders_memory_holds_its_builds(self) -> None:
        """Its limit covers `concurrency` builds of [builds] memory_mb each, in both."""
        memory_mb = load_settings(CONFIG, environ={}).builds.memory_mb
        builder = compose_service("builder")
        concurrency = parse_resolvd(builder["command"]).concurrency
        assert memory_bytes(builder["mem_limit"]) > concurrency * memory_mb * 1024**2
        _, workload = self.overlay()
        main = container(workload)
        concurrency = parse_resolvd(main["args"]).concurrency
        assert (
            memory_bytes(main["resources"]["limits"]["memory"]) > concurrency * memory_mb * 1024**2
        )

    def test_the_k8s_overlay_adds_the_builder_and_enables_builds_for_the_workers(self) -> None:
        kustomization, workload = self.overlay()
        assert kustomization["resources"] == ["../k8s", "builder.yaml"]
        (patch,) = kustomization["patches"]
        assert patch["target"] == {"kind": "ConfigMap", "name": "resolvd-env"}
        (operation,) = yaml.safe_load(patch["patch"])
        assert operation["path"] == "/data/RESOLVD_BUILDS_ENABLED"
        assert load_settings(
            CONFIG, environ={"RESOLVD_BUILDS_ENABLED": operation["value"]}
        ).builds.enabled
        main = container(workload)
        assert parse_resolvd(main["args"]).command == "builder"
        assert main["image"] == container(k8s("Deployment", "resolvd-worker"))["image"]
        worker = container(k8s("Deployment", "resolvd-worker"))
        assert main["envFrom"] == worker["envFrom"]

    def test_the_builder_pod_is_locked_down_but_for_user_namespaces(self) -> None:
        _, workload = self.overlay()
        spec = pod_spec(workload)
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["seccompProfile"] == {"type": "Unconfined"}
        assert (
            spec["securityContext"]["runAsUser"]
            == pod_spec(k8s("Deployment", "resolvd-worker"))["securityContext"]["runAsUser"]
        )
        security = container(workload)["securityContext"]
        assert security["readOnlyRootFilesystem"] is True
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"]["drop"] == ["ALL"]
        volumes = {v["name"]: v for v in spec["volumes"]}
        (tmp,) = [m for m in container(workload)["volumeMounts"] if m["mountPath"] == "/tmp"]
        assert "sizeLimit" in volumes[tmp["name"]]["emptyDir"]

    def test_kustomize_renders_the_overlay(self) -> None:
        rendered = kustomize(DEPLOY / "k8s-builds")
        names = {(d["kind"], d["metadata"]["name"]) for d in rendered}
        assert {("Deployment", "resolvd-builder"), ("Deployment", "resolvd-worker")} <= names
        (environment,) = [
            d
            for d in rendered
            if (d["kind"], d["metadata"]["name"]) == ("ConfigMap", "resolvd-env")
        ]
        assert environment["data"]["RESOLVD_BUILDS_ENABLED"] == "true"


class TestEverywhere:
    def test_every_RESOLVD_name_in_deploy_is_one_the_settings_read(self) -> None:
        """A misspelt override would be silently ignored, so none may appear anywhere in deploy/."""
        valid = settings_env_names()
        assert {"RESOLVD_REDIS_URL", "RESOLVD_CONFIG", "RESOLVD_JOBS_MAX_TRIES"} <= valid
        for path in deploy_text_files():
            for name in ENV_NAME.findall(path.read_text(errors="replace")):
                assert name in valid, f"{path.relative_to(ROOT)}: {name} is not a setting"

    def test_each_role_environment_loads_and_points_at_two_redis(self) -> None:
        """The environment compose and Kubernetes give resolvd loads, with separate Redis."""
        environments = {
            "compose": compose_service("api")["environment"],
            "k8s": k8s("ConfigMap", "resolvd-env")["data"],
        }
        secrets = dict.fromkeys(referenced_secrets(load_settings(CONFIG, environ={})), "x:y")
        for where, environment in environments.items():
            overrides = {k: v for k, v in environment.items() if k != "RESOLVD_CONFIG"}
            settings = load_settings(CONFIG, environ={**overrides, **secrets})
            assert settings.redis.url == environment["RESOLVD_REDIS_URL"], where
            assert settings.cache_url == environment["RESOLVD_CACHE_URL"] != settings.redis.url

    def test_one_resolvd_image_and_one_redis_image_everywhere(self) -> None:
        """compose and Kubernetes run the same images; resolvd's tag is the project's version."""
        pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
        resolvd = {compose_service(name)["image"] for name in ("api", "worker")}
        resolvd |= {
            container(k8s("Deployment", n))["image"] for n in ("resolvd-api", "resolvd-worker")
        }
        (image,) = resolvd
        assert image.rpartition(":")[2] == pyproject["project"]["version"]
        redis_images = {compose_service(n)["image"] for n in ("redis-jobs", "redis-cache")}
        redis_images |= {container(w)["image"] for w in workloads() if w["kind"] == "StatefulSet"}
        assert len(redis_images) == 1, redis_images
