"""The HTTP edge: body decoding and caps, trickling bodies, redirects, malformed answers.

These use ``StaticServer`` because each needs a response no well-formed index sends: a gzip
bomb, a body that trickles, a redirect to another origin, an unknown Content-Encoding, a page
dated by Last-Modified alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import threading
import zlib

import pytest

from service.index import (
    FetchStats,
    FetchTimeoutError,
    Index,
    IndexClient,
    InvalidResponseError,
    MemoryPageCache,
    RedisPageCache,
    ResponseTooLargeError,
)
from service.index.pages import MEDIA_JSON
from service.settings import FetchLimits
from tests.unit.index.loopback import StaticServer, wait_until

PAGE = json.dumps(
    {
        "meta": {"api-version": "1.1"},
        "name": "demo",
        "files": [{"filename": "demo-1.0.tar.gz", "url": "demo-1.0.tar.gz", "hashes": {}}],
    }
).encode()


def index_on(server: StaticServer) -> Index:
    return Index(name="static", url=f"{server.base_url}/simple")


class TestBodies:
    @pytest.mark.parametrize(
        ("encoding", "encode"),
        [
            ("gzip", gzip.compress),
            ("deflate", zlib.compress),
            ("deflate", lambda data: zlib.compress(data, wbits=-zlib.MAX_WBITS)),
        ],
        ids=["gzip", "deflate", "raw-deflate"],
    )
    async def test_compressed_pages_are_decoded(
        self, static_server: StaticServer, client: IndexClient, encoding: str, encode: object
    ) -> None:
        """gzip and deflate (zlib-wrapped or raw) pages decode to the same files; a gzipped
        one is kept as it was sent, the others compressed with zstd."""
        assert callable(encode)
        sent = encode(PAGE)
        static_server.add(
            "/simple/demo/", sent, content_type=MEDIA_JSON, headers={"Content-Encoding": encoding}
        )
        page = await client.find_project_page(index_on(static_server), "demo")
        assert [f.filename for f in page.files] == ["demo-1.0.tar.gz"]
        assert page.files[0].url == f"{static_server.base_url}/simple/demo/demo-1.0.tar.gz"
        body = page.listing.body
        assert (body.encoding, body.data == sent) == (
            ("gzip", True) if encoding == "gzip" else ("zstd", False)
        )

    async def test_a_gzip_kept_page_serves_another_client_from_redis(
        self, static_server: StaticServer, limits: FetchLimits, clean_redis: str
    ) -> None:
        """The gzip body goes to Redis as it came and parses again in another worker."""
        static_server.add(
            "/simple/demo/",
            gzip.compress(PAGE),
            content_type=MEDIA_JSON,
            headers={"Content-Encoding": "gzip"},
        )
        index = index_on(static_server)
        async with (
            contextlib.aclosing(RedisPageCache.from_url(clean_redis)) as cache,
            IndexClient(limits, cache=cache) as client,
        ):
            first = await client.find_project_page(index, "demo")
            await cache.flush()
        stats = FetchStats()
        async with (
            contextlib.aclosing(RedisPageCache.from_url(clean_redis)) as cache,
            IndexClient(limits, cache=cache) as client,
        ):
            second = await client.find_project_page(index, "demo", stats=stats)
        assert (stats.requests, stats.cache_hits) == (0, 1)
        assert second.listing.body.encoding == "gzip"
        assert second.files == first.files

    @pytest.mark.parametrize("gzipped", [False, True], ids=["plain", "gzip"])
    async def test_a_page_big_enough_to_parse_in_a_thread_parses_the_same(
        self, static_server: StaticServer, client: IndexClient, gzipped: bool
    ) -> None:
        """Pages over 128 KiB as sent are inflated and parsed off the event loop, to the same
        files."""
        files = [
            {"filename": f"demo-1.{n}.tar.gz", "url": f"demo-1.{n}.tar.gz", "hashes": {}}
            for n in range(40000)
        ]
        body = json.dumps({"meta": {"api-version": "1.1"}, "name": "demo", "files": files})
        sent = gzip.compress(body.encode()) if gzipped else body.encode()
        assert len(sent) > 128 * 1024
        static_server.add(
            "/simple/demo/",
            sent,
            content_type=MEDIA_JSON,
            headers={"Content-Encoding": "gzip"} if gzipped else {},
        )
        page = await client.find_project_page(index_on(static_server), "demo")
        assert [f.filename for f in page.files] == [f["filename"] for f in files]

    async def test_a_bomb_inflated_off_the_loop_stops_at_the_decoded_cap(
        self, static_server: StaticServer
    ) -> None:
        """A gzip body big enough to be inflated in a thread is held to the same cap."""
        bomb = gzip.compress(bytes(range(256)) * (2 * 1024 * 1024), compresslevel=1)
        assert len(bomb) > 128 * 1024
        static_server.add(
            "/simple/demo/", bomb, content_type=MEDIA_JSON, headers={"Content-Encoding": "gzip"}
        )
        async with IndexClient(FetchLimits(max_page_bytes=len(bomb) + 1)) as client:
            with pytest.raises(ResponseTooLargeError, match="-byte limit"):
                await client.find_project_page(index_on(static_server), "demo")

    async def test_gzip_bomb_stops_at_the_decoded_cap(self, static_server: StaticServer) -> None:
        """The page cap counts decoded bytes: 16 KiB on the wire inflating to 16 MiB is refused."""
        bomb = gzip.compress(b" " * (16 * 1024 * 1024), compresslevel=9)
        assert len(bomb) < 32 * 1024
        static_server.add(
            "/simple/demo/", bomb, content_type=MEDIA_JSON, headers={"Content-Encoding": "gzip"}
        )
        async with IndexClient(FetchLimits(max_page_bytes=1024 * 1024)) as client:
            with pytest.raises(ResponseTooLargeError, match="1048576-byte limit") as caught:
                await client.find_project_page(index_on(static_server), "demo")
        assert caught.value.index == "static"

    async def test_unknown_content_encoding_is_invalid(
        self, static_server: StaticServer, client: IndexClient
    ) -> None:
        """An encoding the client did not offer cannot be decoded."""
        static_server.add(
            "/simple/demo/", PAGE, content_type=MEDIA_JSON, headers={"Content-Encoding": "br"}
        )
        with pytest.raises(InvalidResponseError, match="unsupported Content-Encoding"):
            await client.find_project_page(index_on(static_server), "demo")

    async def test_corrupt_gzip_is_invalid(
        self, static_server: StaticServer, client: IndexClient
    ) -> None:
        """A body that is not the gzip it claims to be is an invalid response."""
        static_server.add(
            "/simple/demo/",
            b"not gzip",
            content_type=MEDIA_JSON,
            headers={"Content-Encoding": "gzip"},
        )
        with pytest.raises(InvalidResponseError, match="corrupt compressed body"):
            await client.find_project_page(index_on(static_server), "demo")

    @pytest.mark.parametrize("files", [1, 40000], ids=["on-loop", "in-thread"])
    async def test_a_gzip_page_cut_inside_its_stream_is_invalid(
        self, static_server: StaticServer, client: IndexClient, files: int
    ) -> None:
        """A page whose gzip stream stops early (complete as HTTP) is refused, not parsed as a
        page with fewer files."""
        entries = [
            {"filename": f"demo-1.{n}.tar.gz", "url": f"demo-1.{n}.tar.gz", "hashes": {}}
            for n in range(files)
        ]
        body = json.dumps({"meta": {"api-version": "1.1"}, "name": "demo", "files": entries})
        sent = gzip.compress(body.encode())
        static_server.add(
            "/simple/demo/",
            sent[: len(sent) * 3 // 4],
            content_type=MEDIA_JSON,
            headers={"Content-Encoding": "gzip"},
        )
        with pytest.raises(InvalidResponseError, match="ends before its compressed stream"):
            await client.find_project_page(index_on(static_server), "demo")

    async def test_gzip_metadata_cut_inside_its_stream_is_invalid(
        self, static_server: StaticServer, client: IndexClient
    ) -> None:
        """A PEP 658 file read as a stream is held to the same end: its dependencies would
        otherwise be cut off without a word."""
        metadata = b"Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n" + b"".join(
            f"Requires-Dist: dep{n}\n".encode() for n in range(2000)
        )
        page = {
            "meta": {"api-version": "1.1"},
            "name": "demo",
            "files": [
                {
                    "filename": "demo-1.0-py3-none-any.whl",
                    "url": "demo-1.0-py3-none-any.whl",
                    "hashes": {},
                    "core-metadata": True,
                }
            ],
        }
        static_server.add("/simple/demo/", json.dumps(page).encode(), content_type=MEDIA_JSON)
        sent = gzip.compress(metadata)
        static_server.add(
            "/simple/demo/demo-1.0-py3-none-any.whl.metadata",
            sent[: len(sent) // 2],
            content_type="application/octet-stream",
            headers={"Content-Encoding": "gzip"},
        )
        index = index_on(static_server)
        found = await client.find_project_page(index, "demo")
        with pytest.raises(InvalidResponseError, match="ends before its compressed stream"):
            await client.find_core_metadata(index, found.files[0])

    async def test_trickling_body_hits_the_deadline(self, static_server: StaticServer) -> None:
        """The deadline covers body streaming: steady trickles never trip the read timeout."""
        static_server.add("/simple/demo/", PAGE, content_type=MEDIA_JSON, trickle=0.05, chunk=8)
        limits = FetchLimits(fetch_deadline=0.5, read_timeout=1.0, retries=0)
        async with IndexClient(limits) as client:
            with pytest.raises(FetchTimeoutError, match="deadline"):
                await client.find_project_page(index_on(static_server), "demo")


class TestRequests:
    async def test_only_decodable_encodings_are_offered_and_no_cookie_is_kept(
        self, static_server: StaticServer, client: IndexClient
    ) -> None:
        """Every request offers gzip and deflate only (what the fetcher inflates), and a cookie
        one answer sets is not sent back with the next request."""
        static_server.add(
            "/simple/demo/",
            PAGE,
            content_type=MEDIA_JSON,
            headers={"Set-Cookie": "session=abc; Path=/", "Cache-Control": "no-store"},
        )
        index = index_on(static_server)
        await client.find_project_page(index, "demo")
        await client.find_project_page(index, "demo")
        first, second = static_server.served
        for served in (first, second):
            assert served.headers["accept-encoding"] == "gzip, deflate"
            assert served.headers["user-agent"].startswith("resolvd httpx/")
            assert served.headers["host"] == f"127.0.0.1:{static_server.port}"
        assert "cookie" not in second.headers


class TestAnswers:
    async def test_malformed_page_is_invalid(
        self, static_server: StaticServer, client: IndexClient
    ) -> None:
        """A JSON page that does not parse is InvalidResponseError naming index and URL."""
        static_server.add("/simple/demo/", b"{", content_type=MEDIA_JSON)
        with pytest.raises(InvalidResponseError, match="malformed JSON") as caught:
            await client.find_project_page(index_on(static_server), "demo")
        assert caught.value.url == f"{static_server.base_url}/simple/demo/"

    async def test_unexpected_content_type_is_invalid(
        self, static_server: StaticServer, client: IndexClient
    ) -> None:
        """A page served as something else (say a login page as text/plain) is invalid."""
        static_server.add("/simple/demo/", b"please log in", content_type="text/plain")
        with pytest.raises(InvalidResponseError, match="unsupported content type"):
            await client.find_project_page(index_on(static_server), "demo")

    async def test_redirect_to_another_origin_is_refused(
        self, static_server: StaticServer, client: IndexClient
    ) -> None:
        """Cross-origin redirects are not followed (credentials must not travel)."""
        static_server.add(
            "/simple/demo/",
            b"",
            status=302,
            headers={"Location": "http://localhost:9/simple/demo/"},
        )
        stats = FetchStats()
        with pytest.raises(InvalidResponseError, match="another origin"):
            await client.find_project_page(index_on(static_server), "demo", stats=stats)
        assert stats.requests == 1

    async def test_redirect_loops_end(
        self, static_server: StaticServer, client: IndexClient
    ) -> None:
        """A redirect loop stops after a few hops."""
        static_server.add("/simple/demo/", b"", status=307, headers={"Location": "/simple/demo/"})
        with pytest.raises(InvalidResponseError, match="more than 5 redirects"):
            await client.find_project_page(index_on(static_server), "demo")

    async def test_unexpected_success_status_is_invalid(
        self, static_server: StaticServer, client: IndexClient
    ) -> None:
        """A 3xx that is no redirect (here 304 to an unconditional GET) is invalid, not 'ok'."""
        static_server.add("/simple/demo/", b"", status=304)
        with pytest.raises(InvalidResponseError, match="unexpected status 304"):
            await client.find_project_page(index_on(static_server), "demo")


class TestRevalidation:
    async def test_last_modified_is_sent_back_as_if_modified_since(
        self, static_server: StaticServer
    ) -> None:
        """A page that came with Last-Modified (and no ETag) is revalidated by date."""
        stamp = "Wed, 21 Oct 2015 07:28:00 GMT"
        static_server.add(
            "/simple/demo/", PAGE, content_type=MEDIA_JSON, headers={"Last-Modified": stamp}
        )
        stats = FetchStats()
        async with IndexClient(FetchLimits(page_ttl_seconds=0), cache=MemoryPageCache()) as client:
            first = await client.find_project_page(index_on(static_server), "demo", stats=stats)
            static_server.add("/simple/demo/", b"", status=304)
            second = await client.find_project_page(index_on(static_server), "demo", stats=stats)
        assert first == second
        assert first.last_modified == stamp
        assert stats.revalidated == 1
        await wait_until(lambda: len(static_server.served) == 2)
        revalidation = static_server.served[1]
        assert revalidation.headers["if-modified-since"] == stamp
        assert "if-none-match" not in revalidation.headers


class TestStats:
    async def test_counts_from_threads_and_the_loop_are_never_lost(self) -> None:
        """The resolver thread counts cache hits while the loop counts requests: every
        increment lands."""
        stats = FetchStats()
        rounds = 20_000

        def hits() -> None:
            for _ in range(rounds):
                stats.count(cache_hits=1)

        threads = [threading.Thread(target=hits) for _ in range(3)]
        for thread in threads:
            thread.start()
        for number in range(rounds):
            stats.count(requests=1, cache_hits=1)
            stats.count_response("corp", 200)
            if number % 1000 == 0:
                await asyncio.sleep(0)
        for thread in threads:
            thread.join()
        assert stats.cache_hits == 4 * rounds
        assert stats.requests == rounds
        assert stats.responses[("corp", 200)] == rounds
