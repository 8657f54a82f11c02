"""``POST /resolve``: validation before queuing, defaults, deduplication, idempotency, limits."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, NamedTuple

import msgspec
import pytest
from redis.asyncio import Redis

from service.api.controllers.resolve import fingerprint
from service.api.problems import InvalidRequest
from service.api.schemas import ResolveBody
from service.api.validation import to_resolve_request
from service.jobs.model import mark_cancelled, mark_succeeded
from service.jobs.store import RedisJobStore
from service.settings import AuthSettings, Limits, PolicySettings, Settings
from tests.support.api import Client, ClientFactory, count_queued
from tests.support.scripted import make_resolution

PROBLEM = "application/problem+json"
OK = {"requirements": ["flask>=2"]}
PYPROJECT = """
[project]
name = "app"
requires-python = ">=3.11"
dependencies = ["flask>=2"]

[dependency-groups]
lint = ["ruff"]
dev = [{include-group = "lint"}, "pytest", "mypy", "coverage", "hypothesis"]
"""
FILES = "http://127.0.0.1:9/files/ab/cd"  # the configured indexes' origin
FLASK_WHEEL = f"{FILES}/flask-3.1.0-py3-none-any.whl"
CYCLE = '[dependency-groups]\na = [{include-group = "b"}]\nb = [{include-group = "a"}]\n'


def body(**fields: Any) -> dict[str, Any]:
    return {"requirements": ["flask>=2"], **fields}


class Invalid(NamedTuple):
    """A bad body, the status and problem ``type`` slug it gets, the field it names."""

    name: str
    payload: Any
    status: int
    slug: str
    field: str | None


BAD = "invalid-request"
INVALID = [
    Invalid(*case)
    for case in [
        ("not-json", b"{", 400, "malformed-body", None),
        ("missing-requirements", {}, 422, "invalid-requirement", "requirements"),
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
        # The round-2 fields: (name, fields, problem slug, field named).
        *(
            (name, body(**fields), 422, slug, field)
            for name, fields, slug, field in [
                ("cutoff-months", {"exclude_newer": "3 months"}, BAD, "exclude_newer"),
                (
                    "package-cutoff-true",
                    {"exclude_newer_package": {"flask": True}},
                    BAD,
                    "exclude_newer_package.flask",
                ),
                (
                    "package-cutoff-unreadable",
                    {"exclude_newer_package": {"click": "soon"}},
                    BAD,
                    "exclude_newer_package.click",
                ),
                (
                    "package-cutoff-name",
                    {"exclude_newer_package": {"not a name": False}},
                    BAD,
                    "exclude_newer_package.not a name",
                ),
                # msgspec's word for "some value of the mapping":
                (
                    "package-cutoff-number",
                    {"exclude_newer_package": {"flask": 7}},
                    BAD,
                    "exclude_newer_package[...]",
                ),
                (
                    "unknown-source-index",
                    {"sources": {"Flask": "nope"}},
                    "unknown-index",
                    "sources.Flask",
                ),
                ("source-name", {"sources": {"not a name": "pypi"}}, BAD, "sources.not a name"),
                (
                    "source-twice",
                    {"sources": {"flask": "pypi", "Flask": "pypi"}},
                    BAD,
                    "sources.Flask",
                ),
                (
                    "bad-index-format",
                    {"indexes": [{"url": "http://127.0.0.1:9/ok/", "format": "wheelhouse"}]},
                    BAD,
                    "indexes[0].format",
                ),
                (
                    "format-of-configured-index",
                    {"indexes": [{"name": "pypi", "format": "flat"}]},
                    "invalid-index",
                    "indexes[0].format",
                ),
            ]
        ),
        ("bad-no-binary", body(no_binary=["not a name"]), 422, "invalid-request", "no_binary[0]"),
        ("body-too-large", {"requirements": ["x" * 3000]}, 413, "body-too-large", None),
        (
            "pyproject-not-toml",
            {"pyproject": {"content": "[project"}},
            422,
            "invalid-pyproject",
            "pyproject.content",
        ),
        (
            "pyproject-without-content",
            {"pyproject": {"extras": ["x"]}},
            422,
            "invalid-request",
            "pyproject.content",
        ),
        (
            "pyproject-unknown-extra",
            {"pyproject": {"content": PYPROJECT, "extras": ["gpu"]}},
            422,
            "invalid-pyproject",
            "pyproject.extras[0]",
        ),
        (
            "pyproject-unknown-group",
            {"pyproject": {"content": PYPROJECT, "groups": ["dev", "docs"]}},
            422,
            "invalid-pyproject",
            "pyproject.groups[1]",
        ),
        (
            "pyproject-group-cycle",
            {"pyproject": {"content": CYCLE, "groups": ["a"]}},
            422,
            "invalid-pyproject",
            "pyproject.groups[0]",
        ),
        (
            "pyproject-selects-nothing",
            {"pyproject": {"content": "[project]\nname = 'x'\n"}},
            422,
            "invalid-pyproject",
            "pyproject",
        ),
        (
            "pyproject-too-many",
            body(pyproject={"content": PYPROJECT, "groups": ["dev"]}, constraints=["a"] * 0),
            422,
            "too-many-requirements",
            "pyproject",
        ),
        (
            "dependency-metadata-bad-name",
            body(dependency_metadata=[{"name": "not a name"}]),
            422,
            "invalid-request",
            "dependency_metadata[0].name",
        ),
        (
            "dependency-metadata-bad-version",
            body(dependency_metadata=[{"name": "a", "version": "one"}]),
            422,
            "invalid-request",
            "dependency_metadata[0].version",
        ),
        (
            "dependency-metadata-bad-requires-dist",
            body(dependency_metadata=[{"name": "a", "requires_dist": ["b", "c >>"]}]),
            422,
            "invalid-requirement",
            "dependency_metadata[0].requires_dist[1]",
        ),
        (
            "dependency-metadata-bad-requires-python",
            body(dependency_metadata=[{"name": "a", "requires_python": "3.8+"}]),
            422,
            "invalid-request",
            "dependency_metadata[0].requires_python",
        ),
        (
            "dependency-metadata-twice",
            body(
                dependency_metadata=[{"name": "A", "version": "1"}, {"name": "a", "version": "1.0"}]
            ),
            422,
            "invalid-request",
            "dependency_metadata[1]",
        ),
        ("no-deps-not-bool", body(no_deps="yes"), 422, "invalid-request", "no_deps"),
        *(
            (
                f"direct-url-{name}",
                {"requirements": ["ok", line]},
                422,
                "invalid-requirement",
                "requirements[1]",
            )
            for name, line in [
                ("vcs", "flask @ git+https://github.com/pallets/flask"),
                ("local", "flask @ file:///srv/flask-3.1.0-py3-none-any.whl"),
                ("ftp", "flask @ ftp://files.pythonhosted.org/flask-3.1.0-py3-none-any.whl"),
                ("not-allowed", "flask @ https://evil.example/flask-3.1.0-py3-none-any.whl"),
                ("other-project", f"flask @ {FILES}/click-8.1.7-py3-none-any.whl"),
                ("bad-hash", f"flask @ {FLASK_WHEEL}#sha256=abc"),
                (
                    "credentials",
                    "flask @ https://u:p@files.pythonhosted.org/flask-3.1-py3-none-any.whl",
                ),
            ]
        ),
        (
            "direct-url-twice",
            {"requirements": [f"flask @ {FLASK_WHEEL}", f"flask @ {FILES}/flask-3.0.0.tar.gz"]},
            422,
            "invalid-requirement",
            "requirements[1]",
        ),
        (
            "name-too-long",
            {"requirements": ["flask", "a" * 300 + ">=1"]},
            422,
            "invalid-requirement",
            "requirements[1]",
        ),
        (
            "direct-url-in-pyproject",
            {"pyproject": {"content": '[project]\ndependencies = ["a @ git+https://x/a"]'}},
            422,
            "invalid-requirement",
            "pyproject[0]",
        ),
        (
            "direct-url-constraint",
            body(constraints=[f"flask @ {FLASK_WHEEL}"]),
            422,
            "invalid-requirement",
            "constraints[0]",
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

    async def test_durations_are_resolved_when_the_job_is_accepted(self, api: Client) -> None:
        """A cooldown is stored as the time it reached back to when the job was accepted (so
        every attempt uses one cutoff), with the duration beside it; package names are
        canonical in exclude_newer_package and sources."""
        before = datetime.now(UTC).replace(microsecond=0)
        response = await api.post(
            "/resolve",
            json=body(
                exclude_newer="7 days",
                exclude_newer_package={"Click": "P1D", "flask": False},
                sources={"Flask": "pypi"},
            ),
        )
        after = datetime.now(UTC)
        assert response.status_code == 202, response.text
        request = response.json()["request"]
        cutoff = datetime.fromisoformat(request["exclude_newer"])
        assert before - timedelta(days=7) <= cutoff <= after - timedelta(days=7)
        assert request["exclude_newer_span"] == "7 days"
        own = datetime.fromisoformat(request["exclude_newer_package"]["click"])
        assert before - timedelta(days=1) <= own <= after - timedelta(days=1)
        assert request["exclude_newer_package"]["flask"] is False
        assert request["sources"] == {"flask": "pypi"}

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

    @pytest.mark.parametrize(
        "url",
        [
            "http://127.0.0.1:9/ok/../a/simple/",
            "http://127.0.0.1:9/ok/%2e%2e/a/simple/",
            "http://127.0.0.1:9/ok/%2E%2E/a/simple/",
            "http://127.0.0.1:9/ok/%252e%252e/a/simple/",
            "http://127.0.0.1:9/ok/..\\a/simple/",
            "http://127.0.0.1:9/ok/..;/a/simple/",
            "HTTP://127.0.0.1:9/OK/%2E%2E/a/simple/",
        ],
    )
    async def test_a_url_escaping_the_allowed_prefix_is_refused(
        self, make_client: ClientFactory, settings: Settings, redis_client: Redis, url: str
    ) -> None:
        """``/ok/../a/`` and its encodings are outside ``/ok/``: a 422 naming the field."""
        allowed = msgspec.structs.replace(
            settings, policy=PolicySettings(allowed_index_urls=("http://127.0.0.1:9/ok/",))
        )
        async with make_client(settings=allowed) as api:
            response = await api.post("/resolve", json=body(indexes=[{"url": url}]))
        assert response.status_code == 422, response.text
        assert response.json()["type"] == "urn:resolvd:problem:index-url-not-allowed"
        assert [error["field"] for error in response.json()["errors"]] == ["indexes[0].url"]
        assert await count_queued(redis_client) == (0, 0)


class TestInputs:
    async def test_a_pyproject_alone_gives_the_requirements(self, api: Client) -> None:
        """With ``pyproject``, ``requirements`` may be omitted; the selected lines follow the
        given requirements, and a universal job takes ``requires-python`` as its default."""
        response = await api.post(
            "/resolve",
            json={
                "requirements": ["click"],
                "pyproject": {"content": PYPROJECT, "groups": ["lint"]},
                "universal": True,
            },
        )
        assert response.status_code == 202, response.text
        request = response.json()["request"]
        assert request["requirements"] == ["click", "flask>=2", "ruff"]
        assert request["requires_python"] == ">=3.11"

    async def test_a_given_requires_python_wins(self, api: Client) -> None:
        """``requires_python`` in the body overrides the pyproject's."""
        response = await api.post(
            "/resolve",
            json={
                "pyproject": {"content": PYPROJECT},
                "universal": True,
                "requires_python": ">=3.12",
            },
        )
        assert response.json()["request"]["requires_python"] == ">=3.12"

    async def test_no_deps_and_dependency_metadata_are_echoed(self, api: Client) -> None:
        """``dependency_metadata`` names and versions are normalized in the echo."""
        response = await api.post(
            "/resolve",
            json=body(
                no_deps=True,
                dependency_metadata=[
                    {"name": "Legacy_Pkg", "version": "1.2.0", "requires_dist": ["six"]}
                ],
            ),
        )
        request = response.json()["request"]
        assert request["no_deps"] is True
        assert request["dependency_metadata"] == [
            {"name": "legacy-pkg", "version": "1.2.0", "requires_dist": ["six"]}
        ]


