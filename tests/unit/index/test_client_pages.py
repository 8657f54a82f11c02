"""``IndexClient.find_project_page`` against the real loopback index."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time

import pytest

from service.index import (
    FetchStats,
    FetchTimeoutError,
    HTTPStatusError,
    Index,
    IndexClient,
    IndexUnreachableError,
    MemoryPageCache,
    RedisPageCache,
    ResponseTooLargeError,
)
from service.settings import FetchLimits
from tests.indexserver import IndexServer, IndexSpec, Project, Release
from tests.unit.index.loopback import wait_until

SECRET = "s3cret"

CORP = IndexSpec(
    "corp",
    [
        Project(
            "Flask",
            [
                Release("3.0.0", requires=["click>=8"], requires_python=">=3.8"),
                Release("3.1.0", requires=["click>=8"], requires_python=">=3.9", sdist=True),
                Release("2.0.0", yanked="security"),
            ],
        )
    ],
)


def corp(
    server: IndexServer, spec: IndexSpec = CORP, auth: tuple[str, str] | str | None = None
) -> Index:
    return Index(name="corp", url=server.add_index(spec), auth=auth)


def with_userinfo(url: str, userinfo: str) -> str:
    return url.replace("http://", f"http://{userinfo}@", 1)


class TestPages:
    async def test_json_page_lists_every_file(
        self, index_server: IndexServer, client: IndexClient
    ) -> None:
        """A JSON index yields every file with its PEP 691/592/658 fields."""
        stats = FetchStats()
        page = await client.find_project_page(corp(index_server), "flask", stats=stats)
        assert page.name == "flask" and page.index == "corp"
        assert sorted(f.filename for f in page.files) == [
            "flask-2.0.0-py3-none-any.whl",
            "flask-3.0.0-py3-none-any.whl",
            "flask-3.1.0-py3-none-any.whl",
            "flask-3.1.0.tar.gz",
        ]
        by_name = {f.filename: f for f in page.files}
        assert by_name["flask-2.0.0-py3-none-any.whl"].yanked_reason == "security"
        assert by_name["flask-3.1.0-py3-none-any.whl"].requires_python == ">=3.9"
        assert by_name["flask-3.1.0-py3-none-any.whl"].core_metadata
        assert by_name["flask-3.1.0.tar.gz"].core_metadata is None
        assert page.etag
        assert (stats.requests, stats.responses) == (1, {("corp", 200): 1})
        await wait_until(lambda: len(index_server.requests) == 1)
        (record,) = index_server.requests
        assert record.headers["accept"].startswith("application/vnd.pypi.simple.v1+json")

    async def test_html_only_index_gives_the_same_files(
        self, index_server: IndexServer, client: IndexClient
    ) -> None:
        """An HTML index is parsed into the same files (without JSON-only fields)."""
        json_page = await client.find_project_page(corp(index_server), "flask")
        html_spec = IndexSpec("corp", CORP.projects, formats=("html",))
        html_page = await client.find_project_page(corp(index_server, html_spec), "flask")
        assert [(f.filename, f.url, f.hashes, f.yanked) for f in html_page.files] == [
            (f.filename, f.url, f.hashes, f.yanked) for f in json_page.files
        ]
        assert all(f.size is None for f in html_page.files)

    async def test_redirect_to_the_normalized_name_is_followed(
        self, index_server: IndexServer, client: IndexClient
    ) -> None:
        """A same-origin redirect is followed."""
        index = corp(index_server)
        await client.find_project_page(index, "Flask")
        await wait_until(lambda: len(index_server.requests) == 1)
        assert [r.path for r in index_server.requests] == ["/corp/simple/flask/"]
        index_server.clear_requests()
        index_server.inject("/corp/simple/flask/", status=301, headers={"Location": "./"}, times=0)
        index_server.inject(
            "/corp/simple/flask/",
            status=302,
            headers={"Location": f"{index_server.base_url}/corp/simple/Flask"},
            times=1,
        )
        page = await client.find_project_page(index, "flask")
        assert page.files
        await wait_until(lambda: len(index_server.requests) == 3)
        assert [(r.path, r.status) for r in index_server.requests] == [
            ("/corp/simple/flask/", 302),
            ("/corp/simple/Flask", 301),
            ("/corp/simple/flask/", 200),
        ]

    async def test_missing_project_is_a_404_status_error(
        self, index_server: IndexServer, client: IndexClient
    ) -> None:
        """The client reports a 404 as such; what it means is the resolver's call."""
        with pytest.raises(HTTPStatusError) as caught:
            await client.find_project_page(corp(index_server), "nosuch")
        error = caught.value
        assert (error.status, error.reason, error.index) == (404, "Not Found", "corp")
        assert error.url == f"{index_server.base_url}/corp/simple/nosuch/"

    async def test_problem_details_become_the_reason(
        self, index_server: IndexServer, client: IndexClient
    ) -> None:
        """An RFC 9457 body's title and detail are the reason."""
        index = corp(index_server)
        index_server.inject(
            "/corp/simple/*",
            status=403,
            body=json.dumps({"title": "Forbidden", "detail": "token lacks read:packages"}).encode(),
            headers={"Content-Type": "application/problem+json"},
        )
        with pytest.raises(HTTPStatusError) as caught:
            await client.find_project_page(index, "flask")
        assert caught.value.status == 403
        assert caught.value.reason == "Forbidden: token lacks read:packages"

    async def test_non_problem_body_gives_the_standard_phrase(
        self, index_server: IndexServer, client: IndexClient
    ) -> None:
        """Without problem+json the reason is the standard phrase, whatever the body says."""
        index = corp(index_server)
        index_server.inject("/corp/simple/*", status=403, body=b"<h1>go away</h1>")
        with pytest.raises(HTTPStatusError) as caught:
            await client.find_project_page(index, "flask")
        assert caught.value.reason == "Forbidden"

    async def test_named_by_url_index_reports_its_redacted_url(
        self, index_server: IndexServer, client: IndexClient
    ) -> None:
        """An index named by URL is reported by that URL, credentials redacted."""
        url = with_userinfo(index_server.add_index(CORP), f"user:{SECRET}")
        index = Index(name=url, url=url, named_by_url=True)
        page = await client.find_project_page(index, "flask")
        assert page.index == url.replace(SECRET, "****")


