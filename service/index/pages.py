"""Simple-API project pages: media types, content negotiation and parsing (PEP 503/691).

Everything here is pure: bytes and headers in, ``DistFile`` values out. The file-level PEPs are
applied while parsing: yanking (592), metadata files (658/714), sizes and upload times (700).
Files whose names do not parse as a wheel or an sdist of the page's project are left out, as
pip and uv do, so a candidate's name and version always follow from its filename.

Parsing is lazy, because real pages are big and a resolver reads little of them (pydantic-core's
JSON page lists 15,000 files; a resolution uses one). ``parse_page`` makes a ``PageListing``: one
pass over the page that decodes the file list and splits each filename just far enough to group
the files by version (no URL resolution, no wheel-tag expansion), at a cost of a few
microseconds a file. ``PageListing.files_of(version)`` builds the full ``DistFile`` records of
one version when the finder reaches it, and remembers them. The listing keeps the page body
compressed (``PageBody``: what the cache stores too; gzip as the index sent it, else zstd) and
the decoded file list only while it is among the most recently parsed pages (``HOT_PAGE_BYTES``
of them); a version reached later decodes the page again.
"""

from __future__ import annotations

import codecs
import functools
import hashlib
import re
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from html import unescape
from typing import Literal
from urllib.parse import unquote, urldefrag, urljoin, urlsplit, urlunsplit

import msgspec
import zstandard
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    NormalizedName,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from service.index.inflate import GZIP, INFLATE_ERRORS, inflater
from service.index.models import DistFile

