"""``IndexClient``: project pages and core metadata from simple indexes, cached and shared.

The client makes no policy decisions: every failure is a typed error of
``service.index.errors`` (a 403 is an ``HTTPStatusError`` with ``status=403``) and the resolver
decides what it means. What it adds to plain fetching:

* one deadline (``FetchLimits.fetch_deadline``) around each page or metadata fetch, retries
  and body streaming included;
* single flight: concurrent calls for the same page or the same metadata share one fetch,
  and its result or error;
* the cache: fresh pages and metadata come from ``PageCache``; stale pages are revalidated
  with ``If-None-Match`` / ``If-Modified-Since``;
* flat indexes (``--find-links``): the one page is fetched once per page TTL, however many
  projects are asked of it, and each project's listing is parsed from it;
* the cheapest way to a wheel's METADATA: the PEP 658 file when the page advertises one, else
  HTTP range requests for the zip directory and the one member, else the whole file;
* for an sdist whose metadata is dynamic, the ``metadata_builder`` when one was given
  (``service.index.builder``): each caller waits for the build itself, within its own job.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import tempfile
import time
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import IO, Any, Self, TypeVar
from urllib.parse import quote, urldefrag

import httpx
import msgspec
import redis
import redis.exceptions
from packaging.utils import canonicalize_name

from service.diagnostics.redact import redact_url
from service.index.archives import (
    ArchiveContentError,
    ArchiveError,
    MemberTooLargeError,
    find_central_directory,
    find_metadata_entry,
    inflate_member,
    member_extent,
    parse_central_directory,
    read_sdist_pkg_info,
    read_wheel_metadata,
)
from service.index.builder import MetadataBuilder
from service.index.cache import CachedPage, MemoryPageCache, PageCache, RedisPageCache
from service.index.errors import (
    FetchTimeoutError,
    HashMismatchError,
    InconsistentMetadataError,
    IndexFetchError,
    InvalidResponseError,
    ResponseTooLargeError,
    UnusableMetadataError,
    fetch_error,
)
from service.index.fetch import Body, EncodedBody, Fetcher, FetchStats
from service.index.metadata import (
    MetadataError,
    MetadataMismatchError,
    UnusableSdistMetadataError,
    check_metadata_matches,
    check_sdist_metadata,
    parse_core_metadata,
)
from service.index.models import CoreMetadata, DistFile, Index, ProjectPage
from service.index.pages import (
    ACCEPT_PROJECT_PAGE,
    MEDIA_TEXT_HTML,
    DistName,
    PageBody,
    PageListing,
    PageParseError,
    PageTooLargeError,
    parse_dist_filename,
    parse_page,
    strip_userinfo,
)
from service.settings import FetchLimits, Settings

__all__ = ["FetchStats", "IndexClient", "make_index_client"]

logger = logging.getLogger(__name__)

T = TypeVar("T")
E = TypeVar("E", bound=IndexFetchError)

_COMPRESSIBLE = {"Accept-Encoding": "gzip, deflate"}
# Byte offsets only mean something in the identity encoding.
_IDENTITY = {"Accept-Encoding": "identity"}
# Pages larger than this as sent (gzip about 6:1 on JSON pages) are inflated and parsed in a
# thread, not on the event loop.
_PARSE_OFF_LOOP_BYTES = 128 * 1024
# Most wheels' central directory, and often their METADATA, fit in the last 64 KiB.
_TAIL_BYTES = 64 * 1024
# Room for a member's local header, name and extra field beyond its compressed size.
_LOCAL_HEADER_SLACK = 64 * 1024
_SPOOL_BYTES = 8 * 1024 * 1024
# Pages are kept this many TTLs (at least an hour) so that a stale one can be revalidated.
_KEEP_PAGE_TTLS = 10
_MIN_KEEP_SECONDS = 3600.0
_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")


def _error(cls: type[E], index: Index, url: str, message: str, **fields: Any) -> E:
    return fetch_error(cls, index.display_name, url, message, **fields)


def _archive_error(
    index: Index, url: str, exc: ArchiveError | ArchiveContentError | MemberTooLargeError
) -> IndexFetchError:
    """An archive that yields no usable metadata, as a fetch error: too large, or invalid."""
    cls = ResponseTooLargeError if isinstance(exc, MemberTooLargeError) else InvalidResponseError
    return _error(cls, index, url, str(exc))


def _file_target(index: Index, file: DistFile) -> tuple[str, DistName]:
    """The URL to fetch ``file`` from (no fragment, no userinfo) and what its name says."""
    url = strip_userinfo(urldefrag(file.url).url)
    expected = parse_dist_filename(file.filename)
    if expected is None:
        raise _error(
            InvalidResponseError, index, url, f"{file.filename} is not a wheel or sdist name"
        )
    return url, expected


def _pick_hash(hashes: dict[str, str]) -> tuple[str, str] | None:
    """The digest to verify against: sha256 if offered, else any algorithm hashlib guarantees."""
    for name in ("sha256", *sorted(hashes)):
        if name in hashes and name in hashlib.algorithms_guaranteed:
            return name, hashes[name].lower()
    return None


class _FlatPage(msgspec.Struct, frozen=True, kw_only=True):
    """A flat index's one page as fetched: what each project's listing is parsed from."""

    url: str
    content: bytes
    content_type: str | None
    fetched_at: float


class _Range(msgspec.Struct, frozen=True):
    start: int
    total: int | None
    data: bytes


class IndexClient:
    """Reads project pages and core metadata from indexes; see the module docstring.

    Use as an async context manager or call ``aclose()``. The client owns ``cache`` (closing
    it too). ``transport`` replaces the network, for tests. ``metadata_builder``, when given,
    builds the metadata of sdists whose PKG-INFO cannot be used.
    """

    def __init__(
        self,
        limits: FetchLimits,
        *,
        cache: PageCache | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        metadata_builder: MetadataBuilder | None = None,
    ) -> None:
        self._limits = limits
        self._cache = cache
        self._metadata_builder = metadata_builder
        self._fetcher = Fetcher(limits, transport=transport)
        self._page_flights: dict[str, asyncio.Task[ProjectPage]] = {}
        self._metadata_flights: dict[str, asyncio.Task[CoreMetadata]] = {}
        # Flat indexes' pages by index identity (one each), and their fetches in flight.
        self._flat_pages: dict[str, _FlatPage] = {}
        self._flat_flights: dict[str, asyncio.Task[_FlatPage]] = {}

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Cancel fetches in flight and close the connection pool and the cache."""
        flights: list[asyncio.Task[Any]] = [
            *self._page_flights.values(),
            *self._flat_flights.values(),
            *self._metadata_flights.values(),
        ]
        for task in flights:
            task.cancel()
        await asyncio.gather(*flights, return_exceptions=True)
        await self._fetcher.aclose()
        if self._cache is not None:
            await self._cache.aclose()

    # -- project pages -----------------------------------------------------------------------

    async def find_project_page(
        self, index: Index, project: str, *, stats: FetchStats | None = None
    ) -> ProjectPage:
        """``project``'s file listing on ``index``: from the cache while fresh, else fetched.

        A stale cached page is revalidated (304 keeps it). Raises ``IndexFetchError``s:
        ``HTTPStatusError`` for 4xx/5xx (a missing project is a 404 like any other). On a flat
        index the page is the index's one page, of which only ``project``'s files are kept: a
        project it does not list has an empty page there, not a 404.
        """
        stats = FetchStats() if stats is None else stats
        name = canonicalize_name(project)
        entry = None if self._cache is None else await self._cache.get_page(index, name)
        if entry is not None and self._is_fresh(entry):
            stats.count(cache_hits=1)
            return entry.page.seen_by(index.display_name)
        page = await self._join(
            self._page_flights,
            f"{index.identity}:{name}",
            stats,
            lambda: self._refresh_page(index, name, entry, stats),
        )
        return page.seen_by(index.display_name)

    def peek_project_page(
        self, index: Index, project: str, *, stats: FetchStats | None = None
    ) -> ProjectPage | None:
        """``project``'s page when a fresh copy is in this process's memory, else ``None``.

        Never waits on I/O and may be called from any thread, so the resolver thread can take
        what is at hand without a round trip through the event loop. ``stats`` counts a hit.
        """
        entry = (
            None
            if self._cache is None
            else self._cache.peek_page(index, canonicalize_name(project))
        )
        if entry is None or not self._is_fresh(entry):
            return None
        if stats is not None:
            stats.count(cache_hits=1)
        return entry.page.seen_by(index.display_name)

    def peek_core_metadata(
        self, index: Index, file: DistFile, *, stats: FetchStats | None = None
    ) -> CoreMetadata | None:
        """``file``'s metadata when it is in this process's memory (as ``peek_project_page``)."""
        metadata = None if self._cache is None else self._cache.peek_metadata(index, file)
        if metadata is not None and stats is not None:
            stats.count(cache_hits=1)
        return metadata

    def _is_fresh(self, entry: CachedPage) -> bool:
        return 0 <= time.time() - entry.fetched_at < self._limits.page_ttl_seconds

    async def _refresh_page(
        self, index: Index, name: str, entry: CachedPage | None, stats: FetchStats
    ) -> ProjectPage:
        if index.format == "flat":
            page = await self._read_flat_page(index, name, stats)
        else:
            page = await self._fetch_simple_page(index, name, entry, stats)
        if self._cache is not None:
            keep = max(self._limits.page_ttl_seconds * _KEEP_PAGE_TTLS, _MIN_KEEP_SECONDS)
            await self._cache.set_page(
                index, name, CachedPage(page=page, fetched_at=time.time()), keep_seconds=keep
            )
        return page

    async def _parse_listing(
        self,
        index: Index,
        url: str,
        content: bytes | EncodedBody,
        content_type: str | None,
        name: str,
    ) -> PageListing:
        """``name``'s files on a page fetched from ``url``; parse errors as fetch errors."""
        max_files = self._limits.max_page_files

        def parse() -> PageListing:
            if isinstance(content, EncodedBody):
                raw = content.decode()
                # A gzipped page is kept (and cached) as it came instead of compressed again.
                body: PageBody | None = PageBody.make(
                    raw, content_type, url, gzipped=content.gzipped
                )
            else:
                raw, body = content, None
            return parse_page(
                raw, content_type, url=url, project=name, max_files=max_files, body=body
            )

        # A big page (botocore's runs to megabytes) would hold the event loop for as long as it
        # inflates and parses: other jobs' fetches and the worker's heartbeat with it.
        big = len(content) > _PARSE_OFF_LOOP_BYTES
        try:
            return await asyncio.to_thread(parse) if big else parse()
        except PageTooLargeError as exc:
            raise _error(
                ResponseTooLargeError, index, url, str(exc), setting="fetch.max_page_files"
            ) from exc
        except PageParseError as exc:
            raise _error(InvalidResponseError, index, url, str(exc)) from exc

    async def _fetch_simple_page(
        self, index: Index, name: str, entry: CachedPage | None, stats: FetchStats
    ) -> ProjectPage:
        url = f"{strip_userinfo(index.url).rstrip('/')}/{quote(name, safe='')}/"
        headers = {"Accept": ACCEPT_PROJECT_PAGE, **_COMPRESSIBLE}
        if entry is not None and entry.page.etag:
            headers["If-None-Match"] = entry.page.etag
        if entry is not None and entry.page.last_modified:
            headers["If-Modified-Since"] = entry.page.last_modified
        conditional = "If-None-Match" in headers or "If-Modified-Since" in headers

        async def consume(body: Body) -> ProjectPage | None:
            if body.status == 304:
                return None
            content = await body.read_encoded(self._limits.max_page_bytes)
            listing = await self._parse_listing(
                index, body.url, content, body.headers.get("content-type"), name
            )
            return ProjectPage(
                name=name,
                index=index.display_name,
                listing=listing,
                etag=body.headers.get("etag"),
                last_modified=body.headers.get("last-modified"),
            )

        async def fetch() -> ProjectPage | None:
            return await self._fetcher.get(
                index,
                url,
                headers=headers,
                ok=frozenset({200, 304} if conditional else {200}),
                consume=consume,
                stats=stats,
            )

        page = await self._within_deadline(index, url, fetch)
        if page is None:
            assert entry is not None  # a 304 only answers a conditional request
            stats.count(revalidated=1)
            page = entry.page
        return page

    async def _read_flat_page(self, index: Index, name: str, stats: FetchStats) -> ProjectPage:
        """``name``'s files on a flat index's one page, which is fetched once per page TTL for
        every project asked of it (a job asks for each of its packages)."""
        flat = self._flat_pages.get(index.identity)
        if flat is None or not 0 <= time.time() - flat.fetched_at < self._limits.page_ttl_seconds:
            flat = await self._join(
                self._flat_flights, index.identity, stats, lambda: self._fetch_flat(index, stats)
            )
        listing = await self._parse_listing(index, flat.url, flat.content, flat.content_type, name)
        return ProjectPage(name=name, index=index.display_name, listing=listing)

    async def _fetch_flat(self, index: Index, stats: FetchStats) -> _FlatPage:
        url = strip_userinfo(index.url)

        async def consume(body: Body) -> _FlatPage:
            return _FlatPage(
                url=body.url,
                content=await body.read(self._limits.max_page_bytes),
                content_type=body.headers.get("content-type"),
                fetched_at=time.time(),
            )

        async def fetch() -> _FlatPage:
            return await self._fetcher.get(
                index,
                url,
                headers={"Accept": MEDIA_TEXT_HTML, **_COMPRESSIBLE},
                ok=frozenset({200}),
                consume=consume,
                stats=stats,
            )

        flat = await self._within_deadline(index, url, fetch)
        self._flat_pages[index.identity] = flat
        return flat

    # -- core metadata -----------------------------------------------------------------------

    async def find_core_metadata(
        self, index: Index, file: DistFile, *, stats: FetchStats | None = None
    ) -> CoreMetadata:
        """The core metadata of ``file``, checked against its name and version.

        From the cache, else the PEP 658 metadata file, else range requests into a wheel, else
        the whole file. Raises ``InconsistentMetadataError`` when the metadata names another
        project or version, ``UnusableMetadataError`` for an sdist without static dependencies
        (PEP 643) when no ``metadata_builder`` was given (``MetadataBuildError`` when its build
        failed), ``HashMismatchError`` when a digest differs from the page's.
        """
        stats = FetchStats() if stats is None else stats
        url, expected = _file_target(index, file)
        if self._cache is not None:
            cached = await self._cache.get_metadata(index, file)
            if cached is not None:
                stats.count(cache_hits=1)
                return cached
        try:
            return await self._join(
                self._metadata_flights,
                f"{index.identity}:{url}",
                stats,
                lambda: self._load_metadata(index, file, url, expected, stats),
            )
        except UnusableMetadataError:
            if self._metadata_builder is None:
                raise
        # Outside the shared flight: each job waits for the build within its own deadline.
        built = await self._metadata_builder.build_metadata(index, file)
        metadata = self._check(index, url, built, expected, built=True)
        if self._cache is not None:
            await self._cache.set_metadata(index, file, metadata)
        return metadata

    async def _load_metadata(
        self, index: Index, file: DistFile, url: str, expected: DistName, stats: FetchStats
    ) -> CoreMetadata:
        async def fetch() -> bytes:
            if file.core_metadata is not None:
                return await self._fetch_metadata_file(index, url, file.core_metadata, stats)
            if expected.kind == "wheel":
                found = await self._find_wheel_metadata_by_range(index, file, url, expected, stats)
                if found is not None:
                    return found
            return await self._find_metadata_in_download(index, file, url, expected, stats)

        raw = await self._within_deadline(index, url, fetch)
        metadata = self._check(index, url, raw, expected)
        if self._cache is not None:
            await self._cache.set_metadata(index, file, metadata)
        return metadata

    @staticmethod
    def _check(
        index: Index, url: str, raw: bytes, expected: DistName, *, built: bool = False
    ) -> CoreMetadata:
        """Parse ``raw`` and check it describes ``expected``; a built sdist's is always static."""
        try:
            metadata = parse_core_metadata(raw)
            check_metadata_matches(metadata, expected)
        except MetadataMismatchError as exc:
            raise _error(InconsistentMetadataError, index, url, str(exc)) from exc
        except MetadataError as exc:
            raise _error(InvalidResponseError, index, url, str(exc)) from exc
        if expected.kind == "sdist" and not built:
            try:
                check_sdist_metadata(metadata)
            except UnusableSdistMetadataError as exc:
                raise _error(UnusableMetadataError, index, url, str(exc)) from exc
        return metadata

    async def _fetch_metadata_file(
        self, index: Index, url: str, hashes: dict[str, str], stats: FetchStats
    ) -> bytes:
        """The PEP 658 ``<file>.metadata``, verified against the digest the page gave."""
        metadata_url = url + ".metadata"

        async def consume(body: Body) -> bytes:
            return await body.read(self._limits.max_metadata_bytes)

        data = await self._fetcher.get(
            index,
            metadata_url,
            headers=_COMPRESSIBLE,
            ok=frozenset({200}),
            consume=consume,
            stats=stats,
            purpose="file",
        )
        expected = _pick_hash(hashes)
        if expected is not None and hashlib.new(expected[0], data).hexdigest() != expected[1]:
            raise _error(
                HashMismatchError,
                index,
                metadata_url,
                f"{expected[0]} digest differs from the page's",
            )
        return data

    async def _fetch_range(
        self, index: Index, url: str, spec: str, max_bytes: int, stats: FetchStats
    ) -> _Range | None:
        """One ``Range: bytes=<spec>`` GET; ``None`` when the server did not answer it as asked."""

        async def consume(body: Body) -> _Range | None:
            encoding = body.headers.get("content-encoding", "identity").strip().lower()
            match = _CONTENT_RANGE.match(body.headers.get("content-range", "").strip())
            if body.status != 206 or encoding != "identity" or match is None:
                return None
            start, end = int(match[1]), int(match[2])
            total = None if match[3] == "*" else int(match[3])
            if end < start or end - start + 1 > max_bytes:
                return None
            data = await body.read(end - start + 1)
            return _Range(start, total, data) if len(data) == end - start + 1 else None

        return await self._fetcher.get(
            index,
            url,
            headers={**_IDENTITY, "Range": f"bytes={spec}"},
            ok=frozenset({200, 206, 416}),
            consume=consume,
            stats=stats,
            purpose="file",
        )

    async def _find_wheel_metadata_by_range(
        self, index: Index, file: DistFile, url: str, expected: DistName, stats: FetchStats
    ) -> bytes | None:
        """METADATA via range requests into the zip; ``None`` when a whole download is needed.

        Usually one request: the last 64 KiB hold the central directory and METADATA. When the
        directory is longer, the rest of it and the bytes just before it come in one request:
        dist-info is written last with RECORD after METADATA, and RECORD grows with the file
        count as the directory does, so METADATA usually lies within half the directory's size
        before it (on the 966 wheels under /opt/pypi*, wheels needing three requests went from
        80 to 18). Else one more request fetches the member itself.

        Anything unexpected (no 206, a size differing from the page's, a directory this reader
        does not handle, a CRC mismatch) returns ``None``: the whole-file path then decides, with
        the file's hash checked. HTTP errors are raised: the whole file would fail alike.
        """
        cap = self._limits.max_metadata_bytes
        tail = await self._fetch_range(index, url, f"-{_TAIL_BYTES}", _TAIL_BYTES, stats)
        if tail is None or (file.size is not None and tail.total not in (None, file.size)):
            return None
        start, data = tail.start, tail.data
        try:
            directory = find_central_directory(data, start)
            if directory.offset < start:
                if start - directory.offset > cap:
                    return None
                first = max(0, directory.offset - directory.size // 2 - _TAIL_BYTES)
                head = await self._fetch_range(
                    index, url, f"{first}-{start - 1}", start - first, stats
                )
                if head is None or head.start != first:
                    return None
                start, data = first, head.data + data
            listing = data[directory.offset - start : directory.offset - start + directory.size]
            entries = parse_central_directory(listing)
            entry = find_metadata_entry(entries, expected.project)
            if entry.file_size > cap or entry.compressed_size > cap:
                raise MemberTooLargeError(f"{entry.name} declares {entry.file_size} bytes")
            begin, end = member_extent(entries, entry, directory)
            end = min(end, begin + entry.compressed_size + _LOCAL_HEADER_SLACK)
            if begin >= start:
                member = data[begin - start : end - start]
            else:
                fetched = await self._fetch_range(
                    index, url, f"{begin}-{end - 1}", end - begin, stats
                )
                if fetched is None or fetched.start != begin:
                    return None
                member = fetched.data
            return inflate_member(member, entry, cap)
        except ArchiveError as exc:
            logger.debug("range read of %s fell back to a download: %s", redact_url(url), exc)
            return None
        except (ArchiveContentError, MemberTooLargeError) as exc:
            raise _archive_error(index, url, exc) from exc

    async def download_file(
        self, index: Index, file: DistFile, *, stats: FetchStats | None = None
    ) -> IO[bytes]:
        """``file``'s bytes in a temporary file, checked against the page's digest.

        For metadata builds (the sdist and its build requirements' wheels): bounded by
        ``max_artifact_bytes`` and the fetch deadline; the caller closes the file.
        """
        stats = FetchStats() if stats is None else stats
        url = strip_userinfo(urldefrag(file.url).url)
        return await self._within_deadline(
            index, url, lambda: self._download(index, file, url, stats)
        )

    async def _download(
        self, index: Index, file: DistFile, url: str, stats: FetchStats
    ) -> IO[bytes]:
        """The whole file, spooled (in memory up to a point) and verified against its hash."""
        spool, _ = await self._download_hashed(index, file, url, stats)
        return spool

    async def _download_hashed(
        self, index: Index, file: DistFile, url: str, stats: FetchStats
    ) -> tuple[IO[bytes], tuple[str, str]]:
        """``_download``, and the file's digest: the algorithm verified, else sha256."""
        digest = _pick_hash(file.hashes)
        algorithm = digest[0] if digest else "sha256"

        async def consume(body: Body) -> tuple[IO[bytes], str]:
            spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES)  # noqa: SIM115  # handed to the caller, which closes it
            hasher = hashlib.new(algorithm)

            def write(chunk: bytes) -> None:
                spool.write(chunk)
                hasher.update(chunk)

            try:
                await body.read_into(self._limits.max_artifact_bytes, write)
            except BaseException:
                spool.close()
                raise
            return spool, hasher.hexdigest()

        spool, actual = await self._fetcher.get(
            index,
            url,
            headers=_IDENTITY,
            ok=frozenset({200}),
            consume=consume,
            stats=stats,
            purpose="file",
        )
        if digest is not None and actual != digest[1].lower():
            spool.close()
            raise _error(
                HashMismatchError, index, url, f"{digest[0]} digest differs from the expected one"
            )
        spool.seek(0)
        return spool, (algorithm, actual)

    def _read_spooled_metadata(self, spool: IO[bytes], file: DistFile, expected: DistName) -> bytes:
        """METADATA (wheel) or PKG-INFO (sdist) from a downloaded file, which it closes."""
        limits = self._limits
        with spool:
            if expected.kind == "wheel":
                return read_wheel_metadata(spool, expected.project, limits.max_metadata_bytes)
            return read_sdist_pkg_info(
                spool, file.filename, limits.max_metadata_bytes, limits.max_artifact_bytes
            )

    async def _find_metadata_in_download(
        self, index: Index, file: DistFile, url: str, expected: DistName, stats: FetchStats
    ) -> bytes:
        """Download the whole file (verifying its hash) and read METADATA or PKG-INFO from it."""
        spool = await self._download(index, file, url, stats)
        try:
            return await asyncio.to_thread(self._read_spooled_metadata, spool, file, expected)
        except (ArchiveError, ArchiveContentError, MemberTooLargeError) as exc:
            raise _archive_error(index, url, exc) from exc

    async def find_direct_metadata(
        self,
        index: Index,
        file: DistFile,
        *,
        stats: FetchStats | None = None,
        read_metadata: bool = True,
    ) -> tuple[CoreMetadata | None, dict[str, str]]:
        """A direct URL's file (``name @ URL``), downloaded whole: its core metadata, checked
        against its filename (``None`` when not ``read_metadata``: the caller has its own),
        and its hashes (the URL's own, verified, else the sha256 computed here:
        ``HashMismatchError`` when they differ).

        Never read from or written to the cache: a page vouches for what an index file holds,
        nothing vouches for what a URL serves until its bytes are hashed.
        """
        stats = FetchStats() if stats is None else stats
        url, expected = _file_target(index, file)

        async def fetch() -> tuple[bytes | None, tuple[str, str]]:
            spool, digest = await self._download_hashed(index, file, url, stats)
            if not read_metadata:
                spool.close()
                return None, digest
            try:
                raw = await asyncio.to_thread(self._read_spooled_metadata, spool, file, expected)
            except (ArchiveError, ArchiveContentError, MemberTooLargeError) as exc:
                raise _archive_error(index, url, exc) from exc
            return raw, digest

        raw, (algorithm, actual) = await self._within_deadline(index, url, fetch)
        metadata = None if raw is None else self._check(index, url, raw, expected)
        return metadata, {**file.hashes, algorithm: actual}

    # -- shared machinery --------------------------------------------------------------------

    async def _within_deadline(
        self, index: Index, url: str, fetch: Callable[[], Coroutine[Any, Any, T]]
    ) -> T:
        deadline = self._limits.fetch_deadline
        scope = asyncio.timeout(deadline)
        try:
            async with scope:
                return await fetch()
        except TimeoutError as exc:
            if not scope.expired():
                raise
            raise _error(
                FetchTimeoutError, index, url, f"not fetched within the {deadline:g}s deadline"
            ) from exc

    @staticmethod
    async def _join(
        flights: dict[str, asyncio.Task[T]],
        key: str,
        stats: FetchStats,
        start: Callable[[], Coroutine[Any, Any, T]],
    ) -> T:
        """Await the fetch in flight for ``key``, starting it if there is none.

        The fetch runs as its own task: a caller that is cancelled stops waiting, not fetching,
        so the others still get the result (or the error).
        """
        task = flights.get(key)
        if task is None:
            task = asyncio.create_task(start())
            flights[key] = task

            def landed(done: asyncio.Task[T]) -> None:
                if flights.get(key) is done:
                    del flights[key]
                if not done.cancelled():
                    done.exception()  # retrieved here, in case every waiter went away

            task.add_done_callback(landed)
        else:
            stats.count(shared=1)
        return await asyncio.shield(task)


def make_index_client(
    settings: Settings, *, metadata_builder: MetadataBuilder | None = None
) -> IndexClient:
    """An ``IndexClient`` with the cache at ``settings.cache_url`` (and ``metadata_builder``).

    Probes Redis once (blocking, for at most a second); when it does not answer, logs one
    warning and caches in process memory instead.
    """
    url = settings.cache_url
    probe = redis.Redis.from_url(url, socket_connect_timeout=1.0, socket_timeout=1.0)
    cache: PageCache
    try:
        probe.ping()
    except (redis.exceptions.RedisError, OSError) as exc:
        logger.warning(
            "metadata cache: Redis at %s is unreachable (%s); caching in process memory only",
            redact_url(url),
            type(exc).__name__,
        )
        cache = MemoryPageCache()
    else:
        cache = RedisPageCache.from_url(url, settings=settings.cache)
    finally:
        probe.close()
    return IndexClient(settings.fetch, cache=cache, metadata_builder=metadata_builder)
