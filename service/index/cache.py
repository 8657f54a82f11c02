"""The cache of project pages and core metadata: one interface, a memory and a Redis store.

``PageCache`` is what the client talks to. ``MemoryPageCache`` is a bounded in-process LRU (the
store when Redis is absent, and the front of the Redis store); ``RedisPageCache`` keeps msgpack
values in Redis, shared by every worker, behind such an LRU. Both obey one contract, tested by
one suite.

Keys are scoped by ``Index.identity`` (a digest of URL and credentials), so no credential is
ever part of a key or value and a page fetched with one client's credentials is never served to
another's. Pages are kept with their ``fetched_at`` time: the client treats them as fresh for
the page TTL and revalidates them (ETag / Last-Modified) after, so they are stored longer than
that. A page is stored as its body, compressed (``PageBody``: gzip as the index sent it, else
zstd), and parsed again when another process reads it. Metadata is keyed by the file's sha256
(only files with one are cached).

What the cache may cost Redis is bounded, so that it can share the job store's ``noeviction``
Redis (the default, when ``redis.cache_url`` is not set) without ever filling it:

* every key expires: pages after ``keep_seconds``, metadata after ``cache.metadata_ttl_seconds``;
* no value is larger than ``cache.max_value_bytes`` (a bigger one is not stored: the next job
  fetches that page from the index again);
* the cache counts the bytes it writes, by the hour they expire in, and stores nothing more
  while the bytes not yet expired would pass ``cache.max_bytes`` (0: no budget, for a cache
  Redis of its own with an eviction policy). The check and the write are one Lua script, so
  workers sharing the Redis cannot overshoot together. The count is an upper bound (a key
  overwritten early is still counted until it would have expired).

When the cache is full (its budget is spent, or Redis refuses writes with an OOM error) new pages
and metadata are simply not stored: jobs go on, fetching from the indexes what is not cached,
reads still hit what is, and one warning is logged per episode (``RedisPageCache.skipped``
counts the writes left out). A Redis failure never fails a fetch either: the call behaves as a
miss, the outage is logged once (URL redacted) and counted (``RedisPageCache.errors``), and while
it lasts Redis is asked again only every ``retry_seconds``, so a hung cache costs a job one
timeout per interval rather than one per page. Writes to Redis run in the background: a fetch
never waits for its page to be stored.
"""

from __future__ import annotations

import abc
import asyncio
import hashlib
import logging
import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, NamedTuple, TypeVar

import msgspec
import redis.asyncio
import redis.exceptions
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from service.diagnostics.redact import redact_url
from service.index.models import CoreMetadata, DistFile, Index, ProjectPage
from service.index.pages import PageBody, PageParseError, parse_page
from service.settings import CacheSettings

__all__ = [
    "CachedPage",
    "MemoryPageCache",
    "PageCache",
    "RedisPageCache",
    "metadata_key",
    "page_key",
]

logger = logging.getLogger(__name__)

# v2: pages are stored as their compressed body (v1 stored parsed file records).
_PREFIX = "resolvd:cache:v2"
_BUDGET_KEY = f"{_PREFIX}:budget"
_DEFAULT_ENTRIES = 4096
# While the cache's Redis fails, it is tried again this often (the calls between are misses).
_RETRY_SECONDS = 5.0
# Bytes written are counted per hour of expiry; a key also costs Redis about this much.
_BUDGET_WINDOW_SECONDS = 3600
_KEY_OVERHEAD_BYTES = 96
# Pages bigger than this are parsed in a thread when read back, not on the event loop.
_PARSE_OFF_LOOP_BYTES = 512 * 1024

V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class CachedPage:
    """A stored project page and when it was fetched (or last revalidated), as a Unix time."""

    page: ProjectPage
    fetched_at: float


