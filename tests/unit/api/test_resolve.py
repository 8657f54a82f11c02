"""``POST /resolve``: validation before queuing, defaults, deduplication, idempotency, limits."""

from __future__ import annotations

import json
from typing import Any, ClassVar, NamedTuple

import msgspec
import pytest
from redis.asyncio import Redis

from service.jobs.model import mark_cancelled, mark_succeeded
from service.jobs.store import RedisJobStore
from service.settings import AuthSettings, Limits, PolicySettings, Settings
from tests.support.api import Client, ClientFactory, count_queued
from tests.support.scripted import make_resolution

PROBLEM = "application/problem+json"
OK = {"requirements": ["flask>=2"]}


def body(**fields: Any) -> dict[str, Any]:
    return {"requirements": ["flask>=2"], **fields}


class Invalid(NamedTuple):
    """A bad body, the status and problem ``type`` slug it gets, the field it names."""

    name: str
    payload: Any
    status: int
    slug: str
    field: str | None


INVALID = [
    Invalid(*case)
    for case in [
        ("not-json", b"{", 400, "malformed-body", None),
        ("missing-requirements", {}, 422, "invalid-request", "requirements"),
        (
            "requirements-not-a-list",
            {"requirements": "flask"},
            422,
            "invalid-request",
            "requirements",
        ),
        (
            "requirement-not-a-string",
            {"requirements": [1]},
            422,
            "invalid-request",
            "requirements[0]",
        ),
        ("empty-requirements", {"requirements": []}, 422, "invalid-requirement", "requirements"),
        (
            "bad-pep508",
            {"requirements": ["flask", "click", "requests>>2"]},
            422,
            "invalid-requirement",
            "requirements[2]",
        ),
        (
            "bad-constraint",
            body(constraints=["urllib3<"]),
            422,
            "invalid-requirement",
            "constraints[0]",
        ),
        ("bad-override", body(overrides=["[x]"]), 422, "invalid-requirement", "overrides[0]"),
        (
            "direct-url",
            {"requirements": ["pkg @ https://example.invalid/pkg.whl"]},
            422,
            "invalid-requirement",
            "requirements[0]",
        ),
        ("unknown-field", body(colour="blue"), 422, "invalid-request", "colour"),
        (
            "unknown-nested-field",
            body(environment={"colour": "blue"}),
            422,
            "invalid-request",
            "environment.colour",
        ),
        ("bad-prerelease", body(prerelease="sometimes"), 422, "invalid-request", "prerelease"),
        ("bad-resolution", body(resolution="newest"), 422, "invalid-request", "resolution"),
        (
            "bad-index-strategy",
            body(index_strategy="any"),
            422,
            "invalid-request",
            "index_strategy",
        ),
        (
            "bad-python-version",
            body(environment={"python_version": "three"}),
            422,
            "unsupported-environment",
            "environment.python_version",
        ),
        (
            "bad-platform",
            body(environment={"platform": "amiga-os"}),
            422,
            "unsupported-environment",
            "environment.platform",
        ),
        (
            "bad-exclude-newer",
            body(exclude_newer="yesterday"),
            422,
            "invalid-request",
            "exclude_newer",
        ),
        (
            "naive-exclude-newer",
            body(exclude_newer="2024-01-01T00:00:00"),
            422,
            "invalid-request",
            "exclude_newer",
        ),
        (
            "unknown-index",
            body(indexes=[{"name": "pypi"}, {"name": "nope"}]),
            422,
            "unknown-index",
            "indexes[1].name",
        ),
        (
            "url-not-allowed",
            body(indexes=[{"url": "http://127.0.0.1:9/other/simple"}]),
            422,
            "index-url-not-allowed",
            "indexes[0].url",
        ),
        (
            "name-and-url",
            body(indexes=[{"name": "pypi", "url": "http://127.0.0.1:9/pypi/simple"}]),
            422,
            "invalid-index",
            "indexes[0]",
        ),
        (
            "bad-ignore-code",
            body(indexes=[{"name": "pypi", "ignore_error_codes": {"metadata": [503]}}]),
            422,
            "invalid-request",
            "indexes[0].ignore_error_codes.metadata[0]",
        ),
        (
            "too-many",
            {"requirements": [f"p{i}" for i in range(6)]},
            422,
            "too-many-requirements",
            "requirements",
        ),
        ("zero-deadline", body(deadline_seconds=0), 422, "invalid-request", "deadline_seconds"),
        ("bad-no-binary", body(no_binary=["not a name"]), 422, "invalid-request", "no_binary[0]"),
        ("body-too-large", {"requirements": ["x" * 3000]}, 413, "body-too-large", None),
        (
            "name-too-long",
            {"requirements": ["flask", "a" * 300 + ">=1"]},
            422,
            "invalid-requirement",
            "requirements[1]",
        ),
        (
            "no-binary-name-too-long",
            body(no_binary=["a" * 300]),
            422,
            "invalid-request",
            "no_binary[0]",
        ),
        (
            "too-many-indexes",
            body(indexes=[{"url": f"http://127.0.0.1:9/pypi/{n}"} for n in range(4)]),
            422,
            "too-many-indexes",
            "indexes",
        ),
    ]
]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Small limits so the limit cases are cheap."""
    return msgspec.structs.replace(
        settings,
        limits=Limits(
            max_requirements=5, max_body_bytes=2048, max_deadline_seconds=300, max_indexes=3
        ),
    )


class TestValidation:
    @pytest.mark.parametrize("case", INVALID, ids=[case.name for case in INVALID])
    async def test_bad_input_is_a_problem_naming_the_field_and_nothing_is_queued(
        self, api: Client, redis_client: Redis, case: Invalid
    ) -> None:
        """Each invalid body: its status, a problem+json with a stable type, the field named."""
        if isinstance(case.payload, bytes):
            response = await api.post(
                "/resolve", content=case.payload, headers={"Content-Type": "application/json"}
            )
        else:
            response = await api.post("/resolve", json=case.payload)
        assert response.status_code == case.status, response.text
        assert response.headers["content-type"] == PROBLEM
        problem = response.json()
        assert problem["type"] == f"urn:resolvd:problem:{case.slug}"
        assert problem["status"] == case.status
        assert problem["title"]
        assert problem["detail"]
        if case.field is not None:
            assert case.field in [error["field"] for error in problem["errors"]]
        assert await count_queued(redis_client) == (0, 0)

    @pytest.mark.parametrize(
        "content_type", ["text/plain", "application/x-www-form-urlencoded", "jsonish", None]
    )
    async def test_a_body_not_declared_json_is_415_naming_the_header(
        self, api: Client, redis_client: Redis, content_type: str | None
    ) -> None:
        """Even a body that parses as JSON: 415 ``unsupported-media-type``, ``Accept-Post``."""
        headers = {"Content-Type": content_type} if content_type else {}
        response = await api.post("/resolve", content=json.dumps(body()), headers=headers)
        assert response.status_code == 415, response.text
        assert response.headers["content-type"] == PROBLEM
        assert response.headers["accept-post"] == "application/json"
        problem = response.json()
        assert problem["type"] == "urn:resolvd:problem:unsupported-media-type"
        assert [error["field"] for error in problem["errors"]] == ["Content-Type"]
        assert await count_queued(redis_client) == (0, 0)

    @pytest.mark.parametrize(
        "content_type",
        [
            "application/json",
            "application/json; charset=utf-8",
            "Application/JSON",
            "application/vnd.x+json",
        ],
    )
    async def test_json_media_types_are_accepted(self, api: Client, content_type: str) -> None:
        """``application/json`` with parameters, in any case, and ``+json`` subtypes."""
        response = await api.post(
            "/resolve", content=json.dumps(body()), headers={"Content-Type": content_type}
        )
        assert response.status_code == 202, response.text

    async def test_packaging_explains_an_invalid_requirement(self, api: Client) -> None:
        """The message for a bad requirement is packaging's own reason."""
        response = await api.post("/resolve", json={"requirements": ["flask>>2"]})
        [error] = response.json()["errors"]
        assert error["field"] == "requirements[0]"
        assert "Expected" in error["message"]

    async def test_every_problem_is_reported_at_once(self, api: Client) -> None:
        """Several invalid fields: all are listed, and the type falls back to invalid-request."""
        response = await api.post(
            "/resolve",
            json={"requirements": ["ok", "bad>>"], "environment": {"platform": "amiga-os"}},
        )
        problem = response.json()
        assert problem["type"] == "urn:resolvd:problem:invalid-request"
        fields = [error["field"] for error in problem["errors"]]
        assert fields == ["requirements[1]", "environment.platform"]

    async def test_an_overlong_idempotency_key_is_refused(
        self, api: Client, redis_client: Redis
    ) -> None:
        """An Idempotency-Key over 255 characters is a 422 naming the header."""
        response = await api.post("/resolve", json=OK, headers={"Idempotency-Key": "k" * 256})
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "Idempotency-Key"
        assert await count_queued(redis_client) == (0, 0)


