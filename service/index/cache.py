"""The cache of project pages and core metadata: one interface, a memory and a Redis store.

``PageCache`` is what the client talks to. ``MemoryPageCache`` is a bounded in-process LRU (the
store when Redis is absent, and the front of the Redis store); ``RedisPageCache`` keeps msgpack
values in Redis, shared by every worker, behind such an LRU. Both obey one contract, tested by
one suite.

Keys are scoped by ``Index.identity`` (a digest of URL and credentials), so no credential is
ever part of a key or value and a page fetched with one client's credentials is never served to
another's. Pages are kept with their ``fetched_at`` time: the client treats them as fresh for
the page TTL and revalidates them (ETag / Last-Modified) after, so they are stored longer than
that. Metadata is keyed by the file's sha256, immutable, and kept without expiry (only files
with a sha256 are cached). A Redis failure never fails a fetch: the call behaves as a miss,
the outage is logged once (URL redacted) and counted (``RedisPageCache.errors``), and while it
lasts Redis is asked again only every ``retry_seconds``, so a hung cache costs a job one timeout
per interval rather than one per page.
"""

from __future__ import annotations

import abc
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Generic, TypeVar, cast

import msgspec
import redis.asyncio
import redis.exceptions
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from service.diagnostics.redact import redact_url
from service.index.models import CoreMetadata, DistFile, Index, ProjectPage

__all__ = [
    "CachedPage",
    "MemoryPageCache",
    "PageCache",
    "RedisPageCache",
    "metadata_key",
    "page_key",
]

logger = logging.getLogger(__name__)

_PREFIX = "resolvd:cache:v1"
_DEFAULT_ENTRIES = 4096
# While the cache's Redis fails, it is tried again this often (the calls between are misses).
_RETRY_SECONDS = 5.0

V = TypeVar("V")