class _StoredPage(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A page as Redis holds it: the compressed body and its validators."""

    name: str
    body: PageBody
    etag: str | None = None
    last_modified: str | None = None
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
        """Store a page for ``keep_seconds`` (longer than its freshness, for revalidation).

        Returns once this process can see the page; a shared store may finish in the
        background."""

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
        """Store ``file``'s metadata; a no-op for a file without a sha256 (as ``set_page``)."""

    @abc.abstractmethod
    async def aclose(self) -> None:
        """Finish background writes and release connections (the client calls this)."""

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
    """A process-local cache of at most ``max_entries`` pages and as many metadata entries.

    Pages hold their bodies compressed and decode files only for the versions jobs reach, so a
    few thousand cost tens of megabytes, not the gigabytes their bodies would.
    """

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
_page_decoder = msgspec.msgpack.Decoder(_StoredPage)
_metadata_decoder = msgspec.msgpack.Decoder(CoreMetadata)
# Corrupt or foreign values read as misses, like an unreachable Redis.
_REDIS_FAILURES = (redis.exceptions.RedisError, OSError, msgspec.DecodeError, PageParseError)

# Reserves room in the budget for a batch of writes, in order; the values are SET after, by the
# caller, only where it answered 1 (a value passed through Lua costs Redis a copy per byte).
# KEYS[1]: the budget hash. ARGV: budget bytes, now (s), then per value: the window its key
# expires in, that window's end (s), the bytes it costs, its ttl (ms). The hash holds per window
# "b:<w>" (bytes written) and "e:<w>" (when its last key expires). Answers 1 (room) or 0 (full)
# per value.
_RESERVE_SCRIPT = """
local budget = tonumber(ARGV[1])
local now = tonumber(ARGV[2])
local fields = redis.call('HGETALL', KEYS[1])
local live = 0
local windows = {}
for i = 1, #fields, 2 do
  local name, value = fields[i], tonumber(fields[i + 1])
  local kind, window = string.sub(name, 1, 1), string.sub(name, 3)
  windows[window] = windows[window] or {}
  windows[window][kind] = value
end
for window, entry in pairs(windows) do
  if (entry['e'] or 0) <= now then
    redis.call('HDEL', KEYS[1], 'b:' .. window, 'e:' .. window)
  else
    live = live + (entry['b'] or 0)
  end
end
local answers = {}
local longest = 0
for i = 3, #ARGV, 4 do
  local window, ends = ARGV[i], tonumber(ARGV[i + 1])
  local cost, ttl = tonumber(ARGV[i + 2]), tonumber(ARGV[i + 3])
  if live + cost > budget then
    answers[#answers + 1] = 0
  else
    live = live + cost
    redis.call('HINCRBY', KEYS[1], 'b:' .. window, cost)
    local known = tonumber(redis.call('HGET', KEYS[1], 'e:' .. window) or '0')
    if known < ends then
      redis.call('HSET', KEYS[1], 'e:' .. window, ends)
    end
    longest = math.max(longest, ttl)
    answers[#answers + 1] = 1
  end
end
if longest > 0 then
  redis.call('PEXPIRE', KEYS[1], math.max(redis.call('PTTL', KEYS[1]), longest + 7200000))
end
return answers
"""


# Queued writes go to Redis in pipelines of up to this many values and about this many bytes:
# one by one, each write cost a round trip and a command dispatch on both sides.
_PIPELINE_WRITES = 16
_PIPELINE_BYTES = 4 * 1024 * 1024
# Writes waiting for the writer, at most: past that, a slow Redis is not stored to.
_MAX_PENDING_WRITES = 4096


class _Write(NamedTuple):
    operation: str
    key: str
    value: Any
    keep_seconds: float


class _StoreCommand(NamedTuple):
    """One value to store: its key, encoded value and keep time, and its budget window."""

    operation: str
    key: str
    data: bytes
    keep_ms: int
    window: int
    window_end: int
    cost: int


class _Reads:
    """The reads asked for in one turn of the event loop, sent to Redis in one pipeline.

    A job asks for pages and metadata in bursts (a page's dependencies, a round's candidates);
    one by one, every read was a round trip with its own wait on the event loop. A read is
    queued, and the first one of a turn schedules the send for the next turn, when the others
    of its burst have been asked for. Every read of a failed pipeline gets its error.
    """

    def __init__(self, client: redis.asyncio.Redis) -> None:
        self._client = client
        self._pages: dict[str, asyncio.Future[tuple[bytes | None, int]]] = {}
        self._values: list[tuple[list[str], asyncio.Future[list[bytes | None]]]] = []
        self._scheduled = False
        self._sending: set[asyncio.Task[None]] = set()

    async def page(self, key: str) -> tuple[bytes | None, int]:
        """The value at ``key`` and its time to live in ms (GET and PTTL)."""
        future = self._pages.get(key)
        if future is None:
            future = self._pages[key] = asyncio.get_running_loop().create_future()
            self._schedule()
        # Shielded: a reader that gives up must not cancel the read for the others.
        return await asyncio.shield(future)

    async def values(self, keys: list[str]) -> list[bytes | None]:
        """The values at ``keys`` (MGET), ``None`` where there is none."""
        future: asyncio.Future[list[bytes | None]] = asyncio.get_running_loop().create_future()
        self._values.append((keys, future))
        self._schedule()
        return await asyncio.shield(future)

    def _schedule(self) -> None:
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._send_asked)

    def _send_asked(self) -> None:
        self._scheduled = False
        pages, self._pages = self._pages, {}
        values, self._values = self._values, []
        task = asyncio.create_task(self._send(pages, values))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(
        self,
        pages: dict[str, asyncio.Future[tuple[bytes | None, int]]],
        values: list[tuple[list[str], asyncio.Future[list[bytes | None]]]],
    ) -> None:
        waiting: list[asyncio.Future[Any]] = [*pages.values(), *(f for _, f in values)]
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                for key in pages:
                    pipe.get(key)
                    pipe.pttl(key)
                every_key = [key for keys, _ in values for key in keys]
                if every_key:
                    pipe.mget(every_key)
                answers = await pipe.execute()
        except asyncio.CancelledError:  # the cache is closing
            for future in waiting:
                future.cancel()
            raise
        except Exception as exc:
            for future in waiting:
                if not future.done():
                    future.set_exception(exc)
            return
        for position, future in enumerate(pages.values()):
            if not future.done():
                future.set_result((answers[2 * position], answers[2 * position + 1]))
        found = iter(answers[-1] if every_key else ())
        for keys, future in values:
            taken = [next(found) for _ in keys]
            if not future.done():
                future.set_result(taken)

    async def aclose(self) -> None:
        for task in list(self._sending):
            task.cancel()
        await asyncio.gather(*self._sending, return_exceptions=True)


