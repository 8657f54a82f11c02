"""Specification of the loopback index: each test states one behaviour clients rely on."""

from __future__ import annotations

import email.parser
import hashlib
import io
import re
import socket
import tarfile
import time
import zipfile
from collections.abc import Iterator

import httpx
import pytest

from tests.indexserver import IndexServer, IndexSpec, Project, Release
from tests.indexserver.artifacts import make_index, requirement_for_extra
from tests.indexserver.pages import MEDIA_HTML, MEDIA_JSON, MEDIA_TEXT_HTML, choose_media_type
from tests.indexserver.server import RangeNotSatisfiableError, parse_byte_range

JSON_ACCEPT = {"Accept": MEDIA_JSON}
PIP_ACCEPT = {"Accept": f"{MEDIA_JSON}, {MEDIA_HTML}; q=0.1, text/html; q=0.01"}

CORP = IndexSpec(
    name="corp",
    projects=(
        Project(
            "My.Pkg",
            (
                Release(
                    "1.0.0",
                    requires=("dep>=1", "other; python_version < '3.13'"),
                    extras={"socks": ("pysocks; os_name == 'nt'", "win-inet")},
                    requires_python=">=3.8",
                    sdist=True,
                    sdist_dynamic=("Requires-Dist",),
                    upload_time="2024-01-02T03:04:05.000000Z",
                ),
                Release("2.0.0", yanked="broken build", pep658=False),
                Release("3.0.0", yanked=True),
                Release(
                    "4.0.0",
                    wheel_tags=("cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64",),
                ),
            ),
        ),
        Project("dep", (Release("1.5"),)),
    ),
)


@pytest.fixture
def corp(index_server: IndexServer) -> str:
    return index_server.add_index(CORP)


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5) as http:
        yield http


def files_url(server: IndexServer, filename: str) -> str:
    return f"{server.base_url}/corp/files/{filename}"


def json_page(client: httpx.Client, url: str) -> dict[str, object]:
    response = client.get(url, headers=JSON_ACCEPT)
    assert response.status_code == 200
    page: dict[str, object] = response.json()
    return page


def json_files(client: httpx.Client, url: str) -> dict[str, dict[str, object]]:
    files = json_page(client, url)["files"]
    assert isinstance(files, list)
    return {f["filename"]: f for f in files}


class TestContentNegotiation:
    @pytest.mark.parametrize(
        ("accept", "formats", "expected"),
        [
            (MEDIA_JSON, ("json", "html"), MEDIA_JSON),
            (PIP_ACCEPT["Accept"], ("json", "html"), MEDIA_JSON),
            ("application/vnd.pypi.simple.latest+json", ("json", "html"), MEDIA_JSON),
            (f"{MEDIA_JSON}; q=0.2, {MEDIA_HTML}", ("json", "html"), MEDIA_HTML),
            (None, ("json", "html"), MEDIA_TEXT_HTML),
            ("*/*", ("json", "html"), MEDIA_TEXT_HTML),
            ("text/html", ("json", "html"), MEDIA_TEXT_HTML),
            ("application/xml", ("json", "html"), MEDIA_TEXT_HTML),
            (MEDIA_JSON, ("html",), MEDIA_TEXT_HTML),
            (PIP_ACCEPT["Accept"], ("html",), MEDIA_HTML),
            ("text/html", ("json",), None),
            (f"{MEDIA_JSON}; q=0", ("json",), None),
        ],
    )
    def test_choose_media_type(
        self, accept: str | None, formats: tuple[str, ...], expected: str | None
    ) -> None:
        """The client's highest q among served types wins; JSON only when named; else HTML."""
        assert choose_media_type(accept, formats) == expected

    def test_json_accept_gets_pep691_json(self, corp: str, client: httpx.Client) -> None:
        """A JSON Accept gets a v1.1 JSON page with the JSON Content-Type."""
        response = client.get(f"{corp}/my-pkg/", headers=JSON_ACCEPT)
        assert response.headers["content-type"] == MEDIA_JSON
        page = response.json()
        assert page["meta"] == {"api-version": "1.1"}
        assert page["name"] == "my-pkg"
        assert page["versions"] == ["1.0.0", "2.0.0", "3.0.0", "4.0.0"]

    def test_default_is_pep503_html(self, corp: str, client: httpx.Client) -> None:
        """Without an Accept header the page is HTML served as text/html."""
        response = client.get(f"{corp}/my-pkg/")
        assert response.headers["content-type"] == "text/html; charset=utf-8"
        assert response.text.startswith("<!DOCTYPE html>")
        assert '<meta name="pypi:repository-version" content="1.1">' in response.text

    def test_html_only_index_ignores_json_accept(
        self, index_server: IndexServer, client: httpx.Client
    ) -> None:
        """An index whose formats exclude JSON answers HTML even to a JSON-only Accept."""
        url = index_server.add_index(IndexSpec("legacy", CORP.projects, formats=("html",)))
        response = client.get(f"{url}/dep/", headers=JSON_ACCEPT)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/html")

    def test_project_list_in_both_formats(self, corp: str, client: httpx.Client) -> None:
        """The root page lists every project by display name and links its normalized page."""
        assert json_page(client, f"{corp}/")["projects"] == [{"name": "dep"}, {"name": "My.Pkg"}]
        html = client.get(corp).text
        assert '<a href="/corp/simple/my-pkg/">My.Pkg</a>' in html


