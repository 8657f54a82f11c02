"""The index client's typed errors become rejection reasons and Diagnostics by type."""

from __future__ import annotations

import pytest

from service.diagnostics.model import Code, Severity
from service.index.errors import (
    BlockedAddressError,
    FetchTimeoutError,
    HashMismatchError,
    HTTPStatusError,
    InconsistentMetadataError,
    IndexFetchError,
    IndexUnreachableError,
    InvalidResponseError,
    MetadataBuildError,
    ResponseTooLargeError,
    UnusableMetadataError,
)
from service.index.models import Index
from service.resolution.fetch_errors import make_metadata_diagnostic, metadata_reason
from service.resolution.result import REASON_CODES, Reason

INDEX = Index(name="corp", url="https://corp.example/simple/")
URL = "https://corp.example/files/a-1.0-py3-none-any.whl.metadata"


def error(kind: type[IndexFetchError], message: str = "it broke") -> IndexFetchError:
    return kind(message, index="corp", url=URL)


class TestReasonCodes:
    def test_every_reason_has_a_code(self) -> None:
        """The table is complete: a new reason cannot ship without its code."""
        assert set(REASON_CODES) == set(Reason)

    @pytest.mark.parametrize("reason", list(Reason))
    def test_codes_keep_the_reasons_name(self, reason: Reason) -> None:
        """A reason's code has its name, except only_binary and required_environment: what
        they lack is a usable wheel."""
        wheel_less = (Reason.ONLY_BINARY, Reason.REQUIRED_ENVIRONMENT)
        expected = "no_compatible_wheels" if reason in wheel_less else reason.value
        assert reason.code.value == expected


class TestMetadataReason:
    @pytest.mark.parametrize(
        ("kind", "reason"),
        [
            (UnusableMetadataError, Reason.SDIST_DYNAMIC_METADATA),
            (InconsistentMetadataError, Reason.INCONSISTENT_METADATA),
            (InvalidResponseError, Reason.INVALID_METADATA),
            (HashMismatchError, Reason.INVALID_METADATA),
            (IndexUnreachableError, None),
            (BlockedAddressError, None),
            (FetchTimeoutError, None),
            (ResponseTooLargeError, None),
        ],
    )
    def test_by_type(self, kind: type[IndexFetchError], reason: Reason | None) -> None:
        """Metadata that is wrong passes the version over; a fetch that failed fails the job."""
        assert metadata_reason(error(kind)) is reason

    def test_inconsistency_is_known_by_its_type_not_its_words(self) -> None:
        """The code follows the error's type, whatever its message says."""
        assert metadata_reason(error(InconsistentMetadataError, "names b")) is (
            Reason.INCONSISTENT_METADATA
        )
        assert metadata_reason(error(InvalidResponseError, "inconsistent gzip stream")) is (
            Reason.INVALID_METADATA
        )

    def test_statuses_are_the_policys_to_decide(self) -> None:
        """An HTTP status is no reason by itself: ignore_error_codes decides."""
        status = HTTPStatusError("403", index="corp", url=URL, status=403, reason="Forbidden")
        assert metadata_reason(status) is None


class TestMetadataDiagnostic:
    @pytest.mark.parametrize(
        ("kind", "code"),
        [
            (InconsistentMetadataError, Code.INCONSISTENT_METADATA),
            (InvalidResponseError, Code.INVALID_METADATA),
            (IndexUnreachableError, Code.INDEX_UNREACHABLE),
            (FetchTimeoutError, Code.INDEX_UNREACHABLE),
            (ResponseTooLargeError, Code.INDEX_ERROR),
        ],
    )
    def test_code_by_type(self, kind: type[IndexFetchError], code: Code) -> None:
        """The diagnostic's code is the reason's code, or says the index failed."""
        diagnostic = make_metadata_diagnostic(
            error(kind, "names b"), INDEX, "a", "1.0", severity=Severity.WARNING
        )
        assert diagnostic.code is code
        assert diagnostic.message == "Metadata for a==1.0 from index 'corp' is unusable: names b"
        assert diagnostic.data == {"error": kind.__name__}

    def test_dynamic_metadata_names_both_ways_out(self) -> None:
        """An sdist needing a build: the request's dependency_metadata, or [builds] enabled."""
        diagnostic = make_metadata_diagnostic(
            error(UnusableMetadataError, "Requires-Dist is Dynamic"),
            INDEX,
            "a",
            "1.0",
            severity=Severity.WARNING,
        )
        assert diagnostic.code is Code.SDIST_DYNAMIC_METADATA
        assert "dependency_metadata" in diagnostic.message
        assert "[builds] enabled" in diagnostic.message
        assert diagnostic.data["settings"] == ["dependency_metadata", "builds.enabled"]

    def test_a_failed_build_carries_its_stage_and_log_tail(self) -> None:
        failed = MetadataBuildError(
            "corp: setup.py failed", index="corp", url=URL, stage="backend", log_tail="Traceback"
        )
        assert metadata_reason(failed) is Reason.BUILD_FAILED
        diagnostic = make_metadata_diagnostic(failed, INDEX, "a", "1.0", severity=Severity.WARNING)
        assert (diagnostic.code, diagnostic.package, diagnostic.version) == (
            Code.BUILD_FAILED,
            "a",
            "1.0",
        )
        assert diagnostic.message.startswith("The metadata build of a==1.0 from index 'corp'")
        assert diagnostic.data == {
            "error": "MetadataBuildError",
            "stage": "backend",
            "log_tail": "Traceback",
        }
