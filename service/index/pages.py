"""Simple-API project pages: media types, content negotiation and parsing (PEP 503/691).

Everything here is pure: bytes and headers in, ``DistFile`` values out. The file-level PEPs are
applied while parsing: yanking (592), metadata files (658/714), sizes and upload times (700).
Files whose names do not parse as a wheel or an sdist of the page's project are left out, as
pip and uv do, so a candidate's name and version always follow from its filename.
"""

from __future__ import annotations

import codecs
import hashlib
from collections.abc import Mapping
from html.parser import HTMLParser
from typing import Literal
from urllib.parse import unquote, urldefrag, urljoin, urlsplit, urlunsplit

import msgspec
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    NormalizedName,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)

from service.index.models import DistFile

__all__ = [
    "ACCEPT_PROJECT_PAGE",
    "MEDIA_HTML",
    "MEDIA_JSON",
    "MEDIA_TEXT_HTML",
    "DistName",
    "PageFormat",
    "PageParseError",
    "negotiate",
    "parse_dist_filename",
    "parse_page",
    "strip_userinfo",
]

MEDIA_JSON = "application/vnd.pypi.simple.v1+json"
MEDIA_HTML = "application/vnd.pypi.simple.v1+html"
MEDIA_TEXT_HTML = "text/html"
# PEP 691's recommended preference: JSON, then the versioned HTML, then legacy HTML.
ACCEPT_PROJECT_PAGE = f"{MEDIA_JSON}, {MEDIA_HTML};q=0.2, {MEDIA_TEXT_HTML};q=0.01"

PageFormat = Literal["json", "html"]
_FORMATS: Mapping[str, PageFormat] = {
    MEDIA_JSON: "json",
    MEDIA_HTML: "html",
    MEDIA_TEXT_HTML: "html",
}
_SUPPORTED_API_MAJOR = 1
# PEP 503 fragments name a hash; only ones every Python can check are kept.
_HASH_NAMES = frozenset(hashlib.algorithms_guaranteed)
# Python text codecs that are no charset: they decode escape sequences or domain labels (and
# idna and punycode refuse errors="replace").
_NOT_CHARSETS = frozenset({"unicode-escape", "raw-unicode-escape", "idna", "punycode"})


class PageParseError(ValueError):
    """A project page that cannot be understood; the client maps it to InvalidResponseError."""


class DistName(msgspec.Struct, frozen=True):
    """What a distribution filename says: project, normalized version, kind and wheel tags."""

    project: NormalizedName
    version: str
    kind: Literal["wheel", "sdist"]
    tags: tuple[str, ...]


def negotiate(content_type: str | None) -> PageFormat:
    """The page format a response's ``Content-Type`` announces; parameters are ignored.

    Raises ``PageParseError`` for anything but the two PEP 691 v1 types and ``text/html``.
    """
    media = (content_type or "").split(";", 1)[0].strip().lower()
    page_format = _FORMATS.get(media)
    if page_format is None:
        raise PageParseError(f"unsupported content type {media or '(none)'!r} for a project page")
    return page_format


def parse_dist_filename(filename: str) -> DistName | None:
    """Parse a wheel or sdist filename; ``None`` for legacy formats and names that don't parse.

    Wheel tags are expanded from compressed tag sets and sorted, as ``"py3-none-any"`` strings.
    """
    try:
        if filename.endswith(".whl"):
            name, version, _build, tags = parse_wheel_filename(filename)
            return DistName(name, str(version), "wheel", tuple(sorted(str(t) for t in tags)))
        name, version = parse_sdist_filename(filename)
    # A plain ValueError too: int() refuses the 4300+ digit numbers a version or build may hold.
    except (InvalidWheelFilename, InvalidSdistFilename, ValueError):
        return None
    return DistName(name, str(version), "sdist", ())


