"""Turn the index client's typed errors into Diagnostics, applying the client-error policy."""

from __future__ import annotations

from http import HTTPStatus
from typing import Literal

import msgspec

from service.diagnostics.model import Code, Diagnostic, Severity
from service.index.errors import (
    FetchTimeoutError,
    FileOriginError,
    HTTPStatusError,
    InconsistentMetadataError,
    IndexFetchError,
    IndexUnreachableError,
    InvalidResponseError,
    MetadataBuildError,
    ResponseTooLargeError,
    TLSError,
    UnusableMetadataError,
)
from service.index.models import Index
from service.resolution.result import Reason

__all__ = [
    "DYNAMIC_METADATA_ADVICE",
    "FatalFetchError",
    "FatalFetchKind",
    "describe_status",
    "make_direct_url_diagnostic",
    "make_metadata_diagnostic",
    "make_page_diagnostic",
    "metadata_reason",
]

DYNAMIC_METADATA_ADVICE = (
    "Give its metadata in the request's dependency_metadata, or have the server build it in a "
    "sandbox ([builds] enabled = true)."
)

FatalFetchKind = Literal["index_error", "metadata_error"]
"""A project page (``index_error``) or a version's metadata (``metadata_error``) failed."""


class FatalFetchError(Exception):
    """A fetch failure the policy does not allow the resolver to work around."""

    def __init__(self, diagnostic: Diagnostic, kind: FatalFetchKind) -> None:
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic
        self.kind = kind


