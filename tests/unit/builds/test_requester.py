"""``BuildRequester``: a worker asks once per sdist, waits within its job, reuses what is known."""

from __future__ import annotations

import asyncio
import time

import pytest

from service.builds.model import BuildFailure, BuildOutcome
from service.builds.requester import MAX_ATTEMPTS, BuildRequester
from service.builds.store import MemoryBuildStore, RedisBuildStore
from service.index.builder import BuildScope, build_scope
from service.index.errors import MetadataBuildError
from service.index.models import Index
from service.settings import BuildSettings
from tests.unit.builds.projects import sdist_file

SHA = "b" * 64
INDEX = Index(name="corp", url="http://127.0.0.1:9/corp/simple")
FILE = sdist_file(SHA)
METADATA = b"Metadata-Version: 2.1\nName: demo\nVersion: 1.0\nRequires-Dist: six\n\n"


def requester(store: MemoryBuildStore) -> BuildRequester:
    return BuildRequester(store, BuildSettings(enabled=True, failure_ttl_seconds=60))


async def serve_builds(store: MemoryBuildStore, outcome: BuildOutcome) -> int:
    """A stand-in builder: beats, takes requests and finishes them; returns how many it took."""
    taken = 0
    await store.beat("builder-test")
    while (request := await store.take(0.3)) is not None:
        taken += 1
        await store.finish(request.sha256, outcome, failure_ttl=60)
    return taken


class TestBuildRequester:
    async def test_concurrent_jobs_queue_one_build(self) -> None:
        """Three jobs meeting the same sdist at once get one build and the same metadata."""
        store = MemoryBuildStore()
        await store.beat("builder-test")
        results = asyncio.gather(*(requester(store).build_metadata(INDEX, FILE) for _ in range(3)))
        taken = await serve_builds(store, BuildOutcome(metadata=METADATA))
        assert await results == [METADATA] * 3
        assert taken == 1
        assert (await store.totals()).requested == 1

    async def test_a_known_outcome_is_reused_without_a_request(self) -> None:
        store = MemoryBuildStore()
        await store.finish(SHA, BuildOutcome(metadata=METADATA), failure_ttl=60)
        assert await requester(store).build_metadata(INDEX, FILE) == METADATA
        totals = await store.totals()
        assert (totals.requested, totals.reused) == (0, 1)

    async def test_a_failure_is_a_metadata_build_error(self) -> None:
        """The failure's stage and log tail travel with the error, redacted URL and index too."""
        store = MemoryBuildStore()
        failure = BuildFailure(stage="backend", message="setup.py failed", log_tail="Traceback")
        await store.finish(SHA, BuildOutcome(failure=failure), failure_ttl=60)
        with pytest.raises(MetadataBuildError) as raised:
            await requester(store).build_metadata(INDEX, FILE)
        error = raised.value
        assert (error.stage, error.log_tail, error.index) == ("backend", "Traceback", "corp")
        assert "setup.py failed" in error.message

    async def test_no_builder_running(self) -> None:
        """With builds on but no builder alive past a short grace, the job learns so."""
        waiting = BuildRequester(MemoryBuildStore(), BuildSettings(), no_builder_grace=0.2)
        started = time.monotonic()
        with pytest.raises(MetadataBuildError, match="no builder is running") as raised:
            await waiting.build_metadata(INDEX, FILE)
        assert raised.value.stage == "unavailable"
        assert 0.2 <= time.monotonic() - started < 5

    async def test_the_wait_ends_at_the_jobs_deadline(self) -> None:
        store = MemoryBuildStore()
        await store.beat("builder-test")  # alive, but never takes anything
        scope = BuildScope(
            indexes=(INDEX,), index_strategy="first-index", deadline=time.time() + 0.3
        )
        token = build_scope.set(scope)
        try:
            with pytest.raises(MetadataBuildError, match="deadline") as raised:
                await requester(store).build_metadata(INDEX, FILE)
        finally:
            build_scope.reset(token)
        assert raised.value.stage == "timeout"

    async def test_the_request_carries_the_jobs_indexes(self) -> None:
        """Build requirements come from the job's indexes, under its strategy."""
        store = MemoryBuildStore()
        await store.beat("builder-test")
        pypi = Index(name="pypi", url="http://127.0.0.1:9/pypi/simple")
        scope = BuildScope(
            indexes=(INDEX, pypi), index_strategy="unsafe-best-match", deadline=time.time() + 5
        )
        token = build_scope.set(scope)
        try:
            waiting = asyncio.ensure_future(requester(store).build_metadata(INDEX, FILE))
        finally:
            build_scope.reset(token)
        request = await store.take(1.0)
        assert request is not None
        assert [r.name for r in request.indexes] == ["corp", "pypi"]
        assert request.index_strategy == "unsafe-best-match"
        await store.finish(SHA, BuildOutcome(metadata=METADATA), failure_ttl=60)
        assert await waiting == METADATA

    async def test_a_build_whose_builders_keep_dying_is_failed(self) -> None:
        """Each lapsed lease queues the build again, up to MAX_ATTEMPTS, then it fails."""
        store = MemoryBuildStore()
        await store.beat("builder-test")
        waiting = asyncio.ensure_future(requester(store).build_metadata(INDEX, FILE))
        for _ in range(MAX_ATTEMPTS):
            request = await store.take(2.0)
            assert request is not None
            await store.hold(request.sha256, "doomed", 0.01)  # then "dies"
        with pytest.raises(MetadataBuildError, match="builder stopped"):
            await waiting

    async def test_an_unreachable_store_is_waited_out_then_reported(self) -> None:
        """A build store that does not answer is not an internal error: the version is skipped."""
        store = RedisBuildStore.from_url("redis://127.0.0.1:9/0")
        scope = BuildScope(indexes=(INDEX,), index_strategy="first-index", deadline=time.time() + 1)
        token = build_scope.set(scope)
        try:
            with pytest.raises(MetadataBuildError, match="did not answer") as raised:
                await BuildRequester(store, BuildSettings(enabled=True)).build_metadata(INDEX, FILE)
        finally:
            build_scope.reset(token)
            await store.aclose()
        assert raised.value.stage == "unavailable"

    async def test_an_sdist_without_sha256_is_not_built(self) -> None:
        unhashed = sdist_file("")
        with pytest.raises(MetadataBuildError, match="no sha256"):
            await requester(MemoryBuildStore()).build_metadata(INDEX, unhashed)
