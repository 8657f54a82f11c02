"""Where an index may send us: file links stay on its origins, project pages under its URL.

A hostile page must not turn resolvd into a port scanner: a file link elsewhere is refused
before any connection (a listener on another loopback port proves it), and the refusal reads
the same whether anything listens there or not.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.diagnostics.model import Code
from service.index import FetchStats, Index, IndexClient, InvalidResponseError
from service.index.errors import FileOriginError
from service.index.models import DistFile
from service.index.pages import MEDIA_JSON
from service.resolution import Progress, ResolutionFailed, ResolveRequest, Target, resolve_request
from service.resolution.indexes import make_configured_index, make_indexes
from service.resolution.request import IndexRef
from service.settings import FetchLimits, Settings, SettingsError, load_settings
from tests.unit.index.builders import make_metadata, make_wheel, sha256
from tests.unit.index.edge import Listener
from tests.unit.index.loopback import StaticServer, wait_until

LIMITS = FetchLimits(retries=1, backoff_base=0.01, fetch_deadline=5.0, read_timeout=2.0)
METADATA = make_metadata("demo", "1.0")
WHEEL = "demo-1.0-py3-none-any.whl"


def linked_file(url: str) -> DistFile:
    return DistFile(
        filename=WHEEL,
        url=url,
        kind="wheel",
        version="1.0",
        core_metadata={"sha256": sha256(METADATA)},
    )


def page_linking(url: str) -> bytes:
    return json.dumps(
        {
            "meta": {"api-version": "1.1"},
            "name": "demo",
            "files": [
                {
                    "filename": WHEEL,
                    "url": url,
                    "hashes": {},
                    "core-metadata": {"sha256": sha256(METADATA)},
                }
            ],
        }
    ).encode()


@pytest.fixture
def file_host() -> Iterator[StaticServer]:
    with StaticServer() as server:
        server.add(f"/files/{WHEEL}", make_wheel("demo", "1.0", METADATA))
        server.add(f"/files/{WHEEL}.metadata", METADATA)
        yield server


class TestFileLinks:
    async def test_an_off_origin_link_is_refused_without_a_connection(
        self, static_server: StaticServer
    ) -> None:
        """A link to another port on loopback: a coded refusal, and the port sees nothing."""
        index = Index(name="corp", url=f"{static_server.base_url}/simple", auth="tok")
        stats = FetchStats()
        async with Listener() as listener, IndexClient(LIMITS) as client:
            with pytest.raises(FileOriginError) as caught:
                await client.find_core_metadata(
                    index, linked_file(f"{listener.base_url}/files/{WHEEL}"), stats=stats
                )
            assert listener.connections == 0
        assert stats.requests == 0
        assert "file_origins" in caught.value.message
        assert "nothing was requested" in caught.value.message

    async def test_the_refusal_reads_the_same_whatever_listens_there(self) -> None:
        """A listening port and a closed one give the same answer: no port oracle."""
        index = Index(name="corp", url="http://127.0.0.1:9/simple")
        messages = []
        async with Listener() as listener, IndexClient(LIMITS) as client:
            for base in (listener.base_url, "http://127.0.0.1:1"):
                with pytest.raises(FileOriginError) as caught:
                    await client.find_core_metadata(index, linked_file(f"{base}/files/{WHEEL}"))
                messages.append(caught.value.message.replace(base, "<target>"))
            assert listener.connections == 0
        assert messages[0] == messages[1]

    @pytest.mark.parametrize("setting", ["file_origins", "redirect_origins"])
    async def test_named_origins_serve_files_without_credentials(
        self, static_server: StaticServer, file_host: StaticServer, setting: str
    ) -> None:
        """[[index]] file_origins and fetch.redirect_origins admit a file host; the index's
        credentials stay at the index."""
        limits = LIMITS
        index = Index(name="corp", url=f"{static_server.base_url}/simple", auth="tok")
        if setting == "file_origins":
            index = Index(
                name="corp",
                url=f"{static_server.base_url}/simple",
                auth="tok",
                file_origins=(file_host.base_url,),
            )
        else:
            limits = FetchLimits(retries=1, redirect_origins=(file_host.base_url,))
        async with IndexClient(limits) as client:
            metadata = await client.find_core_metadata(
                index, linked_file(f"{file_host.base_url}/files/{WHEEL}")
            )
        assert metadata.version == "1.0"
        await wait_until(lambda: len(file_host.served) == 1)
        assert "authorization" not in file_host.served[0].headers

    async def test_a_job_fails_with_a_coded_diagnostic(self, static_server: StaticServer) -> None:
        """Through a resolution, the refusal is the job's failure, coded file_origin_refused."""
        async with Listener() as listener:
            static_server.add(
                "/simple/demo/",
                page_linking(f"{listener.base_url}/files/{WHEEL}"),
                content_type=MEDIA_JSON,
            )
            request = ResolveRequest(
                requirements=("demo",),
                environment=Target(python_version="3.12", platform="x86_64-manylinux_2_28"),
            )
            async with IndexClient(LIMITS) as client:
                with pytest.raises(ResolutionFailed) as caught:
                    await resolve_request(
                        request,
                        indexes=[Index(name="corp", url=f"{static_server.base_url}/simple")],
                        client=client,
                        progress=Progress(),
                        stop=threading.Event(),
                    )
            assert listener.connections == 0
        failure = caught.value.failure
        assert failure.kind == "metadata_error"
        assert {d.code for d in failure.fetch_errors} == {Code.FILE_ORIGIN_REFUSED}


