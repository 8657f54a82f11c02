"""The dashboard page at ``/``, the job page at ``/jobs/{id}/page``, and the data they read:
``/diagnostics/recent`` and the series."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any, ClassVar

import msgspec
import pytest
from redis.asyncio import Redis

from service.api import create_app
from service.jobs.model import GAVE_UP_MESSAGE
from service.settings import AuthSettings, Settings
from tests.support.api import Client, ClientFactory
from tests.support.scripted import ScriptedResolver
from tests.unit.api.test_jobs import give_up, submit, wait_until

PROBLEM = "application/problem+json"
ASSETS = {
    "static/common.js": "text/javascript",
    "static/dashboard.js": "text/javascript",
    "static/job.js": "text/javascript",
    "static/dashboard.css": "text/css",
    "static/favicon.svg": "image/svg+xml",
}
# The one absolute URL the script may hold: the SVG namespace, an identifier it never fetches.
SVG_NAMESPACE = "http://www.w3.org/2000/svg"


def csp_directives(header: str) -> dict[str, list[str]]:
    directives = {}
    for part in header.split(";"):
        name, *sources = part.split()
        directives[name] = sources
    return directives


async def recent(api: Client, count: int, **kwargs: Any) -> list[dict[str, Any]]:
    """The caller's recent jobs once ``count`` are listed (the runner records just after the
    job's terminal write, so a job can read as finished a moment before it is listed)."""
    until = time.monotonic() + 5
    while True:
        response = await api.get("/diagnostics/recent", **kwargs)
        assert response.status_code == 200, response.text
        jobs: list[dict[str, Any]] = response.json()["jobs"]
        if len(jobs) >= count or time.monotonic() > until:
            return jobs
        await asyncio.sleep(0.05)


class TestPage:
    async def test_the_page_is_html_under_a_same_origin_policy(self, api: Client) -> None:
        """``/`` is HTML whose Content-Security-Policy allows nothing but this origin."""
        response = await api.get("/")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/html")
        assert response.headers["x-content-type-options"] == "nosniff"
        directives = csp_directives(response.headers["content-security-policy"])
        assert directives["default-src"] == ["'none'"]
        for name in ("script-src", "style-src", "connect-src", "img-src"):
            assert directives[name] == ["'self'"], name
        assert directives["frame-ancestors"] == ["'none'"]
        assert '<script src="static/dashboard.js"' in response.text
        assert '<link rel="stylesheet" href="static/dashboard.css">' in response.text

    async def test_nothing_is_loaded_from_elsewhere(self, api: Client) -> None:
        """Neither the page nor its files name another host: no CDN, no fonts, no scripts."""
        for path in ("/", "/jobs/any/page", *(f"/{asset}" for asset in ASSETS)):
            text = (await api.get(path)).text
            urls = set(re.findall(r"(?:https?:)?//[\w.-]+[^\s\"'`)]*", text))
            assert urls <= {SVG_NAMESPACE}, (path, urls)
            assert "@import" not in text and "<iframe" not in text

    @pytest.mark.parametrize(("path", "media_type"), ASSETS.items())
    async def test_the_page_files_are_served_with_their_types(
        self, api: Client, path: str, media_type: str
    ) -> None:
        """The script and the style sheet come with their media types and the same policy."""
        response = await api.get(f"/{path}")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith(media_type)
        assert "default-src 'none'" in response.headers["content-security-policy"]
        assert response.content

    @pytest.mark.parametrize("name", ["nope.js", "dashboard.html", "..%2Fapp.py"])
    async def test_no_other_file_is_served(self, api: Client, name: str) -> None:
        """Only the page's own files are served from ``/static``; anything else is a 404."""
        response = await api.get(f"/static/{name}")
        assert response.status_code == 404
        assert response.headers["content-type"] == PROBLEM

    def test_the_page_is_not_part_of_the_api_document(self) -> None:
        """``/``, the job page and ``/static/...`` are for browsers: the OpenAPI document
        leaves them out."""
        paths = create_app().openapi_schema.to_schema()["paths"]
        assert "/" not in paths
        assert not [path for path in paths if path.startswith("/static")]
        assert not [path for path in paths if path.endswith("/page")]
        assert "/diagnostics/recent" in paths
        assert "/indexes/{name}/blocked" in paths


class TestJobPage:
    async def test_the_job_page_is_one_shell_for_every_id(self, api: Client) -> None:
        """``/jobs/{id}/page`` is the same HTML for any id, known or not, under the page's
        policy: it carries no job data and says nothing about whether the job exists."""
        submitted = await submit(api, "ok")
        known = await api.get(f"/jobs/{submitted['id']}/page")
        unknown = await api.get("/jobs/no-such-job/page")
        assert known.status_code == unknown.status_code == 200
        assert known.content == unknown.content
        assert known.headers["content-type"].startswith("text/html")
        assert csp_directives(known.headers["content-security-policy"])["script-src"] == ["'self'"]
        assert submitted["id"] not in known.text
        # Its files are found from two levels down, whatever prefix the app is served under.
        assert '<script src="../../static/common.js" defer></script>' in known.text
        assert '<script src="../../static/job.js" defer></script>' in known.text

    async def test_the_dashboard_links_each_job_to_its_page(self, api: Client) -> None:
        """The recent-jobs table links to the job view, not to the raw document."""
        script = (await api.get("/static/dashboard.js")).text
        assert "jobs/${encodeURIComponent(job.id)}/page" in script


