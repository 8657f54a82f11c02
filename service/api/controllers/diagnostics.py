"""``GET /diagnostics/summary``: what dashboards chart across every job the fleet finished."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import QueryParameter

from service.api.problems import problem_spec
from service.jobs.backend import Backend
from service.jobs.model import utcnow
from service.jobs.stats import MAX_SUMMARY_HOURS, DiagnosticsSummary

__all__ = ["DiagnosticsController"]

DEFAULT_WINDOW = timedelta(hours=24)


class DiagnosticsController(Controller):
    path = "/diagnostics"
    tags = ["operations"]  # noqa: RUF012 - Litestar's declared class attribute

    @get(
        "/summary",
        operation_id="getDiagnosticsSummary",
        summary="Failures and warnings by code, index and status",
        description=(
            "Counts over the jobs finished since `since` (RFC 3339; default 24 hours ago, at "
            f"most {MAX_SUMMARY_HOURS // 24} days back, to the hour): jobs by status, failures "
            "by kind, diagnostics by `code` and severity, diagnostics by index and upstream "
            "status, upstream responses by index and status, and the top failing packages."
        ),
        responses={
            400: problem_spec("Invalid query parameter"),
            401: problem_spec("Missing or unknown bearer token"),
            503: problem_spec("The job store is unreachable"),
        },
    )
    async def summary(
        self,
        client: NamedDependency[str],
        backend: NamedDependency[Backend],
        since: Annotated[
            datetime | None,
            QueryParameter(description="Start of the window (RFC 3339); default 24 hours ago."),
        ] = None,
    ) -> DiagnosticsSummary:
        until = utcnow()
        start = since if since is not None else until - DEFAULT_WINDOW
        if start.tzinfo is None:
            start = start.replace(tzinfo=until.tzinfo)
        return await backend.stats.summary(start, until)
