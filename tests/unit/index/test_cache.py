"""The ``PageCache`` contract, run against the memory store and a real Redis (the test database)."""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any, cast

import pytest
import redis
import redis.asyncio

from service.index import (
    CoreMetadata,
    DistFile,
    FetchStats,
    Index,
    MemoryPageCache,
    PageCache,
    ProjectPage,
    RedisPageCache,
    make_index_client,
)
from service.index import cache as cache_module
from service.index.cache import CachedPage
from service.index.pages import MEDIA_JSON, parse_page
from service.settings import CacheSettings, RedisSettings, Settings
from tests.indexserver import IndexServer, IndexSpec, Project, Release

SECRET = "s3cret"
INDEX = Index(name="corp", url="https://corp.example/simple", auth=("user", SECRET))


def dist_file(name: str = "demo-1.0-py3-none-any.whl", sha: str | None = "ab" * 32) -> DistFile:
    return DistFile(
        filename=name,
        url=f"https://corp.example/files/{name}",
        kind="wheel",
        version="1.0",
        hashes={} if sha is None else {"sha256": sha},
    )


def make_page(*files: DistFile) -> ProjectPage:
    """A page listing ``files``, parsed the way the client parses what an index sends."""
    content = json.dumps(
        {
            "meta": {"api-version": "1.1"},
            "files": [{"filename": f.filename, "url": f.url, "hashes": f.hashes} for f in files],
        }
    ).encode()
    listing = parse_page(
        content, MEDIA_JSON, url="https://corp.example/simple/demo/", project="demo"
    )
    return ProjectPage(name="demo", index="corp", listing=listing, etag='"e1"')


def same(found: CachedPage | None, expected: CachedPage) -> bool:
    """Whether ``found`` is ``expected`` as stored: the same body, validators and fetch time."""
    if found is None:
        return False
    page, wanted = found.page, expected.page
    return (page.name, page.etag, page.last_modified, page.listing.digest, page.files) == (
        wanted.name,
        wanted.etag,
        wanted.last_modified,
        wanted.listing.digest,
        wanted.files,
    ) and found.fetched_at == expected.fetched_at


PAGE = make_page(dist_file())
ENTRY = CachedPage(page=PAGE, fetched_at=1_700_000_000.0)
METADATA = CoreMetadata(name="demo", version="1.0", requires_dist=("click>=8",))


@pytest.fixture(params=["memory", "redis"])
async def cache(request: pytest.FixtureRequest) -> AsyncIterator[PageCache]:
    """Each contract test runs once per implementation."""
    if request.param == "memory":
        memory = MemoryPageCache()
        yield memory
        await memory.aclose()
    else:
        redis_cache = RedisPageCache.from_url(request.getfixturevalue("clean_redis"))
        yield redis_cache
        await redis_cache.aclose()


