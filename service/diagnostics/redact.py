"""Credential redaction: every URL that leaves the process passes through here."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

__all__ = ["redact_text", "redact_url"]

_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^/@\s]+)@")


def redact_url(url: str) -> str:
    """Return ``url`` with any password (or bare token) replaced by ``****``.

    ``https://user:secret@host/simple`` becomes ``https://user:****@host/simple``; a token-only
    userinfo (``https://secret@host``) becomes ``https://****@host``.
    """
    if "@" not in url:  # no userinfo, then (and most URLs have none: skip the split)
        return url
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user, sep, _ = userinfo.partition(":")
    redacted = f"{user}:****" if sep else "****"
    return urlunsplit(parts._replace(netloc=f"{redacted}@{hostport}"))


def redact_text(text: str) -> str:
    """Redact userinfo in every URL embedded in free text (log lines, exception messages)."""

    def _sub(match: re.Match[str]) -> str:
        user, sep, _ = match["userinfo"].partition(":")
        return f"{match['scheme']}{user + ':****' if sep else '****'}@"

    return _USERINFO.sub(_sub, text)