class TestDirectURLs:
    async def test_a_file_on_a_configured_index_origin_is_accepted(self, api: Client) -> None:
        """A wheel URL on a configured index's origin, with a sha256, is queued as given."""
        line = f"flask @ {FLASK_WHEEL}#sha256={'a' * 64}"
        response = await api.post("/resolve", json={"requirements": [line]})
        assert response.status_code == 202, response.text
        assert response.json()["request"]["requirements"] == [line]

    async def test_a_url_under_an_allowed_prefix_is_accepted(
        self, make_client: ClientFactory, settings: Settings
    ) -> None:
        """A URL under ``policy.allowed_index_urls`` is accepted; beside the prefix it is not."""
        allowed = msgspec.structs.replace(
            settings, policy=PolicySettings(allowed_index_urls=("http://127.0.0.2:9/ok/",))
        )
        async with make_client(settings=allowed) as api:
            inside = "a @ http://127.0.0.2:9/ok/files/a-1.0.tar.gz"
            outside = "a @ http://127.0.0.2:9/other/a-1.0.tar.gz"
            assert (await api.post("/resolve", json={"requirements": [inside]})).status_code == 202
            refused = await api.post("/resolve", json={"requirements": [outside]})
            assert refused.status_code == 422
            assert "allowed_index_urls" in refused.json()["errors"][0]["message"]


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

    def test_a_cooldown_is_the_same_request_whenever_it_is_sent(self, settings: Settings) -> None:
        """The same duration accepted a minute apart (two cutoffs) is one request; the same
        cutoff given as a time is another."""

        def accepted(value: str, now: datetime) -> str:
            resolve_body = ResolveBody(requirements=["a"], exclude_newer=value)
            return fingerprint(to_resolve_request(resolve_body, settings, {}, now=now))

        assert accepted("7 days", NOON) == accepted("7 days", NOON + timedelta(minutes=1))
        assert accepted("7 days", NOON) != accepted("P7D", NOON)
        assert accepted("2026-11-27T12:00:00Z", NOON) != accepted("7 days", NOON)
        assert accepted("2026-11-27T12:00:00Z", NOON) != accepted("2026-11-28T12:00:00Z", NOON)

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


