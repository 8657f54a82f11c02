"""How the explanation words versions, version sets, reasons and requirers."""

import pytest
from packaging.version import Version

from service.resolution.explain.phrasing import (
    depend_verb,
    describe_reason,
    format_version_set,
    is_plural,
    join_requirers,
)
from service.resolution.result import Reason

UNIVERSE = [Version(v) for v in ("1.0", "1.1", "2.0", "2.1", "2.2", "3.0")]


class TestFormatVersionSet:
    @pytest.mark.parametrize(
        ("chosen", "expected"),
        [
            (["1.0", "1.1", "2.0", "2.1", "2.2", "3.0"], "all versions of a"),
            (["2.0"], "a==2.0"),
            (["1.0", "1.1"], "a<=1.1"),
            (["2.2", "3.0"], "a>=2.2"),
            (["1.1", "2.0", "2.1"], "a>=1.1,<=2.1"),
            (["1.0", "2.1", "2.2"], "a==1.0 | a>=2.1,<=2.2"),
            ([], "a"),
        ],
    )
    def test_ranges(self, chosen: list[str], expected: str) -> None:
        """Contiguous runs become one range; runs touching an end become one-sided."""
        assert format_version_set("a", [Version(v) for v in chosen], UNIVERSE) == expected

    def test_the_only_version(self) -> None:
        """The one version of a package is named, not called "all versions"."""
        assert format_version_set("a", [Version("1.0")], [Version("1.0")]) == "a==1.0"


class TestNumber:
    @pytest.mark.parametrize(
        ("subject", "plural"),
        [
            ("a==1.0", False),
            ("a", False),
            ("all versions of a", True),
            ("a<=1.1", True),
            ("a>=2.2", True),
            ("a==1.0 | a==3.0", True),
        ],
    )
    def test_plural(self, subject: str, plural: bool) -> None:
        """A subject naming a range or several versions takes the plural verb."""
        assert is_plural(subject) is plural
        assert depend_verb(subject) == ("depend" if plural else "depends")


class TestDescribeReason:
    @pytest.mark.parametrize("reason", list(Reason))
    def test_every_reason_is_worded(self, reason: Reason) -> None:
        """Every reason has a phrase for one version and for several, with fields filled in."""
        for subject in ("a==1.0", "a>=1.0"):
            text = describe_reason(reason, subject, name="a", tag="platform tag")
            assert text and "{" not in text

    @pytest.mark.parametrize(
        ("reason", "subject", "expected"),
        [
            (Reason.YANKED, "a==1.0", "was yanked"),
            (Reason.YANKED, "a>=1.0", "were yanked"),
            (
                Reason.NO_COMPATIBLE_WHEELS,
                "a==1.0",
                "has no wheels with a matching platform tag and no source distribution",
            ),
            (Reason.NO_BINARY, "a<=2.0", "have no source distribution (no_binary is set for a)"),
            (Reason.ONLY_BINARY, "a==1.0", "has no usable wheels (only_binary is set for a)"),
            (Reason.EXCLUDE_NEWER, "1.0", "was published after the exclude_newer cutoff"),
        ],
    )
    def test_phrases(self, reason: Reason, subject: str, expected: str) -> None:
        """The verb agrees with the subject; the package and the wheel tag are named."""
        assert describe_reason(reason, subject, name="a", tag="platform tag") == expected


class TestJoinRequirers:
    def test_user_requirements_join_into_one_clause(self) -> None:
        """ "you require a" twice becomes one clause, after what others require, repeats dropped."""
        clauses = ["you require a", "b==1.0 depends on a", "you require c>=2", "you require a"]
        assert join_requirers(clauses) == "b==1.0 depends on a and you require a and c>=2"

    def test_no_user_requirement(self) -> None:
        """Without a requirement of the user's, the clauses are joined as they are."""
        assert join_requirers(["b==1.0 depends on a"]) == "b==1.0 depends on a"