class TestProjectPages:
    def test_non_normalized_name_redirects(self, corp: str, client: httpx.Client) -> None:
        """Another spelling of a project, or a missing slash, redirects 301 to the PEP 503 name."""
        for spelling in ("My.Pkg/", "MY_PKG/", "my-pkg"):
            response = client.get(f"{corp}/{spelling}")
            assert response.status_code == 301
            assert response.headers["location"] == "/corp/simple/my-pkg/"

    def test_unknown_project_and_index_are_404(self, corp: str, client: httpx.Client) -> None:
        """Unknown projects, indexes and files are 404."""
        assert client.get(f"{corp}/nope/").status_code == 404
        assert client.get(corp.replace("/corp/", "/other/") + "/dep/").status_code == 404
        assert client.get(f"{corp.removesuffix('/simple')}/files/nope.whl").status_code == 404

    def test_json_file_entries(
        self, index_server: IndexServer, corp: str, client: httpx.Client
    ) -> None:
        """JSON file entries carry url, sha256, size, requires-python, yanked and upload-time."""
        files = json_files(client, f"{corp}/my-pkg/")
        wheel = files["my_pkg-1.0.0-py3-none-any.whl"]
        content = client.get(str(wheel["url"])).content
        assert wheel["hashes"] == {"sha256": hashlib.sha256(content).hexdigest()}
        assert wheel["size"] == len(content)
        assert wheel["requires-python"] == ">=3.8"
        assert wheel["upload-time"] == "2024-01-02T03:04:05.000000Z"
        assert wheel["yanked"] is False
        assert files["my_pkg-2.0.0-py3-none-any.whl"]["yanked"] == "broken build"
        assert files["my_pkg-3.0.0-py3-none-any.whl"]["yanked"] is True
        assert "upload-time" not in files["my_pkg-3.0.0-py3-none-any.whl"]

    def test_html_anchors(self, corp: str, client: httpx.Client) -> None:
        """HTML anchors carry #sha256, escaped data-requires-python, data-yanked and metadata."""
        html = client.get(f"{corp}/my-pkg/").text
        anchors = {
            text: attributes for attributes, text in re.findall(r"<a ([^>]*)>([^<]*)</a>", html)
        }
        first = anchors["my_pkg-1.0.0-py3-none-any.whl"]
        assert 'data-requires-python="&gt;=3.8"' in first
        assert re.search(r'href="[^"]+#sha256=[0-9a-f]{64}"', first)
        assert re.search(r'data-core-metadata="sha256=[0-9a-f]{64}"', first)
        assert re.search(r'data-dist-info-metadata="sha256=[0-9a-f]{64}"', first)
        assert "data-yanked" not in first
        assert 'data-yanked="broken build"' in anchors["my_pkg-2.0.0-py3-none-any.whl"]
        assert 'data-yanked=""' in anchors["my_pkg-3.0.0-py3-none-any.whl"]
        assert "data-core-metadata" not in anchors["my_pkg-1.0.0.tar.gz"]

    def test_etag_and_if_none_match(self, corp: str, client: httpx.Client) -> None:
        """Pages carry an ETag per representation; If-None-Match with it answers 304."""
        first = client.get(f"{corp}/dep/", headers=JSON_ACCEPT)
        etag = first.headers["etag"]
        assert etag != client.get(f"{corp}/dep/").headers["etag"]
        again = client.get(f"{corp}/dep/", headers={**JSON_ACCEPT, "If-None-Match": etag})
        assert again.status_code == 304
        assert again.content == b""
        stale = client.get(f"{corp}/dep/", headers={**JSON_ACCEPT, "If-None-Match": '"x"'})
        assert stale.status_code == 200


