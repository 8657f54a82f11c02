"""``explain_failure`` turns resolvelib's causes and the finder's records into a Failure."""

from __future__ import annotations

from service.diagnostics.model import Code, Diagnostic, Severity
from service.resolution.explain import explain_failure
from service.resolution.result import Failure, Reason
from tests.unit.resolution.records import Information, RecordedSearch, make_info


def explain(search: RecordedSearch, causes: list[Information]) -> Failure:
    return explain_failure(causes, finder=search, request=search.request, target=search.target)


class TestExplainFailure:
    def test_one_paragraph_per_package(self) -> None:
        """The message is the header, then one indented paragraph per package in the causes."""
        search = RecordedSearch(requirements=("a>=2", "z"))
        search.add_project("a", "1.0")
        search.add_missing("z")
        failure = explain(search, [make_info("a>=2"), make_info("z")])
        assert failure.kind == "unsatisfiable"
        assert failure.message == (
            "No solution found when resolving dependencies:\n"
            "  Because only a==1.0 is available and you require a>=2, we can conclude that your "
            "requirements are unsatisfiable.\n"
            "  Because z was not found in the package registry and you require z, we can "
            "conclude that your requirements are unsatisfiable."
        )
        assert [h.code for h in failure.hints] == [
            Code.NO_MATCHING_VERSION,
            Code.PACKAGE_NOT_FOUND,
        ]

    def test_structured_causes(self) -> None:
        """Each distinct requirement is a cause, with the rejections of the versions it
        allows; repeats of a requirement from the same requirer are one cause."""
        search = RecordedSearch(requirements=("a>=2",))
        search.add_project("a", "1.0", "2.0", "3.0")
        yanked = search.reject("a", "3.0", Reason.YANKED)
        too_new = search.reject("a", "2.0", Reason.REQUIRES_PYTHON, detail=">=3.13")
        search.reject("a", "1.0", Reason.YANKED)
        failure = explain(search, [make_info("a>=2"), make_info("a>=2")])
        (cause,) = failure.causes
        assert (cause.package, cause.requirement, cause.required_by) == ("a", "a>=2", None)
        assert cause.versions == [yanked, too_new]

    def test_fetch_errors_are_the_fetch_warnings(self) -> None:
        """Warnings about fetches the search skipped are the failure's fetch_errors."""
        search = RecordedSearch(requirements=("a",))
        search.add_missing("a")
        skipped = Diagnostic(
            code=Code.METADATA_UNAVAILABLE, severity=Severity.WARNING, message="skipped"
        )
        other = Diagnostic(code=Code.INVALID_METADATA, severity=Severity.WARNING, message="bad")
        search.records.warnings += [skipped, other]
        assert explain(search, [make_info("a")]).fetch_errors == [skipped]

    def test_later_index_hint_comes_first(self) -> None:
        """The hint that another index has the package precedes the hints of the derivation."""
        search = RecordedSearch("first", "later", requirements=("flask>=2",))
        search.add_project("flask", "1.0.0", index="first")
        search.publish("later", "flask", "3.0.0")
        failure = explain(search, [make_info("flask>=2")])
        assert [h.code for h in failure.hints] == [
            Code.FOUND_ON_OTHER_INDEX,
            Code.NO_MATCHING_VERSION,
        ]
