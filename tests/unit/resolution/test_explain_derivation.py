"""The derivation: why a requirement cannot be met, who requires it, and the paragraph."""

from __future__ import annotations

import pytest

from service.diagnostics.model import Code
from service.resolution.explain.derivation import Derivation
from service.resolution.explain.facts import Facts
from service.resolution.explain.hints import Hints
from service.resolution.result import Reason
from tests.unit.resolution.records import RecordedSearch, make_info

UNSATISFIABLE = "we can conclude that your requirements are unsatisfiable."


def derive(search: RecordedSearch) -> tuple[Derivation, Hints]:
    facts = Facts(search)
    hints = Hints(facts, search, search.request, search.target)
    derivation = Derivation(
        facts, hints, requirements=search.request.requirements, target=search.target
    )
    return derivation, hints


def why(search: RecordedSearch, *lines: str) -> str:
    derivation, _ = derive(search)
    requirements = [make_info(line).requirement for line in lines]
    return derivation.why_unusable(requirements[0].name, requirements)


class TestNothingMatches:
    def test_not_found(self) -> None:
        """A package on no index is "not found in the package registry", with its hint."""
        search = RecordedSearch()
        search.add_missing("nope")
        derivation, hints = derive(search)
        requirement = make_info("nope>=1").requirement
        assert derivation.why_unusable("nope", [requirement]) == (
            "nope was not found in the package registry"
        )
        assert [h.code for h in hints.items] == [Code.PACKAGE_NOT_FOUND]

    def test_only_prereleases_match(self) -> None:
        """Matching pre-releases the mode set aside are named apart from what is available."""
        search = RecordedSearch()
        search.add_project("a", "1.0", "2.0a1")
        search.set_aside("a", "2.0a1")
        derivation, hints = derive(search)
        requirement = make_info("a>=2.0a0").requirement
        assert derivation.why_unusable("a", [requirement]) == (
            "only pre-releases of a match a>=2.0a0 (a==2.0a1) and pre-releases are not allowed"
        )
        assert [h.code for h in hints.items] == [Code.PRERELEASE_AVAILABLE]

    @pytest.mark.parametrize(
        ("versions", "line", "expected"),
        [
            (("1.0", "2.0"), "a>=3", "only a<=2.0 is available"),
            (("1.0", "2.0"), "a<1", "only a>=1.0 is available"),
            (("1.0", "2.0"), "a==3.0", "there is no version of a==3.0"),
            (("1.0", "2.0"), "a>1.0,<2.0", "there is no version of a<2.0,>1.0"),
            (("1.0",), "a>=2", "only a==1.0 is available"),
        ],
    )
    def test_no_version(self, versions: tuple[str, ...], line: str, expected: str) -> None:
        """uv's phrasing: what is available, when the requirement asks beyond it."""
        search = RecordedSearch()
        search.add_project("a", *versions)
        assert why(search, line) == expected

    def test_no_version_hint_names_the_newest(self) -> None:
        """The hint lists up to five of the newest versions."""
        search = RecordedSearch()
        search.add_project("a", *(f"1.{n}" for n in range(8)))
        derivation, hints = derive(search)
        derivation.why_unusable("a", [make_info("a>=2").requirement])
        (hint,) = hints.items
        assert hint.code is Code.NO_MATCHING_VERSION
        assert hint.message == (
            "No published version of a satisfies a>=2; the newest available: "
            "1.7, 1.6, 1.5, 1.4, 1.3."
        )

    def test_several_requirements_read_as_their_intersection(self) -> None:
        """Requirements from several requirers are one requirement: their intersection."""
        search = RecordedSearch()
        search.add_project("a", "1.0", "2.0")
        assert why(search, "a>1", "a<2") == "there is no version of a>1,a<2"


class TestPassedOver:
    def test_each_reason_is_a_clause(self) -> None:
        """Matching versions are grouped by why each was passed over, in version order."""
        search = RecordedSearch()
        search.add_project("a", "1.0", "2.0", "3.0")
        search.reject("a", "3.0", Reason.YANKED)
        search.reject("a", "2.0", Reason.REQUIRES_PYTHON, detail=">=3.13")
        assert why(search, "a>=2") == (
            "a==3.0 was yanked and the requested Python version (3.12.0) does not satisfy "
            "Python>=3.13 and a==2.0 depends on Python>=3.13"
        )

    def test_python_bounds_apart(self) -> None:
        """Versions needing different Pythons are listed by bound."""
        search = RecordedSearch()
        search.add_project("a", "1.0", "2.0", "3.0")
        search.reject("a", "2.0", Reason.REQUIRES_PYTHON, detail=">=3.13")
        search.reject("a", "3.0", Reason.REQUIRES_PYTHON, detail=">=3.14")
        assert why(search, "a>=2") == (
            "a==2.0 depends on Python>=3.13, a==3.0 depends on Python>=3.14, none of which the "
            "requested Python version (3.12.0) satisfies"
        )

    def test_metadata_statuses(self) -> None:
        """Versions whose metadata could not be had name the statuses met."""
        search = RecordedSearch()
        search.add_project("a", "1.0", "2.0", "3.0")
        for version in ("2.0", "3.0"):
            search.reject(
                "a", version, Reason.METADATA_UNAVAILABLE, status=403, detail="403 Forbidden"
            )
        assert why(search, "a>=2") == (
            "a>=2.0 could not be fetched from the network (403 Forbidden)"
        )

    @pytest.mark.parametrize(
        ("tags", "missing"),
        [
            (["cp313-cp313-manylinux_2_28_x86_64"], "Python implementation tag (e.g., `cp312`)"),
            (["py3-cp313-manylinux_2_28_x86_64"], "Python ABI tag (e.g., `cp312`)"),
            (["cp312-cp312-win_amd64"], "platform tag (e.g., `manylinux_2_28_x86_64`)"),
        ],
    )
    def test_which_wheel_tag_failed(self, tags: list[str], missing: str) -> None:
        """An incompatible wheel is explained by the first part of its tag that fails."""
        search = RecordedSearch()
        search.add_project("a", "1.0", wheel_tags=tags)
        search.reject("a", "1.0", Reason.NO_COMPATIBLE_WHEELS)
        assert why(search, "a") == (
            f"a==1.0 has no wheels with a matching {missing} and no source distribution"
        )

    def test_nothing_wrong_means_the_conflict(self) -> None:
        """Versions no rejection explains were ruled out by the conflict itself."""
        search = RecordedSearch()
        search.add_project("a", "1.0", "2.0", "3.0")
        search.reject("a", "3.0", Reason.YANKED)
        assert why(search, "a>=2") == (
            "a==3.0 was yanked and a==2.0 conflicts with other requirements"
        )