__all__ = [
    "ACCEPT_PROJECT_PAGE",
    "HOT_PAGE_BYTES",
    "MEDIA_HTML",
    "MEDIA_JSON",
    "MEDIA_TEXT_HTML",
    "DistName",
    "PageBody",
    "PageFormat",
    "PageListing",
    "PageParseError",
    "PageTooLargeError",
    "negotiate",
    "parse_dist_filename",
    "parse_page",
    "parse_version",
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
# Decoded file lists of the most recently parsed pages, by the bytes of their bodies: enough
# for the pages one cold resolution of a few hundred packages has in flight at once.
HOT_PAGE_BYTES = 64 * 1024 * 1024
# zstd level 1 compresses a 4 MB JSON page about 8x in 7 ms and restores it in 4 ms (zlib's
# fastest level takes 43 and 15 ms for less).
_COMPRESSION_LEVEL = 1


class PageParseError(ValueError):
    """A project page that cannot be understood; the client maps it to InvalidResponseError."""


class PageTooLargeError(PageParseError):
    """A page listing more files than the configured cap (``fetch.max_page_files``)."""

    def __init__(self, files: int, limit: int) -> None:
        super().__init__(f"the page lists more than {limit} files (fetch.max_page_files)")
        self.files = files
        self.limit = limit


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


@functools.lru_cache(maxsize=65536)
def parse_version(text: str) -> Version | None:
    """``Version(text)``, once per distinct string in the process; ``None`` when invalid.

    Versions repeat across the files of a page and across pages and jobs, and a ``Version`` is
    immutable, so every caller can share one.
    """
    try:
        return Version(text)
    except (InvalidVersion, ValueError):  # ValueError: int() refuses 4300+ digit numbers
        return None


@functools.lru_cache(maxsize=4096)
def _canonical(name: str) -> str:
    return canonicalize_name(name)


def _split_wheel(filename: str) -> tuple[str, str] | None:
    """A wheel name's distribution and version parts, as written (no tags parsed); ``None``
    without the four or five dashes of a wheel name."""
    if filename.count("-") not in (4, 5):
        return None
    name, _, rest = filename.partition("-")
    return name, rest.partition("-")[0]


def _split_filename(filename: str, project: str) -> str | None:
    """The version text a file of ``project`` declares in its name, without parsing wheel tags.

    ``None`` when the name is no wheel or sdist of ``project``. Whether the text is a valid
    version is left to the caller (``parse_version``, once per distinct text); a rare wheel
    whose tags do not parse is dropped when its version's files are made.
    """
    if filename.endswith(".whl"):
        split = _split_wheel(filename)
        if split is None:
            return None
        name, version = split
    elif filename.endswith(".tar.gz"):
        name, _, version = filename[: -len(".tar.gz")].rpartition("-")
    elif filename.endswith(".zip"):
        name, _, version = filename[: -len(".zip")].rpartition("-")
    else:
        return None
    if not name or _canonical(name) != project:
        return None
    return version


def strip_userinfo(url: str) -> str:
    """``url`` without ``user:password@``: credentials travel as headers, never in URLs."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


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


_UNPLAIN = frozenset("\t\n\r #@[\\")


def _plain_absolute(href: str) -> bool:
    """Whether ``href`` is an absolute http(s) URL that joining, defragmenting and stripping
    user info leave as it is: ASCII, no fragment, user info, brackets, backslashes, spaces or
    dot segments (PyPI's JSON pages link every file so)."""
    return (
        href.startswith(("https://", "http://"))
        and href.isascii()
        and "/." not in href
        and _UNPLAIN.isdisjoint(href)
    )


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
    if filename is not None and _plain_absolute(href):
        absolute, fragment = href, ""  # what the joins below would give, at a tenth the cost
    else:
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


# -- the page body --------------------------------------------------------------------------

_compressor = threading.local()


class PageBody(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A page as its index sent it (transfer encoding removed), compressed.

    What the cache stores, and all a ``PageListing`` needs to parse the page again: the body,
    its ``Content-Type`` and its final URL (relative links resolve against it). ``encoding``
    says how ``data`` is compressed: ``"gzip"`` when the index sent it so (kept as it came, at
    no cost), else ``"zstd"``. ``size`` is the body's length, the most it may inflate to.
    """

    data: bytes
    content_type: str | None
    url: str
    size: int
    encoding: Literal["zstd", "gzip"] = "zstd"

    @classmethod
    def make(
        cls, content: bytes, content_type: str | None, url: str, *, gzipped: bytes | None = None
    ) -> PageBody:
        """Compress ``content`` (zstd level 1: about 600 MB/s), or keep ``gzipped``, the same
        body as the index gzipped it, which saves that work."""
        if gzipped is not None:
            return cls(
                data=gzipped, content_type=content_type, url=url, size=len(content), encoding="gzip"
            )
        compressor = getattr(_compressor, "value", None)
        if compressor is None:  # not thread-safe: one per thread
            compressor = _compressor.value = zstandard.ZstdCompressor(level=_COMPRESSION_LEVEL)
        return cls(
            data=compressor.compress(content), content_type=content_type, url=url, size=len(content)
        )

    def content(self) -> bytes:
        """The page as the index sent it."""
        if self.encoding == "gzip":
            return self._gunzip()
        try:
            return zstandard.ZstdDecompressor().decompress(self.data, max_output_size=self.size)
        except zstandard.ZstdError as exc:
            raise PageParseError(f"stored page does not decompress: {exc}") from exc

    def _gunzip(self) -> bytes:
        gunzip = inflater(GZIP)
        try:
            content = gunzip.decompress(self.data, self.size)
        except INFLATE_ERRORS as exc:
            raise PageParseError(f"stored page does not decompress: {exc}") from exc
        if len(content) != self.size or not gunzip.eof or gunzip.unconsumed_tail:
            raise PageParseError(f"stored page does not inflate to its {self.size} bytes")
        return content


# -- PEP 691 JSON -------------------------------------------------------------------------------


class _JsonMeta(msgspec.Struct, frozen=True):
    api_version: str | None = msgspec.field(default=None, name="api-version")


# The shortest a file entry can be written: {"filename":"","url":""} and a comma.
_MIN_JSON_FILE_BYTES = 25
_RAW_NULL = msgspec.Raw(b"null")
_RAW_EMPTY_OBJECT = msgspec.Raw(b"{}")


class _JsonFile(msgspec.Struct, frozen=True, gc=False):
    """One entry of a page's ``files``. The fields only a made file needs stay raw JSON (views
    into the page) until it is made: a page's decode was 40% hashes, sizes, upload times and
    metadata flags of files never made. A raw field of the wrong type makes its file unusable
    (``_make_json_file``), as an unparsable URL does."""

    filename: str
    url: str
    requires_python: str | None = msgspec.field(default=None, name="requires-python")
    yanked: bool | str = False
    hashes: msgspec.Raw = _RAW_EMPTY_OBJECT
    size: msgspec.Raw = _RAW_NULL
    upload_time: msgspec.Raw = msgspec.field(default=_RAW_NULL, name="upload-time")
    core_metadata: msgspec.Raw = msgspec.field(default=_RAW_NULL, name="core-metadata")
    dist_info_metadata: msgspec.Raw = msgspec.field(default=_RAW_NULL, name="dist-info-metadata")


class _JsonPage(msgspec.Struct, frozen=True):
    meta: _JsonMeta = _JsonMeta()
    files: list[_JsonFile] = []


_json_page_decoder = msgspec.json.Decoder(_JsonPage)
_hashes_decoder = msgspec.json.Decoder(dict[str, str])
_size_decoder = msgspec.json.Decoder(int | None)
_upload_time_decoder = msgspec.json.Decoder(str | None)
_core_metadata_decoder = msgspec.json.Decoder(bool | dict[str, str] | None)


def _json_core_metadata(value: bool | dict[str, str] | None) -> dict[str, str] | None:
    if value is None or value is False:
        return None
    return {} if value is True else dict(value)


def _scan_json(content: bytes, max_files: int | None) -> list[_JsonFile]:
    # Every file has a "filename" key: a page naming more than the cap is refused before its
    # entries are decoded (the exact count is checked after, for keys spelled with escapes).
    # A page too short to hold that many entries is not searched (the search was 3% of a cold
    # job's CPU).
    if (
        max_files is not None
        and len(content) > max_files * _MIN_JSON_FILE_BYTES
        and (mentions := content.count(b'"filename"')) > max_files
    ):
        raise PageTooLargeError(mentions, max_files)
    try:
        # One typed decode of the whole list is the cheapest (75 ms for a 4 MB page here,
        # where decoding raw entries and then each entry took twice that).
        page = _json_page_decoder.decode(content)
    # msgspec raises RecursionError on nesting deeper than the interpreter's limit.
    except (msgspec.DecodeError, RecursionError) as exc:
        raise PageParseError(f"malformed JSON project page: {exc}") from exc
    _check_api_version(page.meta.api_version)
    if max_files is not None and len(page.files) > max_files:
        raise PageTooLargeError(len(page.files), max_files)
    return page.files


def _make_json_file(entry: _JsonFile, base_url: str, project: NormalizedName) -> DistFile | None:
    try:
        hashes = _hashes_decoder.decode(entry.hashes)
        size = _size_decoder.decode(entry.size)
        upload_time = _upload_time_decoder.decode(entry.upload_time)
        # PEP 714: the new key wins; the legacy one is read for older servers.
        advertised = _core_metadata_decoder.decode(entry.core_metadata)
        if advertised is None:
            advertised = _core_metadata_decoder.decode(entry.dist_info_metadata)
    except msgspec.ValidationError:
        return None
    yanked_reason = entry.yanked if isinstance(entry.yanked, str) else None
    return _make_file(
        entry.url,
        base_url,
        project,
        filename=entry.filename,
        hashes=hashes,
        requires_python=entry.requires_python,
        yanked=entry.yanked is True or isinstance(entry.yanked, str),
        yanked_reason=yanked_reason or None,
        core_metadata=_json_core_metadata(advertised),
        size=size,
        upload_time=upload_time,
    )


# -- PEP 503 HTML -------------------------------------------------------------------------------

# One pass over the page finds the only markup a simple page means something by: <a>, <base>
# and <meta> start tags (attribute values may hold ">" inside quotes), skipping comments, raw
# text elements and declarations the way an HTML tokenizer does, so links inside them are not
# links. Everything else (text, end tags, other elements) is passed over by the regex engine.
# Possessive quantifiers: an unclosed tag or quote fails at once instead of backtracking.
_MARKUP = re.compile(
    r"""
    <(?:
      !--.*?(?:-->|\Z)
    | (?:script|style|textarea|title)(?=[\s/>]).*?(?:</(?:script|style|textarea|title)\s*>|\Z)
    | [!?][^>]*+>?
    | (?P<tag>a|base|meta)(?=[\s/>])(?P<attrs>(?:[^>"']++|"[^"]*+"|'[^']*+')*+)>
    )""",
    re.VERBOSE | re.DOTALL | re.IGNORECASE,
)
# One attribute: a name, then optionally "=" and a double-, single- or un-quoted value.
_ATTRIBUTE = re.compile(r"""([^\s/>"'=][^\s/>=]*)(\s*=\s*("[^"]*"|'[^']*'|[^\s>]*))?""")
# An href's value; whether it starts an attribute is checked after (a lookbehind costs 4x).
_HREF = re.compile(r"""href\s*=\s*("[^"]*+"|'[^']*+'|[^\s>]*+)""", re.IGNORECASE)


def _attribute_value(raw: str) -> str:
    if raw[:1] in ('"', "'") and raw[-1:] == raw[:1] and len(raw) > 1:
        raw = raw[1:-1]
    return unescape(raw) if "&" in raw else raw


def _html_attributes(text: str) -> dict[str, str | None]:
    """Attributes as ``html.parser`` gives them: lower-case names, unescaped values, last wins."""
    return {
        name.lower(): _attribute_value(value) if equals else None
        for name, equals, value in _ATTRIBUTE.findall(text)
    }


def _href_filename(attrs: str) -> str | None:
    """The filename an anchor's ``href`` names: its last path segment, percent-decoded."""
    position = 0
    while (match := _HREF.search(attrs, position)) is not None:
        start = match.start()
        if start == 0 or attrs[start - 1] in " \t\n\r\f/\"'":
            break
        position = match.end()  # "data-href=...": another attribute
    else:
        return None
    value = _attribute_value(match[1])
    segment = value.partition("#")[0].partition("?")[0].rsplit("/", 1)[-1]
    return unquote(segment) if "%" in segment else segment


class _HtmlScan(msgspec.Struct, frozen=True, gc=False):
    """The anchors of an HTML page (their raw attribute text) and where links resolve from."""

    anchors: list[str]
    base_url: str


def _scan_html(text: str, url: str, max_files: int | None) -> _HtmlScan:
    anchors: list[str] = []
    base_href: str | None = None
    api_version: str | None = None
    for match in _MARKUP.finditer(text):
        tag = match["tag"]
        if tag is None:
            continue
        tag = tag.lower()
        if tag == "a":
            anchors.append(match["attrs"])
            if max_files is not None and len(anchors) > max_files:
                raise PageTooLargeError(len(anchors), max_files)
        elif tag == "base" and base_href is None:
            base_href = _html_attributes(match["attrs"]).get("href")
        elif tag == "meta":
            attributes = _html_attributes(match["attrs"])
            if attributes.get("name") == "pypi:repository-version":
                api_version = attributes.get("content")
    _check_api_version(api_version)
    try:
        base_url = urljoin(url, base_href) if base_href else url
    except ValueError as exc:
        raise PageParseError(f"unusable <base href={base_href!r}>: {exc}") from exc
    return _HtmlScan(anchors, base_url)


def _html_core_metadata(value: str | None) -> dict[str, str] | None:
    if value is None:
        return None
    if value.strip().lower() == "true":
        return {}
    hash_name, sep, digest = value.strip().partition("=")
    if sep and hash_name in _HASH_NAMES and digest:
        return {hash_name: digest}
    return None


def _make_html_file(attrs: str, base_url: str, project: NormalizedName) -> DistFile | None:
    anchor = _html_attributes(attrs)
    href = anchor.get("href")
    if not href:
        return None
    advertised = anchor.get("data-core-metadata")
    if advertised is None:
        advertised = anchor.get("data-dist-info-metadata")
    yanked = "data-yanked" in anchor
    return _make_file(
        href,
        base_url,
        project,
        hashes={},
        requires_python=anchor.get("data-requires-python"),
        yanked=yanked,
        yanked_reason=anchor.get("data-yanked") or None,
        core_metadata=_html_core_metadata(advertised),
    )


# -- the listing --------------------------------------------------------------------------------

_Scan = list[_JsonFile] | _HtmlScan


class _HotScans:
    """The decoded file lists of the most recently parsed pages, bounded by their bodies' bytes."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._scans: OrderedDict[int, tuple[PageListing, _Scan]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, listing: PageListing) -> _Scan | None:
        with self._lock:
            found = self._scans.get(id(listing))
            if found is None or found[0] is not listing:
                return None
            self._scans.move_to_end(id(listing))
            return found[1]

    def put(self, listing: PageListing, scan: _Scan) -> None:
        size = listing.body.size
        with self._lock:
            previous = self._scans.pop(id(listing), None)
            if previous is not None:
                self._bytes -= previous[0].body.size
            if size > self.max_bytes:
                return
            self._scans[id(listing)] = (listing, scan)
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, (evicted, _) = self._scans.popitem(last=False)
                self._bytes -= evicted.body.size

    def clear(self) -> None:
        with self._lock:
            self._scans.clear()
            self._bytes = 0


_hot = _HotScans(HOT_PAGE_BYTES)


class PageListing:
    """The files of one project page, grouped by version; full records made on demand.

    ``versions`` lists every version some file of the project declares in its name, newest
    first. ``files_of(version)`` makes that version's ``DistFile`` records (URLs resolved, wheel
    tags expanded) the first time it is asked, in page order, and remembers them; ``files`` makes
    them all. ``digest`` identifies the body (equal bodies, equal digests). Safe to share
    between threads.
    """

    def __init__(
        self,
        body: PageBody,
        project: NormalizedName,
        *,
        digest: str,
        file_count: int,
        positions: dict[Version, Sequence[int]],
    ) -> None:
        self.body = body
        self.project = project
        self.digest = digest
        self.file_count = file_count
        self._positions = positions
        self.versions: tuple[Version, ...] = tuple(sorted(positions, reverse=True))
        self._files: dict[Version, tuple[DistFile, ...]] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"PageListing({self.project!r}, {len(self.versions)} versions, "
            f"{self.file_count} entries, {self.body.size} bytes)"
        )

    def lists(self, version: Version) -> bool:
        """Whether some file on the page names ``version`` (it may still fail to parse)."""
        return version in self._positions

    def files_of(self, version: Version) -> tuple[DistFile, ...]:
        """The files of ``version`` on this page (empty when it lists none that parse)."""
        made = self._files.get(version)
        if made is not None:
            return made
        positions = self._positions.get(version, ())
        with self._lock:
            made = self._files.get(version)
            if made is None:
                made = self._make(positions) if positions else ()
                self._files[version] = made
        return made

    @property
    def files(self) -> tuple[DistFile, ...]:
        """Every file of the project on the page, in page order."""
        every = sorted(p for positions in self._positions.values() for p in positions)
        return self._make(every)

    def _make(self, positions: Sequence[int]) -> tuple[DistFile, ...]:
        scan = _hot.get(self)
        if scan is None:
            scan = _scan(self.body.content(), self.body, None)
            _hot.put(self, scan)
        made: list[DistFile] = []
        if isinstance(scan, _HtmlScan):
            for position in positions:
                html_file = _make_html_file(scan.anchors[position], scan.base_url, self.project)
                if html_file is not None:
                    made.append(html_file)
        else:
            for position in positions:
                json_file = _make_json_file(scan[position], self.body.url, self.project)
                if json_file is not None:
                    made.append(json_file)
        return tuple(made)


def _scan(content: bytes, body: PageBody, max_files: int | None) -> _Scan:
    if negotiate(body.content_type) == "json":
        return _scan_json(content, max_files)
    text = content.decode(_charset(body.content_type), errors="replace")
    return _scan_html(text, body.url, max_files)


def _group(
    filenames: Sequence[str | None], project: NormalizedName
) -> dict[Version, Sequence[int]]:
    by_text: dict[str, list[int]] = {}
    # Pages list a version's wheels one after another ("pkg-1.0-cp39-...", "pkg-1.0-cp310-..."):
    # a wheel that starts like the last one split is of the same version, without a split. Files
    # are grouped by version text (str hashing is C; a Version's is Python), then each distinct
    # text is parsed once and texts naming one version ("1.0", "1.0.0") merged. A wheel's
    # name is canonicalized only when it differs from the last one found to be the project's.
    prefix, current = "\0", []
    known = None
    for position, filename in enumerate(filenames):
        if filename is None:
            continue
        if filename.endswith(".whl"):
            if filename.startswith(prefix):
                current.append(position)
                continue
            split = _split_wheel(filename)
            if split is None:
                continue
            name, text = split
            if name != known:
                if not name or _canonical(name) != project:
                    continue
                known = name
            prefix = filename[: len(name) + len(text) + 2]
        else:
            prefix = "\0"
            found = _split_filename(filename, project)
            if found is None:
                continue
            text = found
        current = by_text.setdefault(text, [])
        current.append(position)
    grouped: dict[Version, list[int]] = {}
    for text, positions in by_text.items():
        version = parse_version(text)
        if version is None:
            continue
        if version in grouped:
            grouped[version] = sorted(grouped[version] + positions)
        else:
            grouped[version] = positions
    # A version's files are usually listed together: a range costs no memory per file.
    return {
        version: range(p[0], p[-1] + 1) if p[-1] - p[0] + 1 == len(p) else tuple(p)
        for version, p in grouped.items()
    }


def parse_page(
    content: bytes,
    content_type: str | None,
    *,
    url: str,
    project: str,
    max_files: int | None = None,
    body: PageBody | None = None,
) -> PageListing:
    """The files on ``project``'s page, parsed as the ``Content-Type`` says (lazily: see above).

    ``url`` is the page's final URL (after redirects); relative file URLs resolve against it
    (or against an HTML ``<base href>``). ``body`` is ``content`` already compressed (a page
    from the cache); it is made when absent. Raises ``PageParseError`` on a malformed page, and
    ``PageTooLargeError`` when it lists more than ``max_files`` files (or links).
    """
    negotiate(content_type)
    name = canonicalize_name(project)
    if body is None:
        body = PageBody.make(content, content_type, url)
    scan = _scan(content, body, max_files)
    if isinstance(scan, _HtmlScan):
        filenames: list[str | None] = [_href_filename(attrs) for attrs in scan.anchors]
    else:
        filenames = [entry.filename for entry in scan]
    listing = PageListing(
        body,
        name,
        # The compressed body identifies the body as well, and is a sixth of its size or less.
        digest=hashlib.blake2b(body.data, digest_size=16).hexdigest(),
        file_count=len(filenames),
        positions=_group(filenames, name),
    )
    _hot.put(listing, scan)
    return listing
