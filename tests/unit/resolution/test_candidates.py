"""Requirements speak one protocol; each decides what satisfies it."""

from __future__ import annotations

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from service.resolution.candidates import (
    ExplicitRequirement,
    ResolverRequirement,
    SpecifierRequirement,
    make_identifier,
    split_identifier,
)
from tests.unit.resolution.records import make_candidate


def specifier(line: str) -> SpecifierRequirement:
    return SpecifierRequirement(Requirement(line))


class TestSpecifierRequirement:
    def test_names_are_canonical(self) -> None:
        """Name, extras and identifier are canonicalized; extras sorted in the identifier."""
        requirement = specifier("Foo_Bar[Socks,HTTP2]>=1")
        assert requirement.name == "foo-bar"
        assert requirement.extras == frozenset({"socks", "http2"})
        assert requirement.identifier == "foo-bar[http2,socks]"
        assert requirement.format_for_error() == "foo-bar[http2,socks]>=1"

    @pytest.mark.parametrize(
        ("line", "pinned", "upper_bounded"),
        [
            ("a", False, False),
            ("a>=1", False, False),
            ("a<2", False, True),
            ("a~=1.4", False, True),
            ("a==1.*", False, True),
            ("a==1.0", True, True),
            ("a===1.0", True, True),
        ],
    )
    def test_preference_facts(self, line: str, pinned: bool, upper_bounded: bool) -> None:
        """An exact ``==``/``===`` is a pin; any operator with a ceiling bounds from above."""
        requirement = specifier(line)
        assert (requirement.pinned, requirement.upper_bounded) == (pinned, upper_bounded)

    def test_contains_allows_prereleases(self) -> None:
        """Pre-releases are the finder's decision, not the specifier's."""
        requirement = specifier("a>=1")
        assert requirement.contains(Version("2.0a1"))
        assert not requirement.contains(Version("0.9"))

    def test_is_satisfied_by_a_candidates_version(self) -> None:
        """A candidate satisfies the requirement when its version does; its parent is kept."""
        parent = make_candidate("b==1.0")
        requirement = SpecifierRequirement(Requirement("a<2"), parent)
        assert requirement.parent is parent
        assert requirement.is_satisfied_by(make_candidate("a==1.5"))
        assert not requirement.is_satisfied_by(make_candidate("a==2.0"))
        assert specifier("a").parent is None

    def test_no_instance_dictionary(self) -> None:
        """Requirements are made by the thousand per job: slots, no per-instance dict."""
        requirement = specifier("a")
        assert not hasattr(requirement, "__dict__")


class TestExplicitRequirement:
    def test_pins_the_base_of_an_extras_candidate(self) -> None:
        """``a[x]==1.0`` requires ``a`` at exactly 1.0, and is its parent."""
        parent = make_candidate("a[x]==1.0")
        requirement = ExplicitRequirement(parent)
        assert (requirement.name, requirement.identifier, requirement.extras) == (
            "a",
            "a",
            frozenset(),
        )
        assert requirement.parent is parent
        assert requirement.pinned and requirement.upper_bounded
        assert requirement.is_satisfied_by(make_candidate("a==1.0"))
        assert not requirement.contains(Version("1.1"))
        assert requirement.format_for_error() == "a==1.0"
        assert not hasattr(requirement, "__dict__")


class TestProtocol:
    @pytest.mark.parametrize(
        "requirement",
        [
            SpecifierRequirement(Requirement("a[x]>=1")),
            ExplicitRequirement(make_candidate("a[x]==1.0")),
        ],
    )
    def test_every_requirement_speaks_it(self, requirement: ResolverRequirement) -> None:
        """Both kinds declare the protocol and answer every member of it."""
        assert ResolverRequirement in type(requirement).__mro__
        for member in ("name", "identifier", "extras", "parent", "pinned", "upper_bounded"):
            getattr(requirement, member)
        assert requirement.format_for_error().startswith("a")


class TestIdentifiers:
    def test_round_trip(self) -> None:
        """An identifier splits back into the canonical name and extras it was made of."""
        identifier = make_identifier("Foo.Bar", ["Y", "x"])
        assert identifier == "foo-bar[x,y]"
        assert split_identifier(identifier) == ("foo-bar", frozenset({"x", "y"}))
        assert split_identifier("foo") == ("foo", frozenset())
