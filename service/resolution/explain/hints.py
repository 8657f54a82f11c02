"""Hints: what the user could change, each a ``Diagnostic`` with a stable code.

A hint is added once per key (the same reason met again adds nothing). Two hints look at pages
the resolution never needed — spellings similar to a name that was not found, and later indexes
under ``first-index`` — and those probes share one budget per job (``MAX_PROBES``), so a
request naming many indexes cannot turn its failure into thousands of upstream requests.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from packaging.utils import canonicalize_name
from packaging.version import Version

from service.diagnostics.model import Code, Diagnostic, Severity
from service.resolution.explain.phrasing import describe_reason
from service.resolution.fetch_errors import DYNAMIC_METADATA_ADVICE
from service.resolution.result import Reason

if TYPE_CHECKING:
    from resolvelib.structs import RequirementInformation

    from service.index.models import Index, ProjectPage
    from service.resolution.candidates import Candidate, ResolverRequirement
    from service.resolution.environment import TargetEnvironment
    from service.resolution.explain.facts import Facts, Search
    from service.resolution.request import ResolveRequest
    from service.resolution.result import VersionRejection

__all__ = ["MAX_PROBES", "MAX_SIMILAR_NAMES", "Hints", "similar_names"]

MAX_SIMILAR_NAMES = 4
# Page fetches one failure explanation may add: every similar spelling on up to four indexes.
MAX_PROBES = 16

# Reasons whose hint is the reason's phrase plus the detail the finder recorded.
_DETAIL_REASONS = frozenset(
    {
        Reason.SDIST_DYNAMIC_METADATA,
        Reason.BUILD_FAILED,
        Reason.INVALID_METADATA,
        Reason.INCONSISTENT_METADATA,
    }
)


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
    return unique[:MAX_SIMILAR_NAMES]


class Hints:
    """The hints of one failure, in the order they were found."""

    def __init__(
        self, facts: Facts, search: Search, request: ResolveRequest, target: TargetEnvironment
    ) -> None:
        self._facts = facts
        self._search = search
        self._request = request
        self._target = target
        self._given: set[tuple[str, ...]] = set()
        self._probes_left = MAX_PROBES
        self.items: list[Diagnostic] = []

    def _add(self, key: tuple[str, ...], code: Code, message: str, **fields: Any) -> None:
        if key not in self._given:
            self._given.add(key)
            self.items.append(
                Diagnostic(code=code, severity=Severity.HINT, message=message, **fields)
            )

    def _iter_probes(
        self, pairs: Iterable[tuple[Index, str]]
    ) -> Iterator[tuple[Index, str, ProjectPage]]:
        """Fetch each (index, name) page while the job's probe budget lasts; yield those found."""
        for index, name in pairs:
            if self._probes_left <= 0:
                return
            self._probes_left -= 1
            page = self._search.find_page_on(index, name)
            if page is not None:
                yield index, name, page

    def not_found(self, name: str) -> None:
        searched = [index.display_name for index in self._facts.searched(name)]
        self.similar_name(name)
        pinned = name in self._request.sources
        advice = (
            "sources pins it to that index alone"
            if pinned
            else "Check the spelling, or add the index that publishes it"
        )
        self._add(
            ("not_found", name),
            Code.PACKAGE_NOT_FOUND,
            message=f"{name} was not found on {', '.join(repr(i) for i in searched) or 'no index'}"
            f". {advice}.",
            package=name,
            data={"indexes": searched, **({"setting": "sources"} if pinned else {})},
        )

    def similar_name(self, name: str) -> None:
        """Probe a few spellings people confuse (``python-`` prefixes, ``py`` prefixes, plurals)."""
        searched = self._facts.searched(name)
        pairs = ((i, v) for v in similar_names(name) for i in searched)
        for index, variant, page in self._iter_probes(pairs):
            if page.files:
                self._add(
                    ("similar", name),
                    Code.SIMILAR_NAME,
                    message=f"{name} was not found, but {variant} exists on index "
                    f"'{index.display_name}'. Did you mean {variant}?",
                    package=name,
                    index=index.display_name,
                    data={"suggestion": variant},
                )
                return

    def no_matching_version(self, name: str, described: str, universe: Sequence[Version]) -> None:
        newest = [str(v) for v in sorted(universe, reverse=True)[:5]]
        available = f"; the newest available: {', '.join(newest)}" if newest else ""
        self._add(
            ("no_match", name, described),
            Code.NO_MATCHING_VERSION,
            message=f"No published version of {name} satisfies {described}{available}.",
            package=name,
            data={"requirement": described, "available": newest},
        )

    def conflict(
        self, name: str, infos: Sequence[RequirementInformation[ResolverRequirement, Candidate]]
    ) -> None:
        """The requirements on ``name`` that no single version satisfies together."""
        requirements = [
            {
                "requirement": i.requirement.format_for_error(),
                "required_by": i.parent.format_for_error() if i.parent else None,
            }
            for i in infos
        ]
        said = "; ".join(
            f"{r['required_by'] or 'you'} require{'s' if r['required_by'] else ''} "
            f"{r['requirement']}"
            for r in requirements
        )
        self._add(
            ("conflict", name),
            Code.DEPENDENCY_CONFLICT,
            message=f"No version of {name} satisfies all of its requirements at once: "
            f"{said}. Loosen one of them, or pin the requirers to versions that agree.",
            package=name,
            data={"requirements": requirements},
        )

    def prerelease(self, name: str, versions: Sequence[Version]) -> None:
        example = str(max(versions))
        self._add(
            ("pre", name),
            Code.PRERELEASE_AVAILABLE,
            message=f"Pre-releases of {name} are available (e.g. {name}=={example}) but "
            f"pre-releases are not allowed with prerelease={self._request.prerelease!r}. "
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

    def rejection(self, name: str, rejection: VersionRejection) -> None:
        """One hint per version passed over (per status for metadata that could not be had)."""
        code = rejection.reason.code
        message, data = self._describe_rejection(name, rejection)
        per = str(rejection.status) if code is Code.METADATA_UNAVAILABLE else rejection.version
        self._add(
            (code.value, name, per),
            code,
            message=message,
            package=name,
            version=rejection.version,
            index=rejection.index,
            status=rejection.status,
            data=data,
        )

    def _describe_rejection(
        self, name: str, rejection: VersionRejection
    ) -> tuple[str, dict[str, Any]]:
        reason, version, detail = rejection.reason, rejection.version, rejection.detail
        pin = f"{name}=={version}"
        if reason is Reason.METADATA_UNAVAILABLE:
            return (
                f"Metadata for {pin} could not be fetched from index '{rejection.index}' "
                f"({detail or rejection.status}); such versions were skipped under that "
                "index's ignore_error_codes.metadata.",
                {"setting": "ignore_error_codes.metadata"},
            )
        if reason is Reason.REQUIRES_PYTHON:
            target = self._target.python_full_version
            return (
                f"{pin} requires Python {detail or ''} but the resolution targets Python {target}.",
                {
                    "requires_python": detail,
                    "target": target,
                    "setting": "environment.python_version",
                },
            )
        if reason is Reason.YANKED:
            why = f" (reason: {detail})" if detail else ""
            return f"{pin} was yanked{why}; pin it with {pin} to use it anyway.", {"reason": detail}
        if reason is Reason.EXCLUDE_NEWER:
            return self._describe_cutoff(name, pin, detail)
        if reason is Reason.REQUIRED_ENVIRONMENT:
            return (
                f"{pin} has no source distribution and no wheel for the required environment "
                f"{detail}, so it was passed over; remove that entry from required_environments "
                "to lock it anyway.",
                {"environment": detail, "setting": "required_environments"},
            )
        if reason in _DETAIL_REASONS:
            said = f": {detail}" if detail else ""
            message = f"{pin} {describe_reason(reason, version)}{said}."
            if reason is Reason.SDIST_DYNAMIC_METADATA:
                settings = ["dependency_metadata", "builds.enabled"]
                return f"{message} {DYNAMIC_METADATA_ADVICE}", {
                    "detail": detail,
                    "settings": settings,
                }
            return message, {"detail": detail}
        tags = sorted(set(self._facts.wheel_tags(name, {Version(version)})))
        tagged = f"; its wheels are tagged {', '.join(tags[:5])}" if tags else ""
        if reason is Reason.NO_BINARY:
            return (
                f"{pin} has no source distribution, and no_binary is set for {name}{tagged}.",
                {"wheel_tags": tags, "reason": reason.value, "setting": "no_binary"},
            )
        return (
            f"{pin} has no distribution usable on {self._target.platform_name} with "
            f"Python {self._target.python_version}{tagged}.",
            {
                "wheel_tags": tags,
                "reason": reason.value,
                "platform": self._target.platform_name,
                "python_version": self._target.python_version,
            },
        )

    def _describe_cutoff(
        self, name: str, pin: str, uploaded: str | None
    ) -> tuple[str, dict[str, Any]]:
        """An ``exclude_newer`` rejection: the cutoff applied to ``name`` (its own from
        ``exclude_newer_package``, else the job's, with the duration it was computed from) and
        the upload time (``None``: the files have none, which a cutoff excludes, as in uv)."""
        own = self._request.exclude_newer_package.get(name)
        setting = "exclude_newer_package" if isinstance(own, str) else "exclude_newer"
        cutoff = own if isinstance(own, str) else self._request.exclude_newer
        span = None if isinstance(own, str) else self._request.exclude_newer_span
        applied = f"{cutoff} ({span} before the job was accepted)" if span else f"{cutoff}"
        said = (
            f"was uploaded at {uploaded}, after the {setting} cutoff {applied}"
            if uploaded
            else f"has no upload time on its index, and the {setting} cutoff {applied} excludes "
            "files without one"
        )
        return (
            f"{pin} {said}. To allow it, give {name} a later cutoff, or false, in "
            "exclude_newer_package.",
            {
                "detail": uploaded,
                "upload_time": uploaded,
                "cutoff": cutoff,
                "span": span,
                "setting": setting,
            },
        )

    def other_indexes(self, name: str, requirements: Sequence[ResolverRequirement]) -> None:
        """Under first-index, look whether a later index has a version that would have matched."""
        found_on = self._facts.found_on(name)
        if self._request.index_strategy != "first-index" or not found_on:
            return
        if name in self._request.sources:
            return  # pinned to its index: no other is a way out
        indexes = self._search.indexes
        later = [i for i in indexes[indexes.index(found_on[0]) + 1 :] if not i.explicit]
        for index, _, page in self._iter_probes((index, name) for index in later):
            matching = sorted(
                {
                    Version(f.version)
                    for f in page.files
                    if all(r.contains(Version(f.version)) for r in requirements)
                },
                reverse=True,
            )
            if matching:
                self._add(
                    ("other_index", name, index.name),
                    Code.FOUND_ON_OTHER_INDEX,
                    message=f"{name}=={matching[0]} is available on index "
                    f"'{index.display_name}', but index_strategy 'first-index' only uses "
                    f"'{found_on[0].display_name}', where {name} was found first. "
                    "Use unsafe-best-match only if you trust every index with this name.",
                    package=name,
                    version=str(matching[0]),
                    index=index.display_name,
                    data={"setting": "index_strategy", "first_index": found_on[0].display_name},
                )
