"""``IndexClient.find_core_metadata``: PEP 658 files, range reads into wheels, whole downloads.

Well-formed indexes come from the loopback index fixture. Hand-made archives (directories past
the tail, members far from it, broken zips, inconsistent METADATA) and a server that ignores
``Range`` come from ``StaticServer``, because no well-formed index serves such bytes.
"""

from __future__ import annotations

import asyncio
import re
import zipfile

import pytest

from service.index import (
    DistFile,
    FetchStats,
    HashMismatchError,
    HTTPStatusError,
    InconsistentMetadataError,
    Index,
    IndexClient,
    InvalidResponseError,
    MemoryPageCache,
    ResponseTooLargeError,
    UnusableMetadataError,
)
from service.index.pages import parse_dist_filename
from service.settings import FetchLimits
from tests.indexserver import IndexServer, IndexSpec, Project, Release
from tests.unit.index.builders import make_metadata, make_sdist_zip, make_wheel, sha256
from tests.unit.index.loopback import StaticServer, wait_until

WHEEL = "demo-1.0-py3-none-any.whl"
METADATA = make_metadata("demo", "1.0", requires=["click>=8"], requires_python=">=3.9")


def corp(server: IndexServer, *releases: Release) -> Index:
    url = server.add_index(IndexSpec("corp", [Project("demo", list(releases))]))
    return Index(name="corp", url=url)


async def only_file(client: IndexClient, index: Index, suffix: str = ".whl") -> DistFile:
    page = await client.find_project_page(index, "demo")
    (dist_file,) = [f for f in page.files if f.filename.endswith(suffix)]
    return dist_file


def static_file(
    server: StaticServer,
    content: bytes,
    filename: str = WHEEL,
    *,
    hashes: dict[str, str] | None = None,
    core_metadata: dict[str, str] | None = None,
    ranges: bool = True,
    size: int | None = None,
) -> DistFile:
    """Serve ``content`` and describe it as a page would."""
    url = server.add(f"/files/{filename}", content, ranges=ranges)
    parsed = parse_dist_filename(filename)
    assert parsed is not None
    return DistFile(
        filename=filename,
        url=url,
        kind=parsed.kind,
        version=parsed.version,
        hashes={"sha256": sha256(content)} if hashes is None else hashes,
        core_metadata=core_metadata,
        size=size,
    )


def static_index(server: StaticServer, auth: str | None = None) -> Index:
    return Index(name="static", url=f"{server.base_url}/simple", auth=auth)


class TestMetadataFile:
    async def test_pep_658_file_is_used(
        self, index_server: IndexServer, client: IndexClient
    ) -> None:
        """An advertised metadata file is fetched instead of the wheel, and parsed."""
        index = corp(index_server, Release("1.0", requires=["click>=8"], requires_python=">=3.9"))
        dist_file = await only_file(client, index)
        stats = FetchStats()
        metadata = await client.find_core_metadata(index, dist_file, stats=stats)
        assert (metadata.name, metadata.version) == ("demo", "1.0")
        assert metadata.requires_dist == ("click>=8",)
        assert metadata.requires_python == ">=3.9"
        assert stats.requests == 1
        await wait_until(lambda: len(index_server.requests) == 2)
        assert index_server.requests[-1].path == f"/corp/files/{WHEEL}.metadata"

    async def test_digest_mismatch_is_refused(
        self, index_server: IndexServer, client: IndexClient
    ) -> None:
        """A metadata file whose sha256 differs from the page's is a HashMismatchError."""
        index = corp(index_server, Release("1.0"))
        dist_file = await only_file(client, index)
        index_server.inject("/corp/files/*.metadata", status=200, body=METADATA)
        with pytest.raises(HashMismatchError) as caught:
            await client.find_core_metadata(index, dist_file)
        assert caught.value.url.endswith(f"{WHEEL}.metadata")

    async def test_status_errors_name_index_and_url(
        self, index_server: IndexServer, client: IndexClient
    ) -> None:
        """A 403 on the metadata file is reported with its status; policy is the resolver's."""
        index = corp(index_server, Release("1.0"))
        dist_file = await only_file(client, index)
        index_server.inject("/corp/files/*.metadata", status=403)
        with pytest.raises(HTTPStatusError) as caught:
            await client.find_core_metadata(index, dist_file)
        assert (caught.value.status, caught.value.reason, caught.value.index) == (
            403,
            "Forbidden",
            "corp",
        )
        assert caught.value.url == f"{index_server.base_url}/corp/files/{WHEEL}.metadata"

    async def test_inconsistent_name_is_reported_as_such(
        self, static_server: StaticServer, client: IndexClient
    ) -> None:
        """Metadata naming another project is InconsistentMetadataError."""
        other = make_metadata("other", "1.0")
        static_server.add(f"/files/{WHEEL}.metadata", other)
        dist_file = static_file(static_server, b"unused", core_metadata={"sha256": sha256(other)})
        with pytest.raises(InconsistentMetadataError, match="inconsistent"):
            await client.find_core_metadata(static_index(static_server), dist_file)

    async def test_size_cap_applies(self, static_server: StaticServer) -> None:
        """A metadata file over ``max_metadata_bytes`` is ResponseTooLargeError."""
        big = make_metadata("demo", "1.0", padding=5000)
        static_server.add(f"/files/{WHEEL}.metadata", big)
        dist_file = static_file(static_server, b"unused", core_metadata={})
        async with IndexClient(FetchLimits(max_metadata_bytes=4096)) as client:
            with pytest.raises(ResponseTooLargeError):
                await client.find_core_metadata(static_index(static_server), dist_file)


