"""``GET /indexes/{name}/blocked``: what a configured index refused, fleet-wide.

The catalogue (``service.jobs.blocked``) counts every client's jobs but names none of them and
no client: any caller the server accepts may read it, while each job stays its owner's.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import PathParameter, QueryParameter

from service.api.controllers.diagnostics import RFC3339_PATTERN, parse_since
from service.api.problems import problem_spec
from service.jobs.backend import Backend
from service.jobs.blocked import BlockedCatalogue
from service.jobs.model import utcnow
from service.settings import Settings

__all__ = ["BlockedController"]

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


class BlockedController(Controller):
    path = "/indexes"
    tags = ["indexes"]  # noqa: RUF012 - Litestar's declared class attribute

    @get(
        "/{name:str}/blocked",
        operation_id="listBlockedVersions",
        summary="What an index refused",
        description=(
            "Each (package, version, status) the configured index `name` refused with a "
            "client-error status and was last seen doing so since `since`: a version's "
            "metadata or file (`metadata_unavailable`, whether `ignore_error_codes.metadata` "
            "skipped it or the job failed on it) or a project page (`version` null: "
            "`index_forbidden`, `index_unauthorized`, `index_error`). For each: first and last "
            "seen, and over the window's UTC days the jobs it affected, how many of those "
            "succeeded only with the package at another version (or, for a refused page, from "
            "another index: `forced`), how many failed, and the affected jobs per day "
            "(`per_day`, aligned with `days`). Most recently seen first, at most `limit` "
            "(`total` counts them all). `policy_impact`: the jobs since `since` (to the hour) "
            "that succeeded only because a policy skipped this index's answers, by status. "
            "Counts are fleet-wide and name no job and no client; the catalogue keeps "
            "`max_versions` entries per index and nothing older than `retention_days` "
            "(`limits.blocked_versions_per_index`, `limits.blocked_retention_days`)."
        ),
        responses={
            400: problem_spec("Invalid query parameter"),
            401: problem_spec("Missing or unknown bearer token"),
            404: problem_spec("No index of that name is configured"),
            503: problem_spec("The job store is unreachable"),
        },
    )
    async def blocked(
        self,
        *,
        name: Annotated[str, PathParameter(description="A configured index's name.")],
        client: NamedDependency[str],
        backend: NamedDependency[Backend],
        settings: NamedDependency[Settings],
        since: Annotated[
            str | None,
            QueryParameter(
                description="Start of the window (RFC 3339, with a time zone); default: "
                "everything kept (`limits.blocked_retention_days`).",
                format="date-time",
                pattern=RFC3339_PATTERN,
            ),
        ] = None,
        limit: Annotated[
            int,
            QueryParameter(
                ge=1, le=MAX_LIMIT, description=f"How many entries to list (1-{MAX_LIMIT})."
            ),
        ] = DEFAULT_LIMIT,
    ) -> BlockedCatalogue:
        if settings.find_index(name) is None:
            raise NotFoundException(f"No index named {name!r} is configured.")
        until = utcnow()
        kept = timedelta(days=settings.limits.blocked_retention_days)
        start = until - kept if since is None else parse_since(since)
        return await backend.stats.blocked.catalogue(name, since=start, until=until, limit=limit)