class TestAccepted:
    async def test_a_valid_request_is_queued(self, api: Client, redis_client: Redis) -> None:
        """202, the job document, ``Location: /jobs/{id}``, and one job in the queue."""
        response = await api.post("/resolve", json=OK)
        assert response.status_code == 202
        document = response.json()
        assert response.headers["location"] == f"/jobs/{document['id']}"
        assert document["status"] == "queued"
        assert document["result"] is None
        assert document["failure"] is None
        assert set(document["progress"]) == {
            "packages",
            "versions_tried",
            "rounds",
            "requests",
            "cache_hits",
        }
        assert document["created_at"].endswith("Z")
        assert await count_queued(redis_client) == (1, 1)

    async def test_defaults_are_applied_and_echoed(self, api: Client, settings: Settings) -> None:
        """An omitted environment takes the configured default, and the echo shows it."""
        document = (await api.post("/resolve", json=OK)).json()
        request = document["request"]
        assert request["environment"] == {
            "python_version": settings.environment.python_version,
            "platform": settings.environment.platform,
        }
        assert request["prerelease"] == "if-necessary-or-explicit"
        assert request["resolution"] == "highest"
        assert request["index_strategy"] == "first-index"
        assert request["deadline_seconds"] == settings.limits.default_deadline_seconds

    async def test_a_partial_environment_is_completed_from_defaults(
        self, api: Client, settings: Settings
    ) -> None:
        """Only ``python_version`` given: the platform is the configured default."""
        document = (
            await api.post("/resolve", json=body(environment={"python_version": "3.9"}))
        ).json()
        assert document["request"]["environment"] == {
            "python_version": "3.9",
            "platform": settings.environment.platform,
        }

    async def test_the_deadline_is_capped(self, api: Client) -> None:
        """``deadline_seconds`` above ``limits.max_deadline_seconds`` is lowered to it."""
        document = (await api.post("/resolve", json=body(deadline_seconds=10_000))).json()
        assert document["request"]["deadline_seconds"] == 300

    @pytest.mark.parametrize(
        ("given", "echoed"),
        [
            ("2024-03-01", "2024-03-01"),
            ("2024-03-01T12:00:00Z", "2024-03-01T12:00:00Z"),
            ("2024-03-01T14:00:00+02:00", "2024-03-01T12:00:00Z"),
        ],
    )
    async def test_exclude_newer_is_normalized_to_utc(
        self, api: Client, given: str, echoed: str
    ) -> None:
        """RFC 3339 timestamps are echoed in UTC; plain dates stay dates."""
        document = (await api.post("/resolve", json=body(exclude_newer=given))).json()
        assert document["request"]["exclude_newer"] == echoed

    async def test_an_allowed_index_url_is_accepted(
        self, make_client: ClientFactory, settings: Settings
    ) -> None:
        """A URL under ``policy.allowed_index_urls`` may be named directly."""
        allowed = msgspec.structs.replace(
            settings, policy=PolicySettings(allowed_index_urls=("http://127.0.0.1:9/ok/",))
        )
        async with make_client(settings=allowed) as api:
            response = await api.post(
                "/resolve",
                json=body(indexes=[{"url": "http://127.0.0.1:9/ok/simple"}, {"name": "pypi"}]),
            )
        assert response.status_code == 202
        assert response.json()["request"]["indexes"] == [
            {"url": "http://127.0.0.1:9/ok/simple"},
            {"name": "pypi"},
        ]


