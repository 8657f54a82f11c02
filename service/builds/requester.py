"""The worker's side of a build: ask the fleet's builders for an sdist's metadata and wait.

``BuildRequester`` is the ``MetadataBuilder`` a worker's ``IndexClient`` is given when
``[builds] enabled``. For an sdist it has never seen built, it queues one request (keyed by the
sdist's sha256, so a thousand jobs meeting it queue one build) and polls for the outcome until
the job's deadline (``service.index.builder.build_scope``). A build whose builder died (its
lease lapsed) is queued again, up to ``MAX_ATTEMPTS`` times. A known outcome — from any
worker's job, any time before — is returned at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import cast, get_args
from urllib.parse import urldefrag

from redis.exceptions import RedisError

from service.builds.model import (
    BuildFailure,
    BuildOutcome,
    BuildRequest,
    BuildStage,
    index_ref,
)
from service.builds.store import BuildStore
from service.diagnostics.redact import redact_url
from service.index.builder import build_scope
from service.index.errors import MetadataBuildError
from service.index.models import DistFile, Index
from service.resolution.request import IndexStrategy
from service.settings import BuildSettings

__all__ = ["BUILDER_WINDOW_SECONDS", "MAX_ATTEMPTS", "NO_BUILDER_GRACE_SECONDS", "BuildRequester"]

logger = logging.getLogger(__name__)

# A builder counts as running if it beat within this window.
BUILDER_WINDOW_SECONDS = 30.0
# How long a worker waits for a builder to show up before it reports that none is running.
NO_BUILDER_GRACE_SECONDS = 10.0
# A build whose builder stopped (crashed, killed, out of memory) this many times is failed.
MAX_ATTEMPTS = 3
_FIRST_POLL_SECONDS = 0.05
_MAX_POLL_SECONDS = 1.0


class BuildRequester:
    """Implements ``service.index.builder.MetadataBuilder`` over a ``BuildStore``."""

    def __init__(
        self,
        store: BuildStore,
        settings: BuildSettings,
        *,
        no_builder_grace: float = NO_BUILDER_GRACE_SECONDS,
    ) -> None:
        self._store = store
        self._settings = settings
        self._no_builder_grace = no_builder_grace

    async def build_metadata(self, index: Index, file: DistFile) -> bytes:
        url = redact_url(urldefrag(file.url).url)
        sha256 = file.hashes.get("sha256", "").lower()
        if len(sha256) != 64:
            raise _failed(
                index,
                url,
                BuildFailure(
                    stage="download",
                    message="the index gives no sha256 for this sdist, and resolvd builds only "
                    "sdists it can name by their sha256",
                ),
            )
        request = self._make_request(index, file, sha256)
        outcome = await self._wait(request, index, url)
        if outcome.failure is not None:
            raise _failed(index, url, outcome.failure)
        assert outcome.metadata is not None
        return outcome.metadata

    def _make_request(self, index: Index, file: DistFile, sha256: str) -> BuildRequest:
        scope = build_scope.get()
        indexes = scope.indexes if scope is not None else (index,)
        strategy: IndexStrategy = "first-index"
        if scope is not None and scope.index_strategy in get_args(IndexStrategy):
            strategy = cast(IndexStrategy, scope.index_strategy)
        return BuildRequest(
            sha256=sha256,
            file=file,
            index=index_ref(index),
            indexes=tuple(index_ref(i) for i in indexes),
            index_strategy=strategy,
            requested_at=time.time(),
        )

    async def _wait(self, request: BuildRequest, index: Index, url: str) -> BuildOutcome:
        """The known outcome, or queue the build and poll for it until the job's deadline.

        The build store failing (Redis down, a connection timing out) is waited out like a
        slow build, and reported as ``unavailable`` if it lasts to the deadline.
        """
        scope = build_scope.get()
        deadline = (
            scope.deadline if scope is not None else time.time() + self._settings.timeout_seconds
        )
        pause = _FIRST_POLL_SECONDS
        first = True
        started = time.time()
        while True:
            unavailable = None
            try:
                # A builder may be starting (its sandbox probe takes a moment): give it a grace.
                patient = time.time() - started < self._no_builder_grace
                outcome = await self._poll(request, first=first, patient=patient)
            except (RedisError, OSError) as exc:
                logger.warning("builds: the build store did not answer: %s", exc)
                outcome, unavailable = None, f"the build store did not answer ({exc})"
            else:
                first = False
            if outcome is not None:
                return outcome
            now = time.time()
            if now >= deadline:
                message = unavailable or "the build did not finish within the job's deadline"
                stage: BuildStage = "unavailable" if unavailable else "timeout"
                raise _failed(index, url, BuildFailure(stage=stage, message=message))
            await asyncio.sleep(min(pause, max(deadline - now, 0.0)))
            pause = min(pause * 2, _MAX_POLL_SECONDS)

    async def _poll(
        self, request: BuildRequest, *, first: bool, patient: bool
    ) -> BuildOutcome | None:
        """One look at the store: the outcome, or ``None`` after making sure it is coming.

        With no builder alive, an ``unavailable`` failure, unless still ``patient``.
        """
        store, sha256 = self._store, request.sha256
        outcome = await store.find_outcome(sha256)
        if outcome is not None:
            if first:
                await store.record_reuse()
            return outcome
        if first or not await store.is_pending(sha256):
            # Not asked for yet, or its builder stopped, or it waited in the queue too long.
            await self._submit(request)
        if not patient and await store.count_builders(BUILDER_WINDOW_SECONDS) == 0:
            return BuildOutcome(
                failure=BuildFailure(
                    stage="unavailable",
                    message="builds are enabled but no builder is running (start "
                    "`resolvd builder`, or `resolvd serve` with its in-process worker)",
                )
            )
        return None

    async def _submit(self, request: BuildRequest) -> None:
        """Queue ``request``; past ``MAX_ATTEMPTS`` submissions, fail the build instead."""
        if not await self._store.submit(request):
            return
        attempts = await self._store.count_attempt(request.sha256)
        if attempts > MAX_ATTEMPTS:
            message = (
                f"the build was started {MAX_ATTEMPTS} times and each time its builder stopped "
                "before finishing (killed, or out of memory?); see the builders' logs"
            )
            logger.warning("build of %s given up: %s", request.file.filename, message)
            outcome = BuildOutcome(
                failure=BuildFailure(stage="sandbox", message=message), finished_at=time.time()
            )
            await self._store.finish(
                request.sha256, outcome, failure_ttl=self._settings.failure_ttl_seconds
            )


def _failed(index: Index, url: str, failure: BuildFailure) -> MetadataBuildError:
    return MetadataBuildError(
        f"{index.display_name}: {url}: {failure.message}",
        index=index.display_name,
        url=url,
        stage=failure.stage,
        log_tail=failure.log_tail,
    )
