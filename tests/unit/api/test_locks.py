"""``lock``, ``upgrade_packages`` on ``POST /resolve``, and ``GET /jobs/{id}/diff``.

A lock is read before anything is queued: an unreadable one, or a ``lock.job`` that is not the
client's succeeded job, is a problem naming the field. The scripted resolver answers a job whose
first requirement is ``x`` with the one package ``x 1.0``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import msgspec
import pytest
from redis.asyncio import Redis

from service.settings import AuthSettings, Settings
from tests.unit.api.conftest import Client, ClientFactory, count_queued

PROBLEM = "application/problem+json"
PIN_LOCK = {"format": "requirements", "content": "flask==2.3.3 \\\n    --hash=sha256:aa\n"}


def body(**fields: Any) -> dict[str, Any]:
    return {"requirements": ["flask>=2"], **fields}


async def succeeded(api: Client, name: str, headers: dict[str, str] | None = None) -> str:
    """The id of a succeeded job resolving ``name`` (to ``name 1.0``)."""
    response = await api.post("/resolve", json={"requirements": [name]}, headers=headers)
    job_id: str = response.json()["id"]
    document = (await api.get(f"/jobs/{job_id}", params={"wait": 10}, headers=headers)).json()
    assert document["status"] == "succeeded", document
    return job_id


def problem(response: Any, status: int, slug: str, field: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    document: dict[str, Any] = response.json()
    assert document["type"] == f"urn:resolvd:problem:{slug}"
    assert field in [error["field"] for error in document["errors"]], document
    return document


class TestLockValidation:
    @pytest.mark.parametrize(
        ("lock", "field", "says"),
        [
            ({"format": "pylock", "content": "lock-version = "}, "lock.content", "not valid TOML"),
            (
                {"format": "requirements", "content": "flask>=2\n"},
                "lock.content",
                "unreadable requirements lock: line 1: flask>=2 is not a pin",
            ),
            ({"format": "pip-report", "content": "[]"}, "lock.content", "pip installation"),
            ({"content": "flask==2.0\n"}, "lock.format", "required"),
            ({"format": "pylock"}, "lock.content", "required"),
            ({}, "lock.format", "required"),
            ({"job": "x", "format": "pylock", "content": ""}, "lock", "either job"),
        ],
    )
    async def test_an_unreadable_lock_is_a_422_naming_it_and_nothing_is_queued(
        self, api: Client, redis_client: Redis, lock: dict[str, str], field: str, says: str
    ) -> None:
        response = await api.post("/resolve", json=body(lock=lock))
        document = problem(response, 422, "invalid-lock", field)
        assert says in document["detail"]
        assert await count_queued(redis_client) == (0, 0)

    async def test_an_unknown_format_is_a_422(self, api: Client) -> None:
        response = await api.post("/resolve", json=body(lock={"format": "poetry", "content": ""}))
        problem(response, 422, "invalid-request", "lock.format")

    async def test_upgrade_packages_must_be_requirements(
        self, api: Client, redis_client: Redis
    ) -> None:
        response = await api.post("/resolve", json=body(upgrade_packages=["urllib3", "x>>1"]))
        problem(response, 422, "invalid-requirement", "upgrade_packages[1]")
        assert await count_queued(redis_client) == (0, 0)

    async def test_an_unknown_job_is_a_404_naming_lock_job(
        self, api: Client, redis_client: Redis
    ) -> None:
        response = await api.post("/resolve", json=body(lock={"job": "no-such-job"}))
        problem(response, 404, "lock-job-not-found", "lock.job")
        assert await count_queued(redis_client) == (0, 0)

    async def test_an_unfinished_job_is_a_409_naming_lock_job(
        self, api: Client, redis_client: Redis
    ) -> None:
        queued = (await api.post("/resolve", json={"requirements": ["other"]})).json()["id"]
        response = await api.post("/resolve", json=body(lock={"job": queued}))
        document = problem(response, 409, "lock-job-not-succeeded", "lock.job")
        assert "is queued" in document["detail"]
        assert await count_queued(redis_client) == (1, 1)


class TestLockAccepted:
    async def test_the_lock_is_read_into_the_request(self, api: Client) -> None:
        """The job document echoes the lock's entries, and the upgrade fields."""
        response = await api.post(
            "/resolve", json=body(lock=PIN_LOCK, upgrade_packages=["click<9"], upgrade=True)
        )
        assert response.status_code == 202, response.text
        request = response.json()["request"]
        assert request["lock"] == {
            "format": "requirements",
            "packages": [
                {"name": "flask", "version": "2.3.3", "files": [{"hashes": {"sha256": "aa"}}]}
            ],
        }
        assert request["upgrade_packages"] == ["click<9"]
        assert request["upgrade"] is True

    async def test_a_succeeded_job_is_a_lock(self, api_with_worker: Client) -> None:
        """``{"job": id}`` carries that job's packages, index names made URLs."""
        earlier = await succeeded(api_with_worker, "flask")
        response = await api_with_worker.post("/resolve", json=body(lock={"job": earlier}))
        assert response.status_code in (200, 202), response.text
        lock = response.json()["request"]["lock"]
        assert lock["format"] == "job"
        assert lock["job"] == earlier
        assert [(p["name"], p["version"], p["index"]) for p in lock["packages"]] == [
            ("flask", "1.0", "http://127.0.0.1:9/pypi/simple")
        ]

    async def test_another_lock_is_another_job(self, api: Client) -> None:
        """The lock is part of the request: a different lock is not deduplicated."""
        first = (await api.post("/resolve", json=body(lock=PIN_LOCK))).json()["id"]
        again = (await api.post("/resolve", json=body(lock=PIN_LOCK))).json()["id"]
        other_lock = {**PIN_LOCK, "content": "flask==2.3.2\n"}
        other = (await api.post("/resolve", json=body(lock=other_lock))).json()["id"]
        assert first == again != other


