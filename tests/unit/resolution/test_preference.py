"""The preference key decides which identifier resolvelib pins next."""

from packaging.requirements import Requirement
from resolvelib.structs import RequirementInformation

from service.resolution.candidates import ExplicitRequirement, SpecifierRequirement
from service.resolution.provider import make_preference
from tests.unit.resolution.records import make_candidate


def info(line: str, *, direct: bool = True) -> RequirementInformation:  # type: ignore[type-arg]
    parent = None if direct else object()
    return RequirementInformation(SpecifierRequirement(Requirement(line)), parent)  # type: ignore[arg-type]


class TestPreference:
    def test_table(self) -> None:
        """Conflict causes first, then pins, then direct, then upper-bounded, then order."""
        rows = [
            (
                {
                    "information": [info("a>=1")],
                    "backtracking": True,
                    "order": 9,
                    "identifier": "a",
                },
                (False, True, False, True, 9, "a"),
            ),
            (
                {
                    "information": [info("b==1.0", direct=False)],
                    "backtracking": False,
                    "order": 1,
                    "identifier": "b",
                },
                (True, False, True, False, 1, "b"),
            ),
            (
                {"information": [info("c")], "backtracking": False, "order": 0, "identifier": "c"},
                (True, True, False, True, 0, "c"),
            ),
            (
                {
                    "information": [info("d<2", direct=False)],
                    "backtracking": False,
                    "order": 3,
                    "identifier": "d",
                },
                (True, True, True, False, 3, "d"),
            ),
        ]
        for kwargs, expected in rows:
            assert make_preference(**kwargs) == expected  # type: ignore[arg-type]

    def test_sorting_orders_identifiers(self) -> None:
        """Sorting by the key yields conflict cause, pinned, direct, bounded, other."""
        keys = {
            "other": make_preference(
                [info("e", direct=False)], backtracking=False, order=0, identifier="e"
            ),
            "bounded": make_preference(
                [info("d<2", direct=False)], backtracking=False, order=0, identifier="d"
            ),
            "direct": make_preference([info("c")], backtracking=False, order=0, identifier="c"),
            "pinned": make_preference(
                [info("b==1", direct=False)], backtracking=False, order=0, identifier="b"
            ),
            "cause": make_preference(
                [info("a", direct=False)], backtracking=True, order=0, identifier="a"
            ),
        }
        assert sorted(keys, key=keys.__getitem__) == [
            "cause",
            "pinned",
            "direct",
            "bounded",
            "other",
        ]

    def test_an_extras_pin_is_a_pin(self) -> None:
        """The base of an extras candidate, pinned to its version, has one choice."""
        pin = RequirementInformation(
            ExplicitRequirement(make_candidate("a[x]==1.0")), make_candidate("a[x]==1.0")
        )
        key = make_preference([pin], backtracking=False, order=2, identifier="a")
        assert key == (True, False, True, False, 2, "a")
