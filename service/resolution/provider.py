"""The resolvelib provider: thin glue between resolvelib and the finder.

Requirements decide what satisfies them, candidates carry their identity, and the finder knows
versions and dependencies; the provider only adapts those to resolvelib's calls (which it makes by
keyword, so parameter names follow resolvelib exactly) and decides which identifier to work on
next.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

from packaging.specifiers import SpecifierSet
from packaging.utils import NormalizedName
from packaging.version import Version
from resolvelib import AbstractProvider, BaseReporter
from resolvelib.structs import RequirementInformation

from service.resolution.bridge import FetchBridge
from service.resolution.candidates import Candidate, ResolverRequirement, split_identifier
from service.resolution.finder import Finder
from service.resolution.result import Progress

__all__ = ["ProgressReporter", "Provider", "make_preference"]

Information = RequirementInformation[ResolverRequirement, Candidate]


def make_preference(
    information: Sequence[Information], *, backtracking: bool, order: int, identifier: str
) -> tuple[bool, bool, bool, bool, int, str]:
    """The sort key resolvelib minimises to pick the next identifier to pin.

    In order: identifiers named by the last conflict first (deciding them prunes the search
    soonest); then ones pinned with ``==`` or tied to an extras candidate (they have one
    choice); then the user's direct requirements; then upper-bounded ones (few choices);
    then first-seen order, and the name last so the result never depends on dict order.
    """
    pinned = any(info.requirement.pinned for info in information)
    direct = any(info.parent is None for info in information)
    bounded = any(info.requirement.upper_bounded for info in information)
    return (not backtracking, not pinned, not direct, not bounded, order, identifier)


class Provider(AbstractProvider[ResolverRequirement, Candidate, str]):
    def __init__(
        self,
        finder: Finder,
        bridge: FetchBridge,
        *,
        constraints: Mapping[str, Sequence[SpecifierSet]],
    ) -> None:
        self._finder = finder
        self._bridge = bridge
        self._constraints = constraints
        self._order: dict[str, int] = {}

    def _seen(self, identifier: str) -> int:
        return self._order.setdefault(identifier, len(self._order))

    def identify(self, requirement_or_candidate: ResolverRequirement | Candidate) -> str:
        return requirement_or_candidate.identifier

    def get_preference(
        self,
        identifier: str,
        resolutions: Mapping[str, Candidate],
        candidates: Mapping[str, Iterator[Candidate]],
        information: Mapping[str, Iterator[Information]],
        backtrack_causes: Sequence[Information],
    ) -> tuple[bool, bool, bool, bool, int, str]:
        causes = {info.requirement.identifier for info in backtrack_causes} | {
            info.parent.identifier for info in backtrack_causes if info.parent is not None
        }
        return make_preference(
            list(information[identifier]),
            backtracking=identifier in causes,
            order=self._seen(identifier),
            identifier=identifier,
        )

    def narrow_requirement_selection(
        self,
        identifiers: Iterable[str],
        resolutions: Mapping[str, Candidate],
        candidates: Mapping[str, Iterator[Candidate]],
        information: Mapping[str, Iterator[Information]],
        backtrack_causes: Sequence[Information],
    ) -> Iterable[str]:
        identifiers = list(identifiers)
        causes = {info.requirement.identifier for info in backtrack_causes}
        narrowed = [identifier for identifier in identifiers if identifier in causes]
        return narrowed or identifiers

    def make_accept(
        self,
        name: str,
        requirements: Iterable[ResolverRequirement],
        incompatibilities: Iterable[Candidate],
    ) -> Callable[[Version], bool]:
        """Whether a version satisfies every requirement and constraint and is not excluded."""
        wanted = list(requirements)
        excluded = {candidate.version for candidate in incompatibilities}
        constraints = self._constraints.get(name, ())

        def accept(version: Version) -> bool:
            return (
                version not in excluded
                and all(requirement.contains(version) for requirement in wanted)
                and all(spec.contains(version, prereleases=True) for spec in constraints)
            )

        return accept

    def find_matches(
        self,
        identifier: str,
        requirements: Mapping[str, Iterator[ResolverRequirement]],
        incompatibilities: Mapping[str, Iterator[Candidate]],
    ) -> Callable[[], Iterator[Candidate]]:
        """A factory of the candidates, best first, that touches the network only when called.

        resolvelib wraps a factory in a view that calls it once and replays what it produced
        (``build_iter_view``), so a candidate list is fetched only as far as the resolver reads
        it; a sequence would be used as is, and any other iterable read to the end up front.
        """
        self._bridge.check()
        self._seen(identifier)
        name, extras = split_identifier(identifier)
        accept = self.make_accept(name, requirements[identifier], incompatibilities[identifier])
        return functools.partial(self._finder.iter_candidates, NormalizedName(name), extras, accept)

    def is_satisfied_by(self, requirement: ResolverRequirement, candidate: Candidate) -> bool:
        return requirement.is_satisfied_by(candidate)

    def get_dependencies(self, candidate: Candidate) -> list[ResolverRequirement]:
        self._bridge.check()
        dependencies = list(self._finder.iter_dependencies(candidate))
        for dependency in dependencies:
            self._finder.prefetch(dependency.name)
        return dependencies


class ProgressReporter(BaseReporter[ResolverRequirement, Candidate, str]):
    """Publishes resolvelib's progress into the job's live counters."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._identifiers: set[str] = set()

    def starting_round(self, index: int) -> None:
        self._progress.rounds = index + 1

    def adding_requirement(
        self, requirement: ResolverRequirement, parent: Candidate | None
    ) -> None:
        self._identifiers.add(requirement.name)
        self._progress.packages = len(self._identifiers)

    def pinning(self, candidate: Candidate) -> None:
        self._progress.versions_tried += 1
