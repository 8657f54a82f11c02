"""``GET /indexes/{name}/blocked``: the mirror block catalogue as the API serves it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import msgspec
import pytest
from packaging.requirements import Requirement

from service.diagnostics.model import Code, Diagnostic, Severity
from service.index.models import Index
from service.resolution import Resolution, ResolutionFailed, ResolveRequest
from service.resolution.result import Failure
from service.settings import AuthSettings, Limits, Settings
from tests.support.api import Client, ClientFactory
from tests.support.scripted import ScriptedResolver, make_resolution

PROBLEM = "application/problem+json"


def refusal(package: str, version: str, severity: Severity) -> Diagnostic:
    return Diagnostic(
        code=Code.METADATA_UNAVAILABLE,
        severity=severity,
        message=f"Metadata for {package}=={version} could not be fetched from index 'corp' (403).",
        package=package,
        version=version,
        index="corp",
        status=403,
        data={"setting": "ignore_error_codes.metadata"},
    )


class RefusingResolver(ScriptedResolver):
    """``blocked==V``: succeeds with blocked 1.0 after corp refused V under its policy;
    ``refused==V``: fails on corp's refusal of V. Anything else runs the usual scripts."""

    async def resolve(
        self, request: ResolveRequest, *, indexes: Sequence[Index], **options: Any
    ) -> Resolution:
        requirement = Requirement(request.requirements[0])
        version = next(iter(requirement.specifier)).version if requirement.specifier else "2.0"
        if requirement.name == "blocked":
            resolution = make_resolution("blocked")
            return msgspec.structs.replace(
                resolution, warnings=[refusal("blocked", version, Severity.WARNING)]
            )
        if requirement.name == "refused":
            fatal = refusal("refused", version, Severity.ERROR)
            failure = Failure(
                kind="metadata_error", message=fatal.message, hints=[fatal], fetch_errors=[fatal]
            )
            raise ResolutionFailed(failure)
        return await super().resolve(request, indexes=indexes, **options)


@pytest.fixture
def resolver() -> ScriptedResolver:
    return RefusingResolver()


def listed(body: dict[str, Any]) -> list[str]:
    return [entry["version"] for entry in body["versions"]]


async def catalogue(
    api: Client, ready: Callable[[dict[str, Any]], bool], **kwargs: Any
) -> dict[str, Any]:
    """corp's catalogue once ``ready`` says so (a job is recorded just after its terminal
    write, so it can read as finished a moment before it is counted)."""
    until = time.monotonic() + 5
    while True:
        response = await api.get("/indexes/corp/blocked", **kwargs)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        if ready(body) or time.monotonic() > until:
            return body
        await asyncio.sleep(0.05)


