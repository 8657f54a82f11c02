"""Hints say what the user could change, once each, with a stable code, and probe little."""

from __future__ import annotations

import pytest
from packaging.version import Version

from service.diagnostics.model import Code, Severity
from service.resolution.explain.facts import Facts
from service.resolution.explain.hints import MAX_PROBES, Hints, similar_names
from service.resolution.result import Reason
from tests.unit.resolution.records import RecordedSearch, make_info


def make_hints(search: RecordedSearch) -> Hints:
    return Hints(Facts(search), search, search.request, search.target)


class TestSimilarNames:
    @pytest.mark.parametrize(
        ("name", "expected"),
        [
            ("dateutil", ["python-dateutil", "pydateutil", "dateutils"]),
            ("python-requests", ["requests", "python-request"]),
            ("Beautiful_Soups", ["python-beautiful-soups", "pybeautiful-soups", "beautiful-soup"]),
        ],
    )
    def test_variants(self, name: str, expected: list[str]) -> None:
        """The probes are the spellings people confuse, canonicalized, at most four."""
        assert similar_names(name)[: len(expected)] == expected
        assert len(similar_names(name)) <= 4


class TestNotFound:
    def test_names_every_index_and_a_similar_name(self) -> None:
        """A missing package gets a spelling suggestion from the index that has it, then the
        list of indexes searched."""
        search = RecordedSearch("corp", "mirror")
        search.publish("mirror", "python-dateutil", "2.9.0")
        hints = make_hints(search)
        hints.not_found("dateutil")
        similar, missing = hints.items
        assert similar.code is Code.SIMILAR_NAME and similar.severity is Severity.HINT
        assert similar.message == (
            "dateutil was not found, but python-dateutil exists on index 'mirror'. "
            "Did you mean python-dateutil?"
        )
        assert similar.index == "mirror" and similar.data == {"suggestion": "python-dateutil"}
        assert missing.code is Code.PACKAGE_NOT_FOUND
        assert missing.message == (
            "dateutil was not found on 'corp', 'mirror'. Check the spelling, or add the index "
            "that publishes it."
        )
        assert search.probes == [("corp", "python-dateutil"), ("mirror", "python-dateutil")]

    def test_a_page_without_files_is_no_suggestion(self) -> None:
        """A similar name whose page lists no file is not suggested."""
        search = RecordedSearch()
        search.publish("corp", "python-dateutil")
        hints = make_hints(search)
        hints.not_found("dateutil")
        assert [h.code for h in hints.items] == [Code.PACKAGE_NOT_FOUND]

    def test_probes_are_capped_per_job(self) -> None:
        """However many indexes a request names, the explanation fetches at most MAX_PROBES
        pages it did not need for the resolution (1,000 indexes once cost 4,000 requests)."""
        search = RecordedSearch(*(f"i{n}" for n in range(1000)))
        hints = make_hints(search)
        for name in ("dateutil", "reqeusts", "nump"):
            hints.not_found(name)
        assert len(search.probes) == MAX_PROBES
        assert [h.code for h in hints.items] == [Code.PACKAGE_NOT_FOUND] * 3

    def test_the_most_likely_spelling_is_probed_first(self) -> None:
        """Within the budget, each spelling is tried on every index before the next spelling."""
        search = RecordedSearch("a", "b", "c")
        search.publish("c", "python-dateutil", "2.9.0")
        search.publish("a", "pydateutil", "1.0")
        hints = make_hints(search)
        hints.not_found("dateutil")
        assert hints.items[0].data == {"suggestion": "python-dateutil"}
        assert search.probes == [(i, "python-dateutil") for i in ("a", "b", "c")]


