"""The ``resolvd`` command: ``serve``, ``worker``, ``builder``, ``openapi`` and ``submit``.

``serve`` runs the API under uvicorn, by default with a worker inside each server process;
``worker`` runs a queue consumer (any number, anywhere Redis is reachable); ``builder`` runs
sandboxed metadata builds for the workers (``[builds] enabled``, ``service.builds``);
``openapi`` prints the OpenAPI document that ``openapi/openapi.json`` must equal; ``submit`` is
a client that resolves a ``requirements.in`` on a server and writes its lock
(``service.submit``).
``--config`` names the TOML file (else ``$RESOLVD_CONFIG``). SIGTERM or SIGINT drains workers:
no new jobs are taken and running ones finish or go back to the queue.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import gc
import importlib
import json
import logging
import os
import sys
from collections.abc import Coroutine, Sequence
from typing import TYPE_CHECKING, Any

import msgspec
from redis.exceptions import RedisError

from service.diagnostics.redact import redact_url
from service.jobs.backend import BackendChoice, BackendUnavailable
from service.jobs.collector import tune_collector
from service.settings import Settings, SettingsError, load_settings
from service.submit import add_submit_arguments, run_submit

if TYPE_CHECKING:
    from litestar import Litestar

__all__ = ["main", "make_serve_app", "render_openapi"]

logger = logging.getLogger("service.cli")

# How ``serve`` tells each uvicorn process (possibly spawned) how to build its app.
SERVE_OPTIONS_ENV = "RESOLVD_SERVE_OPTIONS"
# Open connections (event streams, ``?wait=`` holds) get this long to finish on shutdown.
_GRACEFUL_SHUTDOWN_SECONDS = 5


class _ServeOptions(msgspec.Struct, frozen=True, kw_only=True):
    config: str | None = None
    in_process_worker: bool = True
    backend: BackendChoice = "auto"


def _configure_logging() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # httpx logs every upstream request at INFO: hundreds of lines a job, with URLs. What a
    # job fetched is in its result (stats, fetch_errors) and in /metrics; failures still log.
    logging.getLogger("httpx").setLevel(logging.WARNING)


def make_serve_app() -> Litestar:
    """uvicorn's app factory for ``resolvd serve`` (reads ``RESOLVD_SERVE_OPTIONS``)."""
    from service.api.app import create_app  # noqa: PLC0415 - only the serving process needs it

    _configure_logging()
    options = msgspec.json.decode(os.environ.get(SERVE_OPTIONS_ENV, "{}"), type=_ServeOptions)
    settings = load_settings(options.config)
    app = create_app(settings, backend=options.backend, in_process_worker=options.in_process_worker)
    _freeze_startup_heap()
    return app


def render_openapi() -> str:
    """The OpenAPI document as ``openapi/openapi.json`` holds it (sorted, indented, newline)."""
    from service.api.app import create_app  # noqa: PLC0415

    # Default settings: the document must not depend on the local configuration.
    schema = create_app(Settings()).openapi_schema.to_schema()
    return json.dumps(schema, sort_keys=True, indent=2) + "\n"


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn  # noqa: PLC0415

    _limit_malloc_arenas()
    in_process_worker = not args.no_worker
    # Without Redis only a single process with its own worker can run jobs, so only then may
    # the server fall back to the in-memory store.
    backend: BackendChoice = "auto" if in_process_worker and args.workers == 1 else "redis"
    options = _ServeOptions(
        config=args.config, in_process_worker=in_process_worker, backend=backend
    )
    os.environ[SERVE_OPTIONS_ENV] = msgspec.json.encode(options).decode()
    uvicorn.run(
        "service.cli:make_serve_app",
        factory=True,
        host=args.host or settings.server.host,
        port=args.port or settings.server.port,
        workers=args.workers,
        timeout_graceful_shutdown=_GRACEFUL_SHUTDOWN_SECONDS,
        proxy_headers=False,
    )
    return 0


