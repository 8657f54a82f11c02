"""Requirements and candidates, the two things resolvelib juggles.

A requirement owns ``is_satisfied_by``; a candidate owns its identity and (through the finder)
its dependencies. Every requirement speaks the ``ResolverRequirement`` protocol (pip's
``base.Requirement``): the provider, the preference and the failure explanation ask nothing else
of it. Extras follow pip's design: ``a[x]`` is its own identifier whose candidate depends on the
base ``a`` pinned to the same version (an ``ExplicitRequirement``), so constraints on ``a``
apply to both.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar, Protocol

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from service.diagnostics.redact import redact_url
from service.index.models import DistFile, Index
from service.resolution.identity import IdentityMemo
from service.resolution.markers import ANY, BaseMarker

__all__ = [
    "Candidate",
    "ExplicitRequirement",
    "ResolverRequirement",
    "SpecifierRequirement",
    "make_identifier",
    "split_identifier",
]


def make_identifier(name: str, extras: Iterable[str]) -> str:
    """``name`` or ``name[extra1,extra2]`` with canonical names, sorted extras."""
    canonical = canonicalize_name(name)
    extras = sorted({canonicalize_name(extra) for extra in extras})
    return f"{canonical}[{','.join(extras)}]" if extras else canonical


def split_identifier(identifier: str) -> tuple[NormalizedName, frozenset[str]]:
    name, _, rest = identifier.partition("[")
    extras = frozenset(rest.rstrip("]").split(",")) if rest else frozenset()
    return NormalizedName(name), extras


@dataclass(frozen=True, eq=False)
class Candidate:
    """One version of a project (optionally with extras), backed by one chosen file."""

    name: NormalizedName
    version: Version
    file: DistFile
    index: Index
    extras: frozenset[str] = frozenset()
    yanked: bool = False

    @property
    def identifier(self) -> str:
        return make_identifier(self.name, self.extras)

    def format_for_error(self) -> str:
        if self.extras:
            return f"{self.name}[{','.join(sorted(self.extras))}]=={self.version}"
        return f"{self.name}=={self.version}"

    def __repr__(self) -> str:
        return f"Candidate({self.identifier}=={self.version})"


def _is_pinned(specifier: SpecifierSet) -> bool:
    return any(
        spec.operator == "===" or (spec.operator == "==" and not spec.version.endswith(".*"))
        for spec in specifier
    )


def _is_upper_bounded(specifier: SpecifierSet) -> bool:
    return any(spec.operator in ("<", "<=", "~=", "==", "===") for spec in specifier)


_Derived = tuple[NormalizedName, frozenset[str], str, bool, bool]


def _derived(requirement: Requirement) -> _Derived:
    """Name, extras, identifier, pinned, upper-bounded: what a SpecifierRequirement reads."""
    name = canonicalize_name(requirement.name)
    extras = frozenset(canonicalize_name(e) for e in requirement.extras)
    specifier = requirement.specifier
    return (
        name,
        extras,
        make_identifier(name, extras),
        _is_pinned(specifier),
        _is_upper_bounded(specifier),
    )


# Once per Requirement: parsed Requires-Dist lines are shared by every job (finder.py).
_derive = IdentityMemo(_derived, size=65536)


class ResolverRequirement(Protocol):
    """A constraint on one identifier's candidates, as resolvelib and the explanation see it.

    ``parent`` is the candidate that declared the requirement (None for the user's own);
    ``pinned`` (one version only) and ``upper_bounded`` feed the resolver's preference;
    ``format_for_error`` is the requirement as a user reads it in a failure.
    """

    __slots__ = ()

    @property
    def name(self) -> NormalizedName: ...

    @property
    def identifier(self) -> str: ...

    @property
    def extras(self) -> frozenset[str]: ...

    @property
    def parent(self) -> Candidate | None: ...

    @property
    def pinned(self) -> bool: ...

    @property
    def upper_bounded(self) -> bool: ...

    def contains(self, version: Version) -> bool:
        """Whether ``version`` satisfies the requirement (pre-releases are the finder's call)."""
        ...

    def is_satisfied_by(self, candidate: Candidate) -> bool:
        return self.contains(candidate.version)

    def format_for_error(self) -> str: ...


class SpecifierRequirement(ResolverRequirement):
    """A PEP 508 requirement (markers already evaluated) from the user or a dependency.

    ``contains`` remembers its answers, because resolvelib asks again every round whether each
    current pin still satisfies every requirement on it.
    """

    __slots__ = (
        "_contains",
        "extras",
        "identifier",
        "marker",
        "name",
        "parent",
        "pinned",
        "requirement",
        "specifier",
        "upper_bounded",
    )

    name: NormalizedName
    identifier: str
    extras: frozenset[str]
    parent: Candidate | None
    pinned: bool
    upper_bounded: bool

    def __init__(
        self,
        requirement: Requirement,
        parent: Candidate | None = None,
        *,
        marker: BaseMarker = ANY,
    ) -> None:
        self.requirement = requirement
        self.parent = parent
        # Where the requirement applies within the resolution's scope (``ANY``: everywhere);
        # a universal lock's per-package markers are built from these.
        self.marker = marker
        self.specifier: SpecifierSet = requirement.specifier
        self.name, self.extras, self.identifier, self.pinned, self.upper_bounded = _derive(
            requirement
        )
        self._contains: dict[Version, bool] = {}

    def contains(self, version: Version) -> bool:
        known = self._contains.get(version)
        if known is None:
            known = self._contains[version] = self.specifier.contains(version, prereleases=True)
        return known

    def format_for_error(self) -> str:
        extras = f"[{','.join(sorted(self.extras))}]" if self.extras else ""
        if self.requirement.url:
            return f"{self.name}{extras} @ {redact_url(self.requirement.url)}"
        return f"{self.name}{extras}{self.specifier}"

    def __repr__(self) -> str:
        return f"SpecifierRequirement({self.format_for_error()!r})"


class ExplicitRequirement(ResolverRequirement):
    """Pins the base project of an extras candidate (``a`` of ``a[x]==1.0``) to its version."""

    __slots__ = ("identifier", "name", "parent", "version")

    name: NormalizedName
    identifier: str
    parent: Candidate
    extras: ClassVar[frozenset[str]] = frozenset()
    pinned: ClassVar[bool] = True
    upper_bounded: ClassVar[bool] = True

    def __init__(self, parent: Candidate) -> None:
        self.parent = parent
        self.name = parent.name
        self.identifier = str(parent.name)
        self.version = parent.version

    def contains(self, version: Version) -> bool:
        return version == self.version

    def format_for_error(self) -> str:
        return f"{self.name}=={self.version}"

    def __repr__(self) -> str:
        return f"ExplicitRequirement({self.format_for_error()!r})"
