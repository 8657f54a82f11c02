"""``explain_failure``: resolvelib's causes and the finder's records in, a ``Failure`` out."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from typing import TYPE_CHECKING

from service.diagnostics.model import Code
from service.resolution.explain.derivation import Derivation
from service.resolution.explain.facts import Facts
from service.resolution.explain.hints import Hints
from service.resolution.explain.phrasing import HEADER
from service.resolution.result import Failure, FailureCause

if TYPE_CHECKING:
    from resolvelib.structs import RequirementInformation

    from service.resolution.candidates import Candidate, ResolverRequirement
    from service.resolution.environment import TargetEnvironment
    from service.resolution.explain.facts import Search
    from service.resolution.request import ResolveRequest

    Information = RequirementInformation[ResolverRequirement, Candidate]

__all__ = ["explain_failure"]

# Warnings the search met that belong in a failure's ``fetch_errors``.
_FETCH_ERROR_CODES = frozenset(
    {
        Code.METADATA_UNAVAILABLE,
        Code.INDEX_FORBIDDEN,
        Code.INDEX_UNAUTHORIZED,
        Code.INDEX_ERROR,
        Code.INDEX_UNREACHABLE,
        Code.BUILD_FAILED,
    }
)


def explain_failure(
    causes: Collection[Information],
    *,
    finder: Search,
    request: ResolveRequest,
    target: TargetEnvironment,
) -> Failure:
    """The ``unsatisfiable`` failure for resolvelib's ``causes``: one paragraph per package."""
    facts = Facts(finder)
    hints = Hints(facts, finder, request, target)
    derivation = Derivation(facts, hints, requirements=request.requirements, target=target)
    by_name: dict[str, list[Information]] = defaultdict(list)
    for cause in causes:
        by_name[cause.requirement.name].append(cause)
    paragraphs: list[str] = []
    structured: list[FailureCause] = []
    for name, all_infos in by_name.items():
        distinct = {
            (
                i.requirement.format_for_error(),
                i.parent.format_for_error() if i.parent else None,
            ): i
            for i in all_infos
        }
        infos = list(distinct.values())
        hints.other_indexes(name, [i.requirement for i in infos])
        paragraphs.append(derivation.explain_group(name, infos))
        universe = facts.universe(name)
        rejections = facts.rejections(name)
        for (requirement, required_by), info in distinct.items():
            matching = [v for v in universe if info.requirement.contains(v)]
            structured.append(
                FailureCause(
                    package=name,
                    requirement=requirement,
                    required_by=required_by,
                    versions=[rejections[str(v)] for v in matching if str(v) in rejections],
                )
            )
    return Failure(
        kind="unsatisfiable",
        message=HEADER + "".join(f"\n  {p}" for p in paragraphs),
        causes=structured,
        hints=hints.items,
        fetch_errors=[w for w in finder.records.warnings if w.code in _FETCH_ERROR_CODES],
    )
