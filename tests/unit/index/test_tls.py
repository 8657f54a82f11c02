"""TLS on a company network: whose certificates are trusted, and mutual TLS per index.

Every server here is a real HTTPS server on loopback with a certificate from a test CA that
``trustme`` makes per module: the system store does not trust it, so a fetch succeeds only when
the CA is given the way the test says (``SSL_CERT_FILE``, ``[[index]] ca_file``).
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from service.diagnostics.model import Code, Severity
from service.index import FetchStats, Index, IndexClient
from service.index.errors import TLSError
from service.index.models import DistFile, TLSProfile
from service.index.outbound import make_guarded_transport
from service.index.pages import MEDIA_JSON
from service.resolution.fetch_errors import make_metadata_diagnostic, make_page_diagnostic
from service.resolution.indexes import make_configured_index
from service.settings import FetchLimits, IndexSettings, SettingsError, load_settings
from tests.unit.index.builders import make_metadata, make_wheel, sha256
from tests.unit.index.edge import HTTP2Server, server_context, write_ca
from tests.unit.index.loopback import StaticServer, wait_until

PAGE = json.dumps(
    {
        "meta": {"api-version": "1.1"},
        "name": "demo",
        "files": [{"filename": "demo-1.0.tar.gz", "url": "demo-1.0.tar.gz", "hashes": {}}],
    }
).encode()
METADATA = make_metadata("demo", "1.0")
WHEEL = "demo-1.0-py3-none-any.whl"
LIMITS = FetchLimits(retries=2, backoff_base=0.01, fetch_deadline=5.0, read_timeout=2.0)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> str:
    return write_ca(ca, tmp_path)


@pytest.fixture
def https_server(ca: trustme.CA) -> Iterator[StaticServer]:
    with StaticServer(tls=server_context(ca)) as server:
        server.add("/simple/demo/", PAGE, content_type=MEDIA_JSON)
        yield server


@pytest.fixture
def mtls_server(ca: trustme.CA) -> Iterator[StaticServer]:
    """An HTTPS index that requires a client certificate signed by the test CA."""
    with StaticServer(tls=server_context(ca, client_certificates=ssl.CERT_REQUIRED)) as server:
        server.add("/simple/demo/", PAGE, content_type=MEDIA_JSON)
        yield server


def client_certificate(ca: trustme.CA, directory: Path) -> TLSProfile:
    """A client certificate from the test CA, its key in a separate file."""
    issued = ca.issue_cert("client.invalid")
    cert, key = directory / "client.pem", directory / "client.key"
    issued.cert_chain_pems[0].write_to_path(str(cert))
    issued.private_key_pem.write_to_path(str(key))
    return TLSProfile(client_cert=str(cert), client_key=str(key))


def index_on(server: StaticServer, tls: TLSProfile | None = None, **fields: object) -> Index:
    return Index(name="corp", url=f"{server.base_url}/simple", tls=tls, **fields)  # type: ignore[arg-type]


class TestTrust:
    async def test_an_untrusted_certificate_is_a_coded_error_naming_the_settings(
        self, https_server: StaticServer
    ) -> None:
        """A certificate the store does not trust fails at once (no retries) with advice."""
        stats = FetchStats()
        async with IndexClient(LIMITS) as client:
            with pytest.raises(TLSError) as caught:
                await client.find_project_page(index_on(https_server), "demo", stats=stats)
        error = caught.value
        assert error.setting == "SSL_CERT_FILE"
        assert "not trusted" in error.message and "SSL_CERT_FILE" in error.message
        assert "[[index]] ca_file for index 'corp'" in error.message
        assert stats.requests == 1
        diagnostic = make_page_diagnostic(error, index_on(https_server), "demo")
        assert diagnostic.code is Code.TLS_CERTIFICATE
        assert diagnostic.data["setting"] == "SSL_CERT_FILE"

    async def test_ssl_cert_file_is_trusted(
        self, https_server: StaticServer, ca_file: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """SSL_CERT_FILE, as read when the client is made, names the bundle to trust."""
        monkeypatch.setenv("SSL_CERT_FILE", ca_file)
        async with IndexClient(LIMITS) as client:
            page = await client.find_project_page(index_on(https_server), "demo")
        assert [f.filename for f in page.files] == ["demo-1.0.tar.gz"]

    async def test_ca_file_adds_trust_for_that_index(
        self, https_server: StaticServer, ca_file: str
    ) -> None:
        """[[index]] ca_file trusts the index's CA without touching the process's trust."""
        async with IndexClient(LIMITS) as client:
            page = await client.find_project_page(
                index_on(https_server, TLSProfile(ca_file=ca_file)), "demo"
            )
            with pytest.raises(TLSError):
                await client.find_project_page(index_on(https_server), "demo")
        assert page.files[0].url.startswith("https://127.0.0.1:")

    async def test_ca_file_does_not_apply_to_another_origin(
        self, ca: trustme.CA, https_server: StaticServer, ca_file: str
    ) -> None:
        """A file host signed by the same CA is not trusted through the index's ca_file; the
        advice then names only SSL_CERT_FILE."""
        with StaticServer(tls=server_context(ca)) as files:
            wheel = make_wheel("demo", "1.0", METADATA)
            url = files.add(f"/files/{WHEEL}", wheel)
            index = index_on(
                https_server, TLSProfile(ca_file=ca_file), file_origins=(files.base_url,)
            )
            file = DistFile(
                filename=WHEEL, url=url, kind="wheel", version="1.0", hashes={}, size=len(wheel)
            )
            async with IndexClient(LIMITS) as client:
                with pytest.raises(TLSError) as caught:
                    await client.find_core_metadata(index, file)
        assert "SSL_CERT_FILE" in caught.value.message
        assert "ca_file" not in caught.value.message
        diagnostic = make_metadata_diagnostic(
            caught.value, index, "demo", "1.0", severity=Severity.ERROR
        )
        assert diagnostic.code is Code.TLS_CERTIFICATE


class TestMutualTLS:
    async def test_a_server_wanting_a_client_certificate_names_client_cert(
        self, mtls_server: StaticServer, ca_file: str
    ) -> None:
        """Without client_cert the handshake is refused, and the error says what to set."""
        async with IndexClient(LIMITS) as client:
            with pytest.raises(TLSError) as caught:
                await client.find_project_page(
                    index_on(mtls_server, TLSProfile(ca_file=ca_file)), "demo"
                )
        assert caught.value.setting == "client_cert"
        assert "client_cert and client_key for index 'corp'" in caught.value.message
        assert mtls_server.served == []

    async def test_client_cert_and_key_open_the_index(
        self, ca: trustme.CA, mtls_server: StaticServer, ca_file: str, tmp_path: Path
    ) -> None:
        """With client_cert and client_key the index answers, and saw the certificate."""
        profile = client_certificate(ca, tmp_path)
        tls = TLSProfile(
            ca_file=ca_file, client_cert=profile.client_cert, client_key=profile.client_key
        )
        async with IndexClient(LIMITS) as client:
            page = await client.find_project_page(index_on(mtls_server, tls), "demo")
        assert [f.filename for f in page.files] == ["demo-1.0.tar.gz"]
        (subject,) = mtls_server.client_certificates
        assert subject is not None and "client.invalid" in subject

    async def test_the_client_certificate_goes_only_to_the_index_origin(
        self,
        ca: trustme.CA,
        mtls_server: StaticServer,
        ca_file: str,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """A file host that would accept a client certificate is not shown one."""
        monkeypatch.setenv("SSL_CERT_FILE", ca_file)
        profile = client_certificate(ca, tmp_path)
        with StaticServer(tls=server_context(ca, client_certificates=ssl.CERT_OPTIONAL)) as files:
            wheel = make_wheel("demo", "1.0", METADATA)
            url = files.add(f"/files/{WHEEL}", wheel)
            files.add(f"/files/{WHEEL}.metadata", METADATA)
            index = index_on(mtls_server, profile, file_origins=(files.base_url,))
            file = DistFile(
                filename=WHEEL,
                url=url,
                kind="wheel",
                version="1.0",
                core_metadata={"sha256": sha256(METADATA)},
            )
            async with IndexClient(LIMITS) as client:
                await client.find_project_page(index, "demo")
                metadata = await client.find_core_metadata(index, file)
            await wait_until(lambda: len(files.served) == 1)
            assert files.client_certificates == [None]
        assert metadata.version == "1.0"
        assert mtls_server.client_certificates[0] is not None

    async def test_an_unusable_client_certificate_is_a_coded_error(
        self, mtls_server: StaticServer, tmp_path: Path
    ) -> None:
        """A client_cert file that holds no certificate is reported as the setting to fix."""
        bogus = tmp_path / "bogus.pem"
        bogus.write_text("not a certificate\n")
        async with IndexClient(LIMITS) as client:
            with pytest.raises(TLSError) as caught:
                await client.find_project_page(
                    index_on(mtls_server, TLSProfile(client_cert=str(bogus))), "demo"
                )
        assert caught.value.setting == "client_cert"
        assert "client_cert" in caught.value.message
        assert mtls_server.served == []


class TestHTTP2:
    async def test_concurrent_fetches_share_one_http2_connection(
        self, ca: trustme.CA, ca_file: str
    ) -> None:
        """Where the index offers HTTP/2 (this one offers nothing else), a burst of fetches
        makes one guarded connection and one TLS handshake instead of one each."""
        resources = {
            f"/simple/p{n}/": (PAGE.replace(b"demo", f"p{n}".encode()), MEDIA_JSON)
            for n in range(8)
        }
        async with HTTP2Server(ca, resources) as server:
            transport = make_guarded_transport(LIMITS.blocked_networks)
            index = Index(
                name="h2", url=f"{server.base_url}/simple", tls=TLSProfile(ca_file=ca_file)
            )
            async with IndexClient(LIMITS, transport=transport) as client:
                pages = await asyncio.gather(
                    *(client.find_project_page(index, f"p{n}") for n in range(8))
                )
            assert server.connections == 1
        assert transport.backend.connections == 1
        assert sorted(server.requests) == sorted(resources)
        assert [page.files[0].filename for page in pages] == [f"p{n}-1.0.tar.gz" for n in range(8)]


class TestSettings:
    def test_index_tls_keys_reach_the_index(self, ca_file: str, tmp_path: Path) -> None:
        """ca_file, client_cert and client_key become the index's TLS profile."""
        config = tmp_path / "resolvd.toml"
        config.write_text(
            f'[[index]]\nname = "corp"\nurl = "https://corp.invalid/simple"\n'
            f'ca_file = "{ca_file}"\nclient_cert = "{ca_file}"\n'
        )
        settings = load_settings(config, environ={})
        index = make_configured_index(settings.index[0], {})
        assert index.tls == TLSProfile(ca_file=ca_file, client_cert=ca_file)
        assert (
            index.identity
            != make_configured_index(
                IndexSettings(name="corp", url="https://corp.invalid/simple"), {}
            ).identity
        )

    @pytest.mark.parametrize(
        ("keys", "message"),
        [
            ('ca_file = "/nonexistent/ca.pem"', "ca_file: /nonexistent/ca.pem is not a readable"),
            ('client_key = "/etc/hostname"', "client_key needs client_cert"),
        ],
    )
    def test_unusable_tls_keys_are_refused_at_startup(
        self, keys: str, message: str, tmp_path: Path
    ) -> None:
        config = tmp_path / "resolvd.toml"
        config.write_text(
            f'[[index]]\nname = "corp"\nurl = "https://corp.invalid/simple"\n{keys}\n'
        )
        with pytest.raises(SettingsError, match=message):
            load_settings(config, environ={})
