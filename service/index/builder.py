"""The seam for metadata builds: what ``IndexClient`` calls when an sdist's metadata is dynamic.

The index layer never builds anything. A process that may build (``[builds] enabled``) hands
its ``IndexClient`` a ``MetadataBuilder`` (``service.builds`` provides the real one); the
client calls it only after an sdist's PKG-INFO proved unusable (PEP 643), and checks what it
returns like any other metadata. ``build_scope`` carries what a build needs to know about the
job that met the sdist (its indexes, index strategy and deadline): the resolver sets it for the
job's duration, and every task the job starts on the event loop inherits it.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Protocol

import msgspec

from service.index.models import DistFile, Index

__all__ = ["BuildScope", "MetadataBuilder", "build_scope"]


class BuildScope(msgspec.Struct, frozen=True, kw_only=True):
    """The job a build is for: its indexes (in priority order), strategy and deadline.

    ``deadline`` is a wall-clock time (``time.time()``), so it means the same in any process.
    """

    indexes: tuple[Index, ...]
    index_strategy: str  # service.resolution.request.IndexStrategy (index never imports it)
    deadline: float


build_scope: ContextVar[BuildScope | None] = ContextVar("resolvd_build_scope", default=None)


class MetadataBuilder(Protocol):
    """Builds an sdist's core metadata (METADATA bytes), or raises ``MetadataBuildError``."""

    async def build_metadata(self, index: Index, file: DistFile) -> bytes: ...