class TestArtifacts:
    def test_wheel_is_a_zip_with_metadata(self, corp: str, client: httpx.Client) -> None:
        """The wheel is a real zip whose dist-info METADATA states name, version and deps."""
        wheel = client.get(f"{corp.removesuffix('/simple')}/files/my_pkg-1.0.0-py3-none-any.whl")
        with zipfile.ZipFile(io.BytesIO(wheel.content)) as archive:
            names = set(archive.namelist())
            assert {
                "my_pkg/__init__.py",
                "my_pkg-1.0.0.dist-info/METADATA",
                "my_pkg-1.0.0.dist-info/WHEEL",
                "my_pkg-1.0.0.dist-info/RECORD",
            } == names
            metadata = email.parser.BytesParser().parsebytes(
                archive.read("my_pkg-1.0.0.dist-info/METADATA")
            )
        assert metadata["Metadata-Version"] == "2.1"
        assert (metadata["Name"], metadata["Version"]) == ("My.Pkg", "1.0.0")
        assert metadata["Requires-Python"] == ">=3.8"
        assert metadata.get_all("Provides-Extra") == ["socks"]
        assert metadata.get_all("Requires-Dist") == [
            "dep>=1",
            "other; python_version < '3.13'",
            'pysocks; (os_name == "nt") and extra == "socks"',
            'win-inet; extra == "socks"',
        ]

    def test_metadata_sidecar_matches_wheel_and_advertised_hash(
        self, index_server: IndexServer, corp: str, client: httpx.Client
    ) -> None:
        """The .metadata file is the wheel's METADATA and hashes to the advertised sha256."""
        entry = json_files(client, f"{corp}/my-pkg/")["my_pkg-1.0.0-py3-none-any.whl"]
        sidecar = client.get(f"{entry['url']}.metadata").content
        assert entry["core-metadata"] == {"sha256": hashlib.sha256(sidecar).hexdigest()}
        assert entry["dist-info-metadata"] == entry["core-metadata"]
        wheel = client.get(str(entry["url"])).content
        with zipfile.ZipFile(io.BytesIO(wheel)) as archive:
            assert archive.read("my_pkg-1.0.0.dist-info/METADATA") == sidecar

    def test_pep658_off_serves_no_sidecar(
        self, index_server: IndexServer, corp: str, client: httpx.Client
    ) -> None:
        """A release with pep658=False advertises no metadata and serves no sidecar."""
        entry = json_files(client, f"{corp}/my-pkg/")["my_pkg-2.0.0-py3-none-any.whl"]
        assert entry["core-metadata"] is False
        assert client.get(f"{entry['url']}.metadata").status_code == 404

    def test_sdist_has_pkg_info_and_pyproject(self, corp: str, client: httpx.Client) -> None:
        """The sdist is a real tar.gz with a Metadata-Version 2.2 PKG-INFO and pyproject.toml."""
        sdist = client.get(f"{corp.removesuffix('/simple')}/files/my_pkg-1.0.0.tar.gz")
        with tarfile.open(fileobj=io.BytesIO(sdist.content), mode="r:gz") as archive:
            pkg_info_file = archive.extractfile("my_pkg-1.0.0/PKG-INFO")
            assert pkg_info_file is not None
            pkg_info = email.parser.BytesParser().parsebytes(pkg_info_file.read())
            assert "my_pkg-1.0.0/pyproject.toml" in archive.getnames()
        assert pkg_info["Metadata-Version"] == "2.2"
        assert pkg_info.get_all("Dynamic") == ["Requires-Dist"]

    def test_compressed_tag_set_is_one_wheel(self, corp: str, client: httpx.Client) -> None:
        """A compressed tag set is one wheel file whose WHEEL lists every expanded tag."""
        name = "my_pkg-4.0.0-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
        assert name in json_files(client, f"{corp}/my-pkg/")
        wheel = client.get(f"{corp.removesuffix('/simple')}/files/{name}").content
        with zipfile.ZipFile(io.BytesIO(wheel)) as archive:
            wheel_file = archive.read("my_pkg-4.0.0.dist-info/WHEEL").decode()
        assert "Tag: cp312-cp312-manylinux2014_x86_64\n" in wheel_file
        assert "Tag: cp312-cp312-manylinux_2_17_x86_64\n" in wheel_file
        assert "Root-Is-Purelib: false" in wheel_file

    def test_builds_are_deterministic(self) -> None:
        """Building the same spec twice yields byte-identical files."""
        assert make_index(CORP).files == make_index(CORP).files

    @pytest.mark.parametrize(
        ("requirement", "expected"),
        [
            ("b", 'b; extra == "x"'),
            ("b>=1 ; sys_platform == 'linux'", 'b>=1; (sys_platform == "linux") and extra == "x"'),
            (
                "b; os_name == 'nt' or sys_platform == 'win32'",
                'b; (os_name == "nt" or sys_platform == "win32") and extra == "x"',
            ),
            ("not a requirement!", 'not a requirement!; extra == "x"'),
        ],
    )
    def test_requirement_for_extra(self, requirement: str, expected: str) -> None:
        """An extra's guard is and-ed onto any existing marker, which keeps its parentheses."""
        assert requirement_for_extra(requirement, "x") == expected


