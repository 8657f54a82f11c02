"""Explain a failed resolution from what the search learned.

resolvelib reports the requirements that could not be satisfied together (its ``causes``); the
finder recorded every version it passed over and why. From both this module derives a report in
the spirit of uv's ("Because … and …, we can conclude that …"), the structured ``causes``, and
hints with stable codes. It lives in ``resolution`` rather than ``diagnostics`` because it reads
the resolver's own records; ``diagnostics`` stays a leaf.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from service.diagnostics.model import Code, Diagnostic, Severity
from service.resolution.candidates import Candidate, ResolverRequirement
from service.resolution.environment import TargetEnvironment
from service.resolution.request import ResolveRequest
from service.resolution.result import Failure, FailureCause, VersionRejection

if TYPE_CHECKING:
    from resolvelib.structs import RequirementInformation

    from service.resolution.finder import Finder

__all__ = ["explain_failure", "format_version_set", "similar_names"]

HEADER = "No solution found when resolving dependencies:"
_UNSATISFIABLE = "we can conclude that your requirements are unsatisfiable"


def format_version_set(name: str, chosen: Sequence[Version], universe: Sequence[Version]) -> str:
    """Collapse ``chosen`` (a subset of ``universe``) into ranges the way a person writes them.

    ``a`` when it is every version, ``a==1.0`` for one, ``a>=2.0`` / ``a<=1.0`` for runs that
    reach an end of the universe, ``a>=1.0,<=1.4`` for inner runs, joined by `` | ``.
    """
    ordered = sorted(set(universe))
    picked = set(chosen)
    if not picked:
        return name
    if len(ordered) == 1 and picked >= set(ordered):
        return f"{name}=={ordered[0]}"
    if picked >= set(ordered):
        return f"all versions of {name}"
    runs: list[list[Version]] = []
    for version in ordered:
        if version in picked:
            if runs and runs[-1][-1] == ordered[ordered.index(version) - 1]:
                runs[-1].append(version)
            else:
                runs.append([version])
    parts = []
    for run in runs:
        low, high = run[0], run[-1]
        if low == high:
            parts.append(f"{name}=={low}")
        elif low == ordered[0]:
            parts.append(f"{name}<={high}")
        elif high == ordered[-1]:
            parts.append(f"{name}>={low}")
        else:
            parts.append(f"{name}>={low},<={high}")
    return " | ".join(parts)


class _Matcher(Protocol):
    """Anything that constrains one package's versions: a requirement or several at once."""

    @property
    def name(self) -> str: ...

    def contains(self, version: Version) -> bool: ...

    def format_for_error(self) -> str: ...


def _describe_requirement(requirement: _Matcher) -> str:
    return requirement.format_for_error()


# (singular, plural) phrasing of why versions were passed over.
_REASON_TEXT = {
    "metadata_unavailable": ("could not be fetched from the network",) * 2,
    "requires_python": ("requires a different Python version", "require a different Python"),
    "yanked": ("was yanked", "were yanked"),
    "no_compatible_wheels": (
        "has no wheels with a matching {tag} and no source distribution",
        "have no wheels with a matching {tag} and no source distribution",
    ),
    "no_binary": (
        "has no source distribution (no_binary is set for {name})",
        "have no source distribution (no_binary is set for {name})",
    ),
    "only_binary": (
        "has no usable wheels (only_binary is set for {name})",
        "have no usable wheels (only_binary is set for {name})",
    ),
    "exclude_newer": (
        "was published after the exclude_newer cutoff",
        "were published after the exclude_newer cutoff",
    ),
    "sdist_dynamic_metadata": (
        "has only a source distribution whose metadata needs a build",
        "have only source distributions whose metadata needs a build",
    ),
    "invalid_metadata": ("has invalid metadata", "have invalid metadata"),
    "inconsistent_metadata": (
        "has metadata inconsistent with its file name",
        "have metadata inconsistent with their file names",
    ),
    "no_files": ("has no distribution files", "have no distribution files"),
}