async def finish(
    api: Client, requirement: str, status: str, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    """Submit ``requirement`` and wait until its job has ``status``."""
    response = await api.post("/resolve", json={"requirements": [requirement]}, headers=headers)
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    until = time.monotonic() + 5
    while time.monotonic() < until:
        document: dict[str, Any] = (await api.get(f"/jobs/{job_id}", headers=headers)).json()
        if document["status"] == status:
            return document
        await asyncio.sleep(0.05)
    raise AssertionError(f"job {job_id} never became {status}")


class TestCatalogue:
    async def test_a_policy_skip_is_listed_as_forced(self, api_with_worker: Client) -> None:
        """A job that succeeded past corp's 403 lists the version, forced, with its day."""
        await finish(api_with_worker, "blocked==2.0", "succeeded")
        body = await catalogue(api_with_worker, lambda b: b["total"] >= 1)
        [entry] = body["versions"]
        assert {k: entry[k] for k in ("package", "version", "status", "jobs", "forced")} == {
            "package": "blocked",
            "version": "2.0",
            "status": 403,
            "jobs": 1,
            "forced": 1,
        }
        assert entry["failed"] == 0
        assert entry["first_seen"] == entry["last_seen"]
        # By default the whole retention: one count per day, today's last.
        assert body["retention_days"] == 30
        assert len(body["days"]) == len(entry["per_day"]) == 31
        assert entry["per_day"][-1] == 1 and sum(entry["per_day"]) == 1
        assert body["policy_impact"] == [{"status": 403, "jobs": 1}]

    async def test_a_failure_on_a_refusal_counts_as_failed(self, api_with_worker: Client) -> None:
        """A job that failed on the 403 is affected and failed, and no policy helped it."""
        await finish(api_with_worker, "refused==3.0", "failed")
        body = await catalogue(api_with_worker, lambda b: b["total"] >= 1)
        [entry] = body["versions"]
        assert (entry["package"], entry["jobs"], entry["forced"], entry["failed"]) == (
            "refused",
            1,
            0,
            1,
        )
        assert body["policy_impact"] == []

    async def test_since_leaves_out_what_was_last_seen_before(
        self, api_with_worker: Client
    ) -> None:
        """Only entries seen since ``since`` are listed; pypi refused nothing."""
        await finish(api_with_worker, "blocked==2.0", "succeeded")
        assert (await catalogue(api_with_worker, lambda b: b["total"] >= 1))["total"] == 1
        later = await api_with_worker.get(
            "/indexes/corp/blocked", params={"since": "2999-01-01T00:00:00Z"}
        )
        assert (later.json()["total"], later.json()["versions"]) == (0, [])
        pypi = (await api_with_worker.get("/indexes/pypi/blocked")).json()
        assert (pypi["index"], pypi["total"]) == ("pypi", 0)

    async def test_limit_and_the_configured_bound(
        self, make_client: ClientFactory, settings: Settings
    ) -> None:
        """``limits.blocked_versions_per_index`` caps what is kept; ``limit`` what is listed."""
        bounded = msgspec.structs.replace(settings, limits=Limits(blocked_versions_per_index=2))
        async with make_client(settings=bounded, worker=True) as api:
            for version in ("1.1", "1.2", "1.3"):
                await finish(api, f"blocked=={version}", "succeeded")
            body = await catalogue(api, lambda b: "1.3" in listed(b))
            assert body["max_versions"] == 2
            assert listed(body) == ["1.3", "1.2"]
            assert body["total"] == 2
            one = (await api.get("/indexes/corp/blocked", params={"limit": 1})).json()
            assert (listed(one), one["total"]) == (["1.3"], 2)

    async def test_an_unknown_index_is_a_404(self, api: Client) -> None:
        """Only configured indexes have a catalogue."""
        response = await api.get("/indexes/nowhere/blocked")
        assert response.status_code == 404
        assert response.headers["content-type"] == PROBLEM
        assert "nowhere" in response.json()["detail"]

    @pytest.mark.parametrize(
        ("name", "value"),
        [
            ("since", "yesterday"),
            ("since", "2026-11-25"),
            ("since", "2026-13-01T00:00:00Z"),
            ("limit", "0"),
            ("limit", "1001"),
        ],
    )
    async def test_bad_parameters_are_400s_naming_them(
        self, api: Client, name: str, value: str
    ) -> None:
        """A malformed ``since`` or an out-of-range ``limit`` is a problem naming the field."""
        response = await api.get("/indexes/corp/blocked", params={name: value})
        assert response.status_code == 400
        assert response.headers["content-type"] == PROBLEM
        assert name in response.text


class TestAuthentication:
    ENVIRON: ClassVar[dict[str, str]] = {"TEST_TOKENS": "alice:tok-a, bob:tok-b"}
    ALICE: ClassVar[dict[str, str]] = {"Authorization": "Bearer tok-a"}
    BOB: ClassVar[dict[str, str]] = {"Authorization": "Bearer tok-b"}

    async def test_counts_are_fleet_wide_and_jobs_stay_private(
        self, make_client: ClientFactory, settings: Settings
    ) -> None:
        """Bob reads the refusal Alice's job met, with no job id and no client in it; without
        a token the catalogue is a 401, and Alice's job is still a 404 to Bob."""
        auth = msgspec.structs.replace(settings, auth=AuthSettings(tokens_env="TEST_TOKENS"))
        async with make_client(settings=auth, environ=self.ENVIRON, worker=True) as api:
            alices = await finish(api, "blocked==2.0", "succeeded", headers=self.ALICE)
            anonymous = await api.get("/indexes/corp/blocked")
            assert anonymous.status_code == 401
            assert anonymous.headers["www-authenticate"].startswith("Bearer")
            body = await catalogue(api, lambda b: b["total"] >= 1, headers=self.BOB)
            assert [(v["version"], v["jobs"]) for v in body["versions"]] == [("2.0", 1)]
            response = await api.get("/indexes/corp/blocked", headers=self.BOB)
            assert alices["id"] not in response.text
            assert "alice" not in response.text
            assert (await api.get(f"/jobs/{alices['id']}", headers=self.BOB)).status_code == 404
            lock = await api.get(f"/jobs/{alices['id']}/lock", headers=self.BOB)
            assert lock.status_code == 404