def describe_status(status: int, reason: str | None = None) -> str:
    """``403 Forbidden``, or the server's own explanation when it gave a better one."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "error"
    if reason and reason != phrase:
        return f"{status} {phrase}: {reason}"
    return f"{status} {phrase}"


def _failure(error: IndexFetchError) -> tuple[Code, dict[str, str]]:
    """The code (and data) of a fetch that got no usable HTTP answer."""
    data = {"error": type(error).__name__}
    if isinstance(error, TLSError):
        return Code.TLS_CERTIFICATE, {**data, "setting": error.setting}
    if isinstance(error, FileOriginError):
        return Code.FILE_ORIGIN_REFUSED, {**data, "setting": "file_origins"}
    if isinstance(error, IndexUnreachableError | FetchTimeoutError):
        return Code.INDEX_UNREACHABLE, data
    return Code.INDEX_ERROR, data


def _status_code(status: int) -> Code:
    if status == 401:
        return Code.INDEX_UNAUTHORIZED
    if status == 403:
        return Code.INDEX_FORBIDDEN
    return Code.INDEX_ERROR


def make_page_diagnostic(
    error: IndexFetchError, index: Index, project: str, *, severity: Severity = Severity.ERROR
) -> Diagnostic:
    """A Diagnostic for a project page that could not be fetched from ``index``."""
    name = index.display_name
    if isinstance(error, HTTPStatusError):
        code = _status_code(error.status)
        described = describe_status(error.status, error.reason)
        if code is Code.INDEX_UNAUTHORIZED:
            advice = (
                f"Check the credentials configured for index '{name}' "
                "(username_env/password_env or token_env)."
            )
        elif code is Code.INDEX_FORBIDDEN:
            advice = (
                f"The credentials for index '{name}' are not allowed to read {project}, or the "
                "index blocks it by policy."
            )
        else:
            advice = ""
        if severity is Severity.ERROR and error.status < 500:
            advice += (
                f" resolvd does not fall through to a later index on {error.status}; to treat it "
                f"as 'not on this index', add {error.status} to ignore_error_codes.page for "
                f"index '{name}'."
            )
        return Diagnostic(
            code=code,
            severity=severity,
            message=f"The project page of {project} on index '{name}' answered {described}. "
            + advice.strip(),
            package=project,
            index=name,
            status=error.status,
            url=error.url,
            data={"reason": error.reason, "setting": "ignore_error_codes.page"},
        )
    if isinstance(error, ResponseTooLargeError):
        setting = error.setting or "fetch.max_page_bytes"
        return Diagnostic(
            code=Code.PAGE_TOO_LARGE,
            severity=severity,
            message=f"The project page of {project} on index '{name}' is larger than resolvd "
            f"reads ({setting}): {error.message}",
            package=project,
            index=name,
            url=error.url,
            data={"error": type(error).__name__, "setting": setting},
        )
    code, data = _failure(error)
    return Diagnostic(
        code=code,
        severity=severity,
        message=f"The project page of {project} on index '{name}' could not be fetched: "
        f"{error.message}",
        package=project,
        index=name,
        url=error.url,
        data=data,
    )


def metadata_reason(error: IndexFetchError) -> Reason | None:
    """Why a version is passed over when its metadata failed with ``error``.

    None when the failure says nothing about the version (the index is unreachable, answered
    an error, or sent too much): the resolver must not backtrack past it, the job fails.
    HTTP statuses are the index's ``ignore_error_codes`` policy to decide, not this table.
    """
    if isinstance(error, MetadataBuildError):
        return Reason.BUILD_FAILED
    if isinstance(error, UnusableMetadataError):
        return Reason.SDIST_DYNAMIC_METADATA
    if isinstance(error, InconsistentMetadataError):
        return Reason.INCONSISTENT_METADATA
    if isinstance(error, InvalidResponseError):
        return Reason.INVALID_METADATA
    return None


def make_metadata_diagnostic(
    error: IndexFetchError,
    index: Index,
    project: str,
    version: str,
    *,
    severity: Severity,
) -> Diagnostic:
    """A Diagnostic for one version whose metadata could not be had."""
    name = index.display_name
    if isinstance(error, HTTPStatusError):
        described = describe_status(error.status, error.reason)
        if severity is Severity.ERROR:
            advice = (
                f"To treat {error.status} as 'this version is unavailable' and backtrack to "
                f"another version, set ignore_error_codes.metadata = [{error.status}] for index "
                f"'{name}'."
            )
        else:
            advice = f"Skipped under ignore_error_codes.metadata of index '{name}'."
        return Diagnostic(
            code=Code.METADATA_UNAVAILABLE,
            severity=severity,
            message=f"Metadata for {project}=={version} could not be fetched from index "
            f"'{name}' ({described}). {advice}",
            package=project,
            version=version,
            index=name,
            status=error.status,
            url=error.url,
            data={
                "reason": error.reason,
                "setting": "ignore_error_codes.metadata",
                "suggestion": {"index": name, "ignore_error_codes": {"metadata": [error.status]}},
            },
        )
    code, data = _failure(error)
    reason = metadata_reason(error)
    if reason is not None:
        code = reason.code
    message = f"Metadata for {project}=={version} from index '{name}' is unusable: {error.message}"
    details: dict[str, object] = dict(data)
    if isinstance(error, MetadataBuildError):
        message = f"The metadata build of {project}=={version} from index '{name}' failed: "
        message += error.message
        details |= {"stage": error.stage, "log_tail": error.log_tail}
    elif reason is Reason.SDIST_DYNAMIC_METADATA:
        message += f". {DYNAMIC_METADATA_ADVICE}"
        details["settings"] = ["dependency_metadata", "builds.enabled"]
    return Diagnostic(
        code=code,
        severity=severity,
        message=message,
        package=project,
        version=version,
        index=name,
        url=error.url,
        data=details,
    )


def make_direct_url_diagnostic(
    error: IndexFetchError, index: Index, project: str, version: str
) -> Diagnostic:
    """An error Diagnostic for the file a direct URL requirement names: there is no other
    version to fall back to, so no policy setting can help, and the message says so."""
    diagnostic = make_metadata_diagnostic(error, index, project, version, severity=Severity.ERROR)
    cause = (
        describe_status(error.status, error.reason)
        if isinstance(error, HTTPStatusError)
        else error.message
    )
    data = {k: v for k, v in diagnostic.data.items() if k not in ("setting", "suggestion")}
    advice = (
        f"Give its metadata in the request's dependency_metadata (name {project!r})."
        if isinstance(error, UnusableMetadataError)
        else f"Check the URL (and its #sha256=), or require {project} from an index."
    )
    return msgspec.structs.replace(
        diagnostic,
        message=f"The file of the direct URL requirement {project} @ {error.url} could not be "
        f"used: {cause}. {advice}",
        data={**data, "direct_url": True},
    )
