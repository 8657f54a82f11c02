"""From a request to resolvelib's inputs, and from resolvelib's exceptions to failures.

Shared by the single-target run (``service.resolution.run``) and the universal one
(``service.resolution.universal``): parsing the request's requirement lines for a scope, and
running one resolvelib search with every way it can end mapped to a ``ResolutionFailed``.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version
from resolvelib import BaseReporter, Resolver
from resolvelib.resolvers import ResolutionImpossible, ResolutionTooDeep, Result

from service.diagnostics.model import Code, Diagnostic, Severity
from service.index.models import Index
from service.resolution.bridge import FetchBridge, StoppedError
from service.resolution.candidates import Candidate, ResolverRequirement, SpecifierRequirement
from service.resolution.direct import DirectFile, DirectURLError, parse_direct_url
from service.resolution.fetch_errors import FatalFetchError
from service.resolution.finder import Finder
from service.resolution.preferences import Preferences
from service.resolution.provider import Provider
from service.resolution.request import ResolveRequest
from service.resolution.resolver import MemoResolver
from service.resolution.result import (
    Failure,
    Reason,
    ResolutionFailed,
    ResolvedPackage,
    make_deadline_failure,
    make_job_failure,
)
from service.resolution.scope import Scope

if TYPE_CHECKING:
    from service.index import FetchStats, IndexClient

__all__ = [
    "DEFAULT_MAX_ROUNDS",
    "Prepared",
    "invalid",
    "make_finder",
    "prepare",
    "run_resolver",
    "success_warnings",
]

DEFAULT_MAX_ROUNDS = 20_000
T = TypeVar("T")


def invalid(message: str) -> ResolutionFailed:
    return ResolutionFailed(Failure(kind="invalid_request", message=message))


@dataclass
class Prepared:
    """The request's requirement lines, parsed and judged for one scope."""

    roots: list[SpecifierRequirement]
    constraints: dict[str, list[SpecifierSet]]
    overrides: dict[str, list[Requirement]]
    yank_pins: dict[str, set[Version]]
    explicit_prerelease: frozenset[str]
    root_names: frozenset[str]
    # Names the requirements take from a direct URL (``name @ https://…``), and the file.
    direct: dict[str, DirectFile] = dataclasses.field(default_factory=dict)


def _parse(
    lines: Sequence[str], field: str, direct: dict[str, DirectFile] | None = None
) -> list[Requirement]:
    """``lines`` parsed; direct URLs only where ``direct`` collects them (validated already by
    the API: refused here too, as the worker trusts nothing it cannot check again)."""
    parsed = []
    for position, line in enumerate(lines):
        try:
            requirement = Requirement(line)
        except InvalidRequirement as error:
            raise invalid(f"{field}[{position}]: invalid requirement: {error}") from error
        if requirement.url:
            if direct is None:
                raise invalid(f"{field}[{position}]: direct URL requirements are not accepted")
            try:
                found = parse_direct_url(requirement)
            except DirectURLError as error:
                raise invalid(f"{field}[{position}]: {line!r}: {error}") from error
            known = direct.setdefault(found.name, found)
            if known.file.url != found.file.url or known.file.hashes != found.file.hashes:
                raise invalid(f"{field}[{position}]: {found.name} is required from two URLs")
        parsed.append(requirement)
    return parsed


def _pins(requirement: Requirement) -> set[Version]:
    pins = set()
    for spec in requirement.specifier:
        if spec.operator in ("==", "===") and not spec.version.endswith(".*"):
            try:
                pins.add(Version(spec.version))
            except InvalidVersion:
                continue
    return pins


def prepare(request: ResolveRequest, scope: Scope) -> Prepared:
    """Parse the request's lines; keep those whose markers can hold in ``scope``."""

    def applicable(lines: Sequence[str], field: str) -> list[Requirement]:
        return [
            requirement
            for requirement in _parse(lines, field)
            if scope.applies(requirement.marker, frozenset()) is not None
        ]

    overrides: dict[str, list[Requirement]] = defaultdict(list)
    for requirement in applicable(request.overrides, "overrides"):
        overrides[canonicalize_name(requirement.name)].append(requirement)
    constraints: dict[str, list[SpecifierSet]] = defaultdict(list)
    # upgrade_packages' specifiers constrain, as uv's -P does.
    constraint_lines = applicable(request.constraints, "constraints") + applicable(
        request.upgrade_packages, "upgrade_packages"
    )
    for requirement in constraint_lines:
        constraints[canonicalize_name(requirement.name)].append(requirement.specifier)
    roots: list[SpecifierRequirement] = []
    direct: dict[str, DirectFile] = {}
    for requirement in _parse(request.requirements, "requirements", direct):
        name = canonicalize_name(requirement.name)
        for replaced in overrides.get(name, [requirement]):
            where = scope.applies(replaced.marker, frozenset())
            if where is not None:
                roots.append(SpecifierRequirement(replaced, marker=where))
    yank_pins: dict[str, set[Version]] = defaultdict(set)
    explicit: set[str] = set()
    first_party = [r.requirement for r in roots] + constraint_lines
    for requirement in first_party:
        name = canonicalize_name(requirement.name)
        yank_pins[name] |= _pins(requirement)
        if requirement.specifier.prereleases:
            explicit.add(name)
    return Prepared(
        roots=roots,
        constraints=dict(constraints),
        overrides=dict(overrides),
        yank_pins=dict(yank_pins),
        explicit_prerelease=frozenset(explicit),
        root_names=frozenset(r.name for r in roots),
        # An override replaces the requirement, its URL with it (overrides name no URLs).
        direct={name: file for name, file in direct.items() if name not in overrides},
    )


