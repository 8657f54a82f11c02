"""Run one resolution: bridge the async index client to the synchronous resolver thread."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from service.index.models import Index
from service.resolution.request import ResolveRequest
from service.resolution.result import Progress, Resolution

if TYPE_CHECKING:
    from service.index.client import IndexClient

__all__ = ["resolve_request"]


async def resolve_request(
    request: ResolveRequest,
    *,
    indexes: Sequence[Index],
    client: IndexClient,
    progress: Progress,
    stop: threading.Event,
) -> Resolution:
    """Resolve ``request`` against ``indexes``; raise ``ResolutionFailed`` with the explanation.

    ``progress`` is updated in place as the search goes (the caller publishes it); setting
    ``stop`` makes the search end at its next step with a ``cancelled`` failure. The request's
    ``deadline_seconds`` is enforced here too, as a ``deadline_exceeded`` failure.
    """
    raise NotImplementedError("being written in this session")