class TestRequirers:
    def test_a_parent_widens_to_its_versions_with_the_same_requirement(self) -> None:
        """ "b<=1.1 depend on a<2" when every loaded b up to 1.1 says so, not only b==1.1."""
        search = RecordedSearch(requirements=("b",))
        search.add_project("b", "1.0", "1.1", "2.0")
        search.depend("b", "1.0", "a<2")
        search.depend("b", "1.1", "a<2")
        search.depend("b", "2.0", "a<3")
        derivation, _ = derive(search)
        info = make_info("a<2", parent="b==1.1")
        assert info.parent is not None
        assert derivation.who_requires(info.requirement, info.parent) == "b<=1.1 depend on a<2"

    def test_the_user_as_written(self) -> None:
        """A root requirement is quoted as the user wrote it, marker dropped."""
        search = RecordedSearch(requirements=("B>=1 ; python_version >= '3'",))
        derivation, _ = derive(search)
        assert derivation.requirers("b") == "you require B>=1"

    def test_dependents(self) -> None:
        """Otherwise the loaded versions that depend on it, at most three."""
        search = RecordedSearch()
        for parent in ("p", "q", "r", "s"):
            search.depend(parent, "1.0", "a")
        derivation, _ = derive(search)
        assert derivation.requirers("a") == "p==1.0 and q==1.0 and r==1.0 depend on a"
        assert derivation.requirers("z") == "z is required"


class TestParagraph:
    def test_a_root_requirement_nothing_satisfies(self) -> None:
        """One requirement, no parent: "Because <why> and you require <it>"."""
        search = RecordedSearch(requirements=("a>=1",))
        search.add_project("a", "1.0")
        search.reject("a", "1.0", Reason.YANKED)
        derivation, hints = derive(search)
        assert derivation.explain_group("a", [make_info("a>=1")]) == (
            f"Because a==1.0 was yanked and you require a>=1, {UNSATISFIABLE}"
        )
        assert [h.code for h in hints.items] == [Code.YANKED]

    def test_a_dependency_nothing_satisfies(self) -> None:
        """A parent whose requirement cannot be met cannot be used; the user required it."""
        search = RecordedSearch(requirements=("b",))
        search.add_project("b", "1.0")
        search.add_project("a", "1.0")
        search.depend("b", "1.0", "a>=2")
        derivation, _ = derive(search)
        assert derivation.explain_group("a", [make_info("a>=2", parent="b==1.0")]) == (
            "Because only a==1.0 is available and b==1.0 depends on a>=2, we can conclude that "
            f"b==1.0 cannot be used. And because you require b, {UNSATISFIABLE}"
        )

    def test_two_requirers_disagree(self) -> None:
        """Two parents whose requirements no version meets together are incompatible."""
        search = RecordedSearch(requirements=("b", "c"))
        search.add_project("a", "1.0", "2.0")
        search.add_project("b", "1.0")
        search.add_project("c", "1.0")
        search.depend("b", "1.0", "a<2")
        search.depend("c", "1.0", "a>=2")
        derivation, hints = derive(search)
        infos = [make_info("a<2", parent="b==1.0"), make_info("a>=2", parent="c==1.0")]
        assert derivation.explain_group("a", infos) == (
            "Because b==1.0 depends on a<2 and c==1.0 depends on a>=2, we can conclude that "
            f"b==1.0 and c==1.0 are incompatible. And because you require b and c, {UNSATISFIABLE}"
        )
        assert [h.code for h in hints.items] == [Code.DEPENDENCY_CONFLICT]

    def test_what_ruled_out_a_parents_other_versions(self) -> None:
        """When the conflict names only b==2.0, the root requirement that ruled out b==1.0
        completes the derivation."""
        search = RecordedSearch(requirements=("a>=2", "b", "d"))
        search.add_project("a", "1.0", "2.0")
        search.add_project("b", "1.0", "2.0")
        search.add_project("d", "1.0")
        search.depend("b", "1.0", "a>=2")
        search.depend("b", "2.0", "a<2")
        search.depend("d", "1.0", "b>=2")
        derivation, _ = derive(search)
        infos = [make_info("a>=2"), make_info("a<2", parent="b==2.0")]
        assert derivation.explain_group("a", infos) == (
            "Because you require a>=2 and b==2.0 depends on a<2, we can conclude that b==2.0 "
            "cannot be used. And because d==1.0 depends on b>=2 and you require b and d, "
            f"{UNSATISFIABLE}"
        )
