"""The job state machine: which transitions apply from which status."""

from __future__ import annotations

from collections.abc import Callable

import msgspec
import pytest

from service.jobs.model import (
    JobRecord,
    JobStatus,
    make_job_id,
    make_record,
    mark_cancelled,
    mark_failed,
    mark_running,
    mark_succeeded,
    record_progress,
    release,
)
from service.resolution import Progress, ResolveRequest, Target
from service.resolution.result import Failure
from tests.support.scripted import make_resolution

REQUEST = ResolveRequest(
    requirements=("flask",), environment=Target(python_version="3.12", platform="linux")
)


def record_in(status: JobStatus) -> JobRecord:
    record = make_record(REQUEST, client="c", fingerprint="f")
    return msgspec.structs.replace(
        record, document=msgspec.structs.replace(record.document, status=status)
    )


Transition = Callable[[JobRecord], JobRecord | None]

TRANSITIONS: dict[str, Transition] = {
    "mark_running": mark_running,
    "record_progress": lambda r: record_progress(r, Progress(rounds=1)),
    "mark_succeeded": lambda r: mark_succeeded(r, make_resolution()),
    "mark_failed": lambda r: mark_failed(r, Failure(kind="internal", message="x")),
    "mark_cancelled": mark_cancelled,
    "release": release,
}

# transition -> the status it leads to from each status (None: does not apply).
TABLE: dict[str, dict[JobStatus, JobStatus | None]] = {
    "mark_running": {
        "queued": "running",
        "running": "running",
        "succeeded": None,
        "failed": None,
        "cancelled": None,
    },
    "record_progress": {
        "queued": None,
        "running": "running",
        "succeeded": None,
        "failed": None,
        "cancelled": None,
    },
    "mark_succeeded": {
        "queued": "succeeded",
        "running": "succeeded",
        "succeeded": None,
        "failed": None,
        "cancelled": None,
    },
    "mark_failed": {
        "queued": "failed",
        "running": "failed",
        "succeeded": None,
        "failed": None,
        "cancelled": None,
    },
    "mark_cancelled": {
        "queued": "cancelled",
        "running": "cancelled",
        "succeeded": None,
        "failed": None,
        "cancelled": None,
    },
    "release": {
        "queued": None,
        "running": "queued",
        "succeeded": None,
        "failed": None,
        "cancelled": None,
    },
}

CASES = [(name, before, after) for name, row in TABLE.items() for before, after in row.items()]


class TestTransitions:
    @pytest.mark.parametrize(("name", "before", "after"), CASES)
    def test_table(self, name: str, before: JobStatus, after: JobStatus | None) -> None:
        """Each transition leads where the table says, or does not apply."""
        result = TRANSITIONS[name](record_in(before))
        if after is None:
            assert result is None
        else:
            assert result is not None
            assert result.status == after

    def test_every_applied_transition_bumps_the_version(self) -> None:
        """Compare-and-set relies on each change carrying a new version."""
        record = record_in("running")
        for transition in TRANSITIONS.values():
            result = transition(record)
            if result is not None:
                assert result.version == record.version + 1

    def test_running_counts_attempts_and_stamps_the_start(self) -> None:
        """Each attempt increments ``attempts`` and sets ``started_at``."""
        record = mark_running(record_in("queued"))
        assert record is not None
        assert record.attempts == 1
        assert record.document.started_at is not None

    def test_unchanged_progress_is_not_a_change(self) -> None:
        """Publishing the same counters again writes nothing."""
        running = mark_running(record_in("queued"))
        assert running is not None
        assert record_progress(running, Progress()) is None

    def test_cancel_records_a_cancelled_failure(self) -> None:
        """A cancelled job says so in ``failure``, with a finish time."""
        cancelled = mark_cancelled(record_in("queued"))
        assert cancelled is not None
        assert cancelled.document.failure is not None
        assert cancelled.document.failure.kind == "cancelled"
        assert cancelled.document.finished_at is not None


class TestJobIds:
    def test_ids_are_long_and_distinct(self) -> None:
        """Ids carry at least 122 random bits (32 URL-safe characters = 192 bits)."""
        ids = {make_job_id() for _ in range(1000)}
        assert len(ids) == 1000
        assert all(len(job_id) >= 32 for job_id in ids)
