"""``/jobs/{id}``: read a job (optionally waiting for it), stream its changes, cancel it."""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

import msgspec
from litestar import Controller, MediaType, Response, delete, get
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import PathParameter, QueryParameter
from litestar.response import ServerSentEvent, ServerSentEventMessage
from redis.exceptions import RedisError

from service.api.documents import FinishedDocuments
from service.api.problems import JobNotFound, problem_spec
from service.api.watches import SharedReads, WatchSlot, WatchSlots
from service.jobs.backend import Backend
from service.jobs.lifecycle import finish_job
from service.jobs.model import JobDocument, JobRecord, mark_cancelled, mark_given_up

__all__ = ["JobId", "JobReads", "JobViews", "JobsController", "find_job"]

logger = logging.getLogger(__name__)

MAX_WAIT_SECONDS = 30
# Waiters re-read the document at least this often, so a lost notification costs little.
_REREAD_SECONDS = 5.0
# An idle event stream sends a comment this often so proxies keep it open.
_KEEPALIVE_SECONDS = 15.0

_ERRORS = {
    400: problem_spec("Invalid path or query parameter"),
    401: problem_spec("Missing or unknown bearer token"),
    404: problem_spec("Unknown or expired job"),
    503: problem_spec("The job store is unreachable"),
}
_WATCH_ERRORS = {
    **_ERRORS,
    429: problem_spec(
        "This client holds limits.max_watches_per_client waits and streams open already"
    ),
}

JobId = Annotated[str, PathParameter(description="The opaque job id from `POST /resolve`.")]
JobReads = SharedReads[tuple[str, str], JobRecord]
"""Waiters' reads of a job, by (job id, client): ``find_job`` once for all woken together."""


@dataclass(frozen=True)
class JobViews:
    """What the API process keeps for reading jobs: finished documents, the watch slots and
    the waiters' shared reads. One dependency, not three: Litestar resolves a handler's
    dependencies in tasks of their own, and ``GET /jobs/{id}`` is the hottest route."""

    documents: FinishedDocuments
    watches: WatchSlots
    reads: JobReads


async def find_job(backend: Backend, job_id: str, client: str) -> JobRecord:
    """The client's job; a live job the queue gave up on is failed on the way (read-repair)."""
    record = await backend.store.get(job_id)
    if record is None or record.client != client:
        raise JobNotFound(f"No job {job_id!r}: it never existed or has expired.")
    if record.terminal:
        return record  # the common read: one round trip
    # A live job: did the queue give up on it? The runner writes a job's outcome before the
    # queue marks it done, so only "gave up" and then "still live" on a second read means
    # nobody will finish it. Live polls pay one round trip more, not two.
    if not await backend.queue.gave_up(job_id):
        return record
    record = await backend.store.get(job_id) or record
    if not record.terminal:
        repaired = await finish_job(backend.store, backend.stats, job_id, mark_given_up)
        record = repaired.record or record
    return record