class TestAuth:
    async def test_configured_basic_auth_is_sent(
        self, index_server: IndexServer, client: IndexClient
    ) -> None:
        """``Index.auth`` as a pair authenticates with HTTP Basic."""
        spec = IndexSpec("corp", CORP.projects, basic_auth=("user", SECRET))
        page = await client.find_project_page(
            corp(index_server, spec, auth=("user", SECRET)), "flask"
        )
        assert page.files

    async def test_userinfo_in_the_index_url_is_sent_as_basic_auth(
        self, index_server: IndexServer, client: IndexClient
    ) -> None:
        """Credentials in the index URL become a header; no URL carries them further."""
        spec = IndexSpec("corp", CORP.projects, basic_auth=("user", SECRET))
        url = with_userinfo(index_server.add_index(spec), f"user:{SECRET}")
        page = await client.find_project_page(Index(name="corp", url=url), "flask")
        assert page.files
        assert all(SECRET not in f.url and "@" not in f.url for f in page.files)

    async def test_bearer_token_is_sent(
        self, index_server: IndexServer, client: IndexClient
    ) -> None:
        """``Index.auth`` as a string is a bearer token."""
        await client.find_project_page(corp(index_server, auth="tok-123"), "flask")
        await wait_until(lambda: len(index_server.requests) == 1)
        assert index_server.requests[0].headers["authorization"] == "Bearer tok-123"

    async def test_credentials_never_appear_in_errors_or_logs(
        self, index_server: IndexServer, client: IndexClient, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A rejected login's error names the index and URL but not the password."""
        caplog.set_level(logging.DEBUG)
        spec = IndexSpec("corp", CORP.projects, basic_auth=("user", "right"))
        url = with_userinfo(index_server.add_index(spec), f"user:{SECRET}")
        index = Index(name=url, url=url, named_by_url=True)
        with pytest.raises(HTTPStatusError) as caught:
            await client.find_project_page(index, "flask")
        error = caught.value
        assert error.status == 401
        assert error.index == url.replace(SECRET, "****")
        for text in (str(error), error.url, error.reason, error.index, repr(error), caplog.text):
            assert SECRET not in text

    async def test_unreachable_index_error_is_redacted(
        self, client: IndexClient, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Connection refused is IndexUnreachableError, after retries, without credentials."""
        caplog.set_level(logging.DEBUG)
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        url = f"http://user:{SECRET}@127.0.0.1:{port}/simple"
        stats = FetchStats()
        with pytest.raises(IndexUnreachableError) as caught:
            await client.find_project_page(
                Index(name=url, url=url, named_by_url=True), "flask", stats=stats
            )
        assert stats.requests == 3  # the first try and two retries
        assert SECRET not in str(caught.value) + caught.value.index + caught.value.url
        assert SECRET not in caplog.text


class TestRetries:
    async def test_503_is_retried_until_success(
        self, index_server: IndexServer, client: IndexClient
    ) -> None:
        """Server errors are retried with backoff; the final answer counts."""
        index = corp(index_server)
        index_server.inject("/corp/simple/flask/", status=503, times=2)
        stats = FetchStats()
        page = await client.find_project_page(index, "flask", stats=stats)
        assert page.files
        await wait_until(lambda: len(index_server.requests) == 3)
        assert [r.status for r in index_server.requests] == [503, 503, 200]
        assert stats.responses == {("corp", 503): 2, ("corp", 200): 1}

    async def test_persistent_5xx_is_a_status_error_after_retries(
        self, index_server: IndexServer, client: IndexClient
    ) -> None:
        """When retries run out, the last status is raised."""
        index = corp(index_server)
        index_server.inject("/corp/simple/flask/", status=502)
        with pytest.raises(HTTPStatusError) as caught:
            await client.find_project_page(index, "flask")
        assert (caught.value.status, caught.value.reason) == (502, "Bad Gateway")
        await wait_until(lambda: index_server.count("/corp/simple/flask/") == 3)

    async def test_client_errors_are_not_retried(
        self, index_server: IndexServer, client: IndexClient
    ) -> None:
        """A 4xx other than 429 is final at once."""
        index = corp(index_server)
        index_server.inject("/corp/simple/flask/", status=403)
        stats = FetchStats()
        with pytest.raises(HTTPStatusError):
            await client.find_project_page(index, "flask", stats=stats)
        assert stats.requests == 1

    async def test_429_waits_as_long_as_retry_after_says(
        self, index_server: IndexServer, client: IndexClient
    ) -> None:
        """Retry-After is honoured (the backoff alone would be ~10 ms here)."""
        index = corp(index_server)
        index_server.inject(
            "/corp/simple/flask/", status=429, headers={"Retry-After": "1"}, times=1
        )
        started = time.monotonic()
        page = await client.find_project_page(index, "flask")
        assert page.files
        assert time.monotonic() - started >= 0.95
        await wait_until(lambda: len(index_server.requests) == 2)
        assert [r.status for r in index_server.requests] == [429, 200]

    async def test_read_timeout_is_retried(
        self, index_server: IndexServer, limits: FetchLimits
    ) -> None:
        """A server that does not answer within the read timeout gets another try."""
        index = corp(index_server)
        index_server.inject("/corp/simple/flask/", delay=0.6, times=1)
        fast = FetchLimits(retries=1, backoff_base=0.01, read_timeout=0.3)
        async with IndexClient(fast) as client:
            page = await client.find_project_page(index, "flask")
        assert page.files
        await wait_until(lambda: index_server.count("/corp/simple/flask/") == 2)

    async def test_deadline_bounds_the_whole_fetch(self, index_server: IndexServer) -> None:
        """Retries included, a fetch ends at its deadline with FetchTimeoutError."""
        index = corp(index_server)
        index_server.inject("/corp/simple/flask/", status=503, delay=0.2)
        limits = FetchLimits(retries=50, backoff_base=0.01, fetch_deadline=0.5)
        started = time.monotonic()
        async with IndexClient(limits) as client:
            with pytest.raises(FetchTimeoutError) as caught:
                await client.find_project_page(index, "flask")
        assert time.monotonic() - started < 1.5
        assert caught.value.index == "corp"
        assert "0.5s deadline" in str(caught.value)


class TestSingleFlight:
    async def test_concurrent_calls_share_one_request(
        self, index_server: IndexServer, client: IndexClient
    ) -> None:
        """N callers asking for the same page at once cause one request."""
        index = corp(index_server)
        index_server.inject("/corp/simple/flask/", delay=0.2, times=1)
        stats = [FetchStats() for _ in range(10)]
        pages = await asyncio.gather(
            *(client.find_project_page(index, "Flask", stats=s) for s in stats)
        )
        assert len({id(page) for page in pages}) == 1
        assert sum(s.requests for s in stats) == 1
        assert sum(s.shared for s in stats) == 9

    async def test_errors_reach_every_waiter(
        self, index_server: IndexServer, client: IndexClient
    ) -> None:
        """The shared fetch's error is raised to each caller."""
        index = corp(index_server)
        index_server.inject("/corp/simple/flask/", status=410, delay=0.2)
        results = await asyncio.gather(
            *(client.find_project_page(index, "flask") for _ in range(5)), return_exceptions=True
        )
        assert all(isinstance(r, HTTPStatusError) and r.status == 410 for r in results)
        await wait_until(lambda: index_server.count("/corp/simple/flask/") == 1)

    async def test_a_cancelled_waiter_does_not_cancel_the_others(
        self, index_server: IndexServer, client: IndexClient
    ) -> None:
        """The fetch outlives the caller that started it."""
        index = corp(index_server)
        index_server.inject("/corp/simple/flask/", delay=0.3, times=1)
        first = asyncio.create_task(client.find_project_page(index, "flask"))
        await asyncio.sleep(0.05)
        second = asyncio.create_task(client.find_project_page(index, "flask"))
        await asyncio.sleep(0.05)
        first.cancel()
        page = await second
        assert page.files
        assert first.cancelled()
        await wait_until(lambda: index_server.count("/corp/simple/flask/") == 1)

    async def test_different_credentials_do_not_share(
        self, index_server: IndexServer, client: IndexClient
    ) -> None:
        """Fetches are shared only between callers with the same index identity."""
        url = index_server.add_index(CORP)
        index_server.inject("/corp/simple/flask/", delay=0.2, times=1)
        await asyncio.gather(
            client.find_project_page(Index(name="a", url=url, auth="one"), "flask"),
            client.find_project_page(Index(name="b", url=url, auth="two"), "flask"),
        )
        await wait_until(lambda: index_server.count("/corp/simple/flask/") == 2)


class TestCaching:
    async def test_fresh_page_is_served_from_the_cache(
        self, index_server: IndexServer, limits: FetchLimits
    ) -> None:
        """Within the TTL a page costs no request."""
        index = corp(index_server)
        stats = FetchStats()
        async with IndexClient(limits, cache=MemoryPageCache()) as client:
            first = await client.find_project_page(index, "flask", stats=stats)
            second = await client.find_project_page(index, "FLASK", stats=stats)
        assert first == second
        assert (stats.requests, stats.cache_hits) == (1, 1)

    async def test_a_fresh_page_can_be_peeked_at_and_a_stale_one_cannot(
        self, index_server: IndexServer
    ) -> None:
        """peek_project_page answers only from memory, only while fresh, and counts a hit."""
        index = corp(index_server)
        stats = FetchStats()
        async with IndexClient(FetchLimits(), cache=MemoryPageCache()) as client:
            assert client.peek_project_page(index, "flask") is None
            fetched = await client.find_project_page(index, "flask")
            assert client.peek_project_page(index, "Flask", stats=stats) == fetched
        assert stats.cache_hits == 1
        async with IndexClient(FetchLimits(page_ttl_seconds=0), cache=MemoryPageCache()) as client:
            await client.find_project_page(index, "flask")
            assert client.peek_project_page(index, "flask") is None

    async def test_stale_page_is_revalidated_with_its_etag(self, index_server: IndexServer) -> None:
        """After the TTL the page is revalidated; a 304 keeps the stored page."""
        index = corp(index_server)
        stats = FetchStats()
        limits = FetchLimits(page_ttl_seconds=0)
        async with IndexClient(limits, cache=MemoryPageCache()) as client:
            first = await client.find_project_page(index, "flask", stats=stats)
            second = await client.find_project_page(index, "flask", stats=stats)
        assert first == second
        assert (stats.requests, stats.revalidated, stats.cache_hits) == (2, 1, 0)
        await wait_until(lambda: len(index_server.requests) == 2)
        revalidation = index_server.requests[-1]
        assert revalidation.status == 304
        assert revalidation.headers["if-none-match"] == first.etag

    async def test_changed_page_replaces_the_stored_one(self, index_server: IndexServer) -> None:
        """A revalidation answered 200 brings the new listing."""
        index = corp(index_server)
        async with IndexClient(FetchLimits(page_ttl_seconds=0), cache=MemoryPageCache()) as client:
            before = await client.find_project_page(index, "flask")
            index_server.add_index(IndexSpec("corp", [Project("flask", [Release("9.0")])]))
            after = await client.find_project_page(index, "flask")
        assert [f.version for f in after.files] == ["9.0"]
        assert after.etag != before.etag

    async def test_redis_cache_serves_another_client(
        self,
        index_server: IndexServer,
        limits: FetchLimits,
        redis_cache: RedisPageCache,
        clean_redis: str,
    ) -> None:
        """A page cached in Redis by one client is a hit for another (another worker)."""
        index = corp(index_server)
        async with IndexClient(limits, cache=redis_cache) as client:
            first = await client.find_project_page(index, "flask")
        stats = FetchStats()
        second_cache = RedisPageCache.from_url(clean_redis)
        async with IndexClient(limits, cache=second_cache) as client:
            second = await client.find_project_page(index, "flask", stats=stats)
        assert second == first
        assert (stats.requests, stats.cache_hits) == (0, 1)

    async def test_cached_page_takes_the_callers_index_name(
        self, index_server: IndexServer, limits: FetchLimits
    ) -> None:
        """Two names for the same URL and credentials share the page, each seeing its own name."""
        url = index_server.add_index(CORP)
        async with IndexClient(limits, cache=MemoryPageCache()) as client:
            await client.find_project_page(Index(name="one", url=url), "flask")
            page = await client.find_project_page(Index(name="two", url=url), "flask")
        assert page.index == "two"


class TestBigPages:
    async def test_a_page_listing_more_files_than_the_cap_is_too_large(
        self, index_server: IndexServer
    ) -> None:
        """fetch.max_page_files ends the fetch in ResponseTooLargeError naming the setting."""
        index = corp(index_server)
        async with IndexClient(FetchLimits(max_page_files=3), cache=MemoryPageCache()) as client:
            with pytest.raises(ResponseTooLargeError) as caught:
                await client.find_project_page(index, "flask")
            assert client.peek_project_page(index, "flask") is None
        assert caught.value.setting == "fetch.max_page_files"
        assert "more than 3 files" in caught.value.message

    async def test_the_cached_page_parses_versions_not_files(
        self, index_server: IndexServer, limits: FetchLimits
    ) -> None:
        """A fetched page knows its versions; no version's files are made until asked for."""
        async with IndexClient(limits, cache=MemoryPageCache()) as client:
            page = await client.find_project_page(corp(index_server), "flask")
        assert [str(v) for v in page.versions] == ["3.1.0", "3.0.0", "2.0.0"]
        assert [f.filename for f in page.files_of(page.versions[1])] == [
            "flask-3.0.0-py3-none-any.whl"
        ]


class TestFlatPages:
    async def test_one_fetch_serves_every_project_of_a_flat_page(
        self, index_server: IndexServer, client: IndexClient
    ) -> None:
        """A flat index's page is fetched once for all the projects asked of it (at once or
        later), each page keeps only its project's files, with links resolved against the
        listing's URL; a project the page does not list has an empty page, not an error."""
        spec = IndexSpec("corp", [*CORP.projects, Project("click", [Release("8.1.7")])])
        index_server.add_index(spec)
        url = f"{index_server.base_url}/corp/files/"
        flat = Index(name="wheels", url=url, format="flat")
        flask, click = await asyncio.gather(
            client.find_project_page(flat, "flask"), client.find_project_page(flat, "Click")
        )
        missing = await client.find_project_page(flat, "tool")
        assert [f.filename for f in click.files] == ["click-8.1.7-py3-none-any.whl"]
        assert click.files[0].url == url + "click-8.1.7-py3-none-any.whl"
        assert sorted(f.version for f in flask.files) == ["2.0.0", "3.0.0", "3.1.0", "3.1.0"]
        assert missing.versions == ()
        await wait_until(lambda: len(index_server.requests) >= 1)
        assert index_server.count("/corp/files/") == 1
