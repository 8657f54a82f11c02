"""The benchmark's generators and helpers, checked without timing anything."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from tests.bench.runner import describe_diff, summarize_requests
from tests.bench.synthetic import (
    check_resolution,
    check_witness,
    make_backtracking_set,
    make_scaling_set,
)
from tests.bench.tools import pip_platform_tags
from tests.indexserver import RequestRecord


class TestScalingSet:
    def test_ten_projects_are_acyclic_and_resolvable_by_construction(self) -> None:
        """The 10-project set has no dependency cycle and its witness is a valid resolution."""
        synthetic = make_scaling_set(10)
        assert len(synthetic.spec.projects) == 10
        assert check_witness(synthetic) == []

    def test_every_project_has_five_to_thirty_releases(self) -> None:
        """Release counts stay in the realistic range the benchmark promises."""
        synthetic = make_scaling_set(10)
        assert all(5 <= len(p.releases) <= 30 for p in synthetic.spec.projects)

    def test_the_same_seed_builds_the_same_index(self) -> None:
        """Runs are comparable: the generator is deterministic."""
        assert make_scaling_set(10) == make_scaling_set(10)

    def test_a_broken_resolution_is_named(self) -> None:
        """``check_resolution`` reports a root whose pinned version is not published."""
        synthetic = make_scaling_set(10)
        broken = dict(synthetic.witness) | {"pkg0000": "99.0.0"}
        assert any("pkg0000" in problem for problem in check_resolution(synthetic, broken))


class TestBacktrackingSet:
    def test_only_the_oldest_releases_solve_it(self) -> None:
        """The witness is the oldest release of every chain, and the newest fails."""
        synthetic = make_backtracking_set(chains=1, depth=5)
        assert check_witness(synthetic) == []
        newest = dict(synthetic.witness) | {"top0": "5.0", "mid0": "5.0"}
        assert check_resolution(synthetic, newest)


class TestHelpers:
    def test_pip_platform_tags_spell_out_every_older_glibc(self) -> None:
        """pip needs each manylinux tag listed; uv's 2_34 means 2_34 down to 2_5 plus aliases."""
        tags = pip_platform_tags("x86_64-manylinux_2_34")
        assert tags[0] == "manylinux_2_34_x86_64"
        assert "manylinux_2_5_x86_64" in tags
        assert "manylinux2014_x86_64" in tags

    def test_requests_are_counted_by_kind(self) -> None:
        """Pages, PEP 658 sidecars, ranges, downloads and revalidations are told apart."""
        log = [
            RequestRecord("GET", "/i/simple/a/", 200, {}),
            RequestRecord("GET", "/i/simple/a/", 304, {}),
            RequestRecord("GET", "/i/files/a-1-py3-none-any.whl.metadata", 200, {}),
            RequestRecord("GET", "/i/files/a-1-py3-none-any.whl", 206, {}),
            RequestRecord("GET", "/i/files/a-1-py3-none-any.whl", 200, {}),
            RequestRecord("HEAD", "/i/files/a-1-py3-none-any.whl", 200, {}),
        ]
        assert summarize_requests(log) == Counter(
            page=1, not_modified=1, metadata=1, range=1, download=1, head=1
        )

    def test_equal_resolutions_have_no_diff(self) -> None:
        """Agreement prints nothing; a different version is named with uv's."""
        assert describe_diff("resolvd", {"a": "1"}, {"a": "1"}) == ""
        assert "a 2 (uv 1)" in describe_diff("resolvd", {"a": "1"}, {"a": "2"})

    def test_a_diff_on_a_generated_set_says_which_side_is_valid(self) -> None:
        """With a validator, each side of a DIFF line is judged a solution or not."""
        synthetic = make_scaling_set(10)
        broken = dict(synthetic.witness) | {"pkg0000": "99.0.0"}

        def validate(resolution: Mapping[str, str]) -> list[str]:
            return check_resolution(synthetic, resolution)

        line = describe_diff("resolvd", synthetic.witness, broken, validate)
        assert "[resolvd INVALID" in line and "[uv valid]" in line
