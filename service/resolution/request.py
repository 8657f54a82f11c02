"""What a job asks the resolver for: the domain form of a validated ``POST /resolve`` body."""

from __future__ import annotations

from typing import Literal

import msgspec

__all__ = [
    "IndexRef",
    "IndexStrategy",
    "PolicyOverride",
    "PrereleaseMode",
    "ResolutionMode",
    "ResolveRequest",
    "Target",
]

PrereleaseMode = Literal[
    "disallow", "allow", "if-necessary", "explicit", "if-necessary-or-explicit"
]
ResolutionMode = Literal["highest", "lowest", "lowest-direct"]
IndexStrategy = Literal["first-index", "unsafe-first-match", "unsafe-best-match"]


class Target(msgspec.Struct, frozen=True, kw_only=True):
    """The environment resolved for: a Python version and a uv ``--python-platform`` name."""

    python_version: str
    platform: str


class PolicyOverride(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A per-job replacement for an index's ``ignore_error_codes`` (either half may be absent)."""

    page: tuple[int, ...] | None = None
    metadata: tuple[int, ...] | None = None


class IndexRef(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One entry of ``indexes[]``: a configured index by name, or an allowed URL."""

    name: str | None = None
    url: str | None = None
    ignore_error_codes: PolicyOverride | None = None


class ResolveRequest(msgspec.Struct, frozen=True, kw_only=True):
    """A validated resolution request. Holds no secrets: it is stored in the job document."""

    requirements: tuple[str, ...]
    constraints: tuple[str, ...] = ()
    overrides: tuple[str, ...] = ()
    environment: Target
    universal: bool = False
    # Universal jobs: the lock's Python range (default ``>=`` the target's python_version), the
    # environments it is limited to, and those every locked package must have a file for.
    requires_python: str | None = None
    environments: tuple[str, ...] = ()
    required_environments: tuple[str, ...] = ()
    prerelease: PrereleaseMode = "if-necessary-or-explicit"
    resolution: ResolutionMode = "highest"
    exclude_newer: str | None = None
    no_binary: tuple[str, ...] = ()
    only_binary: tuple[str, ...] = ()
    indexes: tuple[IndexRef, ...] = ()
    index_strategy: IndexStrategy = "first-index"
    deadline_seconds: float = 120.0
