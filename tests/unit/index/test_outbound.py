"""Outbound safety: which addresses fetches dial, and where redirects may lead.

The resolver seam stands in for DNS only where a real resolver cannot be made to lie on cue
(answers that change between lookups, answers into the metadata network); the connections
themselves are real, to loopback servers. Hosts under ``.invalid`` (RFC 6761) never resolve
through the system, so a fetch that reaches the server proves it dialled the validated address.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import msgspec
import pytest

from service.index import FetchStats, Index, IndexClient, IndexUnreachableError
from service.index.errors import BlockedAddressError, InvalidResponseError
from service.index.outbound import AddressPolicy, make_guarded_transport
from service.index.pages import MEDIA_JSON
from service.settings import DEFAULT_BLOCKED_NETWORKS, FetchLimits, SettingsError, load_settings
from tests.unit.index.loopback import StaticServer

PAGE = json.dumps(
    {
        "meta": {"api-version": "1.1"},
        "name": "demo",
        "files": [{"filename": "demo-1.0.tar.gz", "url": "demo-1.0.tar.gz", "hashes": {}}],
    }
).encode()

LIMITS = FetchLimits(retries=2, backoff_base=0.01, fetch_deadline=5.0, read_timeout=2.0)


class ScriptedDNS:
    """Answers lookups from a script, one answer list per lookup (the last one repeats)."""

    def __init__(self, *answers: list[str]) -> None:
        self._answers = list(answers)
        self.lookups: list[tuple[str, int]] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.lookups.append((host, port))
        return self._answers.pop(0) if len(self._answers) > 1 else self._answers[0]


def _port(server: StaticServer) -> int:
    return int(server.base_url.rsplit(":", 1)[1])


def _client(dns: ScriptedDNS, limits: FetchLimits = LIMITS, dns_ttl: float = 60.0) -> IndexClient:
    transport = make_guarded_transport(limits.blocked_networks, resolve=dns, dns_ttl=dns_ttl)
    return IndexClient(limits, transport=transport)


@pytest.fixture
def second_server() -> Iterator[StaticServer]:
    with StaticServer() as server:
        yield server


class TestAddressPolicy:
    @pytest.mark.parametrize(
        ("address", "allowed"),
        [
            ("127.0.0.1", True),
            ("10.1.2.3", True),
            ("192.168.0.10", True),
            ("::1", True),
            ("2001:db8::1", True),
            ("169.254.169.254", False),
            ("::ffff:169.254.169.254", False),
            ("fd00:ec2::254", False),
            ("fe80::1%eth0", False),
            ("0.0.0.0", False),
            ("224.0.0.251", False),
            ("255.255.255.255", False),
            ("::", False),
        ],
    )
    def test_the_default_policy_blocks_metadata_and_non_unicast_networks(
        self, address: str, allowed: bool
    ) -> None:
        """Loopback and private mirrors stay reachable; metadata, link-local and such do not."""
        assert AddressPolicy(DEFAULT_BLOCKED_NETWORKS).allows(address) is allowed


class TestPinnedConnections:
    async def test_a_host_is_dialled_at_the_address_that_was_validated(
        self, static_server: StaticServer
    ) -> None:
        """The connection goes to the checked answer; the Host header keeps the name."""
        static_server.add("/simple/demo/", PAGE, content_type=MEDIA_JSON)
        dns = ScriptedDNS(["127.0.0.1"])
        port = _port(static_server)
        index = Index(name="mirror", url=f"http://mirror.invalid:{port}/simple")
        async with _client(dns) as client:
            page = await client.find_project_page(index, "demo")
        assert [f.filename for f in page.files] == ["demo-1.0.tar.gz"]
        assert dns.lookups == [("mirror.invalid", port)]
        assert static_server.served[0].headers["host"] == f"mirror.invalid:{port}"

    async def test_a_host_resolving_into_a_blocked_network_is_never_dialled(self) -> None:
        """A metadata address is refused at once: typed, named, and not retried."""
        dns = ScriptedDNS(["169.254.169.254"])
        index = Index(name="evil", url="http://evil.invalid/simple")
        stats = FetchStats()
        async with _client(dns) as client:
            with pytest.raises(BlockedAddressError) as caught:
                await client.find_project_page(index, "demo", stats=stats)
        assert isinstance(caught.value, IndexUnreachableError)
        assert "169.254.169.254" in caught.value.message
        assert "fetch.blocked_networks" in caught.value.message
        assert len(dns.lookups) == 1
        assert stats.requests == 1

    async def test_rebinding_between_connections_is_caught(
        self, static_server: StaticServer
    ) -> None:
        """Every new connection is checked again: a second answer into metadata is refused
        (here every connection asks DNS: no answer is cached)."""
        static_server.add(
            "/simple/demo/", PAGE, content_type=MEDIA_JSON, headers={"Connection": "close"}
        )
        dns = ScriptedDNS(["127.0.0.1"], ["169.254.169.254"])
        index = Index(name="mirror", url=f"http://mirror.invalid:{_port(static_server)}/simple")
        async with _client(dns, dns_ttl=0) as client:
            await client.find_project_page(index, "demo")
            with pytest.raises(BlockedAddressError):
                await client.find_project_page(Index(name="mirror2", url=index.url), "demo")
        assert len(static_server.served) == 1

    async def test_one_blocked_answer_condemns_the_host(self, static_server: StaticServer) -> None:
        """A mix of good and blocked answers is refused whole, so no retry can land badly."""
        static_server.add("/simple/demo/", PAGE, content_type=MEDIA_JSON)
        dns = ScriptedDNS(["127.0.0.1", "::ffff:169.254.169.254"])
        index = Index(name="mirror", url=f"http://mirror.invalid:{_port(static_server)}/simple")
        async with _client(dns) as client:
            with pytest.raises(BlockedAddressError):
                await client.find_project_page(index, "demo")
        assert static_server.served == []

    async def test_address_literals_are_checked_without_a_lookup(self) -> None:
        """A URL naming a blocked address directly is refused before any connection."""
        dns = ScriptedDNS(["127.0.0.1"])
        async with _client(dns) as client:
            with pytest.raises(BlockedAddressError, match=r"169\.254\.169\.254"):
                await client.find_project_page(
                    Index(name="meta", url="http://169.254.169.254/simple"), "demo"
                )
        assert dns.lookups == []

    async def test_the_default_client_enforces_the_configured_networks(
        self, static_server: StaticServer
    ) -> None:
        """Without a test transport, the client dials through the guard: an operator may
        close loopback too."""
        static_server.add("/simple/demo/", PAGE, content_type=MEDIA_JSON)
        limits = FetchLimits(retries=0, blocked_networks=("127.0.0.0/8", "::1/128"))
        async with IndexClient(limits) as client:
            with pytest.raises(BlockedAddressError):
                await client.find_project_page(
                    Index(name="local", url=f"{static_server.base_url}/simple"), "demo"
                )
        assert static_server.served == []


class TestDNSCache:
    async def test_a_burst_of_connections_makes_one_lookup(
        self, static_server: StaticServer
    ) -> None:
        """Concurrent new connections to one host share one lookup; later ones reuse it."""
        for number in range(8):
            static_server.add(
                f"/simple/p{number}/",
                PAGE,
                content_type=MEDIA_JSON,
                headers={"Connection": "close"},
            )
        dns = ScriptedDNS(["127.0.0.1"])
        index = Index(name="mirror", url=f"http://mirror.invalid:{_port(static_server)}/simple")
        async with _client(dns) as client:
            await asyncio.gather(*(client.find_project_page(index, f"p{n}") for n in range(8)))
            await client.find_project_page(Index(name="again", url=index.url), "p0")
        assert dns.lookups == [("mirror.invalid", _port(static_server))]
        assert len(static_server.served) == 9

    async def test_answers_expire_after_the_ttl(self, static_server: StaticServer) -> None:
        """A cached answer is used for dns_ttl seconds at most: then DNS is asked again, and
        its new answer checked like the first."""
        static_server.add(
            "/simple/demo/", PAGE, content_type=MEDIA_JSON, headers={"Connection": "close"}
        )
        dns = ScriptedDNS(["127.0.0.1"], ["169.254.169.254"])
        index = Index(name="mirror", url=f"http://mirror.invalid:{_port(static_server)}/simple")
        async with _client(dns, dns_ttl=0.2) as client:
            await client.find_project_page(index, "demo")
            await client.find_project_page(Index(name="m2", url=index.url), "demo")
            await asyncio.sleep(0.3)
            with pytest.raises(BlockedAddressError):
                await client.find_project_page(Index(name="m3", url=index.url), "demo")
        assert len(dns.lookups) == 2
        assert len(static_server.served) == 2

    async def test_failed_lookups_are_not_cached(self, static_server: StaticServer) -> None:
        static_server.add("/simple/demo/", PAGE, content_type=MEDIA_JSON)
        answers: list[list[str] | OSError] = [OSError("temporary failure"), ["127.0.0.1"]]

        async def flaky(host: str, port: int) -> list[str]:
            answer = answers.pop(0)
            if isinstance(answer, OSError):
                raise answer
            return answer

        transport = make_guarded_transport(LIMITS.blocked_networks, resolve=flaky)
        index = Index(name="mirror", url=f"http://mirror.invalid:{_port(static_server)}/simple")
        async with IndexClient(LIMITS, transport=transport) as client:
            page = await client.find_project_page(index, "demo")
        assert page.files and answers == []


class TestConnectionPool:
    """The pool places requests in linear time (``_LeanAssignment``) with httpcore's rules."""

    async def test_sequential_requests_reuse_one_connection(
        self, static_server: StaticServer
    ) -> None:
        """Keep-alive: five requests in a row dial once (dns_ttl=0: one lookup per dial)."""
        static_server.add("/simple/demo/", PAGE, content_type=MEDIA_JSON)
        dns = ScriptedDNS(["127.0.0.1"])
        url = f"http://mirror.invalid:{_port(static_server)}/simple"
        async with _client(dns, dns_ttl=0) as client:
            for number in range(5):
                await client.find_project_page(Index(name=f"m{number}", url=url), "demo")
        assert len(static_server.served) == 5
        assert len(dns.lookups) == 1

    async def test_a_connection_the_server_closed_is_not_reused(
        self, static_server: StaticServer
    ) -> None:
        """An idle connection the server hung up on is dropped and a new one dialled."""
        static_server.add(
            "/simple/demo/", PAGE, content_type=MEDIA_JSON, headers={"Connection": "close"}
        )
        dns = ScriptedDNS(["127.0.0.1"])
        url = f"http://mirror.invalid:{_port(static_server)}/simple"
        async with _client(dns, dns_ttl=0) as client:
            for number in range(3):
                page = await client.find_project_page(Index(name=f"m{number}", url=url), "demo")
                assert page.files
        assert len(dns.lookups) == 3

    async def test_idle_connections_are_bounded(self, static_server: StaticServer) -> None:
        """After a burst wider than the idle bound, no more than the bound stay pooled."""
        for number in range(48):
            static_server.add(f"/simple/p{number}/", PAGE, content_type=MEDIA_JSON)
        dns = ScriptedDNS(["127.0.0.1"])
        transport = make_guarded_transport(LIMITS.blocked_networks, resolve=dns)
        index = Index(name="mirror", url=f"http://mirror.invalid:{_port(static_server)}/simple")
        limits = msgspec.structs.replace(LIMITS, max_connections_per_index=48)
        async with IndexClient(limits, transport=transport) as client:
            await asyncio.gather(*(client.find_project_page(index, f"p{n}") for n in range(48)))
            await client.find_project_page(Index(name="again", url=index.url), "p0")
            pools = [route._pool for route in transport._routes.values()]  # type: ignore[attr-defined]
            assert pools and all(len(pool.connections) <= 32 for pool in pools)