class JobsController(Controller):
    path = "/jobs"
    tags = ["jobs"]  # noqa: RUF012 - Litestar's declared class attribute

    @get(
        "/{job_id:str}",
        operation_id="getJob",
        summary="Read a job",
        description=(
            "The job document. With `?wait=N` (0 to 30 seconds) the reply is held until the "
            "job ends or N seconds pass, whichever comes first. A client holds at most "
            "`limits.max_watches_per_client` waits and event streams open at once; past it "
            "a wait is answered `429` with `Retry-After`."
        ),
        responses={
            200: ResponseSpec(
                data_container=JobDocument, description="The job", generate_examples=False
            ),
            **_WATCH_ERRORS,
        },
    )
    async def get_job(
        self,
        *,
        job_id: JobId,
        client: NamedDependency[str],
        backend: NamedDependency[Backend],
        views: NamedDependency[JobViews],
        wait: Annotated[
            float,
            QueryParameter(
                ge=0,
                le=MAX_WAIT_SECONDS,
                description="Seconds to hold the reply until the job ends (0-30).",
            ),
        ] = 0,
    ) -> Response[bytes]:
        documents, watches, job_reads = views.documents, views.watches, views.reads
        cached = documents.get(job_id, client)
        if cached is not None:
            return Response(cached, media_type=MediaType.JSON)
        store = backend.store
        if wait <= 0:
            record = await find_job(backend, job_id, client)
        else:
            until = time.monotonic() + wait
            with watches.take(client):
                async with store.watch(job_id) as watch:
                    record = await _find_shared(job_reads, backend, job_id, client)
                    while not record.terminal and (remaining := until - time.monotonic()) > 0:
                        await watch.wait(min(remaining, _REREAD_SECONDS))
                        record = await _find_shared(job_reads, backend, job_id, client)
        return Response(documents.encode(record), media_type=MediaType.JSON)

    @get(
        "/{job_id:str}/events",
        operation_id="streamJobEvents",
        summary="Stream a job's changes",
        description=(
            "Server-sent events: a `job` event carrying the job document now and after every "
            "change (`id` is the document's version), ending after the document reaches a "
            "terminal status. A job that expires mid-stream ends it with a `gone` event. "
            "Streams count against `limits.max_watches_per_client` with waits (`429` past it)."
        ),
        responses=_WATCH_ERRORS,
        media_type="text/event-stream",
        response_description="A stream of `job` events, each carrying the job document as JSON",
    )
    async def stream_job_events(
        self,
        job_id: JobId,
        client: NamedDependency[str],
        backend: NamedDependency[Backend],
        views: NamedDependency[JobViews],
    ) -> ServerSentEvent:
        slot = views.watches.take(client)
        try:
            await find_job(backend, job_id, client)
        except BaseException:
            slot.release()
            raise
        events = _iter_job_events(backend, views.reads, job_id, client, slot)
        # A stream whose client left before it started is never iterated, so its ``finally``
        # never runs: the slot is given back when the generator is collected.
        weakref.finalize(events, slot.release)
        return ServerSentEvent(events)

    @delete(
        "/{job_id:str}",
        operation_id="cancelJob",
        summary="Cancel a job",
        description=(
            "Cancels a queued or running job and returns its document (status `cancelled`). "
            "A queued job never runs; a running resolution stops at its next step (within "
            "about half a second). Cancelling a job that has already finished changes nothing "
            "and returns its document as it is, with `200`."
        ),
        status_code=200,
        responses=_ERRORS,
    )
    async def cancel_job(
        self, job_id: JobId, client: NamedDependency[str], backend: NamedDependency[Backend]
    ) -> JobDocument:
        await find_job(backend, job_id, client)
        updated = await finish_job(backend.store, backend.stats, job_id, mark_cancelled)
        if updated.record is None:
            raise JobNotFound(f"No job {job_id!r}: it never existed or has expired.")
        if updated.changed:
            await backend.queue.discard(job_id)
        return updated.record.document


async def _find_shared(
    job_reads: JobReads, backend: Backend, job_id: str, client: str
) -> JobRecord:
    return await job_reads.read((job_id, client), lambda: find_job(backend, job_id, client))


async def _iter_job_events(
    backend: Backend, job_reads: JobReads, job_id: str, client: str, slot: WatchSlot
) -> AsyncIterator[ServerSentEventMessage]:
    """The stream's events; it ends (cleanly, as any stream does) if the store fails: the
    headers are sent, so there is no status left to answer with, and the client reconnects."""
    try:
        async with backend.store.watch(job_id) as watch:
            sent_version = 0
            while True:
                try:
                    record = await _find_shared(job_reads, backend, job_id, client)
                except JobNotFound:
                    yield ServerSentEventMessage(event="gone", data=job_id)
                    return
                if record.version != sent_version:
                    sent_version = record.version
                    yield ServerSentEventMessage(
                        event="job",
                        id=record.version,
                        data=msgspec.json.encode(record.document).decode(),
                    )
                if record.terminal:
                    return
                if not await watch.wait(_KEEPALIVE_SECONDS):
                    yield ServerSentEventMessage(comment="keepalive", data=None)
    except (RedisError, OSError) as exc:
        logger.warning("event stream of job %s ended: the job store failed (%s)", job_id, exc)
    finally:
        slot.release()