class TestAuthentication:
    ENVIRON: ClassVar[dict[str, str]] = {"TEST_TOKENS": "alice:tok-a, bob:tok-b"}
    ALICE: ClassVar[dict[str, str]] = {"Authorization": "Bearer tok-a"}
    BOB: ClassVar[dict[str, str]] = {"Authorization": "Bearer tok-b"}

    @pytest.fixture
    def auth_settings(self, settings: Settings) -> Settings:
        return msgspec.structs.replace(settings, auth=AuthSettings(tokens_env="TEST_TOKENS"))

    async def test_the_page_needs_no_token_but_its_data_does(
        self, make_client: ClientFactory, auth_settings: Settings
    ) -> None:
        """The shell carries no data and loads without a token; the figures answer 401."""
        async with make_client(settings=auth_settings, environ=self.ENVIRON) as api:
            assert (await api.get("/")).status_code == 200
            assert (await api.get("/static/dashboard.js")).status_code == 200
            for path in ("/diagnostics/recent", "/diagnostics/summary"):
                response = await api.get(path)
                assert response.status_code == 401, path
                assert response.headers["www-authenticate"].startswith("Bearer")

    async def test_each_client_sees_only_its_own_recent_jobs(
        self, make_client: ClientFactory, auth_settings: Settings
    ) -> None:
        """Alice's list holds Alice's job and Bob's holds Bob's."""
        async with make_client(settings=auth_settings, environ=self.ENVIRON, worker=True) as api:
            alices = await api.post("/resolve", json={"requirements": ["ok"]}, headers=self.ALICE)
            bobs = await api.post("/resolve", json={"requirements": ["unsat"]}, headers=self.BOB)
            alice_jobs = await recent(api, 1, headers=self.ALICE)
            bob_jobs = await recent(api, 1, headers=self.BOB)
        assert [job["id"] for job in alice_jobs] == [alices.json()["id"]]
        assert [job["id"] for job in bob_jobs] == [bobs.json()["id"]]
        assert bob_jobs[0]["failure_kind"] == "unsatisfiable"


class TestRecentJobs:
    async def test_finished_jobs_are_listed_newest_first(self, api_with_worker: Client) -> None:
        """Each finished job is listed once with its status, duration, failure kind and roots."""
        api = api_with_worker
        ok = await submit(api, "ok")
        await wait_until(api, ok["id"], "succeeded")
        unsat = await submit(api, "unsat")
        await wait_until(api, unsat["id"], "failed")
        jobs = await recent(api, 2)
        assert [(job["id"], job["status"], job["failure_kind"]) for job in jobs] == [
            (unsat["id"], "failed", "unsatisfiable"),
            (ok["id"], "succeeded", None),
        ]
        assert jobs[1]["requirements"] == ["ok"]
        assert all(isinstance(job["duration_ms"], int) for job in jobs)
        assert [job["id"] for job in await recent(api, 1, params={"limit": 1})] == [unsat["id"]]

    async def test_a_queued_job_cancelled_twice_counts_once(self, api: Client) -> None:
        """The cancel that ended the job records it; a second DELETE changes nothing."""
        submitted = await submit(api, "ok")
        assert (await api.delete(f"/jobs/{submitted['id']}")).status_code == 200
        assert (await api.delete(f"/jobs/{submitted['id']}")).status_code == 200
        [job] = await recent(api, 1)
        assert (job["id"], job["status"], job["failure_kind"]) == (
            submitted["id"],
            "cancelled",
            "cancelled",
        )
        assert job["duration_ms"] is None
        summary = (await api.get("/diagnostics/summary")).json()
        assert summary["jobs"] == {"cancelled": 1}
        assert summary["series"][-1]["failures_by_code"] == {"cancelled": 1}
        assert sum(sum(hour["jobs"].values()) for hour in summary["series"]) == 1

    async def test_a_running_job_cancelled_counts_once(
        self, api_with_worker: Client, resolver: ScriptedResolver
    ) -> None:
        """The worker that notices the cancel does not count the job a second time."""
        api = api_with_worker
        submitted = await submit(api, "slow")
        await wait_until(api, submitted["id"], "running")
        await api.delete(f"/jobs/{submitted['id']}")
        until = time.monotonic() + 5
        while not resolver.stops[0].is_set():
            assert time.monotonic() < until, "the resolver was never stopped"
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.5)  # time for the runner to write (and count) anything it would
        [job] = await recent(api, 1)
        assert (job["status"], job["failure_kind"]) == ("cancelled", "cancelled")
        assert isinstance(job["duration_ms"], int)
        assert (await api.get("/diagnostics/summary")).json()["jobs"] == {"cancelled": 1}

    async def test_a_repaired_job_is_listed_as_failed(
        self, api: Client, redis_client: Redis
    ) -> None:
        """A job the queue gave up on is listed once, when a read fails it."""
        submitted = await submit(api, "ok")
        await give_up(redis_client, submitted["id"])
        assert (await api.get(f"/jobs/{submitted['id']}")).json()["status"] == "failed"
        assert (await api.get(f"/jobs/{submitted['id']}")).json()["status"] == "failed"
        [job] = await recent(api, 1)
        assert (job["status"], job["failure_kind"]) == ("failed", "internal")
        document = (await api.get(f"/jobs/{submitted['id']}")).json()
        assert document["failure"]["message"] == GAVE_UP_MESSAGE.format(tries=1)
        assert (await api.get("/diagnostics/summary")).json()["jobs"] == {"failed": 1}

    @pytest.mark.parametrize("limit", ["0", "101", "many"])
    async def test_a_limit_out_of_range_is_refused(self, api: Client, limit: str) -> None:
        """``limit`` is 1 to 100; anything else is a 400 problem naming it."""
        response = await api.get("/diagnostics/recent", params={"limit": limit})
        assert response.status_code == 400
        assert response.headers["content-type"] == PROBLEM
        assert "limit" in response.text
