"""Finished jobs' documents are encoded once and served from the API process."""

from __future__ import annotations

from datetime import timedelta

import msgspec

from service.api.documents import FinishedDocuments
from service.jobs.model import JobRecord, make_record, mark_running, mark_succeeded, utcnow
from service.resolution.request import ResolveRequest, Target
from service.resolution.result import Resolution, ResolutionStats

REQUEST = ResolveRequest(
    requirements=("flask",), environment=Target(python_version="3.12", platform="linux")
)
RESOLUTION = Resolution(packages=[], warnings=[], stats=ResolutionStats())


def finished(client: str = "alice", *, hours_ago: float = 0) -> JobRecord:
    record = make_record(REQUEST, client=client, fingerprint="f")
    running = mark_running(record)
    assert running is not None
    done = mark_succeeded(running, RESOLUTION, now=utcnow() - timedelta(hours=hours_ago))
    assert done is not None
    return done


class TestFinishedDocuments:
    def test_a_finished_document_is_kept_for_its_owner(self) -> None:
        """Encoded once; the owner gets the same bytes back, anyone else nothing."""
        documents = FinishedDocuments(result_ttl_seconds=3600)
        record = finished()
        body = documents.encode(record)
        assert msgspec.json.decode(body)["status"] == "succeeded"
        assert documents.get(record.id, "alice") == body
        assert documents.get(record.id, "bob") is None

    def test_a_live_job_is_never_kept(self) -> None:
        """A queued or running document still changes: it is encoded, not remembered."""
        documents = FinishedDocuments(result_ttl_seconds=3600)
        record = make_record(REQUEST, client="alice", fingerprint="f")
        documents.encode(record)
        assert documents.get(record.id, "alice") is None

    def test_nothing_outlives_the_job_or_the_age_limit(self) -> None:
        """A job past its TTL is not kept; nor is anything past max_age."""
        expired = finished(hours_ago=2)
        documents = FinishedDocuments(result_ttl_seconds=3600)
        documents.encode(expired)
        assert documents.get(expired.id, "alice") is None
        brief = FinishedDocuments(result_ttl_seconds=3600, max_age=0)
        record = finished()
        brief.encode(record)
        assert brief.get(record.id, "alice") is None

    def test_the_byte_budget_drops_the_least_recently_used(self) -> None:
        """Past max_bytes the least recently read entries go first."""
        records = [finished() for _ in range(9)]
        size = len(FinishedDocuments(result_ttl_seconds=3600).encode(records[0]))
        documents = FinishedDocuments(result_ttl_seconds=3600, max_bytes=size * 8)
        for record in records[:8]:
            documents.encode(record)
        documents.get(records[0].id, "alice")  # read: now the most recently used
        documents.encode(records[8])
        kept = [documents.get(r.id, "alice") is not None for r in records]
        assert kept == [True, False, *[True] * 7]
