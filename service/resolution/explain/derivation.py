"""The derivation: "Because …, we can conclude that …" for the requirements on one package.

In the spirit of uv's reports: why no version satisfies a requirement (from the versions the
finder passed over and why), who requires it, which versions of a requirer share the same
requirement, and — when resolvelib's causes name only the last conflict — which of the user's
requirements ruled out a requirer's other versions earlier.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from service.resolution.candidates import SpecifierRequirement
from service.resolution.explain.phrasing import (
    UNSATISFIABLE,
    depend_verb,
    describe_reason,
    format_version_set,
    join_requirers,
)
from service.resolution.result import Reason

if TYPE_CHECKING:
    from collections.abc import Mapping

    from resolvelib.structs import RequirementInformation

    from service.resolution.candidates import Candidate, ResolverRequirement
    from service.resolution.environment import TargetEnvironment
    from service.resolution.explain.facts import Facts
    from service.resolution.explain.hints import Hints
    from service.resolution.result import VersionRejection

    Information = RequirementInformation[ResolverRequirement, Candidate]

__all__ = ["Derivation"]


def _describe(requirements: Sequence[ResolverRequirement]) -> str:
    """Several requirements on one package read as their intersection: ``a>=1,a<3``."""
    return ",".join(r.format_for_error() for r in requirements)


def _allow(requirements: Sequence[ResolverRequirement], version: Version) -> bool:
    return all(r.contains(version) for r in requirements)


class Derivation:
    """The clauses of one failure's report; hints found along the way go to ``hints``."""

    def __init__(
        self,
        facts: Facts,
        hints: Hints,
        *,
        requirements: Sequence[str],
        target: TargetEnvironment,
    ) -> None:
        self._facts = facts
        self._hints = hints
        self._target = target
        # Each root requirement parsed, with the line as the user wrote it (marker dropped). The
        # request was validated before it was queued: every line parses.
        self._roots = [(Requirement(line), line.split(";")[0].strip()) for line in requirements]
        self._root_requirements = [r for r, _ in self._roots if facts.applies(r)]

    # -- why a requirement cannot be met ---------------------------------------------------

    def why_unusable(self, name: str, requirements: Sequence[ResolverRequirement]) -> str:
        """Why no version of ``name`` satisfies ``requirements`` (all of them at once)."""
        facts = self._facts
        if not facts.found(name):
            self._hints.not_found(name)
            return f"{name} was not found in the package registry"
        full = facts.universe(name)
        excluded_pre = facts.excluded_prereleases(name)
        if excluded_pre:
            self._hints.prerelease(name, sorted(excluded_pre))
        # Versions the prerelease mode set aside are not "available" to the user: say so apart.
        universe = facts.offered(name)
        matching = [v for v in universe if _allow(requirements, v)]
        if not matching:
            pre_matching = [v for v in full if v in excluded_pre and _allow(requirements, v)]
            if pre_matching:
                subject = format_version_set(name, pre_matching, full)
                return (
                    f"only pre-releases of {name} match {_describe(requirements)} "
                    f"({subject}) and pre-releases are not allowed"
                )
            return self._no_version_clause(name, requirements, universe)
        rejections = facts.rejections(name)
        # None: nothing was wrong with the version; the conflict itself ruled it out.
        reasons: dict[Reason | None, list[Version]] = defaultdict(list)
        for version in matching:
            rejection = rejections.get(str(version))
            reasons[rejection.reason if rejection else None].append(version)
            if rejection:
                self._hints.rejection(name, rejection)
        return " and ".join(
            self._reason_clause(name, reason, versions, universe, rejections)
            for reason, versions in reasons.items()
        )

    def _reason_clause(
        self,
        name: str,
        reason: Reason | None,
        versions: list[Version],
        universe: list[Version],
        rejections: Mapping[str, VersionRejection],
    ) -> str:
        subject = format_version_set(name, versions, universe)
        if reason is None:
            return f"{subject} conflicts with other requirements"
        if reason is Reason.METADATA_UNAVAILABLE:
            statuses = sorted(
                {
                    r.detail or str(r.status)
                    for v in versions
                    if (r := rejections.get(str(v))) and r.status
                }
            )
            return f"{subject} could not be fetched from the network ({', '.join(statuses)})"
        if reason is Reason.REQUIRES_PYTHON:
            return self._python_clause(name, versions, universe, rejections)
        tag = self._missing_tag(name, versions) if reason is Reason.NO_COMPATIBLE_WHEELS else ""
        return f"{subject} {describe_reason(reason, subject, name=name, tag=tag)}"

    def _no_version_clause(
        self, name: str, requirements: Sequence[ResolverRequirement], universe: list[Version]
    ) -> str:
        """uv's phrasing: name what *is* available when the requirement asks beyond it."""
        described = _describe(requirements)
        self._hints.no_matching_version(name, described, universe)
        if not universe:
            return f"there is no version of {name}"
        if "==" in described and "," not in described:
            return f"there is no version of {described}"
        if len(universe) == 1:
            return f"only {name}=={universe[0]} is available"
        high, low = max(universe), min(universe)
        if _allow(requirements, Version(f"{high.release[0] + 1000}")):
            return f"only {name}<={high} is available"
        if _allow(requirements, Version("0.dev0")):
            return f"only {name}>={low} is available"
        return f"there is no version of {described}"

    def _python_clause(
        self,
        name: str,
        versions: list[Version],
        universe: list[Version],
        rejections: Mapping[str, VersionRejection],
    ) -> str:
        by_bound: dict[str, list[Version]] = defaultdict(list)
        for version in versions:
            rejection = rejections.get(str(version))
            by_bound[rejection.detail if rejection and rejection.detail else "?"].append(version)
        full = self._target.python_full_version
        if len(by_bound) == 1:
            bound = next(iter(by_bound))
            subject = format_version_set(name, versions, universe)
            return (
                f"the requested Python version ({full}) does not satisfy Python{bound} and "
                f"{subject} {depend_verb(subject)} on Python{bound}"
            )
        parts = []
        for bound, bound_versions in sorted(by_bound.items()):
            subject = format_version_set(name, bound_versions, universe)
            parts.append(f"{subject} {depend_verb(subject)} on Python{bound}")
        return f"{', '.join(parts)}, none of which the requested Python version ({full}) satisfies"

    def _missing_tag(self, name: str, versions: list[Version]) -> str:
        """Which part of the wheel tags failed to match: interpreter, ABI or platform."""
        supported = [tag.split("-") for tag in self._target.supported_tags]
        interpreters = {t[0] for t in supported}
        abis = {t[1] for t in supported}
        tags = [tag.split("-") for tag in self._facts.wheel_tags(name, versions)]
        example = f"cp3{self._target.python_version.split('.')[1]}"
        if tags and not any(t[0] in interpreters for t in tags):
            return f"Python implementation tag (e.g., `{example}`)"
        if tags and not any(t[1] in abis for t in tags):
            return f"Python ABI tag (e.g., `{example}`)"
        platform = self._target.supported_tags[0].split("-")[2]
        return f"platform tag (e.g., `{platform}`)"

    # -- who requires it -------------------------------------------------------------------

    def _same_requirement(
        self, parent: Candidate, requirement: ResolverRequirement
    ) -> list[Version]:
        """Every loaded version of ``parent``'s package with the same requirement as it.

        Only a requirement written in metadata can recur in other versions; an extras
        candidate's pin on its base project is its own.
        """
        if parent.extras or not isinstance(requirement, SpecifierRequirement):
            return [parent.version]
        wanted = (requirement.name, str(requirement.specifier))
        same = [
            Version(version)
            for (name, version), requirements in self._facts.dependencies().items()
            if name == parent.name
            and any((canonicalize_name(r.name), str(r.specifier)) == wanted for r in requirements)
        ]
        return same or [parent.version]

    def parent_subject(self, parent: Candidate, requirement: ResolverRequirement) -> str:
        """``parent`` widened to every loaded version of it with the same requirement."""
        same = self._same_requirement(parent, requirement)
        if parent.extras or len(same) <= 1:
            return parent.format_for_error()
        return format_version_set(parent.name, same, self._facts.offered(parent.name))

    def who_requires(self, requirement: ResolverRequirement, parent: Candidate | None) -> str:
        if parent is None:
            return f"you require {requirement.format_for_error()}"
        subject = self.parent_subject(parent, requirement)
        return f"{subject} {depend_verb(subject)} on {requirement.format_for_error()}"

    def requirers(self, name: str) -> str:
        """Who requires ``name``: the user as written, else up to three dependents."""
        written = next((w for r, w in self._roots if canonicalize_name(r.name) == name), None)
        if written is not None:
            return f"you require {written}"
        parents = sorted(
            f"{parent}=={version}"
            for (parent, version), requirements in self._facts.dependencies().items()
            if any(canonicalize_name(r.name) == name for r in requirements)
        )
        if parents:
            return f"{' and '.join(parents[:3])} depend{'s' if len(parents) == 1 else ''} on {name}"
        return f"{name} is required"

    # -- what ruled out the requirers' other versions --------------------------------------

    def _root_allows(self, name: str, version: Version) -> bool:
        return all(
            r.specifier.contains(version, prereleases=True)
            for r in self._root_requirements
            if canonicalize_name(r.name) == name
        )

    def excluders(self, infos: Sequence[Information]) -> list[str]:
        """Clauses for what rules out the parents' other versions, when the conflict does not.

        resolvelib's causes name only the last conflict: "a==1.0 cannot be used", while
        a==2.0 was ruled out earlier, by a requirement of another package the user requires.
        For each parent package, the versions the user's requirement allows that the conclusion
        does not cover are looked up among every loaded requirement on that package: a root
        package all of whose versions exclude them all completes the derivation ("and because
        all versions of b depend on a==1.0 and you require b").
        """
        covered: dict[str, set[Version]] = defaultdict(set)
        for info in infos:
            if info.parent is not None and not info.parent.extras:
                covered[info.parent.name].update(
                    self._same_requirement(info.parent, info.requirement)
                )
        clauses: list[str] = []
        for name, versions in covered.items():
            remaining = [
                v
                for v in self._facts.available(name)
                if v not in versions and self._root_allows(name, v)
            ]
            if remaining:
                clauses += self._excluding_roots(name, remaining)
        return clauses

    def _excluding_roots(self, name: str, remaining: Sequence[Version]) -> list[str]:
        on_name: dict[str, dict[Version, list[Requirement]]] = defaultdict(dict)
        for (dependent, version), requirements in self._facts.dependencies().items():
            relevant = [
                r
                for r in requirements
                if canonicalize_name(r.name) == name and not r.extras and self._facts.applies(r)
            ]
            if relevant and dependent != name:
                on_name[dependent][Version(version)] = relevant
        clauses: list[str] = []
        for dependent, by_version in sorted(on_name.items()):
            allowed = [
                v for v in self._facts.available(dependent) if self._root_allows(dependent, v)
            ]
            required = any(canonicalize_name(r.name) == dependent for r in self._root_requirements)
            if not required or not allowed or any(v not in by_version for v in allowed):
                continue
            if not all(
                not all(r.specifier.contains(v, prereleases=True) for r in by_version[dv])
                for dv in allowed
                for v in remaining
            ):
                continue
            by_spec: dict[str, list[Version]] = defaultdict(list)
            for dv in allowed:
                by_spec[",".join(str(r.specifier) for r in by_version[dv])].append(dv)
            universe = self._facts.available(dependent)
            for spec, dependent_versions in sorted(by_spec.items(), key=lambda kv: min(kv[1])):
                subject = format_version_set(dependent, dependent_versions, universe)
                clauses.append(f"{subject} {depend_verb(subject)} on {name}{spec}")
            clauses.append(self.requirers(dependent))
        return clauses

    # -- the paragraph ---------------------------------------------------------------------

    def explain_group(self, name: str, infos: Sequence[Information]) -> str:
        """One "Because …, we can conclude that …" paragraph for the requirements on ``name``."""
        parents = [i.parent for i in infos if i.parent is not None]
        who = list(dict.fromkeys(self.who_requires(i.requirement, i.parent) for i in infos))
        distinct_subjects = list(
            dict.fromkeys(self.parent_subject(i.parent, i.requirement) for i in infos if i.parent)
        )
        subjects = " and ".join(distinct_subjects)
        roots = join_requirers([self.requirers(p.name) for p in parents] + self.excluders(infos))
        if len(infos) == 1 or not self._facts.found(name):
            # Nothing can satisfy the requirement itself: no conflict between requirers is
            # involved.
            reason = self.why_unusable(name, [infos[0].requirement])
            if not parents:
                return f"Because {reason} and {' and '.join(who)}, {UNSATISFIABLE}."
            return (
                f"Because {reason} and {' and '.join(who)}, we can conclude that {subjects} "
                f"cannot be used. And because {roots}, {UNSATISFIABLE}."
            )
        self._hints.conflict(name, infos)
        requirements = [i.requirement for i in infos]
        if any(_allow(requirements, v) for v in self._facts.universe(name)):
            who.append(self.why_unusable(name, requirements))
        if not parents:
            return f"Because {' and '.join(who)}, {UNSATISFIABLE}."
        verb = "are incompatible" if len(distinct_subjects) > 1 else "cannot be used"
        return (
            f"Because {' and '.join(who)}, we can conclude that {subjects} {verb}. "
            f"And because {roots}, {UNSATISFIABLE}."
        )