class TestDeduplication:
    async def test_an_identical_request_returns_the_queued_job(
        self, api: Client, redis_client: Redis
    ) -> None:
        """Same canonical body while the job is queued: that job, 202, nothing new queued."""
        first = await api.post("/resolve", json=OK)
        second = await api.post("/resolve", json=OK)
        assert second.status_code == 202
        assert second.json()["id"] == first.json()["id"]
        assert await count_queued(redis_client) == (1, 1)

    async def test_defaults_spelled_out_are_the_same_request(self, api: Client) -> None:
        """The canonical form has defaults applied, so spelling them out changes nothing."""
        first = (await api.post("/resolve", json=OK)).json()
        explicit = body(
            environment={"python_version": "3.12", "platform": "x86_64-manylinux_2_28"},
            prerelease="if-necessary-or-explicit",
            universal=False,
        )
        second = (await api.post("/resolve", json=explicit)).json()
        assert second["id"] == first["id"]

    async def test_a_finished_job_is_returned_with_200(
        self, api: Client, redis_client: Redis, settings: Settings
    ) -> None:
        """Same request after the job succeeded: the finished job, with 200."""
        first = (await api.post("/resolve", json=OK)).json()
        store = RedisJobStore(redis_client, result_ttl=settings.jobs.result_ttl_seconds)
        await store.update(first["id"], lambda r: mark_succeeded(r, make_resolution()))
        again = await api.post("/resolve", json=OK)
        assert again.status_code == 200
        assert again.json()["id"] == first["id"]
        assert again.json()["status"] == "succeeded"

    async def test_a_cancelled_job_is_not_reused(
        self, api: Client, redis_client: Redis, settings: Settings
    ) -> None:
        """Same request after a cancel: a new job."""
        first = (await api.post("/resolve", json=OK)).json()
        store = RedisJobStore(redis_client, result_ttl=settings.jobs.result_ttl_seconds)
        await store.update(first["id"], mark_cancelled)
        again = await api.post("/resolve", json=OK)
        assert again.status_code == 202
        assert again.json()["id"] != first["id"]

    async def test_a_different_request_is_a_different_job(self, api: Client) -> None:
        """Any difference in the canonical request makes a new job."""
        first = (await api.post("/resolve", json=OK)).json()
        second = (await api.post("/resolve", json=body(resolution="lowest"))).json()
        assert second["id"] != first["id"]