class RedisPageCache(PageCache):
    """Pages and metadata in Redis (msgpack), fronted by a ``MemoryPageCache``.

    The front LRU holds decoded values so a hot page costs no round trip; its page entries
    expire with the stored ones. The cache owns ``client`` and closes it in ``aclose``.
    ``errors`` counts the Redis calls that failed and ``skipped`` the values not stored
    because they were too big or the cache was full, since the cache was made.
    """

    def __init__(
        self,
        client: redis.asyncio.Redis,
        *,
        url: str = "redis",
        settings: CacheSettings | None = None,
        local_entries: int = 1024,
        retry_seconds: float = _RETRY_SECONDS,
    ) -> None:
        self._redis = client
        self._url = redact_url(url)
        self._settings = settings or CacheSettings()
        self._local = MemoryPageCache(local_entries)
        self._retry_seconds = retry_seconds
        self._failing = False
        self._full = False
        self._next_try = 0.0
        self._outage_errors = 0
        self._reserve_sha = hashlib.sha1(_RESERVE_SCRIPT.encode()).hexdigest()
        self._reads = _Reads(client)
        self._pending: deque[_Write] = deque()
        self._writer: asyncio.Task[None] | None = None
        self.errors = 0
        self.skipped = 0

    @classmethod
    def from_url(
        cls, url: str, *, timeout: float = 2.0, settings: CacheSettings | None = None
    ) -> RedisPageCache:
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
        return cls(client, url=url, settings=settings)

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

    def _skip(self, why: str) -> None:
        self.skipped += 1
        if why == "full" and not self._full:
            self._full = True
            logger.warning(
                "page cache at %s is full (budget cache.max_bytes=%d, or Redis's maxmemory): "
                "new pages and metadata are not stored until older ones expire; jobs fetch "
                "them from the indexes",
                self._url,
                self._settings.max_bytes,
            )

    def peek_page(self, index: Index, project: str) -> CachedPage | None:
        return self._local.peek_page(index, project)

    def peek_metadata(self, index: Index, file: DistFile) -> CoreMetadata | None:
        return self._local.peek_metadata(index, file)

    async def get_page(self, index: Index, project: str) -> CachedPage | None:
        found = await self._local.get_page(index, project)
        if found is not None or not self._ask_redis():
            return found
        try:
            raw, ttl_ms = await self._reads.page(page_key(index, project))
            entry = None if raw is None else await self._load_page(_page_decoder.decode(raw))
        except _REDIS_FAILURES as exc:
            self._failed("get page", exc)
            return None
        self._recovered()
        if entry is not None and ttl_ms > 0:
            await self._local.set_page(index, project, entry, keep_seconds=ttl_ms / 1000)
        return entry

    @staticmethod
    async def _load_page(stored: _StoredPage) -> CachedPage:
        def parse() -> ProjectPage:
            body = stored.body
            listing = parse_page(
                body.content(), body.content_type, url=body.url, project=stored.name, body=body
            )
            return ProjectPage(
                name=stored.name,
                index="",
                listing=listing,
                etag=stored.etag,
                last_modified=stored.last_modified,
            )

        big = stored.body.size > _PARSE_OFF_LOOP_BYTES
        page = await asyncio.to_thread(parse) if big else parse()
        return CachedPage(page=page, fetched_at=stored.fetched_at)

    async def set_page(
        self, index: Index, project: str, entry: CachedPage, *, keep_seconds: float
    ) -> None:
        await self._local.set_page(index, project, entry, keep_seconds=keep_seconds)
        page = entry.page
        stored = _StoredPage(
            name=page.name,
            body=page.listing.body,
            etag=page.etag,
            last_modified=page.last_modified,
            fetched_at=entry.fetched_at,
        )
        self._write_behind("set page", page_key(index, project), stored, keep_seconds)

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
            values = await self._reads.values(list(wanted))
            # Without decode_responses, redis-py returns bytes, never str.
            decoded = [None if raw is None else _metadata_decoder.decode(raw) for raw in values]
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
        self._write_behind("set metadata", key, metadata, self._settings.metadata_ttl_seconds)

    def _write_behind(self, operation: str, key: str, value: Any, keep_seconds: float) -> None:
        """Queue ``value`` for Redis: the caller goes on at once, one task writes the queue."""
        if not self._ask_redis():
            return
        if len(self._pending) >= _MAX_PENDING_WRITES:
            self._skip("backlog")  # Redis takes writes slower than they come
            return
        self._pending.append(_Write(operation, key, value, keep_seconds))
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_pending())

    async def _write_pending(self) -> None:
        """Write the queue in pipelines (``_PIPELINE_WRITES`` values or ``_PIPELINE_BYTES``)
        until it is empty; while Redis is failing, what is queued is dropped (a cache write
        is never owed)."""
        try:
            while self._pending:
                commands: list[_StoreCommand] = []
                size = 0
                while self._pending and len(commands) < _PIPELINE_WRITES and size < _PIPELINE_BYTES:
                    command = self._command(self._pending.popleft())
                    if command is not None:
                        commands.append(command)
                        size += len(command.data)
                if commands and self._ask_redis():
                    await self._write(commands)
        finally:
            self._writer = None

    def _command(self, write: _Write) -> _StoreCommand | None:
        """``write`` encoded, with its budget window; ``None`` for a value over the cap."""
        settings = self._settings
        data = _encoder.encode(write.value)
        if len(data) > settings.max_value_bytes:
            self._skip("too big")
            return None
        keep_ms = max(1, int(write.keep_seconds * 1000))
        window = math.floor((time.time() + write.keep_seconds) / _BUDGET_WINDOW_SECONDS)
        window_end = (window + 1) * _BUDGET_WINDOW_SECONDS
        cost = len(data) + len(write.key) + _KEY_OVERHEAD_BYTES
        return _StoreCommand(write.operation, write.key, data, keep_ms, window, window_end, cost)

    async def _write(self, commands: Sequence[_StoreCommand]) -> None:
        try:
            answers = await self._store_all(commands)
        except _REDIS_FAILURES as exc:
            self._failed(commands[0].operation, exc)
            return
        for command, answer in zip(commands, answers, strict=True):
            # Redis's own maxmemory under noeviction (OOM) is full, not failing.
            if isinstance(answer, Exception) and not isinstance(
                answer, redis.exceptions.OutOfMemoryError
            ):
                self._failed(command.operation, answer)
                continue
            self._recovered()
            if answer == 1:
                self._full = False  # one writer: answers arrive in the order of the writes
            else:
                self._skip("full")

    async def _store_all(self, commands: Sequence[_StoreCommand]) -> list[Any]:
        """Per command: true when stored, 0 when the budget had no room, or the error Redis
        gave (an ``OutOfMemoryError`` under its own maxmemory). Room is reserved first, in one
        script run, and only the values given room are sent."""
        room = await self._reserve(commands) if self._settings.max_bytes > 0 else None
        async with self._redis.pipeline(transaction=False) as pipe:
            for position, command in enumerate(commands):
                if room is None or room[position] == 1:
                    pipe.set(command.key, command.data, px=command.keep_ms)
            stored = iter(await pipe.execute(raise_on_error=False))
        if room is None:
            return list(stored)
        return [next(stored) if answer == 1 else answer for answer in room]

    async def _reserve(self, commands: Sequence[_StoreCommand]) -> list[Any]:
        """The reserve script's answers for ``commands``; a Redis that lost its scripts (it
        restarted) is given the script again."""
        arguments: list[int | float] = [self._settings.max_bytes, time.time()]
        for command in commands:
            arguments += [command.window, command.window_end, command.cost, command.keep_ms]
        try:
            answers = await self._redis.evalsha(self._reserve_sha, 1, _BUDGET_KEY, *arguments)
        except redis.exceptions.NoScriptError:
            await self._redis.script_load(_RESERVE_SCRIPT)
            answers = await self._redis.evalsha(self._reserve_sha, 1, _BUDGET_KEY, *arguments)
        except redis.exceptions.OutOfMemoryError as exc:
            return [exc] * len(commands)
        return list(answers)

    async def flush(self) -> None:
        """Wait until the queued writes are written (tests, and ``aclose``)."""
        while self._writer is not None:
            await asyncio.wait([self._writer])

    async def aclose(self) -> None:
        try:
            async with asyncio.timeout(self._retry_seconds):
                await self.flush()
        except TimeoutError:
            self._pending.clear()
            if self._writer is not None:
                self._writer.cancel()
        await self._reads.aclose()
        await self._redis.aclose()
