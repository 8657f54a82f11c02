"""Locks of succeeded jobs: ``GET /jobs/{id}/lock`` exports one (``service.export``),
``GET /jobs/{id}/diff`` compares two, and ``find_lock_job`` finds the job a request's
``lock.job`` names."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import msgspec
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
from service.api.problems import JobNotFound, LockUnavailable, problem_spec
from service.api.schemas import FieldError, LockBody
from service.export import (
    LockFormat,
    MissingHashError,
    NotSucceededError,
    NotUniversalError,
    format_lock,
    make_lock_source,
)
from service.export.reader import read_job_lock
from service.jobs.backend import Backend
from service.jobs.model import JobDocument
from service.resolution.changes import diff_packages
from service.resolution.result import PackageChange
from service.settings import Settings

__all__ = ["LOCK_FILES", "JobDiff", "LockController", "LockFile", "find_lock_job"]

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


class JobDiff(msgspec.Struct, frozen=True, kw_only=True):
    """``GET /jobs/{id}/diff``: what moved from job ``against``'s packages to job ``job``'s."""

    job: str
    against: str
    changes: list[PackageChange]


async def find_lock_job(backend: Backend, lock: LockBody | None, client: str) -> JobDocument | None:
    """The succeeded job ``lock.job`` names, if it names one; a 404 problem when the client has
    no such job, a 409 when it has not succeeded (both naming ``lock.job``)."""
    if lock is None or lock.job is None or lock.format or lock.content is not None:
        return None  # no job named, or more than one lock given (validation says so)
    try:
        record = await find_job(backend, lock.job, client)
    except JobNotFound as exc:
        raise JobNotFound(
            f"lock.job: {exc.detail}",
            slug="lock-job-not-found",
            errors=[FieldError(field="lock.job", message=exc.detail)],
        ) from exc
    if record.status != "succeeded":
        message = f"job {lock.job!r} is {record.status}: only a succeeded job's result is a lock"
        raise LockUnavailable(
            f"lock.job: {message}",
            slug="lock-job-not-succeeded",
            errors=[FieldError(field="lock.job", message=message)],
        )
    return record.document


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
        flat = [index.name for index in settings.index if index.format == "flat"]
        try:
            text = format_lock(format, make_lock_source(document, index_urls, flat_names=flat))
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

    @get(
        "/{job_id:str}/diff",
        operation_id="getJobDiff",
        summary="Compare two succeeded jobs",
        description=(
            "The `changes` from job `against`'s packages to this job's, as a lock re-resolution "
            "reports them: each package `added`, `removed`, `upgraded`, `downgraded` or "
            "`replaced` (same version, another file or index: `reason` says which), sorted by "
            "name. Both jobs must be the client's (else `404`) and have succeeded (else `409`)."
        ),
        responses={
            400: problem_spec("Invalid path or query parameter (`against` missing)"),
            401: problem_spec("Missing or unknown bearer token"),
            404: problem_spec("Unknown or expired job (either of them)"),
            409: problem_spec("One of the jobs has not succeeded"),
            503: problem_spec("The job store is unreachable"),
        },
    )
    async def get_job_diff(
        self,
        job_id: JobId,
        client: NamedDependency[str],
        backend: NamedDependency[Backend],
        settings: NamedDependency[Settings],
        against: Annotated[
            str, QueryParameter(description='The job to compare with (the "before" side).')
        ],
    ) -> JobDiff:
        index_urls = {index.name: index.url for index in settings.index}
        sides = []
        for wanted in (against, job_id):
            document = (await find_job(backend, wanted, client)).document
            try:
                sides.append(read_job_lock(document, index_urls).packages)
            except NotSucceededError as exc:
                raise LockUnavailable(str(exc), slug="job-not-succeeded") from exc
        before, after = sides
        return JobDiff(job=job_id, against=against, changes=diff_packages(before, after))
