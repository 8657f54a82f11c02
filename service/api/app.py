"""The application factory: routes, dependencies, problem details, and the resources' lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Mapping

from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide
from litestar.enums import ScopeType
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Tag
from litestar.routes import HTTPRoute
from litestar.types import Message, Scope

from service.api.auth import load_token_table, provide_client
from service.api.controllers.blocked import BlockedController
from service.api.controllers.dashboard import DashboardController
from service.api.controllers.diagnostics import DiagnosticsController
from service.api.controllers.jobs import JobReads, JobsController, JobViews
from service.api.controllers.lock import LockController
from service.api.controllers.metrics import MetricsController, SubmissionMetrics
from service.api.controllers.ops import HealthController, IndexesController
from service.api.controllers.resolve import ResolveController
from service.api.documents import FinishedDocuments
from service.api.problems import problem_response
from service.api.watches import WatchSlots
from service.builds import BuildStore, open_build_store, open_builder
from service.jobs.backend import Backend, BackendChoice, open_backend
from service.jobs.runner import JobRunner, Resolver, open_resolver
from service.jobs.store import RedisJobStore
from service.jobs.worker import Worker, make_worker
from service.settings import Settings, load_settings

__all__ = ["API_VERSION", "create_app"]

logger = logging.getLogger(__name__)

API_VERSION = "0.1.0"

_DESCRIPTION = (
    "Python dependency resolution as an HTTP service. Submit requirements to `POST /resolve`, "
    "then read the job at `GET /jobs/{id}` (optionally `?wait=N`) or stream it from "
    "`GET /jobs/{id}/events`. Errors are RFC 9457 `application/problem+json` documents with a "
    "stable `type` (`urn:resolvd:problem:<slug>`) and, for invalid input, `errors: [{field, "
    "message}]`."
)


def _provide_backend(state: State) -> Backend:
    backend: Backend = state.backend
    return backend


def _provide_builds(state: State) -> BuildStore:
    builds: BuildStore = state.builds
    return builds


async def _allow_every_method(message: Message, scope: Scope) -> None:
    """Make the automatic ``OPTIONS`` answer list every method of the path.

    Litestar 2 builds it from the first handler registered on a path, so ``OPTIONS /jobs/{id}``
    would say ``DELETE, OPTIONS`` and leave out ``GET`` (litestar#4169, fixed in Litestar 3).
    """
    if message["type"] != "http.response.start" or scope["type"] != ScopeType.HTTP:
        return
    if scope["method"] != "OPTIONS":
        return
    headers = list(message["headers"])
    if not any(name.lower() == b"allow" for name, _ in headers):
        return
    template = scope["path_template"]
    methods = {
        method
        for route in scope["litestar_app"].routes
        if isinstance(route, HTTPRoute) and route.path_format == template
        for method in route.methods
    }
    if methods:
        headers = [(name, value) for name, value in headers if name.lower() != b"allow"]
        message["headers"] = [*headers, (b"allow", ", ".join(sorted(methods)).encode())]


async def _stop_worker(worker: Worker, task: asyncio.Task[None]) -> None:
    await worker.stop()
    await task


def create_app(
    settings: Settings | None = None,
    *,
    backend: BackendChoice = "redis",
    in_process_worker: bool = False,
    worker_concurrency: int | None = None,
    resolver: Resolver = open_resolver,
    environ: Mapping[str, str] | None = None,
) -> Litestar:
    """Build the API.

    ``backend`` picks the job store and queue (``auto``: Redis when it answers, else memory;
    only sensible with ``in_process_worker``, since nothing else could run the jobs).
    ``in_process_worker`` runs a worker inside the app's lifespan, with ``worker_concurrency``
    (default ``jobs.worker_concurrency``) and ``resolver`` (tests pass a fake). Nothing connects
    until the app starts.
    """
    settings = settings or load_settings()
    environ = os.environ if environ is None else environ
    tokens = load_token_table(settings, environ)
    concurrency = worker_concurrency or settings.jobs.worker_concurrency
    submissions = SubmissionMetrics()
    documents = FinishedDocuments(result_ttl_seconds=settings.jobs.result_ttl_seconds)
    watches = WatchSlots(settings.limits.max_watches_per_client)
    job_reads = JobReads()
    views = JobViews(documents, watches, job_reads)

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            opened = await stack.enter_async_context(
                open_backend(settings, backend, role="resolvd-api")
            )
            stack.push_async_callback(job_reads.aclose)
            app.state.backend = opened
            app.state.builds = await stack.enter_async_context(
                open_build_store(settings, opened.kind)
            )
            if in_process_worker:
                if settings.builds.enabled:
                    await stack.enter_async_context(
                        open_builder(settings, app.state.builds, environ=environ)
                    )
                resolve = await stack.enter_async_context(resolver(settings))
                # The worker's store writes get connections of their own: a flood of
                # long-polls may use up the API's pool, never the pool a job finishes on.
                working = opened
                if opened.kind == "redis":
                    # The records a job ends with are held for the API's waiters to read.
                    shared = (
                        opened.store.finished if isinstance(opened.store, RedisJobStore) else None
                    )
                    working = await stack.enter_async_context(
                        open_backend(settings, "redis", role="resolvd-worker", finished=shared)
                    )
                runner = JobRunner(
                    working.store, settings, resolve, environ=environ, stats=working.stats
                )
                worker = make_worker(
                    working,
                    runner,
                    concurrency=concurrency,
                    settings=settings,
                    handle_signals=False,
                )
                task = asyncio.create_task(worker.run(), name="in-process-worker")
                stack.push_async_callback(_stop_worker, worker, task)
            yield

    return Litestar(
        route_handlers=[
            ResolveController,
            JobsController,
            LockController,
            IndexesController,
            BlockedController,
            HealthController,
            MetricsController,
            DiagnosticsController,
            DashboardController,
        ],
        dependencies={
            "backend": Provide(_provide_backend, sync_to_thread=False),
            "builds": Provide(_provide_builds, sync_to_thread=False),
            "settings": Provide(lambda: settings, sync_to_thread=False),
            "client": Provide(provide_client),
            "submissions": Provide(lambda: submissions, sync_to_thread=False),
            "views": Provide(lambda: views, sync_to_thread=False),
        },
        exception_handlers={Exception: problem_response},
        before_send=[_allow_every_method],
        lifespan=[lifespan],
        state=State({"tokens": tokens}),
        request_max_body_size=settings.limits.max_body_bytes,
        # Logging is the host's to configure (``resolvd serve`` does); an app factory that
        # rewired the root logger would also break pytest's log capture.
        logging_config=None,
        openapi_config=OpenAPIConfig(
            title="resolvd",
            version=API_VERSION,
            description=_DESCRIPTION,
            tags=[
                Tag(name="jobs", description="Submit, read, stream and cancel resolution jobs"),
                Tag(name="indexes", description="The package indexes this server knows"),
                Tag(name="operations", description="Health, readiness and metrics"),
            ],
            use_handler_docstrings=False,
        ),
    )
