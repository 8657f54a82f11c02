"""``/diagnostics``: what dashboards chart across every job the fleet finished, and recent jobs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.exceptions import ValidationException
from litestar.params import QueryParameter

from service.api.problems import problem_spec
from service.jobs.backend import Backend
from service.jobs.model import utcnow
from service.jobs.stats import MAX_SUMMARY_HOURS, RECENT_JOBS_KEPT, DiagnosticsSummary, RecentJob

__all__ = ["RFC3339_PATTERN", "DiagnosticsController", "RecentJobs", "parse_since"]

DEFAULT_WINDOW = timedelta(hours=24)
# RFC 3339 date-time: date, "T", time, optional fraction, and a zone ("Z" or an offset).
# Looser spellings (a bare date, a Unix timestamp, no zone) are refused, not guessed at.
RFC3339_PATTERN = r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$"


def parse_since(text: str) -> datetime:
    try:
        # RFC 3339 allows "t" and "z" too; the window is counted in UTC hours.
        return datetime.fromisoformat(text.upper()).astimezone(UTC)
    except ValueError as exc:  # well-formed but not a real moment (a 13th month, say)
        raise ValidationException(
            f"Invalid value for since: {exc}",
            extra=[{"key": "since", "message": str(exc), "source": "query"}],
        ) from exc


DEFAULT_RECENT = 50

_ERRORS = {
    400: problem_spec("Invalid query parameter"),
    401: problem_spec("Missing or unknown bearer token"),
    503: problem_spec("The job store is unreachable"),
}


class RecentJobs(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The calling client's most recently finished jobs, newest first."""

    jobs: list[RecentJob]


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
            "status, upstream responses by index and status, the top failing packages, and "
            "`series`: per hour of the window (oldest first, empty hours included) the jobs by "
            "status, failures by kind and failures by the diagnostic codes they carried."
        ),
        responses=_ERRORS,
    )
    async def summary(
        self,
        client: NamedDependency[str],
        backend: NamedDependency[Backend],
        since: Annotated[
            str | None,
            QueryParameter(
                description="Start of the window (RFC 3339, with a time zone); default 24 hours "
                "ago.",
                format="date-time",
                pattern=RFC3339_PATTERN,
            ),
        ] = None,
    ) -> DiagnosticsSummary:
        until = utcnow()
        start = until - DEFAULT_WINDOW if since is None else parse_since(since)
        return await backend.stats.summary(start, until)

    @get(
        "/recent",
        operation_id="listRecentJobs",
        summary="The caller's recently finished jobs",
        description=(
            "The calling client's jobs, newest first, as they finished (succeeded, failed or "
            "cancelled): id, status, failure kind, times, run duration in milliseconds and the "
            f"names of the root requirements. At most {RECENT_JOBS_KEPT} are kept per client; "
            "with authentication on, a client sees only its own."
        ),
        responses=_ERRORS,
    )
    async def recent(
        self,
        client: NamedDependency[str],
        backend: NamedDependency[Backend],
        limit: Annotated[
            int,
            QueryParameter(
                ge=1,
                le=RECENT_JOBS_KEPT,
                description=f"How many jobs to list (1-{RECENT_JOBS_KEPT}).",
            ),
        ] = DEFAULT_RECENT,
    ) -> RecentJobs:
        return RecentJobs(jobs=await backend.stats.recent(client, limit))
