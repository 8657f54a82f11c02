"""Simple-API pages: content negotiation (PEP 691) and rendering (PEP 503 HTML, PEP 691 JSON).

Everything here is pure: the server hands in a built index and the absolute URL prefix of its
files, and gets back bytes and a media type.
"""

from __future__ import annotations

import hashlib
import html
import json
from collections.abc import Iterable, Sequence
from urllib.parse import quote

from tests.indexserver.artifacts import BuiltIndex, BuiltProject, DistFile

__all__ = [
    "API_VERSION",
    "MEDIA_HTML",
    "MEDIA_JSON",
    "MEDIA_TEXT_HTML",
    "choose_media_type",
    "render_file_listing",
    "render_project",
    "render_project_list",
]

API_VERSION = "1.1"
MEDIA_JSON = "application/vnd.pypi.simple.v1+json"
MEDIA_HTML = "application/vnd.pypi.simple.v1+html"
MEDIA_TEXT_HTML = "text/html"
_ALIASES = {
    "application/vnd.pypi.simple.latest+json": MEDIA_JSON,
    "application/vnd.pypi.simple.latest+html": MEDIA_HTML,
}


def _parse_accept(accept: str) -> list[tuple[str, float]]:
    ranges: list[tuple[str, float]] = []
    for item in accept.split(","):
        media, *params = (part.strip() for part in item.split(";"))
        quality = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if media:
            ranges.append((_ALIASES.get(media.lower(), media.lower()), quality))
    return ranges


def _quality(media: str, ranges: Sequence[tuple[str, float]], *, wildcards: bool) -> float:
    """The q the client gives ``media``: its most specific matching range decides (RFC 9110)."""
    kind = media.split("/", maxsplit=1)[0]
    for candidate in (media, f"{kind}/*", "*/*") if wildcards else (media,):
        matches = [q for m, q in ranges if m == candidate]
        if matches:
            return max(matches)
    return 0.0


def choose_media_type(accept: str | None, formats: Sequence[str]) -> str | None:
    """The media type to answer ``accept`` with, or ``None`` when nothing acceptable is served.

    JSON is chosen only when the client names it (``*/*`` means a legacy client, which gets
    HTML, as on PyPI). Among what the index serves, the highest ``q`` wins and ties go to the
    server's order: JSON, ``text/html``, the versioned HTML type. An HTML-serving index answers
    ``text/html`` when nothing matches; a JSON-only index answers ``None`` (406).
    """
    offered = ([MEDIA_JSON] if "json" in formats else []) + (
        [MEDIA_TEXT_HTML, MEDIA_HTML] if "html" in formats else []
    )
    ranges = _parse_accept(accept or "*/*")
    chosen: str | None = None
    best = 0.0
    for media in offered:
        quality = _quality(media, ranges, wildcards=media != MEDIA_JSON)
        if quality > best:
            best, chosen = quality, media
    if chosen is None and "html" in formats:
        return MEDIA_TEXT_HTML
    return chosen


def _html_document(title: str, body: Iterable[str]) -> bytes:
    head = (
        "<!DOCTYPE html>\n<html>\n<head>\n"
        f'<meta name="pypi:repository-version" content="{API_VERSION}">\n'
        f"<title>{html.escape(title)}</title>\n</head>\n<body>\n"
    )
    return (head + "".join(body) + "</body>\n</html>\n").encode()


def _file_url(files_url: str, dist_file: DistFile) -> str:
    return f"{files_url}/{quote(dist_file.filename)}"


def _render_anchor(files_url: str, dist_file: DistFile) -> str:
    attributes = [
        f'href="{html.escape(_file_url(files_url, dist_file))}#sha256={dist_file.sha256}"'
    ]
    if dist_file.requires_python is not None:
        attributes.append(f'data-requires-python="{html.escape(dist_file.requires_python)}"')
    if dist_file.yanked is not False:
        reason = dist_file.yanked if isinstance(dist_file.yanked, str) else ""
        attributes.append(f'data-yanked="{html.escape(reason)}"')
    if dist_file.metadata_sha256 is not None:
        value = f"sha256={dist_file.metadata_sha256}"
        attributes.append(f'data-core-metadata="{value}"')
        attributes.append(f'data-dist-info-metadata="{value}"')
    return f"<a {' '.join(attributes)}>{html.escape(dist_file.filename)}</a><br/>\n"


def _json_file(files_url: str, dist_file: DistFile) -> dict[str, object]:
    metadata: dict[str, str] | bool = (
        False if dist_file.metadata_sha256 is None else {"sha256": dist_file.metadata_sha256}
    )
    entry: dict[str, object] = {
        "filename": dist_file.filename,
        "url": _file_url(files_url, dist_file),
        "hashes": {"sha256": dist_file.sha256},
        "requires-python": dist_file.requires_python,
        # PEP 691: a non-empty string is a reason; an empty reason is plain ``true``.
        "yanked": dist_file.yanked or (dist_file.yanked is not False),
        "size": len(dist_file.content),
        "core-metadata": metadata,
        "dist-info-metadata": metadata,
    }
    if dist_file.upload_time is not None:
        entry["upload-time"] = dist_file.upload_time
    return entry


def _json_document(document: dict[str, object]) -> bytes:
    return json.dumps({"meta": {"api-version": API_VERSION}, **document}, indent=1).encode()


def render_project_list(index: BuiltIndex, media_type: str, simple_url: str) -> bytes:
    """The root page of an index: every project, linked at its normalized name."""
    projects = sorted(index.projects.values(), key=lambda p: p.normalized)
    if media_type == MEDIA_JSON:
        return _json_document({"projects": [{"name": p.name} for p in projects]})
    return _html_document(
        "Simple index",
        (
            f'<a href="{simple_url}/{p.normalized}/">{html.escape(p.name)}</a><br/>\n'
            for p in projects
        ),
    )


def render_file_listing(index: BuiltIndex) -> bytes:
    """Every distribution file of the index as one flat page: relative links with a
    ``#sha256=`` fragment and nothing else (no metadata sidecars, no Requires-Python), as the
    find-links pages made for pip are (PyTorch's, or a web server's listing of a wheelhouse)."""
    names = sorted(name for name in index.files if not name.endswith(".metadata"))
    return _html_document(
        "Index of files",
        (
            f'<a href="{quote(name)}#sha256={hashlib.sha256(index.files[name]).hexdigest()}">'
            f"{html.escape(name)}</a><br/>\n"
            for name in names
        ),
    )


def render_project(project: BuiltProject, media_type: str, files_url: str) -> bytes:
    """One project's page, linking every file of every release under ``files_url``."""
    if media_type == MEDIA_JSON:
        return _json_document(
            {
                "name": project.normalized,
                "versions": list(project.versions),
                "files": [_json_file(files_url, f) for f in project.files],
            }
        )
    return _html_document(
        f"Links for {project.name}",
        [
            f"<h1>Links for {html.escape(project.name)}</h1>\n",
            *(_render_anchor(files_url, f) for f in project.files),
        ],
    )