class TestRangeRequests:
    @pytest.mark.parametrize(
        ("header", "expected"),
        [
            (None, None),
            ("bytes=0-9", (0, 9)),
            ("bytes=5-", (5, 99)),
            ("bytes=90-200", (90, 99)),
            ("bytes=-10", (90, 99)),
            ("bytes=-500", (0, 99)),
            ("bytes=0-1,5-6", None),
            ("items=0-1", None),
            ("bytes=9-1", None),
            ("bytes=x-1", None),
        ],
    )
    def test_parse_byte_range(self, header: str | None, expected: tuple[int, int] | None) -> None:
        """Single byte ranges are honoured; what RFC 9110 lets a server ignore is ignored."""
        assert parse_byte_range(header, 100) == expected

    @pytest.mark.parametrize("header", ["bytes=100-", "bytes=-0"])
    def test_unsatisfiable_range(self, header: str) -> None:
        """A range past the end or an empty suffix is not satisfiable."""
        with pytest.raises(RangeNotSatisfiableError):
            parse_byte_range(header, 100)

    def test_range_and_suffix_give_206(
        self, index_server: IndexServer, corp: str, client: httpx.Client
    ) -> None:
        """Range and suffix requests answer 206 with Content-Range and the exact bytes."""
        url = files_url(index_server, "my_pkg-1.0.0-py3-none-any.whl")
        whole = client.get(url)
        assert whole.headers["accept-ranges"] == "bytes"
        size = len(whole.content)
        head = client.get(url, headers={"Range": "bytes=0-9"})
        assert head.status_code == 206
        assert head.headers["content-range"] == f"bytes 0-9/{size}"
        assert head.content == whole.content[:10]
        tail = client.get(url, headers={"Range": "bytes=-22"})
        assert tail.status_code == 206
        assert tail.headers["content-range"] == f"bytes {size - 22}-{size - 1}/{size}"
        assert tail.content == whole.content[-22:]
        beyond = client.get(url, headers={"Range": f"bytes={size}-"})
        assert beyond.status_code == 416
        assert beyond.headers["content-range"] == f"bytes */{size}"


