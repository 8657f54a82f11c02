"""What a resolution produces: the result and failure shapes of a job document."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import Literal

import msgspec

from service.diagnostics.model import Code, Diagnostic, Severity
from service.diagnostics.redact import redact_url
from service.index.models import DistFile

__all__ = [
    "REASON_CODES",
    "ChangeKind",
    "Failure",
    "FailureCause",
    "FailureKind",
    "FileRef",
    "PackageChange",
    "Progress",
    "Reason",
    "Resolution",
    "ResolutionFailed",
    "ResolutionStats",
    "ResolvedPackage",
    "VersionRejection",
    "make_deadline_failure",
    "make_file_ref",
    "make_job_failure",
]

FailureKind = Literal[
    "unsatisfiable",
    "index_error",
    "metadata_error",
    "invalid_request",
    "deadline_exceeded",
    "cancelled",
    "internal",
]


class FileRef(msgspec.Struct, frozen=True, kw_only=True):
    filename: str
    url: str
    hashes: dict[str, str]
    size: int | None = None
    upload_time: str | None = None


def make_file_ref(file: DistFile) -> FileRef:
    """What a result says of a distribution file (its URL redacted)."""
    return FileRef(
        filename=file.filename,
        url=redact_url(file.url),
        hashes=dict(file.hashes),
        size=file.size,
        upload_time=file.upload_time,
    )


class ResolvedPackage(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    version: str
    index: str
    requested: bool
    # Taken from a direct URL requirement (``name @ https://…``): ``file`` is that URL's file.
    direct: bool = False
    extras: list[str]
    markers: str | None
    requires_python: str | None
    dependencies: list[str]
    required_by: list[str]
    # The target's best file (single-target jobs; ``None`` in a universal lock).
    file: FileRef | None
    # Every file of the version usable somewhere in the lock's domain (or on the target).
    files: list[FileRef] = []


ChangeKind = Literal["added", "removed", "upgraded", "downgraded", "replaced"]


class PackageChange(msgspec.Struct, frozen=True, kw_only=True):
    """How one package moved between two locks (a result's ``changes``).

    ``from``/``to`` are the versions before and after (``None`` for what was added or
    removed); ``replaced`` keeps the version but takes another file or index. ``reason`` says why
    a locked version could not stay, when it is known.
    """

    name: str
    from_: str | None = msgspec.field(name="from")
    to: str | None
    kind: ChangeKind
    reason: str | None


class ResolutionStats(msgspec.Struct, kw_only=True):
    duration_ms: int = 0
    requests: int = 0
    cache_hits: int = 0
    rounds: int = 0


class Resolution(msgspec.Struct, frozen=True, kw_only=True):
    packages: list[ResolvedPackage]
    warnings: list[Diagnostic]
    stats: ResolutionStats
    # The Python range the lock holds for (universal jobs: the domain's; else the target's).
    requires_python: str | None = None
    # Universal jobs: the environments the request narrowed the domain to.
    environments: list[str] | None = None
    # Present (possibly empty) when the request gave a ``lock``: what moved from it.
    changes: list[PackageChange] | None = None
    # The exclude_newer cutoff applied (a duration in the request, as the time it reached).
    exclude_newer: str | None = None


class Reason(StrEnum):
    """Why a version was passed over: the reason of each version in a failure's causes.

    Stable, like diagnostic codes: never rename one.
    """

    # Each maps to the Code of the hints and warnings about it, in REASON_CODES below.

    REQUIRES_PYTHON = "requires_python"
    EXCLUDE_NEWER = "exclude_newer"
    NO_BINARY = "no_binary"
    ONLY_BINARY = "only_binary"
    NO_COMPATIBLE_WHEELS = "no_compatible_wheels"
    # Universal locks: a wheel-only version lacking a wheel for one of required_environments.
    REQUIRED_ENVIRONMENT = "required_environment"
    YANKED = "yanked"
    METADATA_UNAVAILABLE = "metadata_unavailable"
    SDIST_DYNAMIC_METADATA = "sdist_dynamic_metadata"
    INVALID_METADATA = "invalid_metadata"
    INCONSISTENT_METADATA = "inconsistent_metadata"
    BUILD_FAILED = "build_failed"

    @property
    def code(self) -> Code:
        """The code of a hint or warning about a version passed over for this reason."""
        return REASON_CODES[self]


REASON_CODES: Mapping[Reason, Code] = MappingProxyType(
    {
        Reason.REQUIRES_PYTHON: Code.REQUIRES_PYTHON,
        Reason.EXCLUDE_NEWER: Code.EXCLUDE_NEWER,
        Reason.NO_BINARY: Code.NO_BINARY,
        # only_binary refuses the sdist, so what is missing is a wheel for the target.
        Reason.ONLY_BINARY: Code.NO_COMPATIBLE_WHEELS,
        Reason.NO_COMPATIBLE_WHEELS: Code.NO_COMPATIBLE_WHEELS,
        Reason.REQUIRED_ENVIRONMENT: Code.NO_COMPATIBLE_WHEELS,
        Reason.YANKED: Code.YANKED,
        Reason.METADATA_UNAVAILABLE: Code.METADATA_UNAVAILABLE,
        Reason.SDIST_DYNAMIC_METADATA: Code.SDIST_DYNAMIC_METADATA,
        Reason.INVALID_METADATA: Code.INVALID_METADATA,
        Reason.INCONSISTENT_METADATA: Code.INCONSISTENT_METADATA,
        Reason.BUILD_FAILED: Code.BUILD_FAILED,
    }
)


class VersionRejection(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Why one version of a package could not be used."""

    version: str
    reason: Reason
    status: int | None = None
    index: str | None = None
    detail: str | None = None


class FailureCause(msgspec.Struct, frozen=True, kw_only=True):
    package: str
    requirement: str | None
    required_by: str | None
    versions: list[VersionRejection]


class Failure(msgspec.Struct, frozen=True, kw_only=True):
    kind: FailureKind
    message: str
    causes: list[FailureCause] = []
    hints: list[Diagnostic] = []
    fetch_errors: list[Diagnostic] = []


JobFailureKind = Literal["deadline_exceeded", "cancelled", "internal"]
# A failure of the job rather than of its request carries its kind's code as its one hint, so
# that dashboards count it under a code like every other failure.
_JOB_FAILURE_CODES: Mapping[JobFailureKind, Code] = MappingProxyType(
    {
        "deadline_exceeded": Code.DEADLINE_EXCEEDED,
        "cancelled": Code.CANCELLED,
        "internal": Code.INTERNAL_ERROR,
    }
)


def make_job_failure(kind: JobFailureKind, message: str) -> Failure:
    """A job that ran out of time, was cancelled or broke: ``message``, and its code as a hint."""
    code = _JOB_FAILURE_CODES[kind]
    hint = Diagnostic(code=code, severity=Severity.ERROR, message=message)
    return Failure(kind=kind, message=message, hints=[hint])


def make_deadline_failure(deadline_seconds: float) -> Failure:
    """The failure of a resolution that outlived ``deadline_seconds``, whoever stopped it."""
    return make_job_failure(
        "deadline_exceeded",
        f"The resolution did not finish within its deadline of {deadline_seconds:g} seconds.",
    )


class Progress(msgspec.Struct, kw_only=True):
    """Live counters a running job publishes into its document."""

    packages: int = 0
    versions_tried: int = 0
    rounds: int = 0
    requests: int = 0
    cache_hits: int = 0


class ResolutionFailed(Exception):
    """The resolution ended without a result; ``failure`` says why, for the user."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.message)
        self.failure = failure
