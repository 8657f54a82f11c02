"""Finished jobs' documents, encoded once and kept in the API process.

A job's document stops changing when it reaches a terminal status: every transition refuses a
terminal record (``service.jobs.model``), so a finished document is immutable until it expires.
Polling clients and dashboards read finished jobs far more often than anything else, and for
them this saves the Redis round trip and the decode/encode of a document that may be tens of
kilobytes. Entries are bounded in bytes, live at most ``max_age`` seconds and never past the
job's own expiry, and are only ever served to the client that owns the job.
"""

from __future__ import annotations

import time
from collections import OrderedDict

import msgspec

from service.jobs.model import JobRecord

__all__ = ["FinishedDocuments"]

_MAX_BYTES = 32 * 1024 * 1024
_MAX_AGE_SECONDS = 60.0


class FinishedDocuments:
    """An LRU of (owner, encoded document, expiry) by job id; see the module docstring."""

    def __init__(
        self,
        *,
        result_ttl_seconds: float,
        max_bytes: int = _MAX_BYTES,
        max_age: float = _MAX_AGE_SECONDS,
    ) -> None:
        self._ttl = result_ttl_seconds
        self._max_bytes = max_bytes
        self._max_age = max_age
        self._entries: OrderedDict[str, tuple[str, bytes, float]] = OrderedDict()
        self._bytes = 0

    def get(self, job_id: str, client: str) -> bytes | None:
        """The encoded document of the client's finished job, if it is held here."""
        entry = self._entries.get(job_id)
        if entry is None:
            return None
        owner, body, expires = entry
        if expires <= time.monotonic():
            self._drop(job_id)
            return None
        if owner != client:
            return None  # not found for this client; the store answers that
        self._entries.move_to_end(job_id)
        return body

    def encode(self, record: JobRecord) -> bytes:
        """The record's document as JSON, remembered when the job has finished."""
        body = msgspec.json.encode(record.document)
        finished = record.document.finished_at
        if not record.terminal or finished is None or len(body) > self._max_bytes // 8:
            return body
        lives = min(self._max_age, finished.timestamp() + self._ttl - time.time())
        if lives > 0:
            self._drop(record.id)
            self._entries[record.id] = (record.client, body, time.monotonic() + lives)
            self._bytes += len(body)
            while self._bytes > self._max_bytes:
                self._drop(next(iter(self._entries)))
        return body

    def _drop(self, job_id: str) -> None:
        entry = self._entries.pop(job_id, None)
        if entry is not None:
            self._bytes -= len(entry[1])