def strip_userinfo(url: str) -> str:
    """``url`` without ``user:password@``: credentials travel as headers, never in URLs."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def parse_page(
    content: bytes, content_type: str | None, *, url: str, project: str
) -> tuple[DistFile, ...]:
    """The files on ``project``'s page, parsed as the ``Content-Type`` says.

    ``url`` is the page's final URL (after redirects); relative file URLs resolve against it
    (or against an HTML ``<base href>``). Raises ``PageParseError`` on a malformed page.
    """
    page_format = negotiate(content_type)
    name = canonicalize_name(project)
    if page_format == "json":
        return _parse_json(content, url, name)
    return _parse_html(content.decode(_charset(content_type), errors="replace"), url, name)


def _charset(content_type: str | None) -> str:
    """The declared charset if a page can be written in it, else UTF-8."""
    for param in (content_type or "").split(";")[1:]:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            charset = value.strip().strip('"')
            try:
                "".encode(charset)  # LookupError: unknown, or a bytes codec (base64, zlib)
                name = codecs.lookup(charset).name
            except (LookupError, UnicodeError):  # "undefined" refuses even ""
                break
            return "utf-8" if name in _NOT_CHARSETS else charset
    return "utf-8"


def _check_api_version(version: str | None) -> None:
    if version is None:
        return
    major = version.split(".", 1)[0]
    # ASCII digits only ("²".isdigit() holds), compared without int() on thousands of digits.
    if not (major.isascii() and major.isdigit()):
        raise PageParseError(f"unparsable repository API version {version!r}")
    digits = major.lstrip("0") or "0"
    if len(digits) > len(str(_SUPPORTED_API_MAJOR)) or int(digits) > _SUPPORTED_API_MAJOR:
        raise PageParseError(f"unsupported repository API version {version!r}")


def _make_file(
    href: str,
    base_url: str,
    project: NormalizedName,
    *,
    hashes: dict[str, str],
    requires_python: str | None,
    yanked: bool,
    yanked_reason: str | None,
    core_metadata: dict[str, str] | None,
    size: int | None = None,
    upload_time: str | None = None,
    filename: str | None = None,
) -> DistFile | None:
    try:
        absolute, fragment = urldefrag(urljoin(base_url, href))
        absolute = strip_userinfo(absolute)
        path = urlsplit(absolute).path
    except ValueError:  # urllib refuses some URLs ("http://[x"): no file can be fetched there
        return None
    if filename is None:
        filename = unquote(path.rsplit("/", 1)[-1])
    parsed = parse_dist_filename(filename)
    if parsed is None or parsed.project != project:
        return None
    if not hashes and fragment:
        hash_name, sep, value = fragment.partition("=")
        if sep and hash_name in _HASH_NAMES and value:
            hashes = {hash_name: value}
    return DistFile(
        filename=filename,
        url=absolute,
        kind=parsed.kind,
        version=parsed.version,
        hashes=hashes,
        requires_python=requires_python or None,
        yanked=yanked,
        yanked_reason=yanked_reason if yanked else None,
        size=size,
        upload_time=upload_time,
        core_metadata=core_metadata,
        tags=parsed.tags,
    )


# -- PEP 691 JSON -------------------------------------------------------------------------------


class _JsonMeta(msgspec.Struct, frozen=True):
    api_version: str | None = msgspec.field(default=None, name="api-version")


class _JsonFile(msgspec.Struct, frozen=True):
    filename: str
    url: str
    hashes: dict[str, str] = {}
    requires_python: str | None = msgspec.field(default=None, name="requires-python")
    yanked: bool | str = False
    size: int | None = None
    upload_time: str | None = msgspec.field(default=None, name="upload-time")
    core_metadata: bool | dict[str, str] | None = msgspec.field(default=None, name="core-metadata")
    dist_info_metadata: bool | dict[str, str] | None = msgspec.field(
        default=None, name="dist-info-metadata"
    )


class _JsonPage(msgspec.Struct, frozen=True):
    meta: _JsonMeta = _JsonMeta()
    files: tuple[_JsonFile, ...] = ()


_json_page_decoder = msgspec.json.Decoder(_JsonPage)


def _json_core_metadata(value: bool | dict[str, str] | None) -> dict[str, str] | None:
    if value is None or value is False:
        return None
    return {} if value is True else dict(value)


def _parse_json(content: bytes, url: str, project: NormalizedName) -> tuple[DistFile, ...]:
    try:
        page = _json_page_decoder.decode(content)
    # msgspec raises RecursionError on nesting deeper than the interpreter's limit.
    except (msgspec.DecodeError, RecursionError) as exc:
        raise PageParseError(f"malformed JSON project page: {exc}") from exc
    _check_api_version(page.meta.api_version)
    files: list[DistFile] = []
    for entry in page.files:
        # PEP 714: the new key wins; the legacy one is read for older servers.
        advertised = (
            entry.core_metadata if entry.core_metadata is not None else entry.dist_info_metadata
        )
        yanked_reason = entry.yanked if isinstance(entry.yanked, str) else None
        dist_file = _make_file(
            entry.url,
            url,
            project,
            filename=entry.filename,
            hashes=dict(entry.hashes),
            requires_python=entry.requires_python,
            yanked=entry.yanked is True or isinstance(entry.yanked, str),
            yanked_reason=yanked_reason or None,
            core_metadata=_json_core_metadata(advertised),
            size=entry.size,
            upload_time=entry.upload_time,
        )
        if dist_file is not None:
            files.append(dist_file)
    return tuple(files)


# -- PEP 503 HTML -------------------------------------------------------------------------------


class _AnchorCollector(HTMLParser):
    """Collects ``<a>`` attributes, ``<base href>`` and the repository-version meta tag."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.anchors: list[dict[str, str | None]] = []
        self.base_href: str | None = None
        self.api_version: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "a":
            self.anchors.append(attributes)
        elif tag == "base" and self.base_href is None:
            self.base_href = attributes.get("href")
        elif tag == "meta" and attributes.get("name") == "pypi:repository-version":
            self.api_version = attributes.get("content")