class TestOtherIndexes:
    def test_first_index_names_a_later_index_that_matches(self) -> None:
        """Under first-index, a later index with a matching version is named, newest first."""
        search = RecordedSearch("first", "later")
        search.add_project("flask", "1.0.0", index="first")
        search.publish("later", "flask", "2.0.0", "3.0.0", "0.1")
        hints = make_hints(search)
        hints.other_indexes("flask", [make_info("flask>=2").requirement])
        (hint,) = hints.items
        assert hint.code is Code.FOUND_ON_OTHER_INDEX
        assert hint.message == (
            "flask==3.0.0 is available on index 'later', but index_strategy 'first-index' only "
            "uses 'first', where flask was found first. Use unsafe-best-match only if you trust "
            "every index with this name."
        )
        assert (hint.version, hint.index) == ("3.0.0", "later")
        assert hint.data == {"setting": "index_strategy", "first_index": "first"}

    def test_nothing_matching_elsewhere_says_nothing(self) -> None:
        """A later index without a matching version adds no hint."""
        search = RecordedSearch("first", "later")
        search.add_project("flask", "1.0.0", index="first")
        search.publish("later", "flask", "1.5")
        hints = make_hints(search)
        hints.other_indexes("flask", [make_info("flask>=2").requirement])
        assert hints.items == [] and search.probes == [("later", "flask")]

    @pytest.mark.parametrize("strategy", ["unsafe-best-match", "unsafe-first-match"])
    def test_other_strategies_already_looked_everywhere(self, strategy: str) -> None:
        """Only first-index leaves later indexes unread: other strategies probe nothing."""
        search = RecordedSearch("first", "later", index_strategy=strategy)
        search.add_project("flask", "1.0.0", index="first")
        make_hints(search).other_indexes("flask", [make_info("flask>=2").requirement])
        assert search.probes == []

    def test_shares_the_probe_budget(self) -> None:
        """Probes of later indexes and of similar names draw on one budget."""
        search = RecordedSearch(*(f"i{n}" for n in range(40)))
        search.add_project("flask", "1.0.0", index="i0")
        hints = make_hints(search)
        hints.not_found("dateutil")
        hints.other_indexes("flask", [make_info("flask>=2").requirement])
        assert len(search.probes) == MAX_PROBES


class TestRejectionHints:
    @pytest.mark.parametrize(
        ("reason", "detail", "code", "message"),
        [
            (
                Reason.REQUIRES_PYTHON,
                ">=3.13",
                Code.REQUIRES_PYTHON,
                "a==1.0 requires Python >=3.13 but the resolution targets Python 3.12.0.",
            ),
            (
                Reason.YANKED,
                "broken",
                Code.YANKED,
                "a==1.0 was yanked (reason: broken); pin it with a==1.0 to use it anyway.",
            ),
            (
                Reason.SDIST_DYNAMIC_METADATA,
                None,
                Code.SDIST_DYNAMIC_METADATA,
                "a==1.0 has only a source distribution whose metadata needs a build. Give its "
                "metadata in the request's dependency_metadata, or have the server build it in "
                "a sandbox ([builds] enabled = true).",
            ),
            (
                Reason.BUILD_FAILED,
                "corp: setup.py failed",
                Code.BUILD_FAILED,
                "a==1.0 has only a source distribution whose metadata build failed: corp: "
                "setup.py failed.",
            ),
            (
                Reason.INVALID_METADATA,
                "bad line",
                Code.INVALID_METADATA,
                "a==1.0 has invalid metadata: bad line.",
            ),
            (
                Reason.INCONSISTENT_METADATA,
                "names b",
                Code.INCONSISTENT_METADATA,
                "a==1.0 has metadata inconsistent with its file name: names b.",
            ),
            (
                Reason.NO_COMPATIBLE_WHEELS,
                None,
                Code.NO_COMPATIBLE_WHEELS,
                "a==1.0 has no distribution usable on x86_64-manylinux_2_28 with Python 3.12; "
                "its wheels are tagged cp312-cp312-win_amd64.",
            ),
            (
                Reason.ONLY_BINARY,
                None,
                Code.NO_COMPATIBLE_WHEELS,
                "a==1.0 has no distribution usable on x86_64-manylinux_2_28 with Python 3.12; "
                "its wheels are tagged cp312-cp312-win_amd64.",
            ),
            (
                Reason.NO_BINARY,
                None,
                Code.NO_BINARY,
                "a==1.0 has no source distribution, and no_binary is set for a; its wheels are "
                "tagged cp312-cp312-win_amd64.",
            ),
        ],
    )
    def test_each_reason(
        self, reason: Reason, detail: str | None, code: Code, message: str
    ) -> None:
        """Each reason a version was passed over becomes a hint with its own code."""
        search = RecordedSearch()
        search.add_project("a", "1.0", wheel_tags=["cp312-cp312-win_amd64"])
        hints = make_hints(search)
        hints.rejection("a", search.reject("a", "1.0", reason, detail=detail))
        (hint,) = hints.items
        assert (hint.code, hint.message) == (code, message)
        assert (hint.package, hint.version, hint.index) == ("a", "1.0", "corp")

    def test_metadata_unavailable_once_per_status(self) -> None:
        """Versions whose metadata failed with the same status share one hint."""
        search = RecordedSearch()
        search.add_project("a", "1.0", "2.0", "3.0")
        hints = make_hints(search)
        for version, status in (("3.0", 403), ("2.0", 403), ("1.0", 404)):
            detail = "403 Forbidden" if status == 403 else "404 Not Found"
            rejection = search.reject(
                "a", version, Reason.METADATA_UNAVAILABLE, status=status, detail=detail
            )
            hints.rejection("a", rejection)
        assert [(h.code, h.status, h.version) for h in hints.items] == [
            (Code.METADATA_UNAVAILABLE, 403, "3.0"),
            (Code.METADATA_UNAVAILABLE, 404, "1.0"),
        ]
        assert hints.items[0].message == (
            "Metadata for a==3.0 could not be fetched from index 'corp' (403 Forbidden); such "
            "versions were skipped under that index's ignore_error_codes.metadata."
        )

    def test_the_same_rejection_twice_is_one_hint(self) -> None:
        """A rejection met again while explaining another package adds nothing."""
        search = RecordedSearch()
        search.add_project("a", "1.0")
        hints = make_hints(search)
        rejection = search.reject("a", "1.0", Reason.YANKED)
        hints.rejection("a", rejection)
        hints.rejection("a", rejection)
        assert len(hints.items) == 1


