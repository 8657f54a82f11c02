"""Requirements and candidates, the two things resolvelib juggles.

A requirement owns ``is_satisfied_by``; a candidate owns its identity and (through the finder)
its dependencies. Extras follow pip's design: ``a[x]`` is its own identifier whose candidate
depends on the base ``a`` pinned to the same version, so constraints on ``a`` apply to both.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from service.index.models import DistFile, Index

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


@dataclass(frozen=True, eq=False)
class SpecifierRequirement:
    """A PEP 508 requirement (markers already evaluated) from the user or a dependency.

    ``pinned`` (an exact ``==``/``===``) and ``upper_bounded`` feed the resolver's preference;
    ``contains`` remembers its answers, because resolvelib asks again every round whether each
    current pin still satisfies every requirement on it.
    """

    requirement: Requirement
    parent: Candidate | None = None
    name: NormalizedName = field(init=False)
    specifier: SpecifierSet = field(init=False)
    extras: frozenset[str] = field(init=False)
    pinned: bool = field(init=False)
    upper_bounded: bool = field(init=False)
    _contains: dict[Version, bool] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        specifier = self.requirement.specifier
        object.__setattr__(self, "name", canonicalize_name(self.requirement.name))
        object.__setattr__(self, "specifier", specifier)
        object.__setattr__(
            self, "extras", frozenset(canonicalize_name(e) for e in self.requirement.extras)
        )
        object.__setattr__(self, "pinned", _is_pinned(specifier))
        object.__setattr__(self, "upper_bounded", _is_upper_bounded(specifier))
        object.__setattr__(self, "_contains", {})

    @property
    def identifier(self) -> str:
        return make_identifier(self.name, self.extras)

    def contains(self, version: Version) -> bool:
        known = self._contains.get(version)
        if known is None:
            known = self._contains[version] = self.specifier.contains(version, prereleases=True)
        return known

    def is_satisfied_by(self, candidate: Candidate) -> bool:
        return self.contains(candidate.version)

    def format_for_error(self) -> str:
        text = f"{self.name}{self.specifier}" if self.specifier else str(self.name)
        if self.extras:
            text = f"{self.name}[{','.join(sorted(self.extras))}]{self.specifier}"
        return text

    def __repr__(self) -> str:
        return f"SpecifierRequirement({self.format_for_error()!r})"


@dataclass(frozen=True, eq=False)
class ExplicitRequirement:
    """Pins the base project to the version an extras candidate was chosen at."""

    candidate: Candidate
    name: NormalizedName = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", self.candidate.name)

    @property
    def identifier(self) -> str:
        return str(self.candidate.name)

    @property
    def extras(self) -> frozenset[str]:
        return frozenset()

    @property
    def parent(self) -> Candidate:
        return self.candidate

    def contains(self, version: Version) -> bool:
        return version == self.candidate.version

    def is_satisfied_by(self, candidate: Candidate) -> bool:
        return self.contains(candidate.version)

    def format_for_error(self) -> str:
        return f"{self.candidate.name}=={self.candidate.version}"


ResolverRequirement = SpecifierRequirement | ExplicitRequirement