def _redirect(index_server: StaticServer, cdn: StaticServer) -> None:
    """The index answers its project page with a 302 to the same page on ``cdn``."""
    cdn.add("/cdn/demo/", PAGE, content_type=MEDIA_JSON)
    index_server.add(
        "/simple/demo/", b"", status=302, headers={"Location": f"{cdn.base_url}/cdn/demo/"}
    )


class TestRedirects:
    async def test_a_redirect_to_a_listed_origin_is_followed_without_credentials(
        self, static_server: StaticServer, second_server: StaticServer
    ) -> None:
        """fetch.redirect_origins admits a CDN; the index's credentials stay at the index."""
        _redirect(static_server, second_server)
        limits = FetchLimits(retries=0, redirect_origins=(second_server.base_url,))
        index = Index(
            name="corp", url=f"{static_server.base_url}/simple", auth=("user", "s3cret-pw")
        )
        async with IndexClient(limits) as client:
            page = await client.find_project_page(index, "demo")
        assert [f.filename for f in page.files] == ["demo-1.0.tar.gz"]
        assert static_server.served[0].headers["authorization"].startswith("Basic ")
        assert "authorization" not in second_server.served[0].headers

    async def test_a_redirect_to_an_unlisted_origin_is_refused(
        self, static_server: StaticServer, second_server: StaticServer
    ) -> None:
        """Another port on the same host is another origin, and is not followed."""
        _redirect(static_server, second_server)
        async with IndexClient(FetchLimits(retries=0)) as client:
            with pytest.raises(InvalidResponseError, match=r"redirect_origins"):
                await client.find_project_page(
                    Index(name="corp", url=f"{static_server.base_url}/simple"), "demo"
                )
        assert second_server.served == []


