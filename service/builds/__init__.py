"""Builds: the metadata of sdists whose metadata is dynamic, built once in a sandbox, for all.

Opt-in (``[builds] enabled``). A worker's ``IndexClient`` meets an sdist whose PKG-INFO cannot
stand in for a build (PEP 643) and calls its ``MetadataBuilder`` — here ``BuildRequester``,
which queues one build request per sdist sha256 in the ``BuildStore`` (Redis beside the job
store, or process memory) and waits for the outcome within the job's deadline. A ``Builder``
(``resolvd builder``, or inside ``resolvd serve``) takes the request, resolves the sdist's
build requirements binary-only from the job's own indexes, runs the PEP 517 hooks in a
bubblewrap sandbox (``sandbox``), and stores the METADATA by the sdist's sha256 forever, or
the failure with its log tail for ``failure_ttl_seconds``.

Layering: ``builds`` sits beside ``jobs``. It may import ``service.resolution`` (to resolve
build requirements) and ``service.index`` (to fetch files, and for the ``MetadataBuilder``
protocol it implements); ``index`` and ``resolution`` never import it. ``jobs`` wires the
requester into a worker's client, ``api`` and ``cli`` start builders. Nothing here imports
Litestar.
"""

from service.builds.builder import Builder, open_builder, run_builder_process
from service.builds.model import BuildFailure, BuildOutcome, BuildRequest
from service.builds.requester import BuildRequester
from service.builds.sandbox import Sandbox, SandboxUnavailableError, make_sandbox
from service.builds.store import (
    BuildStore,
    BuildTotals,
    MemoryBuildStore,
    RedisBuildStore,
    open_build_store,
)

__all__ = [
    "BuildFailure",
    "BuildOutcome",
    "BuildRequest",
    "BuildRequester",
    "BuildStore",
    "BuildTotals",
    "Builder",
    "MemoryBuildStore",
    "RedisBuildStore",
    "Sandbox",
    "SandboxUnavailableError",
    "make_sandbox",
    "open_build_store",
    "open_builder",
    "run_builder_process",
]
