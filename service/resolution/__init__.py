"""Resolution: the pure-ish core that turns a ``ResolveRequest`` into pinned packages.

resolvelib drives the search; this package supplies the provider (thin glue), requirements and
candidates (which own their matching and dependencies), the target environment (markers and wheel
tags from a Python version and platform) and the failure explanation built from what the search
learned. It reads packages through ``service.index`` and never imports Litestar or job code: the
resolver runs synchronously in a thread, fed by the async index client on the worker's loop.
"""

from service.resolution.indexes import IndexRefError, make_indexes
from service.resolution.request import IndexRef, PolicyOverride, ResolveRequest, Target
from service.resolution.result import (
    Failure,
    Progress,
    Resolution,
    ResolutionFailed,
    ResolvedPackage,
)
from service.resolution.run import resolve_request

__all__ = [
    "Failure",
    "IndexRef",
    "IndexRefError",
    "PolicyOverride",
    "Progress",
    "Resolution",
    "ResolutionFailed",
    "ResolveRequest",
    "ResolvedPackage",
    "Target",
    "make_indexes",
    "resolve_request",
]