# Reasons whose hint is the reason text plus the recorded detail.
_DETAIL_HINTS = frozenset(
    {"exclude_newer", "sdist_dynamic_metadata", "invalid_metadata", "inconsistent_metadata"}
)


def _plural(subject: str) -> bool:
    return subject.startswith("all versions") or "|" in subject or ">" in subject or "<" in subject


def _reason_text(reason: str, subject: str, **fields: str) -> str:
    singular, plural = _REASON_TEXT.get(reason, ("cannot be used", "cannot be used"))
    text = plural if _plural(subject) else singular
    return text.format(**fields) if fields else text


class _Explainer:
    def __init__(self, finder: Finder, request: ResolveRequest, target: TargetEnvironment) -> None:
        self.finder = finder
        self.request = request
        self.target = target
        self.hints: list[Diagnostic] = []
        self._hinted: set[tuple[str, ...]] = set()
        # Each root requirement parsed, with the line as the user wrote it (marker dropped). The
        # request was validated before it was queued: every line parses.
        self._roots = [
            (Requirement(line), line.split(";")[0].strip()) for line in request.requirements
        ]
        self.root_requirements = [r for r, _ in self._roots if finder.applies(r)]

    # -- facts ---------------------------------------------------------------------------

    def universe(self, name: str) -> list[Version]:
        versions = self.finder.known_versions.get(name)
        return [entry.version for entry in versions.entries] if versions else []

    def rejections(self, name: str) -> dict[str, VersionRejection]:
        return self.finder.records.rejections.get(name, {})

    def found(self, name: str) -> bool:
        versions = self.finder.known_versions.get(name)
        return bool(versions and versions.found_on)

    # -- clauses -------------------------------------------------------------------------

    def why_unusable(self, requirement: _Matcher) -> str:
        """Why no version of the package satisfies ``requirement`` on its own."""
        name = requirement.name
        if not self.found(name):
            self.hint_not_found(name)
            return f"{name} was not found in the package registry"
        full = self.universe(name)
        excluded_pre = self.finder.records.excluded_prereleases.get(name, set())
        if excluded_pre:
            self.hint_prerelease(name, sorted(excluded_pre))
        # Versions the prerelease mode set aside are not "available" to the user: say so apart.
        universe = [v for v in full if v not in excluded_pre]
        matching = [v for v in universe if requirement.contains(v)]
        if not matching:
            pre_matching = [v for v in full if v in excluded_pre and requirement.contains(v)]
            if pre_matching:
                subject = format_version_set(name, pre_matching, full)
                return (
                    f"only pre-releases of {name} match {_describe_requirement(requirement)} "
                    f"({subject}) and pre-releases are not allowed"
                )
            return self._no_version_clause(requirement, universe)
        rejections = self.rejections(name)
        reasons: dict[str, list[Version]] = defaultdict(list)
        for version in matching:
            rejection = rejections.get(str(version))
            reason = rejection.reason if rejection else "conflict"
            reasons[reason].append(version)
            if rejection:
                self.hint_rejection(name, rejection)
        clauses = []
        for reason, versions in reasons.items():
            subject = format_version_set(name, versions, universe)
            if reason == "metadata_unavailable":
                statuses = sorted(
                    {
                        r.detail or str(r.status)
                        for v in versions
                        if (r := rejections.get(str(v))) and r.status
                    }
                )
                clauses.append(
                    f"{subject} could not be fetched from the network ({', '.join(statuses)})"
                )
            elif reason == "requires_python":
                clauses.append(self._python_clause(name, versions, universe, rejections))
            elif reason == "conflict":
                clauses.append(f"{subject} conflicts with other requirements")
            else:
                tag = self._missing_tag(name, versions) if reason == "no_compatible_wheels" else ""
                clauses.append(f"{subject} {_reason_text(reason, subject, name=name, tag=tag)}")
        return " and ".join(clauses)

    def _no_version_clause(self, requirement: _Matcher, universe: list[Version]) -> str:
        """uv's phrasing: name what *is* available when the requirement asks beyond it."""
        name = requirement.name
        described = _describe_requirement(requirement)
        self.hint_no_matching_version(name, described, universe)
        if not universe:
            return f"there is no version of {name}"
        if "==" in described and "," not in described:
            return f"there is no version of {described}"
        if len(universe) == 1:
            return f"only {name}=={universe[0]} is available"
        high, low = max(universe), min(universe)
        if requirement.contains(Version(f"{high.release[0] + 1000}")):
            return f"only {name}<={high} is available"
        if requirement.contains(Version("0.dev0")):
            return f"only {name}>={low} is available"
        return f"there is no version of {described}"

    def _python_clause(
        self,
        name: str,
        versions: list[Version],
        universe: list[Version],
        rejections: dict[str, VersionRejection],
    ) -> str:
        by_bound: dict[str, list[Version]] = defaultdict(list)
        for version in versions:
            rejection = rejections.get(str(version))
            by_bound[rejection.detail if rejection and rejection.detail else "?"].append(version)
        full = self.target.python_full_version
        if len(by_bound) == 1:
            bound = next(iter(by_bound))
            subject = format_version_set(name, versions, universe)
            verb = "depend" if _plural(subject) else "depends"
            return (
                f"the requested Python version ({full}) does not satisfy Python{bound} and "
                f"{subject} {verb} on Python{bound}"
            )
        parts = [
            f"{format_version_set(name, vs, universe)} "
            f"{'depend' if _plural(format_version_set(name, vs, universe)) else 'depends'} "
            f"on Python{bound}"
            for bound, vs in sorted(by_bound.items())
        ]
        return f"{', '.join(parts)}, none of which the requested Python version ({full}) satisfies"

    def _missing_tag(self, name: str, versions: list[Version]) -> str:
        """Which part of the wheel tags failed to match: interpreter, ABI or platform."""
        supported = [tag.split("-") for tag in self.target.supported_tags]
        interpreters = {t[0] for t in supported}
        abis = {t[1] for t in supported}
        entries = self.finder.known_versions[name].entries
        tags = [tag.split("-") for e in entries if e.version in versions for tag in e.wheel_tags]
        example = f"cp3{self.target.python_version.split('.')[1]}"
        if tags and not any(t[0] in interpreters for t in tags):
            return f"Python implementation tag (e.g., `{example}`)"
        if tags and not any(t[1] in abis for t in tags):
            return f"Python ABI tag (e.g., `{example}`)"
        platform = self.target.supported_tags[0].split("-")[2]
        return f"platform tag (e.g., `{platform}`)"

    def _same_requirement(
        self, parent: Candidate, requirement: ResolverRequirement
    ) -> list[Version]:
        """Every loaded version of ``parent``'s package with the same requirement as it."""
        if parent.extras:
            return [parent.version]
        wanted = (requirement.name, str(getattr(requirement, "specifier", "")))
        same = [
            Version(version)
            for (name, version), requirements in self.finder.records.dependencies.items()
            if name == parent.name
            and any((canonicalize_name(r.name), str(r.specifier)) == wanted for r in requirements)
        ]
        return same or [parent.version]

    def _available(self, name: str) -> list[Version]:
        """Versions of ``name`` nothing but the conflict ruled out (no rejection, no pre-release
        set aside)."""
        excluded = self.finder.records.excluded_prereleases.get(name, set())
        rejected = self.rejections(name)
        return [v for v in self.universe(name) if v not in excluded and str(v) not in rejected]

    def parent_subject(self, parent: Candidate, requirement: ResolverRequirement) -> str:
        """``parent`` widened to every loaded version of it with the same requirement."""
        same = self._same_requirement(parent, requirement)
        if parent.extras or len(same) <= 1:
            return parent.format_for_error()
        excluded = self.finder.records.excluded_prereleases.get(parent.name, set())
        universe = [v for v in self.universe(parent.name) if v not in excluded]
        return format_version_set(parent.name, same, universe)

    def _root_allows(self, name: str, version: Version) -> bool:
        return all(
            r.specifier.contains(version, prereleases=True)
            for r in self.root_requirements
            if canonicalize_name(r.name) == name
        )

    def excluders(
        self, infos: Sequence[RequirementInformation[ResolverRequirement, Candidate]]
    ) -> list[str]:
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
                v for v in self._available(name) if v not in versions and self._root_allows(name, v)
            ]
            if remaining:
                clauses += self._excluding_roots(name, remaining)
        return clauses

    def _excluding_roots(self, name: str, remaining: Sequence[Version]) -> list[str]:
        on_name: dict[str, dict[Version, list[Requirement]]] = defaultdict(dict)
        for (dependent, version), requirements in self.finder.records.dependencies.items():
            relevant = [
                r
                for r in requirements
                if canonicalize_name(r.name) == name and not r.extras and self.finder.applies(r)
            ]
            if relevant and dependent != name:
                on_name[dependent][Version(version)] = relevant
        clauses: list[str] = []
        for dependent, by_version in sorted(on_name.items()):
            allowed = [v for v in self._available(dependent) if self._root_allows(dependent, v)]
            required = any(canonicalize_name(r.name) == dependent for r in self.root_requirements)
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
            universe = self._available(dependent)
            for spec, dependent_versions in sorted(by_spec.items(), key=lambda kv: min(kv[1])):
                subject = format_version_set(dependent, dependent_versions, universe)
                verb = "depend" if _plural(subject) else "depends"
                clauses.append(f"{subject} {verb} on {name}{spec}")
            clauses.append(self.requirers(dependent))
        return clauses

    def who_requires(self, requirement: ResolverRequirement, parent: Candidate | None) -> str:
        if parent is None:
            return f"you require {_describe_requirement(requirement)}"
        subject = self.parent_subject(parent, requirement)
        verb = "depend" if _plural(subject) else "depends"
        return f"{subject} {verb} on {_describe_requirement(requirement)}"

    def requirers(self, name: str) -> str:
        written = next((w for r, w in self._roots if canonicalize_name(r.name) == name), None)
        if written is not None:
            return f"you require {written}"
        parents = sorted(
            f"{parent}=={version}"
            for (parent, version), requirements in self.finder.records.dependencies.items()
            if any(canonicalize_name(r.name) == name for r in requirements)
        )
        if parents:
            return f"{' and '.join(parents[:3])} depend{'s' if len(parents) == 1 else ''} on {name}"
        return f"{name} is required"

    # -- hints ---------------------------------------------------------------------------

    def _hint(self, key: tuple[str, ...], code: Code, message: str, **fields: Any) -> None:
        """Add a hint once per ``key`` (the same reason met again adds nothing)."""
        if key not in self._hinted:
            self._hinted.add(key)
            self.hints.append(
                Diagnostic(code=code, severity=Severity.HINT, message=message, **fields)
            )

    def hint_not_found(self, name: str) -> None:
        searched = [index.display_name for index in self.finder.indexes]
        self.hint_similar_name(name)
        self._hint(
            ("not_found", name),
            Code.PACKAGE_NOT_FOUND,
            message=f"{name} was not found on {', '.join(repr(i) for i in searched)}. Check "
            "the spelling, or add the index that publishes it.",
            package=name,
            data={"indexes": searched},
        )

    def hint_similar_name(self, name: str) -> None:
        """Probe a few spellings people confuse (``python-`` prefixes, ``py`` prefixes, plurals)."""
        for variant in similar_names(name):
            for index in self.finder.indexes:
                page = self.finder.find_page_on(index, variant)
                if page is not None and page.files:
                    self._hint(
                        ("similar", name),
                        Code.SIMILAR_NAME,
                        message=f"{name} was not found, but {variant} exists on index "
                        f"'{index.display_name}'. Did you mean {variant}?",
                        package=name,
                        index=index.display_name,
                        data={"suggestion": variant},
                    )
                    return

    def hint_no_matching_version(self, name: str, described: str, universe: list[Version]) -> None:
        newest = [str(v) for v in sorted(universe, reverse=True)[:5]]
        available = f"; the newest available: {', '.join(newest)}" if newest else ""
        self._hint(
            ("no_match", name, described),
            Code.NO_MATCHING_VERSION,
            message=f"No published version of {name} satisfies {described}{available}.",
            package=name,
            data={"requirement": described, "available": newest},
        )

    def hint_conflict(
        self, name: str, infos: Sequence[RequirementInformation[ResolverRequirement, Candidate]]
    ) -> None:
        """The requirements on ``name`` that no single version satisfies together."""
        requirements = [
            {
                "requirement": _describe_requirement(i.requirement),
                "required_by": i.parent.format_for_error() if i.parent else None,
            }
            for i in infos
        ]
        said = "; ".join(
            f"{r['required_by'] or 'you'} require{'s' if r['required_by'] else ''} "
            f"{r['requirement']}"
            for r in requirements
        )
        self._hint(
            ("conflict", name),
            Code.DEPENDENCY_CONFLICT,
            message=f"No version of {name} satisfies all of its requirements at once: "
            f"{said}. Loosen one of them, or pin the requirers to versions that agree.",
            package=name,
            data={"requirements": requirements},
        )

    def hint_prerelease(self, name: str, versions: list[Version]) -> None:
        example = str(max(versions))
        self._hint(
            ("pre", name),
            Code.PRERELEASE_AVAILABLE,
            message=f"Pre-releases of {name} are available (e.g. {name}=={example}) but "
            f"pre-releases are not allowed with prerelease={self.request.prerelease!r}. "
            'Set "prerelease": "allow", or require a pre-release explicitly '
            f"(e.g. {name}>={example}).",
            package=name,
            version=example,
            data={
                "setting": "prerelease",
                "value": "allow",
                "versions": [str(v) for v in versions],
            },
        )

    def hint_rejection(self, name: str, rejection: VersionRejection) -> None:
        """One hint per kind of reason a version was passed over (per status for fetches)."""
        made = self._rejection_hint(name, rejection)
        if made is None:
            return
        code, message, data = made
        per = str(rejection.status) if code is Code.METADATA_UNAVAILABLE else rejection.version
        self._hint(
            (code.value, name, per),
            code,
            message=message,
            package=name,
            version=rejection.version,
            index=rejection.index,
            status=rejection.status,
            data=data,
        )

    def _rejection_hint(
        self, name: str, rejection: VersionRejection
    ) -> tuple[Code, str, dict[str, Any]] | None:
        reason, version, detail = rejection.reason, rejection.version, rejection.detail
        pin = f"{name}=={version}"
        if reason == "metadata_unavailable":
            return (
                Code.METADATA_UNAVAILABLE,
                f"Metadata for {pin} could not be fetched from index '{rejection.index}' "
                f"({detail or rejection.status}); such versions were skipped under that "
                "index's ignore_error_codes.metadata.",
                {"setting": "ignore_error_codes.metadata"},
            )
        if reason == "requires_python":
            target = self.target.python_full_version
            return (
                Code.REQUIRES_PYTHON,
                f"{pin} requires Python {detail or ''} but the resolution targets Python {target}.",
                {
                    "requires_python": detail,
                    "target": target,
                    "setting": "environment.python_version",
                },
            )
        if reason == "yanked":
            why = f" (reason: {detail})" if detail else ""
            return (
                Code.YANKED,
                f"{pin} was yanked{why}; pin it with {pin} to use it anyway.",
                {"reason": detail},
            )
        if reason in ("no_compatible_wheels", "no_binary", "only_binary"):
            entries = self.finder.known_versions[name].entries
            tags = sorted({t for e in entries if str(e.version) == version for t in e.wheel_tags})
            tagged = f"; its wheels are tagged {', '.join(tags[:5])}" if tags else ""
            return (
                Code.NO_COMPATIBLE_WHEELS,
                f"{pin} has no distribution usable on {self.target.platform_name} with "
                f"Python {self.target.python_version}{tagged}.",
                {
                    "wheel_tags": tags,
                    "reason": reason,
                    "platform": self.target.platform_name,
                    "python_version": self.target.python_version,
                },
            )
        if reason in _DETAIL_HINTS:
            said = f": {detail}" if detail else ""
            return Code(reason), f"{pin} {_reason_text(reason, version)}{said}.", {"detail": detail}
        return None

    def hint_other_indexes(self, name: str, requirements: Sequence[_Matcher]) -> None:
        """Under first-index, look whether a later index has a version that would have matched."""
        versions = self.finder.known_versions.get(name)
        if self.request.index_strategy != "first-index" or not versions or not versions.found_on:
            return
        indexes = self.finder.indexes
        first = indexes.index(versions.found_on[0])
        for index in indexes[first + 1 :]:
            page = self.finder.find_page_on(index, name)
            if page is None:
                continue
            matching = sorted(
                {
                    Version(f.version)
                    for f in page.files
                    if all(r.contains(Version(f.version)) for r in requirements)
                },
                reverse=True,
            )
            if matching:
                self._hint(
                    ("other_index", name, index.name),
                    Code.FOUND_ON_OTHER_INDEX,
                    message=f"{name}=={matching[0]} is available on index "
                    f"'{index.display_name}', but index_strategy 'first-index' only uses "
                    f"'{versions.found_on[0].display_name}', where {name} was found first. "
                    "Use unsafe-best-match only if you trust every index with this name.",
                    package=name,
                    version=str(matching[0]),
                    index=index.display_name,
                    data={
                        "setting": "index_strategy",
                        "first_index": versions.found_on[0].display_name,
                    },
                )


