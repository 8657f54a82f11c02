"""Wire types: what clients send and what the operational routes answer.

Kept apart from the domain types on purpose: ``ResolveBody`` is what JSON may say (every field
but ``requirements`` optional, nothing unknown allowed); ``service.api.validation`` turns it into
the domain ``ResolveRequest`` once every value has been checked. The job document itself is
``service.jobs.model.JobDocument``: it is what the store keeps and what clients read, one shape.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from service.export import LockFormat
from service.resolution.request import (
    IndexFormat,
    IndexStrategy,
    PrereleaseMode,
    ResolutionMode,
)

__all__ = [
    "DependencyMetadataBody",
    "EnvironmentBody",
    "ErrorCodesBody",
    "FieldError",
    "HealthStatus",
    "IndexRefBody",
    "IndexView",
    "LockBody",
    "Problem",
    "PyprojectBody",
    "ReadyStatus",
    "ResolveBody",
]


class _Wire(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class ErrorCodesBody(_Wire, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Statuses that mean "unavailable here": on project pages, and on one version's files."""

    page: list[int] | None = None
    metadata: list[int] | None = None


class IndexRefBody(_Wire, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One index, by configured ``name`` or (where the server allows it) by ``url``.

    ``format`` says what a ``url`` serves: a simple index (the default) or a ``flat`` page of
    file links (``--find-links``); a configured index has its configured format.
    """

    name: str | None = None
    url: str | None = None
    ignore_error_codes: ErrorCodesBody | None = None
    format: IndexFormat | None = None


class EnvironmentBody(_Wire, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The target; an omitted field takes the server's configured default."""

    python_version: str | None = None
    platform: str | None = None


class LockBody(_Wire, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A previous lock: its text in an export ``format``, or the ``job`` whose result it is.

    Give either ``format`` and ``content`` or ``job`` (an earlier succeeded job of the same
    client); its versions are preferences, never constraints.
    """

    format: LockFormat | None = None
    content: str | None = None
    job: str | None = None


class PyprojectBody(_Wire, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A ``pyproject.toml``'s text and the extras (``"all"``: every one) and PEP 735
    dependency groups whose requirements join the job's."""

    content: str
    extras: list[str] = []
    groups: list[str] = []


class DependencyMetadataBody(_Wire, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Static metadata for a package (uv's ``dependency-metadata``): replaces what the index
    offers for ``name`` (only that ``version`` when given)."""

    name: str
    version: str | None = None
    requires_dist: list[str] = []
    requires_python: str | None = None


class ResolveBody(_Wire, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The body of ``POST /resolve`` (``ResolveBody`` in the OpenAPI document)."""

    requirements: list[str] = []
    constraints: list[str] = []
    overrides: list[str] = []
    environment: EnvironmentBody | None = None
    universal: bool = False
    requires_python: str | None = None
    environments: list[str] = []
    required_environments: list[str] = []
    prerelease: PrereleaseMode = "if-necessary-or-explicit"
    resolution: ResolutionMode = "highest"
    exclude_newer: str | None = None
    exclude_newer_package: dict[str, str | bool] = {}
    sources: dict[str, str] = {}
    no_binary: list[str] = []
    only_binary: list[str] = []
    indexes: list[IndexRefBody] = []
    index_strategy: IndexStrategy = "first-index"
    deadline_seconds: float | None = None
    lock: LockBody | None = None
    upgrade: bool = False
    upgrade_packages: list[str] = []
    no_deps: bool = False
    dependency_metadata: list[DependencyMetadataBody] = []
    pyproject: PyprojectBody | None = None


class FieldError(msgspec.Struct, frozen=True, kw_only=True):
    """One invalid input: where (``requirements[2]``, ``environment.platform``) and why."""

    field: str
    message: str


class Problem(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """An RFC 9457 problem document (``application/problem+json``)."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[FieldError] | None = None


class HealthStatus(msgspec.Struct, frozen=True, kw_only=True):
    status: Literal["ok"]


class ReadyStatus(msgspec.Struct, frozen=True, kw_only=True):
    """Readiness: the job store answers and a worker beat recently."""

    status: Literal["ready", "unavailable"]
    store: Literal["redis", "memory"]
    store_reachable: bool
    workers: int
    detail: str | None = None


class IndexErrorCodes(msgspec.Struct, frozen=True, kw_only=True):
    page: list[int]
    metadata: list[int]


class IndexView(msgspec.Struct, frozen=True, kw_only=True):
    """A configured index: its name, redacted URL, default client-error policy, ``format``
    (``simple`` or ``flat``) and whether it is ``explicit`` (only for what ``sources`` pins)."""

    name: str
    url: str
    ignore_error_codes: IndexErrorCodes
    format: IndexFormat = "simple"
    explicit: bool = False