class TestProjectPageRedirects:
    @pytest.mark.parametrize(
        "location",
        [
            "/a/simple/demo/",
            "/d/simple/../../a/simple/demo/",
            "/d/simple/%2e%2e/x/demo/",
            "/d/simple/%2E%2E/x/demo/",
            "/d/simple/%252e%252e/%252e%252e/x/demo/",
            "/d/simple/..%5C..%5Cx/demo/",
            "/d/simple/..;/..;/x/demo/",
            "HTTP://127.0.0.1:{port}/a/simple/demo/",
        ],
    )
    async def test_a_redirect_outside_the_index_path_is_refused(
        self, static_server: StaticServer, location: str
    ) -> None:
        """An index at /d/simple cannot send its project page to /a/simple, however spelled."""
        location = location.format(port=static_server.port)
        static_server.add("/d/simple/demo/", b"", status=302, headers={"Location": location})
        static_server.add("/a/simple/demo/", b"{}", content_type=MEDIA_JSON)
        static_server.add("/x/demo/", b"{}", content_type=MEDIA_JSON)
        index = Index(name="d", url=f"{static_server.base_url}/d/simple")
        async with IndexClient(LIMITS) as client:
            with pytest.raises(InvalidResponseError, match="outside the index URL"):
                await client.find_project_page(index, "demo")
        await wait_until(lambda: len(static_server.served) == 1)
        assert [s.path for s in static_server.served] == ["/d/simple/demo/"]

    async def test_a_redirect_under_the_index_path_is_followed(
        self, static_server: StaticServer
    ) -> None:
        static_server.add(
            "/d/simple/demo/", b"", status=301, headers={"Location": "/d/simple/demo-moved/"}
        )
        static_server.add("/d/simple/demo-moved/", page_linking(WHEEL), content_type=MEDIA_JSON)
        index = Index(name="d", url=f"{static_server.base_url}/d/simple")
        async with IndexClient(LIMITS) as client:
            page = await client.find_project_page(index, "demo")
        assert [f.filename for f in page.files] == [WHEEL]


class TestConfiguration:
    def test_pypi_gets_its_file_host(self) -> None:
        """The default index, and any index at pypi.org, may link files.pythonhosted.org."""
        settings = Settings()
        (pypi,) = [make_configured_index(config, {}) for config in settings.index]
        assert pypi.file_origins == ("https://files.pythonhosted.org",)
        named = make_indexes(
            [IndexRef(url="https://pypi.org/simple")],
            load_settings(environ={"RESOLVD_ALLOWED_INDEX_URLS": "https://pypi.org/simple"}),
            {},
        )
        assert named[0].file_origins == ("https://files.pythonhosted.org",)

    def test_file_origins_are_configured_per_index(self, tmp_path: Path) -> None:
        """[[index]] file_origins replaces the default; other indexes get none."""
        config = tmp_path / "resolvd.toml"
        config.write_text(
            '[[index]]\nname = "corp"\nurl = "https://corp.invalid/simple"\n'
            'file_origins = ["https://cdn.corp.invalid/"]\n'
            '[[index]]\nname = "other"\nurl = "https://other.invalid/simple"\n'
        )
        settings = load_settings(config, environ={})
        corp, other = (make_configured_index(index, {}) for index in settings.index)
        assert corp.file_origins == ("https://cdn.corp.invalid",)
        assert other.file_origins == ()

    def test_a_file_origin_must_be_an_origin(self, tmp_path: Path) -> None:
        config = tmp_path / "resolvd.toml"
        config.write_text(
            '[[index]]\nname = "corp"\nurl = "https://corp.invalid/simple"\n'
            'file_origins = ["https://cdn.corp.invalid/files"]\n'
        )
        with pytest.raises(SettingsError, match="index 'corp' file_origins"):
            load_settings(config, environ={})
