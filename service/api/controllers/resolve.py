"""``POST /resolve``: validate, deduplicate, store and queue a resolution job."""

from __future__ import annotations

import hashlib
import logging
import os
import time
from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
from litestar import Controller, Response, post
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency
from litestar.handlers import BaseRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import OpenAPIHeader, OpenAPIResponse, OpenAPIType, Operation, Schema
from litestar.params import HeaderParameter, JSONBody

from service.api.controllers.lock import find_lock_job
from service.api.controllers.metrics import SubmissionMetrics
from service.api.problems import InvalidRequest, RateLimited, UnsupportedMediaType, problem_spec
from service.api.schemas import FieldError, ResolveBody
from service.api.validation import to_resolve_request
from service.jobs.backend import Backend
from service.jobs.lifecycle import finish_job
from service.jobs.model import JobDocument, JobRecord, make_record, mark_failed, mark_given_up
from service.resolution.request import ResolveRequest
from service.resolution.result import make_job_failure
from service.settings import Settings

__all__ = ["JSON_MEDIA_TYPE", "ResolveController", "fingerprint", "is_json_media_type"]

logger = logging.getLogger(__name__)

_RATE_WINDOW_SECONDS = 60
_MAX_IDEMPOTENCY_KEY_LENGTH = 255
JSON_MEDIA_TYPE = "application/json"


def is_json_media_type(content_type: str | None) -> bool:
    """True for ``application/json`` and ``application/<subtype>+json``, parameters aside."""
    media_type = (content_type or "").partition(";")[0].strip().lower()
    kind, _, subtype = media_type.partition("/")
    return kind == "application" and (subtype == "json" or subtype.endswith("+json"))


