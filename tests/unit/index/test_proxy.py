"""Fetching through a forward proxy: what it carries, what stays blocked, what stays secret.

The proxy is a real one on loopback (``tests.unit.index.edge.ForwardProxy``). The index lives
at ``index.invalid``, a name only the proxy resolves: a job that resolves proves that every one
of its requests went through the proxy, since a direct attempt could not even find the host.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trustme

from service.diagnostics.model import Code
from service.index import FetchStats, Index, IndexClient, IndexUnreachableError
from service.index.errors import BlockedAddressError
from service.index.models import TLSProfile
from service.index.outbound import ProxyRules, make_guarded_transport
from service.index.pages import MEDIA_JSON
from service.resolution import Progress, ResolveRequest, Target, resolve_request
from service.resolution.fetch_errors import make_page_diagnostic
from service.settings import FetchLimits, SettingsError, load_settings
from tests.unit.index.builders import make_metadata, make_wheel, sha256
from tests.unit.index.edge import ForwardProxy, server_context, write_ca
from tests.unit.index.loopback import StaticServer

LIMITS = FetchLimits(retries=1, backoff_base=0.01, fetch_deadline=5.0, read_timeout=2.0)


def serve_project(server: StaticServer, name: str, version: str, requires: list[str]) -> None:
    """A project page with one wheel and its PEP 658 metadata, linked by relative URLs."""
    metadata = make_metadata(name, version, requires=requires)
    filename = f"{name}-{version}-py3-none-any.whl"
    wheel = make_wheel(name, version, metadata)
    server.add(f"/files/{filename}", wheel)
    server.add(f"/files/{filename}.metadata", metadata)
    page = {
        "meta": {"api-version": "1.1"},
        "name": name,
        "files": [
            {
                "filename": filename,
                "url": f"../../files/{filename}",
                "hashes": {"sha256": sha256(wheel)},
                "core-metadata": {"sha256": sha256(metadata)},
            }
        ],
    }
    server.add(f"/simple/{name}/", json.dumps(page).encode(), content_type=MEDIA_JSON)


def serve_demo(server: StaticServer) -> None:
    serve_project(server, "demo", "1.0", ["dep>=1"])
    serve_project(server, "dep", "2.0", [])


async def resolve(client: IndexClient, index: Index) -> dict[str, str]:
    request = ResolveRequest(
        requirements=("demo",),
        environment=Target(python_version="3.12", platform="x86_64-manylinux_2_28"),
    )
    resolution = await resolve_request(
        request, indexes=[index], client=client, progress=Progress(), stop=threading.Event()
    )
    return {package.name: package.version for package in resolution.packages}


def proxied_client(proxy: str, limits: FetchLimits = LIMITS, **options: object) -> IndexClient:
    transport = make_guarded_transport(
        limits.blocked_networks,
        proxy=proxy,
        environ={},
        **options,  # type: ignore[arg-type]
    )
    return IndexClient(limits, transport=transport)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def https_index(ca: trustme.CA) -> Iterator[StaticServer]:
    with StaticServer(tls=server_context(ca)) as server:
        serve_demo(server)
        yield server


@pytest.fixture
def http_index() -> Iterator[StaticServer]:
    with StaticServer() as server:
        serve_demo(server)
        yield server


class TestCarrying:
    async def test_a_connect_proxy_carries_every_request_of_a_job(
        self, https_index: StaticServer, ca: trustme.CA, tmp_path: Path
    ) -> None:
        """An https index reached by name through CONNECT: pages and metadata alike."""
        index = Index(
            name="corp",
            url=f"https://index.invalid:{https_index.port}/simple",
            tls=TLSProfile(ca_file=write_ca(ca, tmp_path)),
        )
        async with (
            ForwardProxy(hosts={"index.invalid": "127.0.0.1"}) as proxy,
            proxied_client(proxy.url()) as client,
        ):
            assert await resolve(client, index) == {"demo": "1.0", "dep": "2.0"}
        assert len(https_index.served) == 4
        assert proxy.opened
        assert set(proxy.opened) == {f"CONNECT index.invalid:{https_index.port}"}

    async def test_an_http_index_is_reached_by_absolute_form_requests(
        self, http_index: StaticServer
    ) -> None:
        """Plain-http targets go through the proxy too (forwarded, not tunnelled)."""
        index = Index(name="corp", url=f"http://index.invalid:{http_index.port}/simple")
        async with (
            ForwardProxy(hosts={"index.invalid": "127.0.0.1"}) as proxy,
            proxied_client(proxy.url()) as client,
        ):
            assert await resolve(client, index) == {"demo": "1.0", "dep": "2.0"}
        assert proxy.opened
        assert all(line.startswith("GET http://index.invalid:") for line in proxy.opened)

    async def test_no_proxy_hosts_are_reached_directly(self, http_index: StaticServer) -> None:
        """fetch.no_proxy lists what bypasses the proxy."""
        index = Index(name="corp", url=f"{http_index.base_url}/simple")
        async with (
            ForwardProxy() as proxy,
            proxied_client(proxy.url(), no_proxy=("127.0.0.0/8",)) as client,
        ):
            await client.find_project_page(index, "demo")
        assert proxy.opened == []
        assert len(http_index.served) == 1


class TestBlocking:
    async def test_the_proxy_address_is_checked_against_blocked_networks(self) -> None:
        """A proxy in a blocked network is never dialled."""
        limits = FetchLimits(retries=0, blocked_networks=("127.0.0.0/8",))
        index = Index(name="corp", url="http://index.invalid/simple")
        async with ForwardProxy() as proxy, proxied_client(proxy.url(), limits) as client:
            with pytest.raises(BlockedAddressError, match=r"the proxy 127\.0\.0\.1") as caught:
                await client.find_project_page(index, "demo")
        assert "fetch.blocked_networks" in caught.value.message
        assert proxy.opened == []

    async def test_a_blocked_address_literal_is_refused_even_through_the_proxy(self) -> None:
        """The proxy resolves names, but an address literal is ours to judge."""
        stats = FetchStats()
        async with ForwardProxy() as proxy, proxied_client(proxy.url()) as client:
            with pytest.raises(BlockedAddressError, match=r"169\.254\.169\.254"):
                await client.find_project_page(
                    Index(name="meta", url="http://169.254.169.254/simple"), "demo", stats=stats
                )
        assert proxy.opened == []


class TestCredentials:
    async def test_proxy_credentials_are_sent(self, http_index: StaticServer) -> None:
        index = Index(name="corp", url=f"http://index.invalid:{http_index.port}/simple")
        async with (
            ForwardProxy(
                hosts={"index.invalid": "127.0.0.1"}, credentials=("bob", "s3cret-pw")
            ) as proxy,
            proxied_client(proxy.url("bob:s3cret-pw")) as client,
        ):
            page = await client.find_project_page(index, "demo")
        assert page.files[0].filename == "demo-1.0-py3-none-any.whl"

    async def test_proxy_credentials_are_redacted_in_errors(
        self, https_index: StaticServer
    ) -> None:
        """A refused tunnel names the proxy with its password masked, down to the Diagnostic."""
        index = Index(name="corp", url=f"https://index.invalid:{https_index.port}/simple")
        async with ForwardProxy(credentials=("bob", "right")) as proxy:
            port = proxy.port
            async with proxied_client(proxy.url("bob:s3cret-pw")) as client:
                with pytest.raises(IndexUnreachableError) as caught:
                    await client.find_project_page(index, "demo")
        diagnostic = make_page_diagnostic(caught.value, index, "demo")
        for text in (caught.value.message, diagnostic.message, repr(diagnostic)):
            assert "s3cret-pw" not in text
        assert f"bob:****@127.0.0.1:{port}" in caught.value.message
        assert "407" in caught.value.message
        assert diagnostic.code is Code.INDEX_UNREACHABLE

    def test_a_bad_proxy_setting_is_refused_without_echoing_it(self) -> None:
        with pytest.raises(SettingsError, match=r"fetch\.proxy") as caught:
            load_settings(environ={"RESOLVD_FETCH_PROXY": "socks5://bob:s3cret-pw@proxy:1080"})
        assert "s3cret-pw" not in str(caught.value)


class TestRules:
    def test_the_settings_win_over_the_environment(self) -> None:
        rules = ProxyRules(
            "http://configured:3128",
            ("internal.example",),
            environ={"HTTPS_PROXY": "http://env:3128", "NO_PROXY": "*"},
        )
        assert rules.select(httpx.URL("https://pypi.org/simple")) == "http://configured:3128"
        assert rules.select(httpx.URL("https://a.internal.example/simple")) is None

    def test_the_environment_chooses_by_scheme(self) -> None:
        rules = ProxyRules(
            environ={
                "HTTPS_PROXY": "http://secure:3128",
                "http_proxy": "http://plain:3128",
                "NO_PROXY": "localhost, .corp.example, 10.0.0.0/8, mirror:8080",
            }
        )
        assert rules.select(httpx.URL("https://pypi.org/")) == "http://secure:3128"
        assert rules.select(httpx.URL("http://pypi.org/")) == "http://plain:3128"
        for direct in (
            "http://localhost/",
            "https://corp.example/",
            "https://pypi.corp.example/",
            "http://10.1.2.3/",
            "http://mirror:8080/",
        ):
            assert rules.select(httpx.URL(direct)) is None, direct
        assert rules.select(httpx.URL("http://mirror:8081/")) == "http://plain:3128"
        assert rules.select(httpx.URL("https://notcorp.example/")) == "http://secure:3128"

    def test_no_proxy_star_and_no_variables_mean_direct(self) -> None:
        assert ProxyRules(environ={}).select(httpx.URL("https://pypi.org/")) is None
        everything = ProxyRules(environ={"ALL_PROXY": "http://p:1", "NO_PROXY": "*"})
        assert everything.select(httpx.URL("https://pypi.org/")) is None