class TestContract:
    async def test_missing_entries_are_none(self, cache: PageCache) -> None:
        """An empty cache answers None for pages and metadata."""
        assert await cache.get_page(INDEX, "demo") is None
        assert await cache.get_metadata(INDEX, dist_file()) is None

    async def test_page_round_trip(self, cache: PageCache) -> None:
        """A stored page comes back equal, with its fetch time, ETag and Last-Modified."""
        await cache.set_page(INDEX, "demo", ENTRY, keep_seconds=60)
        assert same(await cache.get_page(INDEX, "demo"), ENTRY)

    async def test_pages_expire_after_keep_seconds(self, cache: PageCache) -> None:
        """A page is forgotten once its keep time passes."""
        await cache.set_page(INDEX, "demo", ENTRY, keep_seconds=0.1)
        await asyncio.sleep(0.2)
        assert await cache.get_page(INDEX, "demo") is None

    async def test_metadata_round_trip(self, cache: PageCache) -> None:
        """Stored metadata comes back equal."""
        await cache.set_metadata(INDEX, dist_file(), METADATA)
        assert await cache.get_metadata(INDEX, dist_file()) == METADATA

    async def test_metadata_is_keyed_by_sha256(self, cache: PageCache) -> None:
        """Another filename with the same digest is the same artifact."""
        await cache.set_metadata(INDEX, dist_file(), METADATA)
        assert await cache.get_metadata(INDEX, dist_file("renamed.whl")) == METADATA

    async def test_files_without_sha256_are_not_stored(self, cache: PageCache) -> None:
        """No digest, no key: nothing is stored."""
        await cache.set_metadata(INDEX, dist_file(sha=None), METADATA)
        assert await cache.get_metadata(INDEX, dist_file(sha=None)) is None

    async def test_get_many_aligns_with_the_files(self, cache: PageCache) -> None:
        """A batch read answers per file, in order, None for misses."""
        first, second, bare = (
            dist_file(sha="01" * 32),
            dist_file(sha="02" * 32),
            dist_file(sha=None),
        )
        await cache.set_metadata(INDEX, second, METADATA)
        assert await cache.get_many_metadata(INDEX, [first, second, bare]) == [None, METADATA, None]
        assert await cache.get_many_metadata(INDEX, []) == []

    async def test_entries_are_scoped_by_index_identity(self, cache: PageCache) -> None:
        """Other credentials or another URL do not see the entries."""
        await cache.set_page(INDEX, "demo", ENTRY, keep_seconds=60)
        await cache.set_metadata(INDEX, dist_file(), METADATA)
        for other in (
            Index(name="corp", url=INDEX.url, auth=("user", "other")),
            Index(name="corp", url=INDEX.url),
            Index(name="corp", url="https://mirror.example/simple", auth=INDEX.auth),
        ):
            assert await cache.get_page(other, "demo") is None
            assert await cache.get_metadata(other, dist_file()) is None
        renamed = Index(name="renamed", url=INDEX.url, auth=INDEX.auth)
        assert same(await cache.get_page(renamed, "demo"), ENTRY)

    async def test_peeks_see_what_this_process_stored(self, cache: PageCache) -> None:
        """What was stored here can be peeked at without I/O, from another thread too."""
        assert cache.peek_page(INDEX, "demo") is None
        assert cache.peek_metadata(INDEX, dist_file()) is None
        await cache.set_page(INDEX, "demo", ENTRY, keep_seconds=60)
        await cache.set_metadata(INDEX, dist_file(), METADATA)
        peeked = await asyncio.to_thread(
            lambda: (cache.peek_page(INDEX, "demo"), cache.peek_metadata(INDEX, dist_file()))
        )
        assert same(peeked[0], ENTRY)
        assert peeked[1] == METADATA
        assert cache.peek_page(Index(name="corp", url=INDEX.url), "demo") is None


class TestMemoryCache:
    async def test_least_recently_used_entries_are_dropped(self) -> None:
        """The store holds at most ``max_entries`` of each kind."""
        cache = MemoryPageCache(max_entries=2)
        for name in ("a", "b"):
            await cache.set_page(INDEX, name, ENTRY, keep_seconds=60)
        assert await cache.get_page(INDEX, "a") is not None  # "a" is now the freshest
        await cache.set_page(INDEX, "c", ENTRY, keep_seconds=60)
        assert [await cache.get_page(INDEX, n) is not None for n in "abc"] == [True, False, True]


