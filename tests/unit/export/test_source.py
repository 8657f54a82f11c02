"""The gate from a job document to the formats, and what they share about it."""

from __future__ import annotations

import re

import pytest

from service.export import NotSucceededError, make_lock_source
from service.jobs.model import JobStatus
from service.resolution.request import IndexRef
from service.resolution.result import Failure
from tests.unit.export.resolutions import (
    CORP_REDACTED,
    INDEX_URLS,
    MIRROR,
    TWO_INDEXES,
    TWO_INDEXES_OPTIONS,
    document,
    package,
    source,
)


class TestMakeLockSource:
    @pytest.mark.parametrize(
        ("status", "failure", "message"),
        [
            ("queued", None, "Job 'job-1' is queued: a lock exists only"),
            ("running", None, "Job 'job-1' is running: a lock exists only"),
            (
                "failed",
                Failure(kind="unsatisfiable", message="No solution found"),
                "Job 'job-1' is failed (unsatisfiable): a lock exists only",
            ),
            (
                "cancelled",
                Failure(kind="cancelled", message="cancelled"),
                "Job 'job-1' is cancelled: a lock exists only",
            ),
        ],
    )
    def test_a_job_without_a_resolution_is_refused(
        self, status: JobStatus, failure: Failure | None, message: str
    ) -> None:
        """Only a succeeded job has a lock; the error names the job's status."""
        with pytest.raises(NotSucceededError, match=re.escape(message)) as caught:
            make_lock_source(document([], status=status, failure=failure), INDEX_URLS)
        assert caught.value.status == status

    def test_configured_index_urls_are_redacted_on_the_way_in(self) -> None:
        """Whatever the caller passes, no credential reaches a format."""
        made = source([package("click", "8.1.7")])
        assert made.index_urls["corp"] == CORP_REDACTED


class TestIndexUrls:
    @pytest.mark.parametrize(
        ("indexes", "expected"),
        [
            pytest.param(
                TWO_INDEXES_OPTIONS["indexes"], [CORP_REDACTED, MIRROR], id="request-order"
            ),
            pytest.param(
                [IndexRef(url=MIRROR), IndexRef(name="pypi"), IndexRef(name="corp")],
                [MIRROR, CORP_REDACTED],
                id="reordered-and-unused-left-out",
            ),
            pytest.param([], [CORP_REDACTED, MIRROR], id="configured-order-then-urls"),
            pytest.param(
                [IndexRef(url="HTTPS://Mirror.Example/x/../simple/"), IndexRef(name="corp")],
                [MIRROR, CORP_REDACTED],
                id="url-ranked-as-it-was-fetched",
            ),
            pytest.param(
                [IndexRef(url=MIRROR + "%25"), IndexRef(name="corp")],
                [CORP_REDACTED, MIRROR],
                id="url-spelled-as-no-longer-accepted-still-exports",
            ),
        ],
    )
    def test_only_used_indexes_in_priority_order(
        self, indexes: list[IndexRef], expected: list[str]
    ) -> None:
        """The indexes packages came from, ranked as the request (or configuration) ranks."""
        made = source(TWO_INDEXES, indexes=indexes)
        assert list(made.iter_index_urls()) == expected

    def test_an_index_no_longer_configured_has_no_url(self) -> None:
        """A name the settings no longer know is not guessed at."""
        made = source([package("click", "8.1.7", index="retired")])
        assert made.index_url(made.packages[0]) is None
        assert list(made.iter_index_urls()) == []