class TestPrivacy:
    ENVIRON: ClassVar[dict[str, str]] = {"TEST_TOKENS": "alice:tok-a, bob:tok-b"}
    ALICE: ClassVar[dict[str, str]] = {"Authorization": "Bearer tok-a"}
    BOB: ClassVar[dict[str, str]] = {"Authorization": "Bearer tok-b"}

    async def test_another_clients_job_is_a_404(
        self, make_client: ClientFactory, settings: Settings
    ) -> None:
        """Bob can neither lock against nor diff with Alice's job: to him it does not exist."""
        auth = msgspec.structs.replace(settings, auth=AuthSettings(tokens_env="TEST_TOKENS"))
        async with make_client(settings=auth, environ=self.ENVIRON, worker=True) as api:
            alices = await succeeded(api, "flask", self.ALICE)
            bobs = await succeeded(api, "click", self.BOB)
            locked = await api.post("/resolve", json=body(lock={"job": alices}), headers=self.BOB)
            problem(locked, 404, "lock-job-not-found", "lock.job")
            diff = await api.get(f"/jobs/{bobs}/diff", params={"against": alices}, headers=self.BOB)
            assert diff.status_code == 404
            mine = await api.post("/resolve", json=body(lock={"job": alices}), headers=self.ALICE)
            assert mine.status_code in (200, 202), mine.text


class TestDiff:
    async def test_the_changes_from_one_job_to_another(self, api_with_worker: Client) -> None:
        before = await succeeded(api_with_worker, "flask")
        after = await succeeded(api_with_worker, "click")
        response = await api_with_worker.get(f"/jobs/{after}/diff", params={"against": before})
        assert response.status_code == 200, response.text
        assert response.json() == {
            "job": after,
            "against": before,
            "changes": [
                {"name": "click", "from": None, "to": "1.0", "kind": "added", "reason": None},
                {"name": "flask", "from": "1.0", "to": None, "kind": "removed", "reason": None},
            ],
        }
        same = await api_with_worker.get(f"/jobs/{after}/diff", params={"against": after})
        assert same.json()["changes"] == []

    async def test_an_unknown_job_is_a_404(self, api_with_worker: Client) -> None:
        job = await succeeded(api_with_worker, "flask")
        for path, against in ((f"/jobs/{job}/diff", "nope"), ("/jobs/nope/diff", job)):
            response = await api_with_worker.get(path, params={"against": against})
            assert response.status_code == 404
            assert response.json()["type"] == "urn:resolvd:problem:job-not-found"

    async def test_a_job_that_has_not_succeeded_is_a_409(self, api_with_worker: Client) -> None:
        job = await succeeded(api_with_worker, "flask")
        failed = (await api_with_worker.post("/resolve", json={"requirements": ["unsat"]})).json()
        await api_with_worker.get(f"/jobs/{failed['id']}", params={"wait": 10})
        response = await api_with_worker.get(f"/jobs/{job}/diff", params={"against": failed["id"]})
        assert response.status_code == 409
        assert response.json()["type"] == "urn:resolvd:problem:job-not-succeeded"

    async def test_against_is_required(self, api: Client) -> None:
        response = await api.get("/jobs/x/diff")
        assert response.status_code == 400
        assert response.json()["type"] == "urn:resolvd:problem:invalid-parameter"
