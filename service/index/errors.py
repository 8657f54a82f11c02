"""The exception tree of the network edge.

::

    IndexFetchError                 anything that stopped a fetch from an index
    ├── HTTPStatusError             the server answered 4xx/5xx (after retries for 5xx/429)
    ├── IndexUnreachableError       connection refused, DNS failure, proxy failure
    │   ├── BlockedAddressError     the host resolves into fetch.blocked_networks (not dialled)
    │   └── TLSError                a certificate not trusted, or a client certificate wanted
    ├── FileOriginError             a file link off the index's origins (nothing requested)
    ├── FetchTimeoutError           the per-fetch deadline passed
    ├── ResponseTooLargeError       the body (decoded) or a page's file count exceeded its cap
    ├── InvalidResponseError        a page or metadata file that cannot be parsed
    │   ├── HashMismatchError       a metadata file or artifact whose digest does not match
    │   └── InconsistentMetadataError  metadata whose name or version differs from its file's
    ├── UnusableMetadataError       an sdist whose metadata is dynamic or too old (PEP 643)
    └── MetadataBuildError          such an sdist's sandboxed metadata build failed

Lower-level httpx errors are mapped here with ``raise X(...) from exc``. Every error carries the
index's display name and a redacted URL, so it can become a ``Diagnostic`` unchanged;
``fetch_error`` builds them all the same way.
"""

from __future__ import annotations

from typing import Any, TypeVar

from service.diagnostics.redact import redact_text, redact_url

__all__ = [
    "BlockedAddressError",
    "FetchTimeoutError",
    "FileOriginError",
    "HTTPStatusError",
    "HashMismatchError",
    "InconsistentMetadataError",
    "IndexFetchError",
    "IndexUnreachableError",
    "InvalidResponseError",
    "MetadataBuildError",
    "ResponseTooLargeError",
    "TLSError",
    "UnusableMetadataError",
    "fetch_error",
]


class IndexFetchError(Exception):
    """A fetch from an index failed. ``url`` is always redacted."""

    def __init__(self, message: str, *, index: str, url: str) -> None:
        super().__init__(message)
        self.message = message
        self.index = index
        self.url = url


class HTTPStatusError(IndexFetchError):
    """The index answered with an error status.

    ``reason`` is the server's own explanation: an RFC 9457 title/detail when it sent one,
    else the standard reason phrase (``"Forbidden"``).
    """

    def __init__(self, message: str, *, index: str, url: str, status: int, reason: str) -> None:
        super().__init__(message, index=index, url=url)
        self.status = status
        self.reason = reason


class IndexUnreachableError(IndexFetchError):
    """No HTTP response at all: connection refused, DNS, TLS."""


class BlockedAddressError(IndexUnreachableError):
    """The host resolved into a blocked network, so no connection was attempted."""


class TLSError(IndexUnreachableError):
    """The TLS handshake failed on a certificate: the server's is not trusted, or the server
    wants a client certificate (or refused the one given), or the index's TLS files are unusable.

    ``setting`` names what to configure: ``SSL_CERT_FILE`` (or ``[[index]] ca_file``) for
    trust, ``client_cert`` for mutual TLS.
    """

    def __init__(self, message: str, *, index: str, url: str, setting: str) -> None:
        super().__init__(message, index=index, url=url)
        self.setting = setting


class FileOriginError(IndexFetchError):
    """A page links a file on an origin the index may not send us to; nothing was requested."""


class FetchTimeoutError(IndexFetchError):
    """The fetch's overall deadline passed."""


class ResponseTooLargeError(IndexFetchError):
    """The response exceeded a cap: its decoded bytes, or (a page) the files it lists.

    ``setting`` names the cap when it is not the size of the body (``fetch.max_page_files``).
    """

    def __init__(self, message: str, *, index: str, url: str, setting: str | None = None) -> None:
        super().__init__(message, index=index, url=url)
        self.setting = setting


class InvalidResponseError(IndexFetchError):
    """A page or metadata document that cannot be parsed."""


class HashMismatchError(InvalidResponseError):
    """Content whose digest differs from the one the index advertised."""


class InconsistentMetadataError(InvalidResponseError):
    """Metadata that parses but names another project or version than the file it came from."""


class UnusableMetadataError(IndexFetchError):
    """No static metadata without a build: an sdist with dynamic fields or an old PKG-INFO."""


E = TypeVar("E", bound=IndexFetchError)


def fetch_error(cls: type[E], index: str, url: str, detail: str, **fields: Any) -> E:
    """``cls`` with the message ``<index>: <url>: <detail>``, URL and detail redacted."""
    redacted = redact_url(url)
    return cls(f"{index}: {redacted}: {redact_text(detail)}", index=index, url=redacted, **fields)


class MetadataBuildError(IndexFetchError):
    """The metadata build of an sdist failed (or could not run); the version is unusable.

    ``stage`` says where it stopped (``backend``, ``build_requirements``, ``timeout``,
    ``memory``, ``output``, ``download``, ``unavailable``); ``log_tail`` holds the build's last
    lines of output, redacted.
    """

    def __init__(
        self, message: str, *, index: str, url: str, stage: str, log_tail: str = ""
    ) -> None:
        super().__init__(message, index=index, url=url)
        self.stage = stage
        self.log_tail = log_tail