class TestRangeRequests:
    async def test_small_wheel_needs_one_range_request(
        self, index_server: IndexServer, client: IndexClient
    ) -> None:
        """Without PEP 658, the wheel's tail holds directory and METADATA: one request."""
        index = corp(index_server, Release("1.0", requires=["click>=8"], pep658=False))
        dist_file = await only_file(client, index)
        stats = FetchStats()
        metadata = await client.find_core_metadata(index, dist_file, stats=stats)
        assert metadata.requires_dist == ("click>=8",)
        assert stats.requests == 1
        await wait_until(lambda: len(index_server.requests) == 2)
        request = index_server.requests[-1]
        assert (request.status, request.headers["range"]) == (206, "bytes=-65536")
        assert request.headers["accept-encoding"] == "identity"

    async def test_member_before_the_tail_is_fetched_by_range(
        self, static_server: StaticServer, client: IndexClient
    ) -> None:
        """METADATA far from the end costs a second range request, not a download."""
        wheel = make_wheel("demo", "1.0", METADATA, trailing_bytes=200_000)
        stats = FetchStats()
        metadata = await client.find_core_metadata(
            static_index(static_server), static_file(static_server, wheel), stats=stats
        )
        assert metadata.requires_python == ">=3.9"
        assert stats.requests == 2
        await wait_until(lambda: len(static_server.served) == 2)
        assert [s.status for s in static_server.served] == [206, 206]
        assert static_server.served[1].headers["range"].startswith("bytes=0-")

    async def test_directory_larger_than_the_tail(
        self, static_server: StaticServer, client: IndexClient
    ) -> None:
        """A central directory beyond the tail is fetched by a second range request."""
        wheel = make_wheel("demo", "1.0", METADATA, filler_files=1500)
        stats = FetchStats()
        metadata = await client.find_core_metadata(
            static_index(static_server), static_file(static_server, wheel), stats=stats
        )
        assert metadata.version == "1.0"
        assert stats.requests == 3
        await wait_until(lambda: len(static_server.served) == 3)
        assert {s.status for s in static_server.served} == {206}

    async def test_a_built_wheels_directory_and_metadata_come_in_one_more_request(
        self, static_server: StaticServer, client: IndexClient
    ) -> None:
        """Laid out as backends build them (METADATA, then RECORD, then the directory), a wheel
        whose directory outgrows the tail needs two requests: the rest of the directory and
        METADATA come together."""
        wheel = make_wheel("demo", "1.0", METADATA, filler_files=1500, built=True)
        assert len(wheel) > 3 * 64 * 1024
        stats = FetchStats()
        metadata = await client.find_core_metadata(
            static_index(static_server), static_file(static_server, wheel), stats=stats
        )
        assert metadata.version == "1.0"
        assert stats.requests == 2
        await wait_until(lambda: len(static_server.served) == 2)
        assert [s.status for s in static_server.served] == [206, 206]

    async def test_inconsistent_version_from_a_range_read(
        self, static_server: StaticServer, client: IndexClient
    ) -> None:
        """Name and version are checked whatever path found the metadata."""
        wheel = make_wheel(
            "demo", "1.0", make_metadata("demo", "2.0"), dist_info="demo-1.0.dist-info"
        )
        with pytest.raises(InconsistentMetadataError, match=re.escape("version 1.0")):
            await client.find_core_metadata(
                static_index(static_server), static_file(static_server, wheel)
            )

    async def test_server_ignoring_range_gets_a_whole_download(
        self, static_server: StaticServer, client: IndexClient
    ) -> None:
        """A 200 to a range request means the server cannot do ranges: download and verify."""
        wheel = make_wheel("demo", "1.0", METADATA)
        stats = FetchStats()
        metadata = await client.find_core_metadata(
            static_index(static_server),
            static_file(static_server, wheel, ranges=False),
            stats=stats,
        )
        assert metadata.requires_dist == ("click>=8",)
        assert stats.requests == 2

    async def test_size_disagreeing_with_the_page_falls_back(
        self, static_server: StaticServer, client: IndexClient
    ) -> None:
        """A Content-Range total unlike the page's size is 'something off': download instead."""
        wheel = make_wheel("demo", "1.0", METADATA)
        stats = FetchStats()
        await client.find_core_metadata(
            static_index(static_server),
            static_file(static_server, wheel, size=len(wheel) + 1),
            stats=stats,
        )
        assert stats.requests == 2

    async def test_broken_zip_ends_in_invalid_response(
        self, static_server: StaticServer, client: IndexClient
    ) -> None:
        """Bytes that are no zip fail the range read, then the whole-file read."""
        with pytest.raises(InvalidResponseError, match="unreadable zip"):
            await client.find_core_metadata(
                static_index(static_server), static_file(static_server, b"<html>login</html>")
            )

    async def test_wheel_without_project_dist_info(
        self, static_server: StaticServer, client: IndexClient
    ) -> None:
        """A readable wheel lacking the project's METADATA is invalid, without a download."""
        wheel = make_wheel("demo", "1.0", METADATA, dist_info="other-1.0.dist-info")
        stats = FetchStats()
        with pytest.raises(InvalidResponseError, match=re.escape("no demo-<version>.dist-info")):
            await client.find_core_metadata(
                static_index(static_server), static_file(static_server, wheel), stats=stats
            )
        assert stats.requests == 1

    async def test_bzip2_member_is_read_from_a_download(
        self, static_server: StaticServer, client: IndexClient
    ) -> None:
        """A compression the range reader does not inflate is left to zipfile."""
        wheel = make_wheel("demo", "1.0", METADATA, compression=zipfile.ZIP_BZIP2)
        stats = FetchStats()
        metadata = await client.find_core_metadata(
            static_index(static_server), static_file(static_server, wheel), stats=stats
        )
        assert metadata.name == "demo"
        assert stats.requests == 2


