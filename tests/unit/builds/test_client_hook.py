"""The seam: ``IndexClient`` asks its ``MetadataBuilder`` for dynamic sdists, and the resolver
treats a failed build like any unusable version. The builder here is a scripted fake; the real
one is exercised in ``test_requester``, ``test_sandbox`` and ``tests/e2e/test_builds.py``."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable

import pytest

from service.diagnostics.model import Code
from service.index import IndexClient, MemoryPageCache
from service.index.builder import BuildScope, build_scope
from service.index.errors import InconsistentMetadataError, MetadataBuildError
from service.index.models import DistFile, Index
from service.resolution import Progress, ResolutionFailed, ResolveRequest, Target, resolve_request
from service.resolution.request import StaticMetadata
from service.settings import FetchLimits
from tests.indexserver import IndexServer, IndexSpec, Project, Release

pytestmark = pytest.mark.timeout(30)


class ScriptedBuilder:
    """Answers from ``script(file)``: METADATA bytes, or raises; records what it was asked."""

    def __init__(self, script: Callable[[DistFile], bytes]) -> None:
        self.script = script
        self.asked: list[tuple[str, BuildScope | None]] = []

    async def build_metadata(self, index: Index, file: DistFile) -> bytes:
        self.asked.append((file.filename, build_scope.get()))
        return self.script(file)


def metadata(name: str, version: str, *requires: str) -> bytes:
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    return ("\n".join([*lines, *(f"Requires-Dist: {r}" for r in requires)]) + "\n\n").encode()


def failing(file: DistFile) -> bytes:
    raise MetadataBuildError(
        "corp: setup.py failed", index="corp", url=file.url, stage="backend", log_tail="boom"
    )


def dynamic(version: str) -> Release:
    return Release(version, wheel=False, sdist=True, sdist_dynamic=["Requires-Dist"])


@pytest.fixture
def corp(index_server: IndexServer) -> Index:
    projects = [
        Project("legacy", [dynamic("1.0"), dynamic("2.0")]),
        Project("six", [Release("1.16.0")]),
    ]
    return Index(name="corp", url=index_server.add_index(IndexSpec("corp", projects)))


@pytest.fixture
async def client_with() -> AsyncIterator[Callable[[ScriptedBuilder], IndexClient]]:
    made: list[IndexClient] = []

    def make(builder: ScriptedBuilder) -> IndexClient:
        client = IndexClient(
            FetchLimits(retries=0, fetch_deadline=10),
            cache=MemoryPageCache(),
            metadata_builder=builder,
        )
        made.append(client)
        return client

    yield make
    for client in made:
        await client.aclose()


async def resolve(
    client: IndexClient, index: Index, *requirements: str, **options: object
) -> list[str]:
    request = ResolveRequest(
        requirements=requirements,
        environment=Target(python_version="3.12", platform="x86_64-manylinux_2_28"),
        index_strategy="unsafe-best-match",
        **options,  # type: ignore[arg-type]
    )
    resolution = await resolve_request(
        request, indexes=[index], client=client, progress=Progress(), stop=threading.Event()
    )
    return [f"{p.name}=={p.version}" for p in resolution.packages]


class TestClient:
    async def test_a_dynamic_sdist_is_built_once_and_cached(
        self, corp: Index, client_with: Callable[[ScriptedBuilder], IndexClient]
    ) -> None:
        builder = ScriptedBuilder(lambda f: metadata("legacy", f.version, "six"))
        client = client_with(builder)
        page = await client.find_project_page(corp, "legacy")
        file = next(f for f in page.files if f.version == "2.0")
        first = await client.find_core_metadata(corp, file)
        again = await client.find_core_metadata(corp, file)
        assert first == again and first.requires_dist == ("six",)
        assert [name for name, _ in builder.asked] == ["legacy-2.0.tar.gz"]

    async def test_built_metadata_must_describe_the_sdist(
        self, corp: Index, client_with: Callable[[ScriptedBuilder], IndexClient]
    ) -> None:
        client = client_with(ScriptedBuilder(lambda f: metadata("other", f.version)))
        page = await client.find_project_page(corp, "legacy")
        with pytest.raises(InconsistentMetadataError):
            await client.find_core_metadata(corp, page.files[0])


class TestResolution:
    async def test_the_build_sees_the_jobs_indexes_and_strategy(
        self, corp: Index, client_with: Callable[[ScriptedBuilder], IndexClient]
    ) -> None:
        builder = ScriptedBuilder(lambda f: metadata("legacy", f.version, "six"))
        assert await resolve(client_with(builder), corp, "legacy") == [
            "legacy==2.0",
            "six==1.16.0",
        ]
        (_, scope), *_ = builder.asked
        assert scope is not None
        assert (scope.indexes, scope.index_strategy) == ((corp,), "unsafe-best-match")

    async def test_a_failed_build_is_backtracked_past_with_a_warning(
        self,
        corp: Index,
        client_with: Callable[[ScriptedBuilder], IndexClient],
    ) -> None:
        def script(file: DistFile) -> bytes:
            return failing(file) if file.version == "2.0" else metadata("legacy", "1.0")

        client = client_with(ScriptedBuilder(script))
        request = ResolveRequest(
            requirements=("legacy",),
            environment=Target(python_version="3.12", platform="x86_64-manylinux_2_28"),
        )
        resolution = await resolve_request(
            request, indexes=[corp], client=client, progress=Progress(), stop=threading.Event()
        )
        assert [p.version for p in resolution.packages] == ["1.0"]
        (warning,) = resolution.warnings
        assert (warning.code, warning.package, warning.version) == (
            Code.BUILD_FAILED,
            "legacy",
            "2.0",
        )
        assert warning.data["log_tail"] == "boom" and warning.data["stage"] == "backend"

    async def test_when_every_build_fails_the_failure_says_so(
        self, corp: Index, client_with: Callable[[ScriptedBuilder], IndexClient]
    ) -> None:
        with pytest.raises(ResolutionFailed) as raised:
            await resolve(client_with(ScriptedBuilder(failing)), corp, "legacy")
        failure = raised.value.failure
        assert failure.kind == "unsatisfiable"
        assert "metadata build failed" in failure.message
        assert {h.code for h in failure.hints} == {Code.BUILD_FAILED}
        assert {(e.code, e.version) for e in failure.fetch_errors} == {
            (Code.BUILD_FAILED, "1.0"),
            (Code.BUILD_FAILED, "2.0"),
        }

    async def test_without_a_builder_the_hint_names_both_ways_out(self, corp: Index) -> None:
        async with IndexClient(FetchLimits(retries=0, fetch_deadline=10)) as client:
            with pytest.raises(ResolutionFailed) as raised:
                await resolve(client, corp, "legacy")
        hints = raised.value.failure.hints
        assert {(h.code, h.version) for h in hints} == {
            (Code.SDIST_DYNAMIC_METADATA, "1.0"),
            (Code.SDIST_DYNAMIC_METADATA, "2.0"),
        }
        for hint in hints:
            assert "dependency_metadata" in hint.message
            assert "[builds] enabled" in hint.message

    async def test_dependency_metadata_spares_the_build(
        self, corp: Index, client_with: Callable[[ScriptedBuilder], IndexClient]
    ) -> None:
        """Metadata the request supplies for a dynamic sdist's version is used instead: that
        version is never built, not even by the prefetcher."""
        builder = ScriptedBuilder(lambda f: metadata("legacy", f.version, "six"))
        static = (StaticMetadata(name="legacy", version="2.0", requires_dist=()),)
        client = client_with(builder)
        assert await resolve(client, corp, "legacy", dependency_metadata=static) == ["legacy==2.0"]
        assert builder.asked == []