class TestConflictAndPrerelease:
    def test_conflict_lists_every_requirer(self) -> None:
        """The conflict hint quotes each requirement and who declared it."""
        hints = make_hints(RecordedSearch())
        hints.conflict("a", [make_info("a>=2"), make_info("a<2", parent="b==1.0")])
        (hint,) = hints.items
        assert hint.code is Code.DEPENDENCY_CONFLICT
        assert hint.message == (
            "No version of a satisfies all of its requirements at once: you require a>=2; "
            "b==1.0 requires a<2. Loosen one of them, or pin the requirers to versions that agree."
        )
        assert hint.data == {
            "requirements": [
                {"requirement": "a>=2", "required_by": None},
                {"requirement": "a<2", "required_by": "b==1.0"},
            ]
        }

    def test_prerelease_names_the_newest_and_the_setting(self) -> None:
        """Pre-releases set aside are offered with the setting that would allow them."""
        search = RecordedSearch(prerelease="if-necessary")
        hints = make_hints(search)
        hints.prerelease("a", [Version("2.0a1"), Version("2.0b2")])
        (hint,) = hints.items
        assert hint.code is Code.PRERELEASE_AVAILABLE and hint.version == "2.0b2"
        assert "prerelease='if-necessary'" in hint.message
        assert hint.data["versions"] == ["2.0a1", "2.0b2"]


class TestCutoffHints:
    """The exclude_newer hint names the cutoff applied to the package and where it came from."""

    def hint_for(self, detail: str | None, **options: object) -> tuple[str, dict[str, object]]:
        search = RecordedSearch(**options)
        search.add_project("a", "1.0")
        hints = make_hints(search)
        hints.rejection("a", search.reject("a", "1.0", Reason.EXCLUDE_NEWER, detail=detail))
        (hint,) = hints.items
        assert hint.code is Code.EXCLUDE_NEWER and hint.version == "1.0"
        assert hint.data is not None
        return hint.message, hint.data

    def test_a_duration_is_shown_with_the_time_it_reached(self) -> None:
        """A cooldown shows the time it was resolved to and the duration it was given as."""
        message, data = self.hint_for(
            "2026-12-03T00:00:00Z",
            exclude_newer="2026-11-27T12:00:00Z",
            exclude_newer_span="7 days",
        )
        assert message == (
            "a==1.0 was uploaded at 2026-12-03T00:00:00Z, after the exclude_newer cutoff "
            "2026-11-27T12:00:00Z (7 days before the job was accepted). To allow it, give a a "
            "later cutoff, or false, in exclude_newer_package."
        )
        assert data["cutoff"] == "2026-11-27T12:00:00Z" and data["span"] == "7 days"
        assert data["setting"] == "exclude_newer"

    def test_a_package_cutoff_is_named_as_such(self) -> None:
        """A package's own cutoff from exclude_newer_package is the one explained."""
        message, data = self.hint_for(
            "2024-06-01T00:00:00Z",
            exclude_newer="2026-01-01T00:00:00Z",
            exclude_newer_package={"a": "2024-01-01T00:00:00Z"},
        )
        assert "after the exclude_newer_package cutoff 2024-01-01T00:00:00Z." in message
        assert data["cutoff"] == "2024-01-01T00:00:00Z"
        assert (data["setting"], data["span"]) == ("exclude_newer_package", None)

    def test_a_file_without_upload_time(self) -> None:
        """A version whose files carry no upload time is explained as such, not as too new."""
        message, data = self.hint_for(None, exclude_newer="2024-01-01T00:00:00Z")
        assert message.startswith(
            "a==1.0 has no upload time on its index, and the exclude_newer cutoff "
            "2024-01-01T00:00:00Z excludes files without one."
        )
        assert data["upload_time"] is None