def _html_core_metadata(value: str | None) -> dict[str, str] | None:
    if value is None:
        return None
    if value.strip().lower() == "true":
        return {}
    hash_name, sep, digest = value.strip().partition("=")
    if sep and hash_name in _HASH_NAMES and digest:
        return {hash_name: digest}
    return None


def _parse_html(text: str, url: str, project: NormalizedName) -> tuple[DistFile, ...]:
    collector = _AnchorCollector()
    try:
        collector.feed(text)
        collector.close()
    # CPython's html.parser reports some malformed declarations and marked sections ("<![if0")
    # by raising AssertionError, its stand-in for the HTMLParseError it no longer has.
    except AssertionError as exc:
        raise PageParseError(f"malformed HTML project page: {exc}") from exc
    _check_api_version(collector.api_version)
    try:
        base_url = urljoin(url, collector.base_href) if collector.base_href else url
    except ValueError as exc:
        raise PageParseError(f"unusable <base href={collector.base_href!r}>: {exc}") from exc
    files: list[DistFile] = []
    for anchor in collector.anchors:
        href = anchor.get("href")
        if not href:
            continue
        # HTMLParser has already unescaped attribute values (``&gt;=3.8`` is ``>=3.8``).
        advertised = anchor.get("data-core-metadata")
        if advertised is None:
            advertised = anchor.get("data-dist-info-metadata")
        yanked = "data-yanked" in anchor
        dist_file = _make_file(
            href,
            base_url,
            project,
            hashes={},
            requires_python=anchor.get("data-requires-python"),
            yanked=yanked,
            yanked_reason=anchor.get("data-yanked") or None,
            core_metadata=_html_core_metadata(advertised),
        )
        if dist_file is not None:
            files.append(dist_file)
    return tuple(files)