class TestIdempotencyKey:
    async def test_same_key_same_body_is_the_same_job(
        self, api: Client, redis_client: Redis, settings: Settings
    ) -> None:
        """A retried submission with its key gets the original job, even once cancelled."""
        headers = {"Idempotency-Key": "retry-1"}
        first = (await api.post("/resolve", json=OK, headers=headers)).json()
        store = RedisJobStore(redis_client, result_ttl=settings.jobs.result_ttl_seconds)
        await store.update(first["id"], mark_cancelled)
        again = await api.post("/resolve", json=OK, headers=headers)
        assert again.json()["id"] == first["id"]
        assert again.json()["status"] == "cancelled"

    async def test_same_key_different_body_is_refused(
        self, api: Client, redis_client: Redis
    ) -> None:
        """A key reused with another body: 422 idempotency-key-reused; nothing more queued."""
        headers = {"Idempotency-Key": "retry-2"}
        await api.post("/resolve", json=OK, headers=headers)
        response = await api.post("/resolve", json=body(resolution="lowest"), headers=headers)
        assert response.status_code == 422
        assert response.headers["content-type"] == PROBLEM
        problem = response.json()
        assert problem["type"] == "urn:resolvd:problem:idempotency-key-reused"
        assert problem["errors"][0]["field"] == "Idempotency-Key"
        assert await count_queued(redis_client) == (1, 1)


