"""Job documents and the pure state transitions between them.

A job moves ``queued -> running -> succeeded | failed | cancelled`` (or ``queued -> cancelled``);
a running job whose worker is drained or lost goes back to ``queued`` for another attempt. Every
transition here is a pure function returning the new record, or ``None`` when it does not apply
(the job is already terminal, say). Both stores apply them with compare-and-set, which is what
makes "a job finishes exactly once" and "a late result never overwrites a cancel" hold.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Literal

import msgspec

from service.resolution.request import ResolveRequest
from service.resolution.result import Failure, Progress, Resolution, make_job_failure

__all__ = [
    "GAVE_UP_MESSAGE",
    "TERMINAL_STATUSES",
    "JobDocument",
    "JobRecord",
    "JobStatus",
    "is_reusable",
    "make_job_id",
    "make_record",
    "mark_cancelled",
    "mark_failed",
    "mark_given_up",
    "mark_running",
    "mark_succeeded",
    "record_progress",
    "release",
    "utcnow",
]

JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]
TERMINAL_STATUSES: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})

# Failures that say something about the request rather than about this one attempt: an identical
# request may reuse them. The rest (deadline, internal error, cancel, flaky index) deserve a
# fresh job when the client asks again.
_DETERMINISTIC_FAILURES = frozenset({"unsatisfiable", "metadata_error", "invalid_request"})


def utcnow() -> datetime:
    """The current time in UTC, to the millisecond (what the documents carry)."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def make_job_id() -> str:
    """An opaque, unguessable job id: 192 random bits, URL-safe."""
    return secrets.token_urlsafe(24)


class JobDocument(msgspec.Struct, frozen=True, kw_only=True):
    """A job as ``GET /jobs/{id}`` shows it (``JobDocument`` in the OpenAPI document), with the
    validated request echoed."""

    id: str
    status: JobStatus
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    progress: Progress = msgspec.field(default_factory=Progress)
    result: Resolution | None = None
    failure: Failure | None = None
    request: ResolveRequest


class JobRecord(msgspec.Struct, frozen=True, kw_only=True):
    """What the store keeps: the document plus who asked and a version for compare-and-set.

    ``fingerprint`` is the digest of the canonical request; ``client`` owns the job.
    """

    version: int = 1
    client: str
    fingerprint: str
    attempts: int = 0
    document: JobDocument

    @property
    def id(self) -> str:
        return self.document.id

    @property
    def status(self) -> JobStatus:
        return self.document.status

    @property
    def terminal(self) -> bool:
        return self.document.status in TERMINAL_STATUSES


def make_record(
    request: ResolveRequest, *, client: str, fingerprint: str, now: datetime | None = None
) -> JobRecord:
    """A new queued job for ``request``."""
    document = JobDocument(
        id=make_job_id(), status="queued", created_at=now or utcnow(), request=request
    )
    return JobRecord(client=client, fingerprint=fingerprint, document=document)


def is_reusable(record: JobRecord) -> bool:
    """Whether an identical request may be answered with this job instead of a new one."""
    status = record.document.status
    if status == "failed":
        failure = record.document.failure
        return failure is not None and failure.kind in _DETERMINISTIC_FAILURES
    return status != "cancelled"


def _bump(record: JobRecord, document: JobDocument, *, attempts: int | None = None) -> JobRecord:
    return msgspec.structs.replace(
        record,
        version=record.version + 1,
        document=document,
        attempts=record.attempts if attempts is None else attempts,
    )


def mark_running(record: JobRecord, now: datetime | None = None) -> JobRecord | None:
    """Start an attempt: a queued job (or one whose last worker vanished) becomes running."""
    if record.terminal:
        return None
    document = msgspec.structs.replace(
        record.document, status="running", started_at=now or utcnow(), progress=Progress()
    )
    return _bump(record, document, attempts=record.attempts + 1)


def record_progress(record: JobRecord, progress: Progress) -> JobRecord | None:
    """Publish live counters into a running job (no change when they have not moved)."""
    if record.document.status != "running" or record.document.progress == progress:
        return None
    return _bump(record, msgspec.structs.replace(record.document, progress=progress))


def mark_succeeded(
    record: JobRecord, resolution: Resolution, now: datetime | None = None
) -> JobRecord | None:
    """Finish a live job with its result; a job that already ended stays as it is."""
    if record.terminal:
        return None
    document = msgspec.structs.replace(
        record.document, status="succeeded", finished_at=now or utcnow(), result=resolution
    )
    return _bump(record, document)


def mark_failed(
    record: JobRecord, failure: Failure, now: datetime | None = None
) -> JobRecord | None:
    """Finish a live job with a failure; a job that already ended stays as it is."""
    if record.terminal:
        return None
    document = msgspec.structs.replace(
        record.document, status="failed", finished_at=now or utcnow(), failure=failure
    )
    return _bump(record, document)


def mark_cancelled(record: JobRecord, now: datetime | None = None) -> JobRecord | None:
    """Cancel a live job; a job that already ended stays as it is."""
    if record.terminal:
        return None
    failure = make_job_failure("cancelled", "The job was cancelled before it finished.")
    document = msgspec.structs.replace(
        record.document, status="cancelled", finished_at=now or utcnow(), failure=failure
    )
    return _bump(record, document)


GAVE_UP_MESSAGE = (
    "The job's tries ran out ({tries} made, jobs.max_tries allowed) and none finished: each "
    "time its worker stopped (killed or crashed, for example for running out of memory) or lost "
    "the job store. resolvd gave up on it rather than retry it forever; submit it again, and "
    "if it fails the same way the workers' logs say what happened."
)


def mark_given_up(
    record: JobRecord, tries: int = 0, now: datetime | None = None
) -> JobRecord | None:
    """Fail a live job no worker will try again: ``tries`` (at least one) ran out.

    The queue says how many tries it made when it gives up (``tries``); a reader that finds the
    queue gave up, and the runner that finds a job over ``jobs.max_tries``, know only the
    attempts the document counted. The message names the larger.
    """
    message = GAVE_UP_MESSAGE.format(tries=max(tries, record.attempts, 1))
    return mark_failed(record, make_job_failure("internal", message), now)


def release(record: JobRecord) -> JobRecord | None:
    """Hand a running job back to the queue (its worker is shutting down)."""
    if record.document.status != "running":
        return None
    document = msgspec.structs.replace(
        record.document, status="queued", started_at=None, progress=Progress()
    )
    return _bump(record, document)
