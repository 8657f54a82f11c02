"""A scripted resolver: a real ``Resolver`` whose behaviour the first requirement chooses.

The first requirement's name picks the script:

- ``ok`` (or anything unlisted): succeed at once with one package.
- ``slow``: count progress every 20 ms until ``stop`` is set, then fail ``cancelled``;
  or succeed once ``release`` is set.
- ``unsat``: fail ``unsatisfiable``.
- ``crash``: raise ``RuntimeError`` carrying a secret-looking URL (must never reach a client).
- ``hang``: ignore ``stop`` and the deadline; only task cancellation ends it.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Sequence

from packaging.requirements import Requirement

from service.index.fetch import FetchStats
from service.index.models import Index
from service.jobs.runner import ResolveFn
from service.resolution import Progress, Resolution, ResolutionFailed, ResolveRequest
from service.resolution.result import Failure, FileRef, ResolutionStats, ResolvedPackage
from service.settings import Settings

__all__ = ["SECRET", "ScriptedResolver", "make_resolution"]

SECRET = "https://user:hunter2@corp.invalid/simple"


def make_resolution(name: str = "ok") -> Resolution:
    package = ResolvedPackage(
        name=name,
        version="1.0",
        index="pypi",
        requested=True,
        extras=[],
        markers=None,
        requires_python=None,
        dependencies=[],
        required_by=[],
        file=FileRef(
            filename=f"{name}-1.0-py3-none-any.whl", url="http://127.0.0.1:9/f", hashes={}
        ),
    )
    return Resolution(packages=[package], warnings=[], stats=ResolutionStats())


class ScriptedResolver:
    """Use as ``resolver=`` for ``create_app`` / ``run_worker_process``; records what it ran."""

    def __init__(self) -> None:
        self.calls: list[ResolveRequest] = []
        self.indexes: list[Sequence[Index]] = []
        self.stops: list[threading.Event] = []
        # A threading.Event: the test client runs the app on another thread's loop.
        self.release = threading.Event()

    @contextlib.asynccontextmanager
    async def __call__(self, settings: Settings) -> AsyncIterator[ResolveFn]:
        yield self.resolve

    async def resolve(
        self,
        request: ResolveRequest,
        *,
        indexes: Sequence[Index],
        progress: Progress,
        stop: threading.Event,
        fetch_stats: FetchStats | None = None,
    ) -> Resolution:
        self.calls.append(request)
        self.indexes.append(indexes)
        self.stops.append(stop)
        script = Requirement(request.requirements[0]).name
        if script == "unsat":
            raise ResolutionFailed(Failure(kind="unsatisfiable", message="No solution found."))
        if script == "crash":
            raise RuntimeError(f"boom while reading {SECRET}")
        if script == "hang":
            await asyncio.Event().wait()
        if script == "slow":
            while not stop.is_set():
                if self.release.is_set():
                    return make_resolution(script)
                progress.rounds += 1
                progress.requests += 1
                await asyncio.sleep(0.02)
            raise ResolutionFailed(Failure(kind="cancelled", message="Stopped."))
        return make_resolution(script)