_MAX_SIMILAR_PROBES = 4


def similar_names(name: str) -> list[str]:
    """Likely intended spellings of a project name that does not exist, most likely first."""
    name = canonicalize_name(name)
    variants: list[str] = []
    prefix = next((p for p in ("python-", "py-", "py") if name.startswith(p)), None)
    if prefix and len(name) > len(prefix) + 1:
        variants.append(name.removeprefix(prefix))
    else:
        variants += [f"python-{name}", f"py{name}"]
    variants.append(name[:-1] if name.endswith("s") else f"{name}s")
    if "-" in name:
        variants.append(name.replace("-", ""))
    unique = [str(canonicalize_name(v)) for v in dict.fromkeys(variants) if v and v != name]
    return unique[:_MAX_SIMILAR_PROBES]


def _join_requirers(clauses: Sequence[str]) -> str:
    """``you require a`` + ``you require b`` -> ``you require a and b``; others joined by and."""
    unique = list(dict.fromkeys(clauses))
    mine = [c.removeprefix("you require ") for c in unique if c.startswith("you require ")]
    others = [c for c in unique if not c.startswith("you require ")]
    parts = [*others, *([f"you require {' and '.join(mine)}"] if mine else [])]
    return " and ".join(parts)


def _explain_group(
    explainer: _Explainer,
    name: str,
    infos: Sequence[RequirementInformation[ResolverRequirement, Candidate]],
    parents: Sequence[Candidate],
) -> str:
    """One "Because …, we can conclude that …" paragraph for the requirements on ``name``."""
    who = list(dict.fromkeys(explainer.who_requires(i.requirement, i.parent) for i in infos))
    distinct_subjects = list(
        dict.fromkeys(explainer.parent_subject(i.parent, i.requirement) for i in infos if i.parent)
    )
    subjects = " and ".join(distinct_subjects)
    roots = _join_requirers(
        [explainer.requirers(p.name) for p in parents] + explainer.excluders(infos)
    )
    lone = len(infos) == 1 or not explainer.found(name)
    if lone:
        # Nothing can satisfy the requirement itself: no conflict between requirers is involved.
        reason = explainer.why_unusable(infos[0].requirement)
        if not parents:
            return f"Because {reason} and {' and '.join(who)}, {_UNSATISFIABLE}."
        verb = "cannot be used"
        return (
            f"Because {reason} and {' and '.join(who)}, we can conclude that {subjects} {verb}. "
            f"And because {roots}, {_UNSATISFIABLE}."
        )
    explainer.hint_conflict(name, infos)
    joint = [v for v in explainer.universe(name) if all(i.requirement.contains(v) for i in infos)]
    if joint:
        who.append(explainer.why_unusable(_JointRequirement(name, infos)))
    if not parents:
        return f"Because {' and '.join(who)}, {_UNSATISFIABLE}."
    verb = "are incompatible" if len(distinct_subjects) > 1 else "cannot be used"
    return (
        f"Because {' and '.join(who)}, we can conclude that {subjects} {verb}. "
        f"And because {roots}, {_UNSATISFIABLE}."
    )