class TestFailureInjection:
    def test_status_body_and_headers(
        self, index_server: IndexServer, corp: str, client: httpx.Client
    ) -> None:
        """A rule with a status answers it, with its body and headers, instead of the page."""
        index_server.inject("/corp/simple/dep/", status=503, body=b"busy", headers={"X-A": "1"})
        response = client.get(f"{corp}/dep/")
        assert (response.status_code, response.content) == (503, b"busy")
        assert response.headers["x-a"] == "1"

    def test_times_limits_a_rule(
        self, index_server: IndexServer, corp: str, client: httpx.Client
    ) -> None:
        """A rule with times=N affects the next N matching requests, then the normal answer."""
        index_server.inject("/corp/files/*.metadata", status=403, times=2)
        url = files_url(index_server, "my_pkg-1.0.0-py3-none-any.whl.metadata")
        assert [client.get(url).status_code for _ in range(3)] == [403, 403, 200]

    def test_first_matching_rule_applies(
        self, index_server: IndexServer, corp: str, client: httpx.Client
    ) -> None:
        """Rules are tried in the order added; a spent rule no longer matches."""
        index_server.inject("/corp/simple/*", status=500, times=1)
        index_server.inject("/corp/simple/dep/", status=404)
        assert client.get(f"{corp}/dep/").status_code == 500
        assert client.get(f"{corp}/dep/").status_code == 404
        index_server.clear_injections()
        assert client.get(f"{corp}/dep/").status_code == 200

    def test_delay_with_and_without_status(
        self, index_server: IndexServer, corp: str, client: httpx.Client
    ) -> None:
        """A delay holds the answer back, whether the answer is injected or the normal one."""
        index_server.inject("/corp/simple/dep/", delay=0.2, times=1)
        index_server.inject("/corp/simple/my-pkg/", delay=0.2, status=502, times=1)
        started = time.monotonic()
        assert client.get(f"{corp}/dep/").status_code == 200
        assert client.get(f"{corp}/my-pkg/").status_code == 502
        assert time.monotonic() - started >= 0.4


class TestBasicAuth:
    @pytest.fixture
    def private(self, index_server: IndexServer) -> str:
        return index_server.add_index(
            IndexSpec("private", CORP.projects, basic_auth=("alice", "s3cret"))
        )

    def test_missing_or_wrong_credentials_get_401(self, private: str, client: httpx.Client) -> None:
        """Without the right credentials every path of the index answers 401 with a challenge."""
        response = client.get(f"{private}/dep/")
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == 'Basic realm="private"'
        assert client.get(f"{private}/dep/", auth=("alice", "nope")).status_code == 401
        file_url = private.removesuffix("/simple") + "/files/dep-1.5-py3-none-any.whl"
        assert client.get(file_url).status_code == 401

    def test_right_credentials_pass(self, private: str, client: httpx.Client) -> None:
        """With the credentials pages and files are served."""
        page = client.get(f"{private}/dep/", auth=("alice", "s3cret"), headers=JSON_ACCEPT)
        assert page.status_code == 200
        file_url = page.json()["files"][0]["url"]
        assert client.get(file_url, auth=("alice", "s3cret")).status_code == 200


class TestRequestLog:
    def test_records_method_path_status_and_headers(
        self, index_server: IndexServer, corp: str, client: httpx.Client
    ) -> None:
        """Each answered request is logged with its request headers; count() matches paths."""
        client.get(f"{corp}/dep/", headers={"X-Trace": "t1"})
        client.get(f"{corp}/nope/")
        method, path, status, headers = index_server.requests[0]
        assert (method, path, status) == ("GET", "/corp/simple/dep/", 200)
        assert headers["x-trace"] == "t1"
        assert index_server.requests[1].status == 404
        assert index_server.count("/corp/simple/*") == 2
        assert index_server.count("/corp/files/*") == 0
        index_server.clear_requests()
        assert index_server.requests == []


class TestLifecycle:
    def test_close_releases_the_port(self) -> None:
        """close() stops the server, frees its port and may be called twice."""
        server = IndexServer()
        port = server.port
        assert httpx.get(f"{server.base_url}/x").status_code == 404
        server.close()
        server.close()
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", port))

    def test_indexes_are_separate(self, index_server: IndexServer, client: httpx.Client) -> None:
        """Two indexes may publish the same file name with different contents."""
        one = index_server.add_index(IndexSpec("one", (Project("a", (Release("1.0"),)),)))
        two = index_server.add_index(
            IndexSpec("two", (Project("a", (Release("1.0", requires=("b",)),)),))
        )
        hashes = [
            json_files(client, f"{url}/a/")["a-1.0-py3-none-any.whl"]["hashes"]
            for url in (one, two)
        ]
        assert hashes[0] != hashes[1]

    def test_url_layout(self, index_server: IndexServer) -> None:
        """url() is the index's simple base under base_url, which is loopback."""
        assert index_server.base_url == f"http://127.0.0.1:{index_server.port}"
        assert index_server.url("corp") == f"{index_server.base_url}/corp/simple"
