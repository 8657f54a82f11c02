"""What the search learned, as the explanation asks for it.

``Search`` is the part of the finder the explanation reads: the versions each page listed, the
versions passed over and why, the dependencies loaded, and a way to look at one more page. The
finder is its one implementation in service; tests write the records by hand.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

from packaging.version import Version

if TYPE_CHECKING:
    from packaging.requirements import Requirement

    from service.diagnostics.model import Diagnostic
    from service.index.models import Index, ProjectPage
    from service.resolution.finder import ProjectVersions
    from service.resolution.result import VersionRejection

__all__ = ["Facts", "Search", "SearchRecords"]


class SearchRecords(Protocol):
    """The finder's notes: rejections by package and version, pre-releases set aside, the
    requirements of every version whose metadata loaded, and the warnings so far."""

    @property
    def rejections(self) -> Mapping[str, Mapping[str, VersionRejection]]: ...

    @property
    def excluded_prereleases(self) -> Mapping[str, Collection[Version]]: ...

    @property
    def dependencies(self) -> Mapping[tuple[str, str], Sequence[Requirement]]: ...

    @property
    def warnings(self) -> Sequence[Diagnostic]: ...


class Search(Protocol):
    @property
    def indexes(self) -> list[Index]: ...

    @property
    def known_versions(self) -> Mapping[str, ProjectVersions]: ...

    @property
    def records(self) -> SearchRecords: ...

    def find_page_on(self, index: Index, name: str) -> ProjectPage | None:
        """``name``'s page on one index (may fetch it), or None when that index cannot give it."""
        ...

    def applies(self, requirement: Requirement) -> bool:
        """Whether a requirement's marker holds for the target (without extras)."""
        ...


class Facts:
    """Read-only questions about the search's records, answered without touching the network."""

    def __init__(self, search: Search) -> None:
        self._search = search
        self._records = search.records

    def universe(self, name: str) -> list[Version]:
        """Every version of ``name`` the pages listed, best first."""
        versions = self._search.known_versions.get(name)
        return [entry.version for entry in versions.entries] if versions else []

    def found_on(self, name: str) -> list[Index]:
        """The indexes whose page of ``name`` was used (empty: not found anywhere)."""
        versions = self._search.known_versions.get(name)
        return list(versions.found_on) if versions else []

    def searched(self, name: str) -> list[Index]:
        """The indexes ``name`` was looked up on: where it was found and where it was missing
        (every index of the job when the search never asked for it)."""
        versions = self._search.known_versions.get(name)
        if versions is None:
            return list(self._search.indexes)
        return [*versions.found_on, *versions.missing_on]

    def found(self, name: str) -> bool:
        return bool(self.found_on(name))

    def rejections(self, name: str) -> Mapping[str, VersionRejection]:
        """The versions of ``name`` passed over, by version string."""
        return self._records.rejections.get(name, {})

    def excluded_prereleases(self, name: str) -> Collection[Version]:
        """Pre-releases of ``name`` that matched but the prerelease mode set aside."""
        return self._records.excluded_prereleases.get(name, ())

    def offered(self, name: str) -> list[Version]:
        """The universe without the pre-releases set aside: what the user could have had."""
        excluded = self.excluded_prereleases(name)
        return [v for v in self.universe(name) if v not in excluded]

    def available(self, name: str) -> list[Version]:
        """Versions of ``name`` nothing but the conflict ruled out (no rejection, no
        pre-release set aside)."""
        rejected = self.rejections(name)
        return [v for v in self.offered(name) if str(v) not in rejected]

    def wheel_tags(self, name: str, versions: Collection[Version]) -> list[str]:
        """The tags of every wheel of those versions of ``name``, in page order."""
        known = self._search.known_versions.get(name)
        entries = known.entries if known else []
        return [tag for e in entries if e.version in versions for tag in e.wheel_tags]

    def dependencies(self) -> Mapping[tuple[str, str], Sequence[Requirement]]:
        """The requirements of every (package, version) whose metadata loaded."""
        return self._records.dependencies

    def applies(self, requirement: Requirement) -> bool:
        return self._search.applies(requirement)
