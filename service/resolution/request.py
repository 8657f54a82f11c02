"""What a job asks the resolver for: the domain form of a validated ``POST /resolve`` body."""

from __future__ import annotations

from typing import Literal

import msgspec

__all__ = [
    "IndexFormat",
    "IndexRef",
    "IndexStrategy",
    "LockInput",
    "LockSourceFormat",
    "LockedFile",
    "LockedPackage",
    "PolicyOverride",
    "PrereleaseMode",
    "ResolutionMode",
    "ResolveRequest",
    "StaticMetadata",
    "Target",
]

PrereleaseMode = Literal[
    "disallow", "allow", "if-necessary", "explicit", "if-necessary-or-explicit"
]
ResolutionMode = Literal["highest", "lowest", "lowest-direct"]
IndexStrategy = Literal["first-index", "unsafe-first-match", "unsafe-best-match"]
# "simple": a PEP 503/691 index; "flat": one page of file links (pip and uv's --find-links).
IndexFormat = Literal["simple", "flat"]
LockSourceFormat = Literal["pylock", "requirements", "pip-report", "job"]


class Target(msgspec.Struct, frozen=True, kw_only=True):
    """The environment resolved for: a Python version and a uv ``--python-platform`` name."""

    python_version: str
    platform: str


class PolicyOverride(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A per-job replacement for an index's ``ignore_error_codes`` (either half may be absent)."""

    page: tuple[int, ...] | None = None
    metadata: tuple[int, ...] | None = None


class IndexRef(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One entry of ``indexes[]``: a configured index by name, or an allowed URL.

    ``format`` is what an index named by URL serves (``None``: a simple index); a configured
    index's format is its configuration's.
    """

    name: str | None = None
    url: str | None = None
    ignore_error_codes: PolicyOverride | None = None
    format: IndexFormat | None = None


class LockedFile(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A file a lock names for one package: any of its filename, URL and hashes it states."""

    filename: str | None = None
    url: str | None = None
    hashes: dict[str, str] = msgspec.field(default_factory=dict)


class LockedPackage(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One entry of a previous lock, in no format's terms: what a preference is made from.

    ``version`` is a valid PEP 440 version and ``name`` a canonical name. ``index`` is the
    (redacted) URL of the index the entry came from, where the lock says; ``marker`` the PEP 508
    condition under which the entry applies (``None``: always); ``files`` the files it pinned.
    """

    name: str
    version: str
    index: str | None = None
    marker: str | None = None
    files: tuple[LockedFile, ...] = ()


class LockInput(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A previous lock, read: its entries are preferences for the resolution, never constraints.

    ``format`` says what it was read from (``job``: an earlier job's result, named by ``job``).
    ``environments`` are PEP 508 markers of which one held where the lock was made and
    ``requires_python`` the Python versions it was made for, where the lock says.
    """

    format: LockSourceFormat
    packages: tuple[LockedPackage, ...]
    job: str | None = None
    environments: tuple[str, ...] = ()
    requires_python: str | None = None


class StaticMetadata(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Metadata the request supplies for a package (uv's ``dependency-metadata``), used instead
    of the index's for ``name`` (canonical) and, when given, only that ``version``."""

    name: str
    version: str | None = None
    requires_dist: tuple[str, ...] = ()
    requires_python: str | None = None


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
    # The cutoff as an RFC 3339 time (or a date); a duration given in the request ("7 days")
    # was turned into a time when the job was accepted, and is kept in ``exclude_newer_span``.
    exclude_newer: str | None = None
    exclude_newer_span: str | None = None
    # Per canonical name: that package's own cutoff (a time), or False for none at all.
    exclude_newer_package: dict[str, str | bool] = msgspec.field(default_factory=dict)
    # Canonical name -> the name of the one index that package is looked up on.
    sources: dict[str, str] = msgspec.field(default_factory=dict)
    no_binary: tuple[str, ...] = ()
    only_binary: tuple[str, ...] = ()
    indexes: tuple[IndexRef, ...] = ()
    index_strategy: IndexStrategy = "first-index"
    deadline_seconds: float = 120.0
    lock: LockInput | None = None
    upgrade: bool = False
    upgrade_packages: tuple[str, ...] = ()
    # Only the listed requirements, none of their dependencies (uv's --no-deps).
    no_deps: bool = False
    dependency_metadata: tuple[StaticMetadata, ...] = ()
