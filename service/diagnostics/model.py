"""The Diagnostic record and its enumerated codes."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import msgspec

__all__ = ["Code", "Diagnostic", "Severity"]


class Code(StrEnum):
    """Stable diagnostic codes. Dashboards group by these: never rename one."""

    METADATA_UNAVAILABLE = "metadata_unavailable"
    INDEX_UNAUTHORIZED = "index_unauthorized"
    INDEX_FORBIDDEN = "index_forbidden"
    INDEX_ERROR = "index_error"
    INDEX_UNREACHABLE = "index_unreachable"
    PACKAGE_NOT_FOUND = "package_not_found"
    PRERELEASE_AVAILABLE = "prerelease_available"
    REQUIRES_PYTHON = "requires_python"
    YANKED = "yanked"
    NO_COMPATIBLE_WHEELS = "no_compatible_wheels"
    NO_BINARY = "no_binary"
    SDIST_DYNAMIC_METADATA = "sdist_dynamic_metadata"
    FOUND_ON_OTHER_INDEX = "found_on_other_index"
    EXCLUDE_NEWER = "exclude_newer"
    INVALID_METADATA = "invalid_metadata"
    INCONSISTENT_METADATA = "inconsistent_metadata"
    SIMILAR_NAME = "similar_name"
    NO_MATCHING_VERSION = "no_matching_version"
    DEPENDENCY_CONFLICT = "dependency_conflict"
    DEADLINE_EXCEEDED = "deadline_exceeded"
    CANCELLED = "cancelled"
    RESOLUTION_TOO_COMPLEX = "resolution_too_complex"
    INTERNAL_ERROR = "internal_error"
    LOCK_ENVIRONMENT_MISMATCH = "lock_environment_mismatch"
    # A certificate stopped the TLS handshake: the server's is not trusted (SSL_CERT_FILE,
    # [[index]] ca_file) or the server wants a client certificate ([[index]] client_cert).
    TLS_CERTIFICATE = "tls_certificate"
    # A page linked a file outside the index's origins; nothing was requested from it.
    FILE_ORIGIN_REFUSED = "file_origin_refused"
    BUILD_FAILED = "build_failed"
    PAGE_TOO_LARGE = "page_too_large"


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    HINT = "hint"


class Diagnostic(msgspec.Struct, frozen=True, kw_only=True):
    """One thing the user should know, with enough structure for a dashboard to group it."""

    code: Code
    severity: Severity
    message: str
    package: str | None = None
    version: str | None = None
    index: str | None = None
    status: int | None = None
    url: str | None = None
    data: dict[str, Any] = msgspec.field(default_factory=dict)
