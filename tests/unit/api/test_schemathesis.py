"""The running API against its own OpenAPI document, fuzzed by schemathesis.

Every operation in ``openapi/openapi.json`` (which ``test_openapi`` keeps equal to the app's)
gets schemathesis's explicit-example, coverage and fuzzing phases with all its default checks:
no 5xx, only documented statuses, documented content types, bodies matching their schemas,
schema-invalid input rejected, schema-valid input accepted, ``Allow`` on ``OPTIONS`` and 405.
The app is the real one (``create_app`` on the test Redis) served in-process over ASGI: without
a worker (jobs stay queued), once with authentication off and once with it on and no token
sent; and with a worker (the scripted resolver) for the job routes, pointed at jobs that exist.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import msgspec
import pytest
import schemathesis
from hypothesis import HealthCheck
from litestar import Litestar
from litestar.testing import TestClient

from service.api import create_app
from service.settings import AuthSettings, Limits, Settings
from tests.fuzz import fuzz_settings
from tests.support.scripted import ScriptedResolver

OPENAPI_FILE = Path(__file__).parents[3] / "openapi" / "openapi.json"
TOKENS_ENV = "RESOLVD_FUZZ_TOKENS"

# Where a check's premise does not hold for one operation, the check is narrowed there, never
# disabled: each entry says why.
CONFIG = schemathesis.Config.from_str(
    """
# The body schema cannot say "valid PEP 508", "a configured index name" or "a platform in uv's
# vocabulary": validation answers such schema-valid bodies with a 422 problem document (whose
# shape response_schema_conformance still checks). Anything else must still be accepted.
[[operations]]
include-operation-id = "createResolveJob"
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "422", "429"]

# 503 is readiness's documented answer when no worker beat recently, and this app has none.
[[operations]]
include-operation-id = "getReadiness"
checks.not_a_server_error.expected-statuses = ["2xx", "3xx", "4xx", "503"]

"""
)
schema = schemathesis.openapi.from_path(OPENAPI_FILE, config=CONFIG)
# Without CONFIG, whose [[operations]] entries make schemathesis 4.32 ignore include().
job_routes = schemathesis.openapi.from_path(OPENAPI_FILE).include(path_regex=r"^/jobs/")


@pytest.fixture(params=["open", "token-required"])
def fuzz_app(request: pytest.FixtureRequest, settings: Settings) -> Litestar:
    """The API on the test Redis; rate limiting raised out of the fuzzer's way."""
    fuzz = msgspec.structs.replace(settings, limits=Limits(jobs_per_client_per_minute=1_000_000))
    environ: dict[str, str] = {}
    if request.param == "token-required":
        fuzz = msgspec.structs.replace(fuzz, auth=AuthSettings(tokens_env=TOKENS_ENV))
        environ[TOKENS_ENV] = "fuzzer:not-sent-by-the-fuzzer"
    return create_app(fuzz, backend="redis", in_process_worker=False, environ=environ)


@schema.parametrize()
# One app serves every example of an operation, as a server serves every request: sharing the
# function-scoped fixture across examples is the point, not an accident.
@fuzz_settings(25, suppress=(HealthCheck.function_scoped_fixture,))
def test_api_conforms_to_its_openapi_document(case: schemathesis.Case, fuzz_app: Litestar) -> None:
    """No input makes the API crash, answer outside its document, or accept what it forbids."""
    case.call_and_validate(app=fuzz_app)


@pytest.fixture
def finished_jobs(settings: Settings, resolver: ScriptedResolver) -> tuple[Litestar, list[str]]:
    """An app with a worker, and the ids of a succeeded and a failed job it ran."""
    app = create_app(settings, backend="redis", in_process_worker=True, resolver=resolver)
    with TestClient(app) as client:
        ids = [
            client.post("/resolve", json={"requirements": [script]}).json()["id"]
            for script in ("ok", "unsat")
        ]
        statuses = [
            client.get(f"/jobs/{job_id}", params={"wait": 10}).json()["status"] for job_id in ids
        ]
    assert statuses == ["succeeded", "failed"]
    return app, ids


@job_routes.parametrize()
@fuzz_settings(25, suppress=(HealthCheck.function_scoped_fixture,))
def test_job_routes_conform_on_jobs_that_exist(
    case: schemathesis.Case, finished_jobs: tuple[Litestar, list[str]]
) -> None:
    """Reading, streaming, cancelling and exporting real jobs answers as documented."""
    app, ids = finished_jobs
    case.path_parameters = {**(case.path_parameters or {}), "job_id": next(_JOB_PICKS)(ids)}
    case.call_and_validate(app=app)


# Alternate between the jobs, example after example.
_JOB_PICKS = itertools.cycle([lambda ids: ids[0], lambda ids: ids[1]])