def make_finder(
    request: ResolveRequest,
    prepared: Prepared,
    *,
    scope: Scope,
    indexes: Sequence[Index],
    client: IndexClient,
    stats: FetchStats,
    bridge: FetchBridge,
    preferences: Preferences | None = None,
) -> Finder:
    """The finder for one search over ``scope``, prefetching the pages of the root
    requirements and of every preferred project (a lock names the whole tree up front)."""
    finder = Finder(
        request,
        indexes=indexes,
        client=client,
        stats=stats,
        bridge=bridge,
        scope=scope,
        root_names=prepared.root_names,
        yank_pins=prepared.yank_pins,
        explicit_prerelease=prepared.explicit_prerelease,
        overrides=prepared.overrides,
        preferences=preferences,
        direct=prepared.direct,
    )
    for root in prepared.roots:
        finder.prefetch(root.name)
    for name in preferences.names if preferences is not None else ():
        finder.prefetch(name)
    return finder


def run_resolver(
    provider: Provider,
    reporter: BaseReporter[ResolverRequirement, Candidate, str],
    roots: Sequence[SpecifierRequirement],
    *,
    request: ResolveRequest,
    finder: Finder,
    max_rounds: int,
    explain: Callable[[ResolutionImpossible[ResolverRequirement, Candidate]], Failure],
) -> Result[ResolverRequirement, Candidate, str]:
    """One resolvelib search; every way it can fail becomes a ``ResolutionFailed``."""
    resolver: Resolver[ResolverRequirement, Candidate, str] = MemoResolver(provider, reporter)
    try:
        return resolver.resolve(roots, max_rounds=max_rounds)
    except StoppedError as stopped:
        raise ResolutionFailed(
            make_job_failure("cancelled", "The job was cancelled.")
            if stopped.kind == "cancelled"
            else make_deadline_failure(request.deadline_seconds)
        ) from None
    except FatalFetchError as fatal:
        raise ResolutionFailed(
            Failure(
                kind=fatal.kind,
                message=fatal.diagnostic.message,
                hints=[fatal.diagnostic],
                fetch_errors=[fatal.diagnostic, *finder.records.fetch_errors],
            )
        ) from None
    except ResolutionImpossible as impossible:
        raise ResolutionFailed(explain(impossible)) from None
    except ResolutionTooDeep:
        message = (
            f"The resolution gave up after {max_rounds} rounds of backtracking. "
            "Narrow the requirements (add upper bounds or pins) to help it."
        )
        raise ResolutionFailed(
            Failure(
                kind="unsatisfiable",
                message=message,
                hints=[
                    Diagnostic(
                        code=Code.RESOLUTION_TOO_COMPLEX, severity=Severity.ERROR, message=message
                    )
                ],
            )
        ) from None


def success_warnings(finder: Finder, packages: list[ResolvedPackage]) -> list[Diagnostic]:
    warnings = list(finder.records.warnings)
    yanked = finder.yanked_candidates
    for package in packages:
        chosen = Version(package.version)
        rejections = finder.records.rejections.get(package.name, {})
        passed_over = [
            rejection
            for rejection in rejections.values()
            if rejection.reason is Reason.YANKED and Version(rejection.version) > chosen
        ]
        for rejection in passed_over:
            reason = f" (reason: {rejection.detail})" if rejection.detail else ""
            warnings.append(
                Diagnostic(
                    code=Code.YANKED,
                    severity=Severity.WARNING,
                    message=f"{package.name}=={rejection.version} is yanked{reason}; "
                    f"{package.version} was used instead",
                    package=package.name,
                    version=rejection.version,
                    index=rejection.index,
                    data={"reason": rejection.detail, "selected": package.version},
                )
            )
        if (package.name, package.version) in yanked:
            warnings.append(
                Diagnostic(
                    code=Code.YANKED,
                    severity=Severity.WARNING,
                    message=f"{package.name}=={package.version} is yanked; it was used because "
                    "the requirements pin it exactly",
                    package=package.name,
                    version=package.version,
                    index=package.index,
                )
            )
    return warnings