def require_json_body(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """A guard: the body must be declared JSON (checked before it is read, so before a 400)."""
    content_type = connection.headers.get("content-type")
    if not is_json_media_type(content_type):
        declared = f"{content_type[:100]!r}" if content_type else "no Content-Type"
        raise UnsupportedMediaType(
            f"The body must be JSON ({JSON_MEDIA_TYPE}); the request declared {declared}.",
            errors=[FieldError(field="Content-Type", message=f"must be {JSON_MEDIA_TYPE}")],
            headers={"Accept-Post": JSON_MEDIA_TYPE},
        )


def fingerprint(request: ResolveRequest) -> str:
    """The digest identifying a canonical request (defaults applied) for deduplication.

    A cutoff given as a duration counts as that duration, not as the time it reached: the same
    cooldown request sent again shares the job (whose result says the cutoff it applied), as
    any identical request does while its job is kept.
    """
    if request.exclude_newer_span is not None:
        request = msgspec.structs.replace(request, exclude_newer=None)
    return hashlib.sha256(msgspec.json.encode(request)).hexdigest()


# Sent when limits.jobs_per_client_per_minute is set (IETF httpapi RateLimit header fields).
_RATE_HEADERS = (
    ("RateLimit-Limit", "Jobs this client may submit per minute."),
    ("RateLimit-Remaining", "Submissions left in the current minute."),
    ("RateLimit-Reset", "Seconds until the current minute's count resets."),
)


@dataclass
class _RateLimitedOperation(Operation):
    """The operation's document with the ``RateLimit-*`` headers on its answers."""

    def __post_init__(self) -> None:
        for status in ("200", "202", "429"):
            response = (self.responses or {}).get(status)
            if isinstance(response, OpenAPIResponse):
                response.headers = {
                    **(response.headers or {}),
                    **{
                        name: OpenAPIHeader(
                            schema=Schema(type=OpenAPIType.INTEGER), description=description
                        )
                        for name, description in _RATE_HEADERS
                    },
                }


class ResolveController(Controller):
    path = "/resolve"
    tags = ["jobs"]  # noqa: RUF012 - Litestar's declared class attribute

    @post(
        "/",
        operation_id="createResolveJob",
        summary="Submit a resolution job",
        description=(
            "Validates the whole request, then queues a job and answers `202` with its document "
            "and `Location: /jobs/{id}`. An identical request (same canonical body after "
            "defaults, same client) whose job is queued, running or succeeded, or failed for a "
            "reason inherent to the request (`unsatisfiable`, `metadata_error`, "
            "`invalid_request`), returns that job: `200` if it has finished, else `202`. "
            "Cancelled jobs and transient failures are not reused. An `Idempotency-Key` binds "
            "to the first body sent with it: the same body returns the same job, a different "
            "body is a `422`. Nothing is queued on any 4xx."
        ),
        status_code=202,
        guards=[require_json_body],
        operation_class=_RateLimitedOperation,
        responses={
            200: ResponseSpec(
                data_container=JobDocument,
                description="An identical request's finished job",
                generate_examples=False,
            ),
            400: problem_spec("The body is not JSON"),
            401: problem_spec("Missing or unknown bearer token"),
            404: problem_spec("`lock.job` names no job of this client"),
            409: problem_spec("`lock.job` names a job that has not succeeded"),
            413: problem_spec("The body exceeds limits.max_body_bytes"),
            415: problem_spec("The body is not declared as JSON (`Content-Type`)"),
            422: problem_spec("Invalid field values (each named in `errors`)"),
            429: problem_spec("Too many jobs from this client this minute"),
            503: problem_spec("The job store is unreachable"),
        },
    )
    async def create_job(
        self,
        *,
        data: JSONBody[ResolveBody],
        client: NamedDependency[str],
        backend: NamedDependency[Backend],
        settings: NamedDependency[Settings],
        submissions: NamedDependency[SubmissionMetrics],
        idempotency_key: Annotated[
            str | None,
            HeaderParameter(
                name="Idempotency-Key",
                description="Retry-safe submission: the same key and body return the same job.",
                required=False,
            ),
        ] = None,
    ) -> Response[JobDocument]:
        lock_job = await find_lock_job(backend, data.lock, client)
        request = to_resolve_request(data, settings, os.environ, lock_job=lock_job)
        if idempotency_key is not None and not 0 < len(idempotency_key) <= (
            _MAX_IDEMPOTENCY_KEY_LENGTH
        ):
            raise InvalidRequest(
                "Idempotency-Key must be 1 to 255 characters.",
                errors=[FieldError(field="Idempotency-Key", message="must be 1-255 characters")],
            )
        rate_headers = await self._check_rate(
            backend, client, settings.limits.jobs_per_client_per_minute
        )
        record = make_record(request, client=client, fingerprint=fingerprint(request))
        created = await backend.store.create(record, idempotency_key=idempotency_key)
        if not created.created and await self._repair_abandoned(backend, created.record):
            created = await backend.store.create(record, idempotency_key=idempotency_key)
        job = created.record
        if created.created:
            await self._enqueue(backend, job.id, request.deadline_seconds)
            logger.info("job %s queued for client %s", job.id, client)
        outcome = "created" if created.created else "deduplicated"
        submissions.submitted.labels(outcome=outcome).inc()
        status = 200 if job.terminal else 202
        return Response(
            job.document,
            status_code=status,
            headers={"Location": f"/jobs/{job.id}", **rate_headers},
        )

    @staticmethod
    async def _check_rate(backend: Backend, client: str, limit: int) -> dict[str, str]:
        """Count this submission; the ``RateLimit-*`` headers (IETF httpapi draft) to send."""
        if limit <= 0:
            return {}
        count = await backend.store.count_submission(client, _RATE_WINDOW_SECONDS)
        reset = _RATE_WINDOW_SECONDS - int(time.time()) % _RATE_WINDOW_SECONDS
        headers = {
            "RateLimit-Limit": str(limit),
            "RateLimit-Remaining": str(max(0, limit - count)),
            "RateLimit-Reset": str(reset),
        }
        if count > limit:
            raise RateLimited(
                f"This client may submit {limit} jobs per minute.",
                headers={"Retry-After": str(reset), **headers},
            )
        return headers

    @staticmethod
    async def _repair_abandoned(backend: Backend, job: JobRecord) -> bool:
        """Fail a live-looking job the queue gave up on, so it captures no more requests."""
        if job.terminal or not await backend.queue.gave_up(job.id):
            return False
        repaired = await finish_job(backend.store, backend.stats, job.id, mark_given_up)
        return repaired.changed

    @staticmethod
    async def _enqueue(backend: Backend, job_id: str, deadline_seconds: float) -> None:
        try:
            await backend.queue.enqueue(job_id, deadline_seconds=deadline_seconds)
        except BaseException:
            # Do not leave a queued job no worker will ever see: it would also capture every
            # identical request through deduplication. A failed internal job is not reused.
            failure = make_job_failure("internal", "The job could not be queued.")
            await finish_job(
                backend.store, backend.stats, job_id, lambda r: mark_failed(r, failure)
            )
            raise
