"""What travels between a worker and a builder: build requests and their outcomes.

A request names the sdist (its page entry, keyed by its sha256), the index it came from and the
job's indexes and strategy (by configured name or allowed URL, never with credentials: the
builder reads those from its own environment, as a worker does). An outcome is the built
METADATA, kept forever, or a failure with the log's last lines, kept ``failure_ttl_seconds``.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from service.index.models import DistFile, ErrorPolicy, Index
from service.resolution.request import IndexRef, IndexStrategy, PolicyOverride

__all__ = [
    "BuildFailure",
    "BuildOutcome",
    "BuildRequest",
    "BuildStage",
    "index_ref",
]

BuildStage = Literal[
    "download",
    "build_requirements",
    "backend",
    "timeout",
    "memory",
    "output",
    "sandbox",
    "unavailable",
]
"""Where a build stopped: fetching the sdist, resolving or installing its build requirements,
the backend's own failure, the wall-clock/CPU limit, the memory limit, the output cap, the
sandbox itself, or no builder to run it."""


class BuildRequest(msgspec.Struct, frozen=True, kw_only=True):
    """Build ``file``'s metadata; resolve its build requirements from ``indexes``."""

    sha256: str
    file: DistFile
    index: IndexRef
    indexes: tuple[IndexRef, ...]
    index_strategy: IndexStrategy = "first-index"
    requested_at: float = 0.0


class BuildFailure(msgspec.Struct, frozen=True, kw_only=True):
    """Why a build failed: a one-line ``message`` and the output's last lines (redacted)."""

    stage: BuildStage
    message: str
    log_tail: str = ""


class BuildOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """The built METADATA, or a failure; ``duration_seconds`` of the build that produced it."""

    metadata: bytes | None = None
    failure: BuildFailure | None = None
    duration_seconds: float = 0.0
    finished_at: float = 0.0


def _override(policy: ErrorPolicy) -> PolicyOverride:
    return PolicyOverride(page=tuple(sorted(policy.page)), metadata=tuple(sorted(policy.metadata)))


def index_ref(index: Index) -> IndexRef:
    """``index`` as a request names it (configured name or URL), with its policy for this job."""
    if index.named_by_url:
        index_format = None if index.format == "simple" else index.format
        return IndexRef(
            url=index.url, ignore_error_codes=_override(index.policy), format=index_format
        )
    return IndexRef(name=index.name, ignore_error_codes=_override(index.policy))
