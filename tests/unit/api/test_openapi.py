"""The OpenAPI document: committed, complete, stable."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from service.api import create_app
from service.cli import main
from service.diagnostics.model import Code

OPENAPI_FILE = Path(__file__).parents[3] / "openapi" / "openapi.json"


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    # Through JSON, as the file holds it (tuples become lists).
    document: dict[str, Any] = json.loads(json.dumps(create_app().openapi_schema.to_schema()))
    return document


class TestOpenAPI:
    def test_the_committed_document_is_current(self, schema: dict[str, Any]) -> None:
        """``openapi/openapi.json`` equals the app's schema (regenerate: resolvd openapi)."""
        assert json.loads(OPENAPI_FILE.read_text()) == schema

    def test_the_command_prints_the_committed_document(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """``resolvd openapi`` output is byte-for-byte the file."""
        assert main(["openapi"]) == 0
        assert capsys.readouterr().out == OPENAPI_FILE.read_text()

    def test_every_diagnostic_code_is_enumerated(self, schema: dict[str, Any]) -> None:
        """Dashboards group by ``code``: the schema lists every one."""
        assert set(schema["components"]["schemas"]["Code"]["enum"]) == {code.value for code in Code}

    def test_operations_have_explicit_unique_ids(self, schema: dict[str, Any]) -> None:
        """Every operation has a hand-chosen ``operationId``."""
        ids = [
            operation["operationId"]
            for path in schema["paths"].values()
            for operation in path.values()
        ]
        assert sorted(ids) == sorted(
            [
                "createResolveJob",
                "getJob",
                "streamJobEvents",
                "cancelJob",
                "getJobLock",
                "getJobDiff",
                "listIndexes",
                "listBlockedVersions",
                "getDiagnosticsSummary",
                "listRecentJobs",
                "getHealth",
                "getReadiness",
                "getMetrics",
            ]
        )

    def test_errors_are_documented_as_problem_details(self, schema: dict[str, Any]) -> None:
        """Every 4xx/5xx response of the API is an ``application/problem+json`` Problem.

        But readiness's 503: it is the readiness document itself (store, workers), not an error.
        """
        for path, operations in schema["paths"].items():
            for method, operation in operations.items():
                for status, response in operation["responses"].items():
                    if int(status) >= 400 and operation["operationId"] != "getReadiness":
                        assert list(response["content"]) == ["application/problem+json"], (
                            path,
                            method,
                            status,
                        )