class TestRedisCache:
    async def test_keys_and_values_hold_no_credentials(
        self, redis_cache: RedisPageCache, clean_redis: str
    ) -> None:
        """What lands in Redis is scoped by a digest, never by the secret itself."""
        await redis_cache.set_page(INDEX, "demo", ENTRY, keep_seconds=60)
        await redis_cache.set_metadata(INDEX, dist_file(), METADATA)
        await redis_cache.flush()
        connection = redis.asyncio.Redis.from_url(clean_redis)
        keys = sorted(cast("list[bytes]", await connection.keys("*")))
        values = [
            cast("bytes", await connection.get(key))
            for key in keys
            if await connection.type(key) == b"string"
        ]
        await connection.aclose()
        assert [key.decode().rsplit(":", 1)[0] for key in keys] == [
            "resolvd:cache:v2",
            f"resolvd:cache:v2:meta:{INDEX.identity}",
            f"resolvd:cache:v2:page:{INDEX.identity}",
        ]
        assert all(SECRET.encode() not in blob for blob in [*keys, *values])

    async def test_every_key_expires(self, redis_cache: RedisPageCache, clean_redis: str) -> None:
        """Pages after their keep time, metadata after cache.metadata_ttl_seconds, the budget's
        own count after the last key it counts: nothing the cache writes stays for ever."""
        await redis_cache.set_page(INDEX, "demo", ENTRY, keep_seconds=60)
        await redis_cache.set_metadata(INDEX, dist_file(), METADATA)
        await redis_cache.flush()
        connection = redis.asyncio.Redis.from_url(clean_redis)
        page_ttl = await connection.ttl(f"resolvd:cache:v2:page:{INDEX.identity}:demo")
        meta_ttl = await connection.ttl(f"resolvd:cache:v2:meta:{INDEX.identity}:{'ab' * 32}")
        budget_ttl = await connection.ttl("resolvd:cache:v2:budget")
        await connection.aclose()
        assert 0 < page_ttl <= 60
        assert 0 < meta_ttl <= CacheSettings().metadata_ttl_seconds
        assert budget_ttl > meta_ttl

    async def test_another_process_sees_the_entries(
        self, redis_cache: RedisPageCache, clean_redis: str
    ) -> None:
        """A second cache on the same Redis (another worker) reads what the first stored."""
        await redis_cache.set_page(INDEX, "demo", ENTRY, keep_seconds=60)
        await redis_cache.set_metadata(INDEX, dist_file(), METADATA)
        await redis_cache.flush()
        other = RedisPageCache.from_url(clean_redis)
        try:
            # Peeking never asks Redis: only a read brings the entry into this process.
            assert other.peek_page(INDEX, "demo") is None
            assert same(await other.get_page(INDEX, "demo"), ENTRY)
            assert same(other.peek_page(INDEX, "demo"), ENTRY)
            assert await other.get_many_metadata(INDEX, [dist_file()]) == [METADATA]
        finally:
            await other.aclose()

    async def test_corrupt_values_read_as_misses(
        self, redis_cache: RedisPageCache, clean_redis: str
    ) -> None:
        """A value that does not decode is a miss, not an error."""
        connection = redis.asyncio.Redis.from_url(clean_redis)
        await connection.set(f"resolvd:cache:v2:page:{INDEX.identity}:demo", b"\xc1garbage")
        await connection.aclose()
        assert await redis_cache.get_page(INDEX, "demo") is None

    async def test_reads_of_one_turn_share_a_round_trip(
        self, redis_cache: RedisPageCache, clean_redis: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Pages and metadata asked for together reach Redis in one pipeline, and each reader
        gets its own answer: hits, misses, and each metadata list in its own order."""
        files = [dist_file(sha=f"{n:064x}") for n in range(4)]
        for name in ("a", "b", "c"):
            await redis_cache.set_page(INDEX, name, ENTRY, keep_seconds=60)
        for file in files[:3]:
            await redis_cache.set_metadata(INDEX, file, METADATA)
        await redis_cache.flush()
        reader = RedisPageCache.from_url(clean_redis)
        pipelines = 0
        make_pipeline = reader._redis.pipeline

        def counted(*args: Any, **kwargs: Any) -> Any:
            nonlocal pipelines
            pipelines += 1
            return make_pipeline(*args, **kwargs)

        monkeypatch.setattr(reader._redis, "pipeline", counted)
        try:
            *pages, first, second = await asyncio.gather(
                *(reader.get_page(INDEX, name) for name in ("a", "b", "missing", "c")),
                reader.get_many_metadata(INDEX, [files[3], files[0]]),
                reader.get_many_metadata(INDEX, [files[2], files[1]]),
            )
        finally:
            await reader.aclose()
        assert pipelines == 1
        assert [page is not None and same(page, ENTRY) for page in pages] == [
            True,
            True,
            False,
            True,
        ]
        assert (first, second) == ([None, METADATA], [METADATA, METADATA])

    async def test_a_reader_that_gives_up_leaves_the_read_to_the_others(
        self, redis_cache: RedisPageCache, clean_redis: str
    ) -> None:
        """Two readers of one page share its read; cancelling one does not cancel it."""
        await redis_cache.set_page(INDEX, "demo", ENTRY, keep_seconds=60)
        await redis_cache.flush()
        reader = RedisPageCache.from_url(clean_redis)
        try:
            leaving = asyncio.create_task(reader.get_page(INDEX, "demo"))
            staying = asyncio.create_task(reader.get_page(INDEX, "demo"))
            await asyncio.sleep(0)  # both have asked
            leaving.cancel()
            assert same(await staying, ENTRY)
            assert leaving.cancelled()
        finally:
            await reader.aclose()

    async def test_writes_land_after_redis_forgot_its_script(
        self, redis_cache: RedisPageCache, clean_redis: str
    ) -> None:
        """A restarted Redis has no scripts: the reserve script is loaded again and the write
        lands, with no error counted."""
        connection = redis.asyncio.Redis.from_url(clean_redis)
        try:
            await connection.script_flush()
            await redis_cache.set_metadata(INDEX, dist_file(), METADATA)
            await redis_cache.flush()
            stored = await connection.exists(f"resolvd:cache:v2:meta:{INDEX.identity}:{'ab' * 32}")
        finally:
            await connection.aclose()
        assert stored == 1
        assert redis_cache.errors == 0

    async def test_a_burst_of_writes_lands_whole(
        self, redis_cache: RedisPageCache, clean_redis: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Writes queued faster than Redis takes them go in several pipelines, cut by count
        and by bytes, and every one lands."""
        monkeypatch.setattr(cache_module, "_PIPELINE_BYTES", 100_000)  # about two values
        files = [dist_file(sha=f"{n:064x}") for n in range(40)]
        for n, file in enumerate(files):
            metadata = big_metadata(n) if n % 4 == 0 else METADATA
            await redis_cache.set_metadata(INDEX, file, metadata)
        await redis_cache.flush()
        reader = RedisPageCache.from_url(clean_redis)
        try:
            found = await reader.get_many_metadata(INDEX, files)
        finally:
            await reader.aclose()
        assert [m is not None and m.version == "1.0" for m in found] == [True] * len(files)
        assert redis_cache.errors == redis_cache.skipped == 0

    async def test_writes_beyond_the_backlog_are_skipped(
        self, redis_cache: RedisPageCache, clean_redis: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """While Redis stalls, at most _MAX_PENDING_WRITES wait; the rest are skipped, not
        held, and what waited lands once Redis answers."""
        monkeypatch.setattr(cache_module, "_MAX_PENDING_WRITES", 2)
        connection = redis.asyncio.Redis.from_url(clean_redis)
        files = [dist_file(sha=f"{n:064x}") for n in range(10)]
        try:
            await redis_cache.set_metadata(INDEX, files[0], METADATA)
            await redis_cache.flush()
            await connection.client_pause(300, all=False)
            for file in files[1:]:
                await redis_cache.set_metadata(INDEX, file, METADATA)
            await redis_cache.flush()
            stored = len(await connection.keys("*:meta:*"))
        finally:
            await connection.aclose()
        assert redis_cache.skipped == len(files) - stored
        assert stored == 3
        assert redis_cache.errors == 0

    async def test_unreachable_redis_is_a_miss_logged_once(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Every operation degrades to a miss; one warning, with the password redacted."""
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        cache = RedisPageCache.from_url(f"redis://:{SECRET}@127.0.0.1:{port}/0", timeout=0.5)
        try:
            await cache.set_page(INDEX, "demo", ENTRY, keep_seconds=60)
            await cache.set_metadata(INDEX, dist_file(), METADATA)
            # The front LRU still answers what this process stored.
            assert same(await cache.get_page(INDEX, "demo"), ENTRY)
            assert await cache.get_page(INDEX, "other") is None
            assert await cache.get_many_metadata(INDEX, [dist_file(sha="03" * 32)]) == [None]
        finally:
            await cache.aclose()
        warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert len(warnings) == 1
        assert SECRET not in caplog.text
        assert f"127.0.0.1:{port}" in caplog.text


class TestMakeIndexClient:
    async def test_reachable_redis_gives_a_redis_cache(
        self, redis_cache: RedisPageCache, clean_redis: str, index_server: IndexServer
    ) -> None:
        """With Redis up, the client caches pages there."""
        url = index_server.add_index(IndexSpec("corp", [Project("demo", [Release("1.0")])]))
        settings = Settings(redis=RedisSettings(cache_url=clean_redis))
        async with make_index_client(settings) as client:
            await client.find_project_page(Index(name="corp", url=url), "demo")
        assert await redis_cache.get_page(Index(name="corp", url=url), "demo") is not None

    async def test_unreachable_redis_falls_back_to_memory_with_one_warning(
        self, caplog: pytest.LogCaptureFixture, index_server: IndexServer
    ) -> None:
        """With Redis down: one warning (redacted), and pages still cached in process."""
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        url = index_server.add_index(IndexSpec("corp", [Project("demo", [Release("1.0")])]))
        settings = Settings(redis=RedisSettings(url=f"redis://:{SECRET}@127.0.0.1:{port}/0"))
        stats = FetchStats()
        async with make_index_client(settings) as client:
            for _ in range(2):
                await client.find_project_page(Index(name="corp", url=url), "demo", stats=stats)
        assert (stats.requests, stats.cache_hits) == (1, 1)
        assert [r.levelno for r in caplog.records if r.levelno >= logging.WARNING] == [
            logging.WARNING
        ]
        assert "unreachable" in caplog.text
        assert SECRET not in caplog.text


@pytest.fixture
def own_redis() -> Iterator[str]:
    """A throwaway redis-server of this test's own (its memory limits are the test's to set)."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        probe = redis.Redis.from_url(url, socket_connect_timeout=0.5)
        deadline = time.monotonic() + 10
        while True:
            try:
                probe.ping()
                break
            except redis.RedisError:
                if time.monotonic() > deadline:
                    pytest.fail("the throwaway redis-server did not start")
                time.sleep(0.05)
        probe.close()
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)


def big_metadata(n: int) -> CoreMetadata:
    """Metadata of about 40 kB that does not compress away (msgpack stores it as is)."""
    return CoreMetadata(
        name="demo", version="1.0", requires_dist=tuple(f"dep{n}-{i}>={i}" for i in range(2500))
    )


class TestWhenFull:
    """The cache never fills its Redis: a full cache stores nothing more, and jobs go on."""

    async def test_the_byte_budget_stops_new_writes_and_reads_go_on(
        self, own_redis: str, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Past cache.max_bytes nothing is stored (one warning); what was stored still reads."""
        settings = CacheSettings(max_bytes=200_000)
        cache = RedisPageCache.from_url(own_redis, settings=settings)
        files = [dist_file(sha=f"{n:064x}") for n in range(10)]
        try:
            for n, file in enumerate(files):
                await cache.set_metadata(INDEX, file, big_metadata(n))
            await cache.flush()
            reader = RedisPageCache.from_url(own_redis, settings=settings)
            found = await reader.get_many_metadata(INDEX, files)
            await reader.aclose()
        finally:
            await cache.aclose()
        stored = [metadata is not None for metadata in found]
        assert 2 <= sum(stored) < len(files)
        assert cache.skipped == len(files) - sum(stored)
        assert cache.errors == 0
        assert [r.getMessage() for r in caplog.records if "is full" in r.getMessage()] != []
        assert len([r for r in caplog.records if r.levelno >= logging.WARNING]) == 1

    async def test_values_over_the_cap_are_not_stored(self, own_redis: str) -> None:
        """A value above cache.max_value_bytes is left out; smaller ones are stored."""
        cache = RedisPageCache.from_url(own_redis, settings=CacheSettings(max_value_bytes=10_000))
        small, big = dist_file(sha="01" * 32), dist_file(sha="02" * 32)
        try:
            await cache.set_metadata(INDEX, small, METADATA)
            await cache.set_metadata(INDEX, big, big_metadata(0))
            await cache.flush()
            connection = redis.asyncio.Redis.from_url(own_redis)
            sizes = [await connection.strlen(key) for key in await connection.keys("*:meta:*")]
            await connection.aclose()
        finally:
            await cache.aclose()
        assert len(sizes) == 1
        assert max(sizes) <= 10_000
        assert cache.skipped == 1

    async def test_redis_refusing_writes_under_noeviction_is_full_not_down(
        self, own_redis: str
    ) -> None:
        """Redis's own maxmemory (OOM errors) stops writes as the budget does; reads go on."""
        connection = redis.asyncio.Redis.from_url(own_redis)
        used = int((await connection.info("memory"))["used_memory"])
        await connection.config_set("maxmemory-policy", "noeviction")
        await connection.config_set("maxmemory", str(used + 2_000_000))
        cache = RedisPageCache.from_url(own_redis, settings=CacheSettings(max_bytes=0))
        files = [dist_file(sha=f"{n:064x}") for n in range(80)]
        try:
            for n, file in enumerate(files):
                await cache.set_metadata(INDEX, file, big_metadata(n))
                await cache.flush()  # one at a time: 80 writes at once are 80 input buffers
            stored = await connection.keys("*:meta:*")
            reader = RedisPageCache.from_url(own_redis)
            found = await reader.get_many_metadata(INDEX, files)
            await reader.aclose()
        finally:
            await cache.aclose()
            await connection.aclose()
        assert 0 < len(stored) < len(files)
        assert sum(metadata is not None for metadata in found) == len(stored)
        assert cache.skipped == len(files) - len(stored)
        assert cache.errors == 0

    async def test_a_fetch_does_not_wait_for_redis_to_store_its_page(self, own_redis: str) -> None:
        """set_page returns once this process holds the page, while Redis is paused."""
        cache = RedisPageCache.from_url(own_redis)
        connection = redis.asyncio.Redis.from_url(own_redis)
        try:
            await connection.client_pause(800, all=False)
            started = time.monotonic()
            await cache.set_page(INDEX, "demo", ENTRY, keep_seconds=60)
            returned = time.monotonic() - started
            assert same(cache.peek_page(INDEX, "demo"), ENTRY)
            await cache.flush()
            assert await connection.exists(f"resolvd:cache:v2:page:{INDEX.identity}:demo")
        finally:
            await cache.aclose()
            await connection.aclose()
        assert returned < 0.5
