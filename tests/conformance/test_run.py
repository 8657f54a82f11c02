"""Specification of how the conformance runner talks to the service and judges outcomes."""

from __future__ import annotations

import json
from collections.abc import Mapping

import httpx
import pytest

from tests.conformance.run import Outcome, find_outcome, judge
from tests.conformance.scenarios import Expected, Scenario
from tests.indexserver import IndexSpec


def make_scenario(satisfiable: bool, packages: Mapping[str, str] | None = None) -> Scenario:
    return Scenario(
        name="s",
        category="c",
        description="",
        index=IndexSpec("s"),
        requirements=("a",),
        python_version="3.12",
        platform="x86_64-manylinux_2_28",
        prerelease=None,
        resolution=None,
        only_binary=(),
        no_binary=(),
        universal=False,
        requires_python=">=3.12",
        required_environments=(),
        disabled=False,
        expected=Expected(satisfiable=satisfiable, packages=packages or {}, explanation=None),
    )


UNSAT = "No solution found when resolving dependencies:\n  Because a was not found, ..."


class TestJudge:
    @pytest.mark.parametrize(
        ("scenario", "outcome", "match"),
        [
            (make_scenario(True), Outcome("succeeded", {"a": ("1",)}), True),
            (make_scenario(True, {"a": "1.0.0"}), Outcome("succeeded", {"a": ("1",)}), True),
            (make_scenario(True, {"a": "1.0.0"}), Outcome("succeeded", {"a": ("2",)}), False),
            (
                make_scenario(True, {"a": "1.0.0", "b": "1"}),
                Outcome("succeeded", {"a": ("1",)}),
                False,
            ),
            (
                make_scenario(True, {"a": "1"}),
                Outcome("succeeded", {"a": ("1",), "z": ("9",)}),
                True,
            ),
            (make_scenario(True), Outcome("failed", failure_kind="unsatisfiable"), False),
            (make_scenario(False), Outcome("failed", failure_kind="unsatisfiable"), True),
            (make_scenario(False), Outcome("failed", failure_kind="internal"), False),
            (make_scenario(False), Outcome("succeeded", {"a": ("1",)}), False),
            (make_scenario(False), Outcome("rejected", message="HTTP 422: bad"), False),
            (make_scenario(False), Outcome("timeout"), False),
            # A universal lock may hold a name twice; an expected version matches either entry.
            (make_scenario(True, {"a": "2"}), Outcome("succeeded", {"a": ("1", "2.0")}), True),
            (make_scenario(True, {"a": "3"}), Outcome("succeeded", {"a": ("1", "2")}), False),
        ],
    )
    def test_table(self, scenario: Scenario, outcome: Outcome, match: bool) -> None:
        """Success iff satisfiable, with expected pins at equal Versions; failures must be unsat."""
        assert judge(scenario, outcome).match is match

    def test_miss_reasons_name_what_differs(self) -> None:
        """A miss says what was expected and what came back, with the message's gist."""
        wrong = judge(make_scenario(True, {"a": "1.0.0"}), Outcome("succeeded", {"b": ("2",)}))
        assert wrong.reason == "expected satisfiable (a==1.0.0), got a==(absent)"
        failed = judge(
            make_scenario(True), Outcome("failed", failure_kind="unsatisfiable", message=UNSAT)
        )
        assert failed.reason == (
            "expected satisfiable, got failed [unsatisfiable]: "
            "No solution found when resolving dependencies: Because a was not found, ..."
        )
        succeeded = judge(make_scenario(False), Outcome("succeeded", {"a": ("1",), "b": ("2",)}))
        assert succeeded.reason == "expected unsatisfiable, got succeeded (a==1, b==2)"


class FakeService:
    """The job API of API.md in miniature: a job runs for two polls, then ends as told."""

    def __init__(self, final: Mapping[str, object], *, submit_status: int = 202) -> None:
        self.final = final
        self.submit_status = submit_status
        self.polls = 0
        self.bodies: list[object] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path == "/resolve":
            self.bodies.append(json.loads(request.content))
            if self.submit_status != 202:
                problem = {"title": "Unprocessable", "detail": "requirements[0]: invalid"}
                return httpx.Response(self.submit_status, json=problem)
            return httpx.Response(202, json={"id": "j1", "status": "queued"})
        if request.method == "GET" and request.url.path == "/jobs/j1":
            assert request.url.params["wait"] == "10"
            self.polls += 1
            if self.polls < 2:
                return httpx.Response(200, json={"id": "j1", "status": "running"})
            return httpx.Response(200, json={"id": "j1", **self.final})
        return httpx.Response(404)


def client_for(service: FakeService) -> httpx.Client:
    return httpx.Client(base_url="http://service", transport=httpx.MockTransport(service))


class TestFindOutcome:
    def test_polls_until_succeeded(self) -> None:
        """The runner posts the body, polls with wait=10 and reads canonical names and versions."""
        result = {"packages": [{"name": "My_Pkg", "version": "1.0"}]}
        service = FakeService({"status": "succeeded", "result": result, "failure": None})
        with client_for(service) as client:
            outcome = find_outcome(client, {"requirements": ["my-pkg"]}, timeout=5)
        assert service.bodies == [{"requirements": ["my-pkg"]}]
        assert (outcome.status, dict(outcome.packages)) == ("succeeded", {"my-pkg": ("1.0",)})

    def test_failed_job_keeps_kind_and_message(self) -> None:
        """A failed job's failure kind and message are kept for the report."""
        failure = {"kind": "unsatisfiable", "message": UNSAT}
        service = FakeService({"status": "failed", "result": None, "failure": failure})
        with client_for(service) as client:
            outcome = find_outcome(client, {"requirements": ["a"]}, timeout=5)
        assert (outcome.status, outcome.failure_kind, outcome.message) == (
            "failed",
            "unsatisfiable",
            UNSAT,
        )

    def test_rejected_request(self) -> None:
        """A refused submission is a 'rejected' outcome carrying the problem detail."""
        service = FakeService({}, submit_status=422)
        with client_for(service) as client:
            outcome = find_outcome(client, {"requirements": ["a"]}, timeout=5)
        assert outcome.status == "rejected"
        assert outcome.message == "HTTP 422: requirements[0]: invalid"

    def test_unreachable_service_is_an_error_outcome(self) -> None:
        """Transport failures become an 'error' outcome rather than an exception."""

        def refuse(request: httpx.Request) -> httpx.Response:
            raise httpx.ConnectError("refused", request=request)

        with httpx.Client(base_url="http://service", transport=httpx.MockTransport(refuse)) as c:
            outcome = find_outcome(c, {"requirements": ["a"]}, timeout=5)
        assert outcome.status == "error"
        assert outcome.message == "ConnectError: refused"