def _worker(args: argparse.Namespace, settings: Settings) -> int:
    from service.jobs.worker import run_worker_process  # noqa: PLC0415

    _configure_logging()
    concurrency = args.concurrency or settings.jobs.worker_concurrency
    _limit_malloc_arenas()
    _freeze_startup_heap()
    try:
        _run_event_loop(run_worker_process(settings, concurrency=concurrency))
    except BackendUnavailable as exc:
        print(f"resolvd worker: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


def _builder(args: argparse.Namespace, settings: Settings) -> int:
    from service.builds import SandboxUnavailableError, run_builder_process  # noqa: PLC0415

    _configure_logging()
    if not settings.builds.enabled:
        print("resolvd builder: builds are off; set [builds] enabled = true", file=sys.stderr)
        return 2
    if args.concurrency:
        builds = msgspec.structs.replace(settings.builds, concurrency=args.concurrency)
        settings = msgspec.structs.replace(settings, builds=builds)
    try:
        _run_event_loop(run_builder_process(settings))
    except (SandboxUnavailableError, BackendUnavailable) as exc:
        print(f"resolvd builder: {exc}", file=sys.stderr)
        return 1
    except (RedisError, OSError) as exc:
        print(f"resolvd builder: Redis at {redact_url(settings.redis.url)}: {exc}", file=sys.stderr)
        return 1
    return 0


# glibc's mallopt parameter for the number of malloc arenas.
_M_ARENA_MAX = -8
_MALLOC_ARENAS = 2


def _limit_malloc_arenas() -> None:
    """Two glibc malloc arenas for this process and the ones it starts, unless the operator
    set ``MALLOC_ARENA_MAX``.

    Big pages inflate and parse in worker threads, and glibc gives each thread its own arena,
    which keeps freed multi-megabyte buffers instead of returning them: resolvd serve's peak
    RSS on the cold stack244-shaped bench job was 326-329 MiB with per-thread arenas and
    283-293 MiB with two, at the same speed. (On a C library without arenas, mallopt does nothing.)
    """
    if os.environ.get("MALLOC_ARENA_MAX") or not sys.platform.startswith("linux"):
        return
    os.environ["MALLOC_ARENA_MAX"] = str(_MALLOC_ARENAS)  # uvicorn's worker processes
    with contextlib.suppress(OSError, AttributeError):  # no mallopt here: nothing to limit
        ctypes.CDLL(None).mallopt(_M_ARENA_MAX, _MALLOC_ARENAS)


def _freeze_startup_heap() -> None:
    """Take what startup allocated out of the cycle collector's walks, for the process's life,
    and make its collections rarer (``service.jobs.collector``).

    Modules, classes and functions (some 70,000 objects here) never die, yet every full
    collection walked them: about 100 ms, landing on whichever request came next (a repeated
    POST /resolve took 110 ms instead of 11 in make bench). The worker's half is imported first
    so that it is frozen too.
    """
    for module in ("service.index", "service.resolution"):
        importlib.import_module(module)
    gc.freeze()
    tune_collector()


def _run_event_loop(main: Coroutine[Any, Any, None]) -> None:
    """Run ``main`` on uvloop when it is installed (as uvicorn does for ``serve``), else on
    asyncio's own loop: the worker's fetches are event-loop bound."""
    try:
        import uvloop  # noqa: PLC0415 - optional speed-up, only for the worker process
    except ImportError:
        asyncio.run(main)
    else:
        uvloop.run(main)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="resolvd", description="Python dependency resolution as an HTTP service."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the HTTP API (and an in-process worker)")
    serve.add_argument("--host", help="interface to bind (default: server.host, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to bind (default: server.port, 8000)")
    serve.add_argument(
        "--workers", type=_positive_int, default=1, help="uvicorn worker processes (default 1)"
    )
    serve.add_argument(
        "--no-worker",
        action="store_true",
        help="do not run jobs in this process (run `resolvd worker` processes instead)",
    )
    serve.add_argument("--config", help="TOML configuration file (default: $RESOLVD_CONFIG)")

    worker = commands.add_parser("worker", help="consume jobs from the Redis queue")
    worker.add_argument(
        "--concurrency",
        type=_positive_int,
        help="jobs run at once (default: jobs.worker_concurrency)",
    )
    worker.add_argument("--config", help="TOML configuration file (default: $RESOLVD_CONFIG)")

    builder = commands.add_parser(
        "builder", help="run sandboxed metadata builds for sdists ([builds] enabled)"
    )
    builder.add_argument(
        "--concurrency", type=_positive_int, help="builds run at once (default: builds.concurrency)"
    )
    builder.add_argument("--config", help="TOML configuration file (default: $RESOLVD_CONFIG)")

    commands.add_parser("openapi", help="print the OpenAPI document")

    submit = commands.add_parser(
        "submit", help="resolve a requirements.in on a resolvd server and write its lock"
    )
    add_submit_arguments(submit)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``resolvd`` console script and ``python -m service``."""
    args = _make_parser().parse_args(argv)
    if args.command == "openapi":
        sys.stdout.write(render_openapi())
        return 0
    if args.command == "submit":  # a client: the server's configuration is not its business
        return run_submit(args)
    try:
        settings = load_settings(args.config)
    except SettingsError as exc:
        print(f"resolvd: {exc}", file=sys.stderr)
        return 2
    if args.command == "serve":
        return _serve(args, settings)
    if args.command == "builder":
        return _builder(args, settings)
    return _worker(args, settings)
