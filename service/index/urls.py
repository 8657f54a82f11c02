"""One spelling per location: URLs normalized before a policy compares them, and plain paths.

A prefix check on a raw path is fooled by ``/d/../a/`` or ``/d/%2e%2e/a/``: the server (or httpx
on the way) resolves both to ``/a/``, outside the prefix. ``normalize_url`` returns the URL a
fetch will actually reach, by RFC 3986 section 6.2.2: scheme and host lowercased, the default
port dropped, percent-encoded unreserved characters decoded (``%2E`` is ``.``), dot segments
removed. Spellings whose meaning depends on the server are refused outright
(``AmbiguousURLError``): an encoded slash or backslash (``%2f``, ``%5c``), a backslash, an
encoded percent sign (``%252e`` is ``%2e`` to a server that decodes twice), and a dot segment
with parameters (``/..;/``, which Java servers read as ``/../``).

``check_url`` says up front what the URL library would refuse: a request's index URL is checked
when the request is validated (``service.resolution.make_indexes``), so a URL httpx would refuse
(too long, a tab or CR/LF in it, a host IDNA cannot encode) is a 4xx naming the field, never an
``internal`` failure inside a job. Its messages never repeat the URL: the caller knows which one
it sent.
"""

from __future__ import annotations

import re
import string
from urllib.parse import SplitResult, urlsplit

import httpx

__all__ = [
    "MAX_URL_LENGTH",
    "AmbiguousURLError",
    "UnusableURLError",
    "check_url",
    "is_plain_path",
    "normalize_url",
]

_DEFAULT_PORTS = {"http": 80, "https": 443}
_UNRESERVED = frozenset(string.ascii_letters + string.digits + "-._~")
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
# An encoded slash, backslash or percent sign, or a backslash: no one spelling of these exists.
_AMBIGUOUS = re.compile(r"%(2f|5c|25)|\\", re.IGNORECASE)
# A dot segment with parameters: ``/..;x/`` is ``/../`` to servlet containers.
_DOT_PARAMETERS = re.compile(r"(^|/)\.\.?;")
# What ``is_plain_path`` refuses on top: an encoded dot, which normalization would have decoded.
_DISGUISED = re.compile(r"%(2e|2f|5c|25)|\\", re.IGNORECASE)


class AmbiguousURLError(ValueError):
    """A URL that cannot be normalized safely; the message says what it holds."""


def _decode_unreserved(match: re.Match[str]) -> str:
    character = chr(int(match.group(1), 16))
    return character if character in _UNRESERVED else match.group(0).upper()


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 section 5.2.4 for an absolute path: ``/d/./a/../b/`` is ``/d/b/``."""
    segments = path.split("/")
    kept: list[str] = []
    for segment in segments:
        if segment == ".":
            continue
        if segment == "..":
            if len(kept) > 1:  # kept[0] is the empty segment before the leading slash
                kept.pop()
            continue
        kept.append(segment)
    if segments[-1] in (".", ".."):
        kept.append("")
    return "/".join(kept)


def _netloc(parts: SplitResult) -> str:
    try:
        port = parts.port
    except ValueError as exc:
        raise AmbiguousURLError(f"invalid port: {exc}") from exc
    host = (parts.hostname or "").lower()
    host = f"[{host}]" if ":" in host else host
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@{host}" if userinfo else host
    if port is not None and port != _DEFAULT_PORTS.get(parts.scheme):
        netloc += f":{port}"
    return netloc


def normalize_url(url: str) -> str:
    """``url`` as a fetch reaches it; ``AmbiguousURLError`` for spellings with no one meaning."""
    if found := _AMBIGUOUS.search(url):
        what = "a backslash" if found.group(0) == "\\" else f"an encoded {found.group(0)!r}"
        raise AmbiguousURLError(f"the URL holds {what}, which servers read differently")
    parts = urlsplit(url)
    path = _ESCAPE.sub(_decode_unreserved, parts.path)
    if _DOT_PARAMETERS.search(path):
        raise AmbiguousURLError("the URL holds a dot segment with parameters ('..;')")
    path = _remove_dot_segments(path)
    return parts._replace(netloc=_netloc(parts), path=path).geturl()


def is_plain_path(path: str) -> bool:
    """True when ``path`` has no dot segment (bare or with parameters) and no encoded dot,
    slash, backslash or percent sign."""
    if _DISGUISED.search(path) or _DOT_PARAMETERS.search(path):
        return False
    return not any(part in (".", "..") for part in path.split("/"))


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
