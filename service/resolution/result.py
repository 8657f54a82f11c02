"""What a resolution produces: the result and failure shapes of API.md."""

from __future__ import annotations

from typing import Literal

import msgspec

from service.diagnostics.model import Diagnostic

__all__ = [
    "Failure",
    "FailureCause",
    "FailureKind",
    "FileRef",
    "Progress",
    "Resolution",
    "ResolutionFailed",
    "ResolutionStats",
    "ResolvedPackage",
    "VersionRejection",
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


class ResolvedPackage(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    version: str
    index: str
    requested: bool
    extras: list[str]
    markers: str | None
    requires_python: str | None
    dependencies: list[str]
    required_by: list[str]
    file: FileRef


class ResolutionStats(msgspec.Struct, kw_only=True):
    duration_ms: int = 0
    requests: int = 0
    cache_hits: int = 0
    rounds: int = 0


class Resolution(msgspec.Struct, frozen=True, kw_only=True):
    packages: list[ResolvedPackage]
    warnings: list[Diagnostic]
    stats: ResolutionStats


class VersionRejection(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Why one version of a package could not be used."""

    version: str
    reason: str
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
