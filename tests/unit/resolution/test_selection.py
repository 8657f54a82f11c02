"""File selection (``service.resolution.selection``): verdicts per target, made lazily, shared."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest
from packaging.version import Version

from service.index.models import DistFile, Index, ProjectPage
from service.index.pages import MEDIA_JSON, parse_page
from service.resolution.environment import make_target_environment
from service.resolution.scope import TargetScope
from service.resolution.selection import FileChoice, FileJudge, find_page_versions

TARGET = TargetScope(make_target_environment("3.11", "x86_64-manylinux_2_28"))
INDEX = Index(name="corp", url="https://corp.example/simple")


def page_of(*files: dict[str, object], name: str = "demo") -> ProjectPage:
    content = json.dumps({"meta": {"api-version": "1.1"}, "files": list(files)}).encode()
    url = f"https://corp.example/simple/{name}/"
    listing = parse_page(content, MEDIA_JSON, url=url, project=name)
    return ProjectPage(name=name, index="corp", listing=listing)


def entry(filename: str, **fields: object) -> dict[str, object]:
    return {"filename": filename, "url": filename, "hashes": {}, **fields}


def files(*entries: dict[str, object]) -> tuple[DistFile, ...]:
    return page_of(*entries).files


class CountingJudge(FileJudge):
    """A real judge that counts the versions it was asked to judge."""

    def __init__(self) -> None:
        super().__init__(TARGET)
        self.judged: list[Sequence[DistFile]] = []

    def choose(self, files: Sequence[DistFile]) -> FileChoice:
        self.judged.append(files)
        return super().choose(files)


class TestFileJudge:
    @pytest.mark.parametrize(
        ("listed", "judge", "expected"),
        [
            ([entry("demo-1.0-py3-none-any.whl")], FileJudge(TARGET), None),
            (
                [entry("demo-1.0-py3-none-any.whl", **{"requires-python": ">=3.12"})],
                FileJudge(TARGET),
                "requires_python",
            ),
            (
                [entry("demo-1.0-cp312-cp312-win_amd64.whl")],
                FileJudge(TARGET),
                "no_compatible_wheels",
            ),
            ([entry("demo-1.0-py3-none-any.whl")], FileJudge(TARGET, no_binary=True), "no_binary"),
            ([entry("demo-1.0.tar.gz")], FileJudge(TARGET, only_binary=True), "only_binary"),
            (
                [entry("demo-1.0.tar.gz", **{"upload-time": "2025-01-02T00:00:00Z"})],
                FileJudge(TARGET, cutoff=datetime(2024, 1, 1, tzinfo=UTC)),
                "exclude_newer",
            ),
            # Under a cutoff a file without an upload time is excluded too (uv does so).
            (
                [entry("demo-1.0.tar.gz")],
                FileJudge(TARGET, cutoff=datetime(2024, 1, 1, tzinfo=UTC)),
                "exclude_newer",
            ),
            (
                [entry("demo-1.0.tar.gz", **{"upload-time": "2023-01-02T00:00:00Z"})],
                FileJudge(TARGET, cutoff=datetime(2024, 1, 1, tzinfo=UTC)),
                None,
            ),
        ],
        ids=[
            "usable",
            "python",
            "tags",
            "no-binary",
            "only-binary",
            "exclude-newer",
            "no-upload-time",
            "old-enough",
        ],
    )
    def test_each_rule_rejects_for_its_reason(
        self, listed: list[dict[str, object]], judge: FileJudge, expected: str | None
    ) -> None:
        """Requires-Python, wheel tags, no/only-binary and exclude_newer each name themselves."""
        choice = judge.choose(files(*listed))
        assert choice.rejection == expected
        assert (choice.best is None) == (expected is not None)

    def test_usable_files_rank_unyanked_then_best_tag_then_sdist(self) -> None:
        """The best file is not yanked, then the most specific wheel, then a wheel, then sdist."""
        choice = FileJudge(TARGET).choose(
            files(
                entry("demo-1.0.tar.gz"),
                entry("demo-1.0-py3-none-any.whl"),
                entry("demo-1.0-cp311-cp311-manylinux_2_17_x86_64.whl", yanked=True),
                entry("demo-1.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"),
            )
        )
        assert [f.filename for f in choice.usable] == [
            "demo-1.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
            "demo-1.0-py3-none-any.whl",
            "demo-1.0.tar.gz",
            "demo-1.0-cp311-cp311-manylinux_2_17_x86_64.whl",
        ]

    def test_the_most_telling_reason_wins(self) -> None:
        """Requires-Python outranks a tag mismatch, with the bound as the detail."""
        choice = FileJudge(TARGET).choose(
            files(
                entry("demo-1.0-cp312-cp312-win_amd64.whl"),
                entry("demo-1.0.tar.gz", **{"requires-python": ">=3.13"}),
            )
        )
        assert (choice.rejection, choice.detail) == ("requires_python", ">=3.13")
        assert choice.wheel_tags == ("cp312-cp312-win_amd64",)

    def test_the_key_names_what_verdicts_depend_on(self) -> None:
        """Equal targets and options, equal keys; another option, another key."""
        same_target = TargetScope(make_target_environment("3.11", "x86_64-manylinux_2_28"))
        assert FileJudge(same_target).key == FileJudge(TARGET).key
        assert FileJudge(TARGET, no_binary=True).key != FileJudge(TARGET).key


class TestPageVersions:
    def test_versions_are_judged_only_when_reached(self) -> None:
        """Knowing the versions judges nothing; reaching one judges it alone, once."""
        page = page_of(*(entry(f"demo-{n}.0-py3-none-any.whl") for n in range(50)))
        judge = CountingJudge()
        versions = find_page_versions(INDEX, page, judge)
        assert versions.versions[0] == Version("49.0")
        assert judge.judged == []
        assert versions.choice(Version("49.0")).best is not None
        versions.choice(Version("49.0"))
        assert [[f.filename for f in judged] for judged in judge.judged] == [
            ["demo-49.0-py3-none-any.whl"]
        ]

    def test_jobs_with_the_same_page_and_target_share_verdicts(self) -> None:
        """Another job (same index identity, body and judge key) gets the same verdicts."""
        listed = [entry("demo-1.0-py3-none-any.whl")]
        first = find_page_versions(INDEX, page_of(*listed), FileJudge(TARGET))
        renamed = Index(name="other-name", url=INDEX.url)
        again = find_page_versions(renamed, page_of(*listed), FileJudge(TARGET))
        assert again is first
        other_scope = TargetScope(make_target_environment("3.12", "x86_64-manylinux_2_28"))
        other_target = FileJudge(other_scope)
        assert find_page_versions(INDEX, page_of(*listed), other_target) is not first
        changed = page_of(*listed, entry("demo-2.0-py3-none-any.whl"))
        assert find_page_versions(INDEX, changed, FileJudge(TARGET)) is not first