class TestRateLimit:
    async def test_submissions_beyond_the_limit_are_refused(
        self, make_client: ClientFactory, settings: Settings, redis_client: Redis
    ) -> None:
        """Past ``limits.jobs_per_client_per_minute``: 429 with Retry-After, nothing queued;
        every answer says where the client stands in RateLimit-* headers."""
        limited = msgspec.structs.replace(settings, limits=Limits(jobs_per_client_per_minute=2))
        async with make_client(settings=limited) as api:
            remaining = []
            for version in ("1", "2"):
                response = await api.post("/resolve", json={"requirements": [f"a=={version}"]})
                assert response.status_code == 202
                assert response.headers["ratelimit-limit"] == "2"
                remaining.append(response.headers["ratelimit-remaining"])
            response = await api.post("/resolve", json={"requirements": ["a==3"]})
        assert remaining == ["1", "0"]
        assert response.status_code == 429
        assert response.json()["type"] == "urn:resolvd:problem:rate-limited"
        assert 0 < int(response.headers["retry-after"]) <= 60
        assert response.headers["ratelimit-remaining"] == "0"
        assert response.headers["ratelimit-reset"] == response.headers["retry-after"]
        assert await count_queued(redis_client) == (2, 2)


class TestAuthentication:
    @pytest.fixture
    def auth_settings(self, settings: Settings) -> Settings:
        return msgspec.structs.replace(settings, auth=AuthSettings(tokens_env="TEST_TOKENS"))

    ENVIRON: ClassVar[dict[str, str]] = {"TEST_TOKENS": "alice:tok-a, bob:tok-b"}

    async def test_requests_without_a_valid_token_are_refused(
        self, make_client: ClientFactory, auth_settings: Settings, redis_client: Redis
    ) -> None:
        """No or unknown bearer token: 401 problem with WWW-Authenticate; nothing queued."""
        async with make_client(settings=auth_settings, environ=self.ENVIRON) as api:
            missing = await api.post("/resolve", json=OK)
            wrong = await api.post("/resolve", json=OK, headers={"Authorization": "Bearer nope"})
            listing = await api.get("/indexes")
        for response in (missing, wrong, listing):
            assert response.status_code == 401
            assert response.headers["content-type"] == PROBLEM
            assert response.headers["www-authenticate"].startswith("Bearer")
        assert await count_queued(redis_client) == (0, 0)

    async def test_health_needs_no_token(
        self, make_client: ClientFactory, auth_settings: Settings
    ) -> None:
        """Health checks stay open."""
        async with make_client(settings=auth_settings, environ=self.ENVIRON) as api:
            assert (await api.get("/healthz")).status_code == 200

    async def test_jobs_are_private_to_their_client(
        self, make_client: ClientFactory, auth_settings: Settings
    ) -> None:
        """Bob cannot see, cancel or deduplicate onto Alice's job."""
        alice = {"Authorization": "Bearer tok-a"}
        bob = {"Authorization": "Bearer tok-b"}
        async with make_client(settings=auth_settings, environ=self.ENVIRON) as api:
            job = (await api.post("/resolve", json=OK, headers=alice)).json()
            assert (await api.get(f"/jobs/{job['id']}", headers=alice)).status_code == 200
            assert (await api.get(f"/jobs/{job['id']}", headers=bob)).status_code == 404
            assert (await api.delete(f"/jobs/{job['id']}", headers=bob)).status_code == 404
            bobs = (await api.post("/resolve", json=OK, headers=bob)).json()
        assert bobs["id"] != job["id"]
