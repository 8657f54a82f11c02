"""Whether a URL can be fetched at all: what the URL library would refuse, said up front.

A request's index URL is checked with ``check_url`` when the request is validated
(``service.resolution.make_indexes``), so a URL httpx would refuse (too long, a tab or CR/LF in
it, a host IDNA cannot encode) is a 4xx naming the field, never an ``internal`` failure inside a
job. The messages never repeat the URL: the caller knows which one it sent.
"""

from __future__ import annotations

import httpx

__all__ = ["MAX_URL_LENGTH", "UnusableURLError", "check_url"]

# Far above any index URL in use, far below httpx's own 64 KiB limit, so that a project name
# (capped by the API too) appended to it still fits.
MAX_URL_LENGTH = 2048
# RFC 1035: a host name of at most 253 characters, in labels of at most 63.
_MAX_HOST_LENGTH = 253
_MAX_LABEL_LENGTH = 63
_MAX_PORT = 65535


class UnusableURLError(ValueError):
    """The URL cannot be fetched as it is; the message says why, in words."""


def check_url(url: str) -> None:
    """Raise ``UnusableURLError`` unless httpx can fetch ``url`` as written."""
    if len(url) > MAX_URL_LENGTH:
        raise UnusableURLError(f"{len(url)} characters long; at most {MAX_URL_LENGTH} are accepted")
    for position, char in enumerate(url):
        # Python's URL parser silently drops tabs and newlines; httpx refuses them.
        if char.isspace() or not char.isprintable():
            raise UnusableURLError(
                f"contains {char!r} at position {position}: whitespace and control characters "
                "are not allowed in a URL"
            )
    try:
        parsed = httpx.URL(url)
        parsed.host  # noqa: B018 - decodes an IDNA host, raising when it is not valid IDNA
    except (httpx.InvalidURL, UnicodeError) as exc:  # idna's errors are UnicodeErrors
        raise UnusableURLError(f"not a usable URL: {exc}") from exc
    if parsed.port is not None and not 0 < parsed.port <= _MAX_PORT:
        raise UnusableURLError(f"port {parsed.port} is not a TCP port (1-{_MAX_PORT})")
    host = parsed.raw_host.decode("ascii")
    if host.startswith("["):
        return
    labels = host.rstrip(".").split(".")
    if len(host) > _MAX_HOST_LENGTH or any(len(label) > _MAX_LABEL_LENGTH for label in labels):
        raise UnusableURLError(
            f"the host name is not a DNS name (at most {_MAX_HOST_LENGTH} characters, "
            f"{_MAX_LABEL_LENGTH} per label)"
        )
