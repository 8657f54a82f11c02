"""``GET /jobs/{id}/lock``: a succeeded job's resolution as a lock file (``service.export``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from litestar import Controller, Response, get
from litestar.di import NamedDependency
from litestar.openapi.spec import (
    OpenAPIHeader,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Schema,
)
from litestar.params import QueryParameter

from service.api.controllers.jobs import JobId, find_job
from service.api.problems import LockUnavailable, problem_spec
from service.export import (
    LockFormat,
    MissingHashError,
    NotSucceededError,
    NotUniversalError,
    format_lock,
    make_lock_source,
)
from service.jobs.backend import Backend
from service.settings import Settings

__all__ = ["LOCK_FILES", "LockController", "LockFile"]

# PEP 751 names no media type; TOML's registered one is application/toml (always UTF-8).
MEDIA_TOML = "application/toml"
# Litestar adds "; charset=utf-8" to text/* types.
MEDIA_TEXT = "text/plain"
MEDIA_JSON = "application/json"


@dataclass(frozen=True)
class LockFile:
    """How one export format travels: its media type and the filename it is saved as."""

    media_type: str
    filename: str


LOCK_FILES: dict[LockFormat, LockFile] = {
    "pylock": LockFile(MEDIA_TOML, "pylock.toml"),
    "requirements": LockFile(MEDIA_TEXT, "requirements.txt"),
    "pip-report": LockFile(MEDIA_JSON, "pip-report.json"),
}


@dataclass
class _LockOperation(Operation):
    """The operation's document with its ``200`` in every format's media type, and the
    ``Content-Disposition`` it carries (Litestar documents one media type per handler)."""

    def __post_init__(self) -> None:
        success = (self.responses or {}).get("200")
        if not isinstance(success, OpenAPIResponse):
            return
        text = OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING))
        report = OpenAPIMediaType(
            schema=Schema(type=OpenAPIType.OBJECT, description="pip's installation report")
        )
        success.content = {
            lock.media_type: report if lock.media_type == MEDIA_JSON else text
            for lock in LOCK_FILES.values()
        }
        success.headers = {
            "Content-Disposition": OpenAPIHeader(
                schema=Schema(type=OpenAPIType.STRING),
                description="`attachment` with the format's usual filename: `pylock.toml`, "
                "`requirements.txt` or `pip-report.json`",
            )
        }


class LockController(Controller):
    path = "/jobs"
    tags = ["jobs"]  # noqa: RUF012 - Litestar's declared class attribute

    @get(
        "/{job_id:str}/lock",
        operation_id="getJobLock",
        summary="Export a succeeded job as a lock file",
        description=(
            "The resolution of a succeeded job, as an attachment in the chosen `format`: "
            "`pylock` (PEP 751 `pylock.toml`, `application/toml`), `requirements` (a "
            "`requirements.txt` with `--hash` lines and `# via` comments, `text/plain`, for "
            "`pip install --require-hashes -r`), or `pip-report` (pip's installation report, "
            'version "1", `application/json`). The lock holds for the job\'s target environment '
            "only; index and file URLs have credentials redacted. A job that has not succeeded "
            "answers `409` naming its status."
        ),
        media_type=MEDIA_TEXT,
        response_description="The lock file (media type per `format`)",
        operation_class=_LockOperation,
        responses={
            400: problem_spec("Invalid path or query parameter (an unknown `format`)"),
            401: problem_spec("Missing or unknown bearer token"),
            404: problem_spec("Unknown or expired job"),
            409: problem_spec(
                "The job has not succeeded, a chosen file has no hash the format needs, or "
                "the format describes one environment and the job is a universal lock"
            ),
            503: problem_spec("The job store is unreachable"),
        },
    )
    async def get_job_lock(
        self,
        job_id: JobId,
        client: NamedDependency[str],
        backend: NamedDependency[Backend],
        settings: NamedDependency[Settings],
        # Named as the query parameter is: validation errors name the field by it.
        format: Annotated[
            LockFormat,
            QueryParameter(description="`pylock`, `requirements` or `pip-report`."),
        ] = "pylock",
    ) -> Response[str]:
        document = (await find_job(backend, job_id, client)).document
        index_urls = {index.name: index.url for index in settings.index}
        try:
            text = format_lock(format, make_lock_source(document, index_urls))
        except NotSucceededError as exc:
            raise LockUnavailable(str(exc), slug="job-not-succeeded") from exc
        except MissingHashError as exc:
            raise LockUnavailable(str(exc), slug="missing-hash") from exc
        except NotUniversalError as exc:
            raise LockUnavailable(str(exc), slug="format-not-universal") from exc
        lock_file = LOCK_FILES[format]
        return Response(
            text,
            media_type=lock_file.media_type,
            headers={"Content-Disposition": f'attachment; filename="{lock_file.filename}"'},
        )