def explain_failure(
    causes: Collection[RequirementInformation[ResolverRequirement, Candidate]],
    *,
    finder: Finder,
    request: ResolveRequest,
    target: TargetEnvironment,
) -> Failure:
    explainer = _Explainer(finder, request, target)
    by_name: dict[str, list[RequirementInformation[ResolverRequirement, Candidate]]] = defaultdict(
        list
    )
    for cause in causes:
        by_name[cause.requirement.name].append(cause)
    paragraphs: list[str] = []
    structured: list[FailureCause] = []
    for name, all_infos in by_name.items():
        distinct = {
            (
                _describe_requirement(i.requirement),
                i.parent.format_for_error() if i.parent else None,
            ): i
            for i in all_infos
        }
        infos = list(distinct.values())
        explainer.hint_other_indexes(name, [i.requirement for i in infos])
        parents = [i.parent for i in infos if i.parent is not None]
        paragraphs.append(_explain_group(explainer, name, infos, parents))
        universe = explainer.universe(name)
        rejections = explainer.rejections(name)
        for info in infos:
            matching = [v for v in universe if info.requirement.contains(v)]
            structured.append(
                FailureCause(
                    package=name,
                    requirement=_describe_requirement(info.requirement),
                    required_by=info.parent.format_for_error() if info.parent else None,
                    versions=[rejections[str(v)] for v in matching if str(v) in rejections],
                )
            )
    message = HEADER + "".join(f"\n  {p}" for p in paragraphs)
    fetch_errors = [
        w
        for w in finder.records.warnings
        if w.code
        in (
            Code.METADATA_UNAVAILABLE,
            Code.INDEX_FORBIDDEN,
            Code.INDEX_UNAUTHORIZED,
            Code.INDEX_ERROR,
            Code.INDEX_UNREACHABLE,
        )
    ]
    return Failure(
        kind="unsatisfiable",
        message=message,
        causes=structured,
        hints=explainer.hints,
        fetch_errors=fetch_errors,
    )


class _JointRequirement:
    """Several requirements on one package, viewed as their intersection."""

    def __init__(
        self, name: str, infos: Sequence[RequirementInformation[ResolverRequirement, Candidate]]
    ) -> None:
        self.name = name
        self._requirements = [i.requirement for i in infos]

    def contains(self, version: Version) -> bool:
        return all(r.contains(version) for r in self._requirements)

    def format_for_error(self) -> str:
        return ",".join(r.format_for_error() for r in self._requirements)
