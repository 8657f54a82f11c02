"""Operational routes: liveness, readiness and the configured indexes."""

from __future__ import annotations

import logging

from litestar import Controller, Response, get
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from redis.exceptions import RedisError

from service.api.problems import problem_spec
from service.api.schemas import HealthStatus, IndexErrorCodes, IndexView, ReadyStatus
from service.diagnostics.redact import redact_url
from service.jobs.backend import Backend
from service.jobs.worker import READY_WINDOW_SECONDS
from service.resolution.indexes import make_policy
from service.settings import Settings

__all__ = ["HealthController", "IndexesController"]

logger = logging.getLogger(__name__)

_RETRY_AFTER_SECONDS = "5"


class HealthController(Controller):
    path = "/"
    tags = ["operations"]  # noqa: RUF012 - Litestar's declared class attribute

    @get("/healthz", operation_id="getHealth", summary="Liveness: the process answers")
    async def healthz(self) -> HealthStatus:
        return HealthStatus(status="ok")

    @get(
        "/readyz",
        operation_id="getReadiness",
        summary="Readiness: the job store answers and a worker beat recently",
        description=(
            "`200` when the job store is reachable and some worker (a `resolvd worker` process "
            "or a server's in-process worker) wrote a heartbeat within the last 30 seconds; "
            "otherwise `503` with `Retry-After`."
        ),
        responses={
            503: ResponseSpec(
                data_container=ReadyStatus,
                description="The job store is unreachable or no worker beat recently",
                generate_examples=False,
            )
        },
    )
    async def readyz(self, backend: NamedDependency[Backend]) -> Response[ReadyStatus]:
        try:
            await backend.store.ping()
            workers = await backend.store.count_workers(READY_WINDOW_SECONDS)
        except (RedisError, OSError) as exc:
            logger.warning("readiness: job store unreachable: %s", exc)
            status = ReadyStatus(
                status="unavailable",
                store=backend.kind,
                store_reachable=False,
                workers=0,
                detail="the job store is unreachable",
            )
            return Response(status, status_code=503, headers={"Retry-After": _RETRY_AFTER_SECONDS})
        if workers == 0:
            status = ReadyStatus(
                status="unavailable",
                store=backend.kind,
                store_reachable=True,
                workers=0,
                detail=f"no worker seen in the last {READY_WINDOW_SECONDS:g} s",
            )
            return Response(status, status_code=503, headers={"Retry-After": _RETRY_AFTER_SECONDS})
        ready = ReadyStatus(
            status="ready", store=backend.kind, store_reachable=True, workers=workers
        )
        return Response(ready, status_code=200)


class IndexesController(Controller):
    path = "/indexes"
    tags = ["indexes"]  # noqa: RUF012 - Litestar's declared class attribute

    @get(
        "/",
        operation_id="listIndexes",
        summary="The configured indexes",
        description=(
            "Each configured index in default priority order: its name (what requests use in "
            "`indexes[].name`), its URL with any credentials redacted, and its default "
            "client-error policy (`ignore_error_codes`; 404 on project pages always counts)."
        ),
        responses={401: problem_spec("Missing or unknown bearer token")},
    )
    async def list_indexes(
        self, client: NamedDependency[str], settings: NamedDependency[Settings]
    ) -> list[IndexView]:
        views = []
        for index in settings.index:
            policy = make_policy(index.ignore_error_codes)
            views.append(
                IndexView(
                    name=index.name,
                    url=redact_url(index.url),
                    ignore_error_codes=IndexErrorCodes(
                        page=sorted(policy.page), metadata=sorted(policy.metadata)
                    ),
                    format=index.format,
                    explicit=index.explicit,
                )
            )
        return views
