"""One spelling per location: URLs normalized before a policy compares them, and plain paths.

A prefix check on a raw path is fooled by ``/d/../a/`` or ``/d/%2e%2e/a/``: the server (or httpx
on the way) resolves both to ``/a/``, outside the prefix. ``normalize_url`` returns the URL a
fetch will actually reach, by RFC 3986 section 6.2.2: scheme and host lowercased, the default
port dropped, percent-encoded unreserved characters decoded (``%2E`` is ``.``), dot segments
removed. Spellings whose meaning depends on the server are refused outright
(``AmbiguousURLError``): an encoded slash or backslash (``%2f``, ``%5c``), a backslash, an
encoded percent sign (``%252e`` is ``%2e`` to a server that decodes twice), and a dot segment
with parameters (``/..;/``, which Java servers read as ``/../``).
"""

from __future__ import annotations

import re
import string
from urllib.parse import SplitResult, urlsplit

__all__ = ["AmbiguousURLError", "is_plain_path", "normalize_url"]

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