class TestWholeFiles:
    async def test_wheel_hash_mismatch(
        self, static_server: StaticServer, client: IndexClient
    ) -> None:
        """A downloaded wheel whose sha256 differs from the page's is refused."""
        wheel = make_wheel("demo", "1.0", METADATA)
        dist_file = static_file(static_server, wheel, hashes={"sha256": "0" * 64}, ranges=False)
        with pytest.raises(HashMismatchError, match="sha256"):
            await client.find_core_metadata(static_index(static_server), dist_file)

    async def test_artifact_size_cap(self, static_server: StaticServer) -> None:
        """A download over ``max_artifact_bytes`` is ResponseTooLargeError."""
        wheel = make_wheel("demo", "1.0", METADATA, trailing_bytes=50_000)
        dist_file = static_file(static_server, wheel, ranges=False)
        async with IndexClient(FetchLimits(max_artifact_bytes=20_000)) as client:
            with pytest.raises(ResponseTooLargeError):
                await client.find_core_metadata(static_index(static_server), dist_file)

    async def test_static_sdist_metadata(
        self, index_server: IndexServer, client: IndexClient
    ) -> None:
        """An sdist with Metadata-Version 2.2 and static dependencies is read from PKG-INFO."""
        index = corp(index_server, Release("1.0", requires=["click>=8"], wheel=False, sdist=True))
        dist_file = await only_file(client, index, ".tar.gz")
        metadata = await client.find_core_metadata(index, dist_file)
        assert (metadata.metadata_version, metadata.requires_dist) == ("2.2", ("click>=8",))

    async def test_zip_sdist(self, static_server: StaticServer, client: IndexClient) -> None:
        """A .zip sdist's PKG-INFO is read too."""
        sdist = make_sdist_zip("demo-1.0", make_metadata("demo", "1.0", metadata_version="2.3"))
        metadata = await client.find_core_metadata(
            static_index(static_server), static_file(static_server, sdist, "demo-1.0.zip")
        )
        assert metadata.metadata_version == "2.3"

    async def test_sdist_with_old_metadata_is_unusable(
        self, index_server: IndexServer, client: IndexClient
    ) -> None:
        """PKG-INFO 2.1 cannot promise static dependencies (PEP 643)."""
        index = corp(
            index_server, Release("1.0", wheel=False, sdist=True, sdist_metadata_version="2.1")
        )
        dist_file = await only_file(client, index, ".tar.gz")
        with pytest.raises(UnusableMetadataError, match=re.escape("Metadata-Version 2.1")):
            await client.find_core_metadata(index, dist_file)

    async def test_sdist_with_dynamic_requires_dist_is_unusable(
        self, index_server: IndexServer, client: IndexClient
    ) -> None:
        """Dynamic: Requires-Dist means only a build knows the dependencies."""
        index = corp(
            index_server,
            Release("1.0", wheel=False, sdist=True, sdist_dynamic=["Requires-Dist"]),
        )
        dist_file = await only_file(client, index, ".tar.gz")
        with pytest.raises(UnusableMetadataError, match="Requires-Dist as Dynamic"):
            await client.find_core_metadata(index, dist_file)