class TestSettings:
    def test_list_valued_fetch_keys_take_comma_separated_environment_values(self) -> None:
        """RESOLVD_FETCH_BLOCKED_NETWORKS replaces the defaults, like the other list keys."""
        settings = load_settings(
            environ={
                "RESOLVD_FETCH_BLOCKED_NETWORKS": "169.254.0.0/16, 10.0.0.0/8",
                "RESOLVD_FETCH_REDIRECT_ORIGINS": "https://cdn.example",
            }
        )
        assert settings.fetch.blocked_networks == ("169.254.0.0/16", "10.0.0.0/8")
        assert settings.fetch.redirect_origins == ("https://cdn.example",)

    @pytest.mark.parametrize(
        ("key", "value", "message"),
        [
            ("RESOLVD_FETCH_BLOCKED_NETWORKS", "10.0.0.0/33", "fetch.blocked_networks"),
            ("RESOLVD_FETCH_REDIRECT_ORIGINS", "https://cdn.example/path", "redirect_origins"),
            ("RESOLVD_FETCH_REDIRECT_ORIGINS", "ftp://cdn.example", "redirect_origins"),
        ],
    )
    def test_invalid_outbound_settings_are_refused_naming_the_key(
        self, key: str, value: str, message: str
    ) -> None:
        with pytest.raises(SettingsError, match=message):
            load_settings(environ={key: value})


def _hyperframe_data_repr(data: bytes | None) -> str:
    """hyperframe 6.1's ``_raw_data_repr``, as its source reads: the whole payload in hex,
    cut to 20 characters."""
    if not data:
        return "None"
    shown = data.hex()
    return "<hex:" + (shown[:20] + "..." if len(shown) > 20 else shown) + ">"


class TestHTTP2FrameReprs:
    @pytest.mark.parametrize("size", [0, 1, 9, 10, 11, 12, 16384])
    def test_a_data_frame_reads_as_before_from_its_first_bytes(self, size: int) -> None:
        """Once a transport is made, a DATA frame's repr is what hyperframe's was."""
        import hyperframe.frame  # noqa: PLC0415 - read after the transport patches it

        make_guarded_transport(DEFAULT_BLOCKED_NETWORKS)
        assert hyperframe.frame._raw_data_repr.__module__ == "service.index.outbound"
        DataFrame = hyperframe.frame.DataFrame
        payload = bytes(range(256)) * 64
        frame = DataFrame(1, data=payload[:size])
        assert repr(frame).endswith(f": {_hyperframe_data_repr(payload[:size])}")
