"""Every error the API answers with, as an RFC 9457 problem document, from ONE table.

``PROBLEMS`` maps an exception type to its status, stable ``type`` URI and title; the single
handler ``problem_response`` finds the most specific row along the exception's MRO. Routes raise
the ``ApiProblem`` subclasses below (or let the store's and Litestar's own errors through); none
of them builds a response by hand. Types are ``urn:resolvd:problem:<slug>`` and never change.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from litestar import Request, Response
from litestar.exceptions import (
    ClientException,
    HTTPException,
    MethodNotAllowedException,
    NotFoundException,
    SerializationException,
    ValidationException,
)
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from litestar.openapi.datastructures import ResponseSpec
from redis.exceptions import RedisError

from service.api.schemas import FieldError, Problem
from service.jobs.backend import BackendUnavailable
from service.jobs.store import IdempotencyConflict

__all__ = [
    "PROBLEMS",
    "PROBLEM_JSON",
    "ApiProblem",
    "InvalidRequest",
    "JobNotFound",
    "LockUnavailable",
    "RateLimited",
    "TooManyWatches",
    "Unauthorized",
    "UnsupportedMediaType",
    "problem_response",
    "problem_spec",
    "problem_type",
]

logger = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
_TYPE_PREFIX = "urn:resolvd:problem:"


def problem_type(slug: str) -> str:
    """The stable ``type`` URI for ``slug``."""
    return f"{_TYPE_PREFIX}{slug}"


def problem_spec(description: str) -> ResponseSpec:
    """An OpenAPI response entry for a problem document."""
    return ResponseSpec(
        data_container=Problem,
        description=description,
        media_type=PROBLEM_JSON,
        generate_examples=False,
    )


class ApiProblem(Exception):
    """An error the API reports as a problem document; its row in ``PROBLEMS`` gives the rest.

    ``slug`` refines the table's ``type`` for one instance (``invalid-requirement`` rather than
    ``invalid-request``); ``errors`` names the offending fields.
    """

    def __init__(
        self,
        detail: str,
        *,
        slug: str | None = None,
        errors: Sequence[FieldError] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.slug = slug
        self.errors = list(errors)
        self.headers = dict(headers or {})


class InvalidRequest(ApiProblem):
    """The body parsed but some values are unacceptable."""


class JobNotFound(ApiProblem):
    """No such job for this client (never existed, expired, or someone else's)."""


class LockUnavailable(ApiProblem):
    """The job has no lock to give: it has not succeeded, or its files cannot be pinned."""


class RateLimited(ApiProblem):
    """Too many jobs submitted by this client in the current minute."""


class TooManyWatches(ApiProblem):
    """Too many long-polls and event streams open for this client (``service.api.watches``)."""


class Unauthorized(ApiProblem):
    """Missing or unknown bearer token."""


class UnsupportedMediaType(ApiProblem):
    """A request body that is not declared as JSON (``Content-Type``)."""


@dataclass(frozen=True)
class ProblemRow:
    status: int
    slug: str
    title: str


PROBLEMS: dict[type[BaseException], ProblemRow] = {
    InvalidRequest: ProblemRow(422, "invalid-request", "The request is invalid"),
    # A bad query or header parameter is a malformed request (400); a body that is JSON but
    # has the wrong shape is unprocessable (422), like every other invalid body value.
    ValidationException: ProblemRow(400, "invalid-parameter", "Invalid request parameter"),
    IdempotencyConflict: ProblemRow(
        422, "idempotency-key-reused", "Idempotency-Key was used with a different request"
    ),
    ClientException: ProblemRow(400, "bad-request", "Bad request"),
    Unauthorized: ProblemRow(401, "unauthorized", "Authentication required"),
    JobNotFound: ProblemRow(404, "job-not-found", "Job not found"),
    LockUnavailable: ProblemRow(409, "lock-unavailable", "No lock for this job"),
    NotFoundException: ProblemRow(404, "not-found", "Not found"),
    MethodNotAllowedException: ProblemRow(405, "method-not-allowed", "Method not allowed"),
    RequestEntityTooLarge: ProblemRow(413, "body-too-large", "Request body too large"),
    UnsupportedMediaType: ProblemRow(415, "unsupported-media-type", "The body must be JSON"),
    RateLimited: ProblemRow(429, "rate-limited", "Too many jobs submitted"),
    TooManyWatches: ProblemRow(429, "too-many-watches", "Too many open waits and streams"),
    BackendUnavailable: ProblemRow(503, "store-unavailable", "Job store unavailable"),
    RedisError: ProblemRow(503, "store-unavailable", "Job store unavailable"),
    HTTPException: ProblemRow(500, "http-error", "HTTP error"),
    Exception: ProblemRow(500, "internal", "Internal server error"),
}

# msgspec names the offending key inside its message for these two; move it into ``field``.
_MSGSPEC_NAMED_FIELD = re.compile(r"(?P<what>unknown|missing required) field `(?P<name>[^`]+)`")


def _row_for(exc: BaseException) -> ProblemRow:
    for klass in type(exc).__mro__:
        if klass in PROBLEMS:
            return PROBLEMS[klass]
    return PROBLEMS[Exception]


def _validation_errors(exc: ValidationException) -> tuple[list[FieldError], bool]:
    """Litestar's msgspec errors as ``{field, message}`` naming the field fully, and whether
    they are all about the body."""
    errors = []
    in_body = True
    for item in exc.extra if isinstance(exc.extra, list) else []:
        if not isinstance(item, Mapping):
            continue
        key = str(item.get("key", ""))
        message = str(item.get("message", "invalid value"))
        in_body = in_body and item.get("source") == "body"
        field = "" if key == "data" else key
        if match := _MSGSPEC_NAMED_FIELD.search(message):
            field = f"{field}.{match['name']}" if field else match["name"]
            message = "unknown field" if match["what"] == "unknown" else "required field missing"
        errors.append(FieldError(field=field or "body", message=message))
    return errors, in_body and bool(errors)


def _describe(exc: BaseException, row: ProblemRow) -> Problem:
    slug, title, detail, errors, status = row.slug, row.title, row.title, None, row.status
    if isinstance(exc, ApiProblem):
        slug, detail, errors = exc.slug or row.slug, exc.detail, exc.errors or None
    elif isinstance(exc, IdempotencyConflict):
        detail = "This Idempotency-Key was already used with a different request body."
        errors = [FieldError(field="Idempotency-Key", message=detail)]
    elif isinstance(exc, ValidationException):
        errors, in_body = _validation_errors(exc)
        fields = ", ".join(error.field for error in errors)
        detail = f"Invalid value for {fields}." if errors else str(exc.detail)
        if in_body:
            invalid_body = PROBLEMS[InvalidRequest]
            slug, title, status = invalid_body.slug, invalid_body.title, invalid_body.status
    elif isinstance(exc, (BackendUnavailable, RedisError)):
        detail = "The job store cannot be reached; try again shortly."
    elif type(exc) is ClientException and isinstance(exc.__cause__, SerializationException):
        slug, detail = "malformed-body", f"The body is not valid JSON: {exc.detail}"
    elif isinstance(exc, HTTPException):
        detail = exc.detail
    if type(exc) is HTTPException:
        status = exc.status_code
    return Problem(
        type=problem_type(slug), title=title, status=status, detail=detail, errors=errors
    )


def problem_response(request: Request[Any, Any, Any], exc: Exception) -> Response[Problem]:
    """The one exception handler: every error becomes a problem document."""
    row = _row_for(exc)
    if row.status >= 500 and not isinstance(exc, (BackendUnavailable, RedisError)):
        logger.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    elif row.status == 503:
        logger.warning("job store unavailable on %s %s: %s", request.method, request.url.path, exc)
    problem = _describe(exc, row)
    headers: dict[str, str] = {}
    if isinstance(exc, ApiProblem):
        headers.update(exc.headers)
    if isinstance(exc, HTTPException) and exc.headers:
        headers.update(exc.headers)
    if problem.status == 503:
        headers.setdefault("Retry-After", "5")
    return Response(problem, status_code=problem.status, media_type=PROBLEM_JSON, headers=headers)