NOON = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


class TestCutoffForms:
    """``exclude_newer`` takes what uv takes: a time, a date, or a duration back from now."""

    @pytest.mark.parametrize(
        ("given", "cutoff"),
        [
            ("7 days", "2026-11-27T12:00:00Z"),
            ("1 week", "2026-11-27T12:00:00Z"),
            ("24 hours", "2026-12-03T12:00:00Z"),
            ("36h", "2026-12-03T00:00:00Z"),
            ("1 week, 2 days", "2026-11-25T12:00:00Z"),
            ("30 minutes", "2026-12-04T11:30:00Z"),
            ("P7D", "2026-11-27T12:00:00Z"),
            ("p1w", "2026-11-27T12:00:00Z"),
            ("PT24H", "2026-12-03T12:00:00Z"),
            ("P1DT12H", "2026-12-03T00:00:00Z"),
            ("2026-01-02T03:04:05+01:00", "2026-01-02T02:04:05Z"),
            ("2026-01-02", "2026-01-02"),
        ],
    )
    def test_accepted(self, settings: Settings, given: str, cutoff: str) -> None:
        """Each form becomes a UTC time (a date stays a date) against the acceptance time."""
        request = to_resolve_request(
            ResolveBody(requirements=["a"], exclude_newer=given), settings, {}, now=NOON
        )
        assert request.exclude_newer == cutoff
        is_duration = not given[0].isdigit() or given[-1].isalpha()
        assert request.exclude_newer_span == (given if is_duration else None)

    @pytest.mark.parametrize(
        ("given", "message"),
        [
            ("3 months", "months and years are not allowed"),
            ("1 year", "months and years are not allowed"),
            ("P1M", "months and years are not allowed"),
            ("P1Y2D", "months and years are not allowed"),
            ("7 fortnights", "expected an RFC 3339 timestamp"),
            ("P", "expected an RFC 3339 timestamp"),
            ("PT", "expected an RFC 3339 timestamp"),
            ("days", "expected an RFC 3339 timestamp"),
        ],
    )
    def test_refused(self, settings: Settings, given: str, message: str) -> None:
        """Calendar units are no fixed span; anything else unreadable names the forms."""
        with pytest.raises(InvalidRequest) as caught:
            to_resolve_request(
                ResolveBody(requirements=["a"], exclude_newer=given), settings, {}, now=NOON
            )
        [error] = caught.value.errors
        assert error.field == "exclude_newer"
        assert message in error.message