class TestCredentials:
    async def test_auth_goes_only_to_the_index_origin(
        self, static_server: StaticServer, client: IndexClient
    ) -> None:
        """Files on the index's origin get its credentials; files on its file origins do not."""
        wheel = make_wheel("demo", "1.0", METADATA)
        dist_file = static_file(static_server, wheel)
        await client.find_core_metadata(static_index(static_server, auth="tok"), dist_file)
        elsewhere = Index(
            name="other",
            url="http://localhost:9/simple",
            auth="tok",
            file_origins=(static_server.base_url,),
        )
        await client.find_core_metadata(elsewhere, dist_file)
        await wait_until(lambda: len(static_server.served) == 2)
        assert [s.headers.get("authorization") for s in static_server.served] == [
            "Bearer tok",
            None,
        ]


class TestCachingAndSharing:
    async def test_metadata_is_cached_by_file_hash(
        self, index_server: IndexServer, limits: FetchLimits
    ) -> None:
        """The second ask for a file with a sha256 is a cache hit."""
        index = corp(index_server, Release("1.0"))
        stats = FetchStats()
        async with IndexClient(limits, cache=MemoryPageCache()) as client:
            dist_file = await only_file(client, index)
            first = await client.find_core_metadata(index, dist_file, stats=stats)
            second = await client.find_core_metadata(index, dist_file, stats=stats)
        assert first == second
        assert (stats.requests, stats.cache_hits) == (1, 1)

    async def test_files_without_sha256_are_not_cached(
        self, static_server: StaticServer, limits: FetchLimits
    ) -> None:
        """Without a digest to key by, metadata is fetched every time."""
        dist_file = static_file(static_server, make_wheel("demo", "1.0", METADATA), hashes={})
        stats = FetchStats()
        async with IndexClient(limits, cache=MemoryPageCache()) as client:
            await client.find_core_metadata(static_index(static_server), dist_file, stats=stats)
            await client.find_core_metadata(static_index(static_server), dist_file, stats=stats)
        assert (stats.requests, stats.cache_hits) == (2, 0)

    async def test_concurrent_calls_share_one_fetch(
        self, index_server: IndexServer, client: IndexClient
    ) -> None:
        """N callers asking for the same metadata at once cause one request."""
        index = corp(index_server, Release("1.0"))
        dist_file = await only_file(client, index)
        index_server.inject("/corp/files/*.metadata", delay=0.2, times=1)
        stats = FetchStats()
        results = await asyncio.gather(
            *(client.find_core_metadata(index, dist_file, stats=stats) for _ in range(8))
        )
        assert len(set(results)) == 1
        assert (stats.requests, stats.shared) == (1, 7)