class CachedPage(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A stored project page and when it was fetched (or last revalidated), as a Unix time."""

    page: ProjectPage
    fetched_at: float


def page_key(index: Index, project: str) -> str:
    """The key of ``project``'s page (a normalized name) on ``index``."""
    return f"{_PREFIX}:page:{index.identity}:{project}"


def metadata_key(index: Index, file: DistFile) -> str | None:
    """The key of ``file``'s metadata, or ``None`` when the file has no sha256 to key it by."""
    digest = file.hashes.get("sha256")
    return f"{_PREFIX}:meta:{index.identity}:{digest.lower()}" if digest else None


class PageCache(abc.ABC):
    """Where the client keeps pages and metadata between fetches and jobs."""

    @abc.abstractmethod
    async def get_page(self, index: Index, project: str) -> CachedPage | None:
        """The stored page of ``project`` (normalized), fresh or stale, or ``None``."""

    @abc.abstractmethod
    async def set_page(
        self, index: Index, project: str, entry: CachedPage, *, keep_seconds: float
    ) -> None:
        """Store a page for ``keep_seconds`` (longer than its freshness, for revalidation)."""

    @abc.abstractmethod
    async def get_metadata(self, index: Index, file: DistFile) -> CoreMetadata | None:
        """The stored metadata of ``file``, or ``None`` (always for a file without a sha256)."""

    @abc.abstractmethod
    async def get_many_metadata(
        self, index: Index, files: Sequence[DistFile]
    ) -> list[CoreMetadata | None]:
        """``get_metadata`` for many files in one round trip; the result aligns with ``files``."""

    @abc.abstractmethod
    async def set_metadata(self, index: Index, file: DistFile, metadata: CoreMetadata) -> None:
        """Store ``file``'s metadata without expiry; a no-op for a file without a sha256."""

    @abc.abstractmethod
    async def aclose(self) -> None:
        """Release connections (the client calls this when it closes)."""

    def peek_page(self, index: Index, project: str) -> CachedPage | None:
        """The page if this process holds it in memory, else ``None``: never waits on I/O,
        and may be called from any thread (the resolver's, not just the event loop's)."""
        return None

    def peek_metadata(self, index: Index, file: DistFile) -> CoreMetadata | None:
        """``file``'s metadata if this process holds it in memory (as ``peek_page``)."""
        return None


class _LRU(Generic[V]):
    """A bounded mapping that forgets the least recently used entry, with optional expiry.

    Locked, because resolver threads peek into it while the event loop fills it.
    """

    def __init__(self, max_entries: int) -> None:
        self._max = max_entries
        self._entries: OrderedDict[str, tuple[V, float | None]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> V | None:
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                return None
            value, expires = found
            if expires is not None and expires <= time.monotonic():
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return value

    def set(self, key: str, value: V, keep_seconds: float | None = None) -> None:
        expires = None if keep_seconds is None else time.monotonic() + keep_seconds
        with self._lock:
            self._entries[key] = (value, expires)
            self._entries.move_to_end(key)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)


class MemoryPageCache(PageCache):
    """A process-local cache of at most ``max_entries`` pages and as many metadata entries."""

    def __init__(self, max_entries: int = _DEFAULT_ENTRIES) -> None:
        self._pages: _LRU[CachedPage] = _LRU(max_entries)
        self._metadata: _LRU[CoreMetadata] = _LRU(max_entries)

    async def get_page(self, index: Index, project: str) -> CachedPage | None:
        return self.peek_page(index, project)

    def peek_page(self, index: Index, project: str) -> CachedPage | None:
        return self._pages.get(page_key(index, project))

    def peek_metadata(self, index: Index, file: DistFile) -> CoreMetadata | None:
        key = metadata_key(index, file)
        return None if key is None else self._metadata.get(key)

    async def set_page(
        self, index: Index, project: str, entry: CachedPage, *, keep_seconds: float
    ) -> None:
        self._pages.set(page_key(index, project), entry, keep_seconds)

    async def get_metadata(self, index: Index, file: DistFile) -> CoreMetadata | None:
        return self.peek_metadata(index, file)

    async def get_many_metadata(
        self, index: Index, files: Sequence[DistFile]
    ) -> list[CoreMetadata | None]:
        return [self.peek_metadata(index, file) for file in files]

    async def set_metadata(self, index: Index, file: DistFile, metadata: CoreMetadata) -> None:
        key = metadata_key(index, file)
        if key is not None:
            self._metadata.set(key, metadata)

    async def aclose(self) -> None:
        """Nothing to release."""


_encoder = msgspec.msgpack.Encoder()
_page_decoder = msgspec.msgpack.Decoder(CachedPage)
_metadata_decoder = msgspec.msgpack.Decoder(CoreMetadata)
# Corrupt or foreign values read as misses, like an unreachable Redis.
_REDIS_FAILURES = (redis.exceptions.RedisError, OSError, msgspec.DecodeError)


class RedisPageCache(PageCache):
    """Pages and metadata in Redis (msgpack), fronted by a ``MemoryPageCache``.

    The front LRU holds decoded values so a hot page costs no round trip; its page entries
    expire with the stored ones. The cache owns ``client`` and closes it in ``aclose``.
    ``errors`` counts the Redis calls that failed, since the cache was made.
    """

    def __init__(
        self,
        client: redis.asyncio.Redis,
        *,
        url: str = "redis",
        local_entries: int = 1024,
        retry_seconds: float = _RETRY_SECONDS,
    ) -> None:
        self._redis = client
        self._url = redact_url(url)
        self._local = MemoryPageCache(local_entries)
        self._retry_seconds = retry_seconds
        self._failing = False
        self._next_try = 0.0
        self._outage_errors = 0
        self.errors = 0

    @classmethod
    def from_url(cls, url: str, *, timeout: float = 2.0) -> RedisPageCache:
        """A cache on the Redis at ``url``; connects lazily, on first use.

        A call that loses its connection is retried once, at once (the server may have dropped
        a pooled connection), and a call that times out not at all: a cache that does not answer
        is a miss, not something to wait for.
        """
        client = redis.asyncio.Redis.from_url(
            url,
            socket_connect_timeout=timeout,
            socket_timeout=timeout,
            retry=Retry(NoBackoff(), 1, supported_errors=(redis.exceptions.ConnectionError,)),
        )
        return cls(client, url=url)

    def _ask_redis(self) -> bool:
        """Whether to call Redis now: always while it answers, once per interval while not."""
        if not self._failing:
            return True
        now = time.monotonic()
        if now < self._next_try:
            return False
        self._next_try = now + self._retry_seconds
        return True

    def _failed(self, operation: str, exc: Exception) -> None:
        self.errors += 1
        self._outage_errors += 1
        self._next_try = time.monotonic() + self._retry_seconds
        if not self._failing:
            logger.warning(
                "page cache at %s failed (%s: %s); fetching from the network, and trying the "
                "cache again every %g s, until it recovers",
                self._url,
                operation,
                type(exc).__name__,
                self._retry_seconds,
            )
        self._failing = True

    def _recovered(self) -> None:
        if self._failing:
            logger.info(
                "page cache at %s is answering again (%d calls failed while it was not)",
                self._url,
                self._outage_errors,
            )
        self._failing = False
        self._outage_errors = 0

    def peek_page(self, index: Index, project: str) -> CachedPage | None:
        return self._local.peek_page(index, project)

    def peek_metadata(self, index: Index, file: DistFile) -> CoreMetadata | None:
        return self._local.peek_metadata(index, file)

    async def get_page(self, index: Index, project: str) -> CachedPage | None:
        found = await self._local.get_page(index, project)
        if found is not None or not self._ask_redis():
            return found
        key = page_key(index, project)
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.get(key)
                pipe.pttl(key)
                raw, ttl_ms = await pipe.execute()
            entry = None if raw is None else _page_decoder.decode(raw)
        except _REDIS_FAILURES as exc:
            self._failed("get page", exc)
            return None
        self._recovered()
        if entry is not None and ttl_ms > 0:
            await self._local.set_page(index, project, entry, keep_seconds=ttl_ms / 1000)
        return entry

    async def set_page(
        self, index: Index, project: str, entry: CachedPage, *, keep_seconds: float
    ) -> None:
        await self._local.set_page(index, project, entry, keep_seconds=keep_seconds)
        if not self._ask_redis():
            return
        try:
            await self._redis.set(
                page_key(index, project),
                _encoder.encode(entry),
                px=max(1, int(keep_seconds * 1000)),
            )
        except _REDIS_FAILURES as exc:
            self._failed("set page", exc)
            return
        self._recovered()

    async def get_metadata(self, index: Index, file: DistFile) -> CoreMetadata | None:
        return (await self.get_many_metadata(index, [file]))[0]

    async def get_many_metadata(
        self, index: Index, files: Sequence[DistFile]
    ) -> list[CoreMetadata | None]:
        found = await self._local.get_many_metadata(index, files)
        wanted = {
            key: position
            for position, file in enumerate(files)
            if found[position] is None and (key := metadata_key(index, file)) is not None
        }
        if not wanted or not self._ask_redis():
            return found
        try:
            values = await self._redis.mget(list(wanted))
            # Without decode_responses, redis-py returns bytes, never str.
            decoded = [
                None if raw is None else _metadata_decoder.decode(cast("bytes", raw))
                for raw in values
            ]
        except _REDIS_FAILURES as exc:
            self._failed("get metadata", exc)
            return found
        self._recovered()
        for position, metadata in zip(wanted.values(), decoded, strict=True):
            if metadata is not None:
                found[position] = metadata
                await self._local.set_metadata(index, files[position], metadata)
        return found

    async def set_metadata(self, index: Index, file: DistFile, metadata: CoreMetadata) -> None:
        key = metadata_key(index, file)
        if key is None:
            return
        await self._local.set_metadata(index, file, metadata)
        if not self._ask_redis():
            return
        try:
            await self._redis.set(key, _encoder.encode(metadata))
        except _REDIS_FAILURES as exc:
            self._failed("set metadata", exc)
            return
        self._recovered()

    async def aclose(self) -> None:
        await self._redis.aclose()
