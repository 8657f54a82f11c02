"""Re-resolving against a lock, end to end, with ``uv pip compile -o lock.txt`` as the oracle.

A real cluster resolves on a loopback index where every project has newer versions than the
lock holds. The lock is a job's own export; uv reads the same text as its existing output file,
on the same index and target, and both must pin the same versions: a lock that still fits is
kept, ``-P NAME`` moves only that package and what it forces, a changed requirement moves only
the pin it invalidates, and ``--upgrade`` is a fresh resolution.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.indexserver import IndexServer, IndexSpec, Project, Release
from tests.support.cluster import Cluster, assert_not_internal
from tests.support.installers import uv_compile_pins

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

PYTHON_VERSION = "3.12"
PLATFORM = "x86_64-manylinux_2_28"
TOKENS = {"alice": "tok-alice-1f0c", "bob": "tok-bob-77ae"}

# app 1.1 needs lib 2, lib 2 needs core 2; each project has a release newer than the lock's.
WORLD = IndexSpec(
    "releases",
    [
        Project(
            "app",
            [
                Release("1.0", requires=["lib>=1", "util>=1"]),
                Release("1.1", requires=["lib>=2", "util>=1"]),
            ],
        ),
        Project(
            "lib",
            [
                Release("1.0", requires=["core>=1,<2"]),
                Release("1.5", requires=["core>=1,<2"]),
                Release("2.0", requires=["core>=2"]),
                Release("2.1", requires=["core>=2"]),
            ],
        ),
        Project("util", [Release("1.0"), Release("1.1"), Release("1.2")]),
        Project("core", [Release("1.0"), Release("1.1"), Release("2.0")]),
        Project("tool", [Release("1.0"), Release("2.0")]),
    ],
)
REQUIREMENTS = ["app", "tool"]
# What the lock was made with: everything held back.
OLD = ["app<1.1", "lib<2", "util<1.2", "core<1.1", "tool<2"]
LOCKED = {"app": "1.0", "lib": "1.5", "util": "1.1", "core": "1.0", "tool": "1.0"}


@pytest.fixture
def releases(index_server: IndexServer) -> str:
    return index_server.add_index(WORLD)


@pytest.fixture
def served(cluster: Cluster) -> Cluster:
    """The API with an in-process worker; two clients, Alice and Bob, by bearer token."""
    tokens = ",".join(f"{client}:{token}" for client, token in TOKENS.items())
    cluster.serve(env={"RESOLVD_AUTH_TOKENS_ENV": "LOCK_TEST_TOKENS", "LOCK_TEST_TOKENS": tokens})
    cluster.http.headers["Authorization"] = f"Bearer {TOKENS['alice']}"
    cluster.wait_ready()
    return cluster


def resolve(
    cluster: Cluster, index_url: str, requirements: list[str], **fields: Any
) -> dict[str, Any]:
    """Submit a job on ``index_url`` for the target and wait for its succeeded document."""
    body = {
        "requirements": requirements,
        "indexes": [{"url": index_url}],
        "environment": {"python_version": PYTHON_VERSION, "platform": PLATFORM},
        **fields,
    }
    response = cluster.submit(body)
    assert response.status_code in (200, 202), response.text
    document = cluster.wait_job(response.json()["id"])
    assert_not_internal(document)
    assert document["status"] == "succeeded", document["failure"]
    return document


def pins(document: dict[str, Any]) -> dict[str, str]:
    return {p["name"]: p["version"] for p in document["result"]["packages"]}


def moved(document: dict[str, Any]) -> dict[str, tuple[str | None, str | None, str]]:
    return {c["name"]: (c["from"], c["to"], c["kind"]) for c in document["result"]["changes"]}


def uv_compile(
    tmp_path: Path, index_url: str, requirements: list[str], lock_text: str, *options: str
) -> dict[str, str]:
    """``uv pip compile requirements.in -o lock.txt [options]`` with ``lock.txt`` holding
    ``lock_text`` beforehand; the pins it writes."""
    (tmp_path / "requirements.in").write_text("\n".join(requirements) + "\n")
    (tmp_path / "lock.txt").write_text(lock_text)
    target = (PYTHON_VERSION, PLATFORM)
    return uv_compile_pins(
        tmp_path, "requirements.in", index_url, target, "-o", "lock.txt", *options
    )


@pytest.fixture
def lock(served: Cluster, releases: str) -> tuple[str, str]:
    """(job id, requirements export) of the old lock: everything held back by constraints."""
    document = resolve(served, releases, REQUIREMENTS, constraints=OLD)
    assert pins(document) == LOCKED
    response = served.http.get(f"/jobs/{document['id']}/lock", params={"format": "requirements"})
    assert response.status_code == 200, response.text
    return document["id"], response.text


# upgrade_packages entry -> the pins expected (uv's -P gives the same).
UPGRADES = {
    "lib": {**LOCKED, "lib": "2.1", "core": "2.0"},
    "app": {**LOCKED, "app": "1.1", "lib": "2.1", "core": "2.0"},
    "tool": {**LOCKED, "tool": "2.0"},
    "lib<2.1": {**LOCKED, "lib": "2.0", "core": "2.0"},
}


class TestAgainstUv:
    def test_a_lock_that_fits_is_kept_pin_for_pin(
        self, served: Cluster, releases: str, lock: tuple[str, str], tmp_path: Path
    ) -> None:
        """Every project has a newer release, yet nothing moves: ``changes == []``, in every
        export format, and uv keeps the same pins from the same text."""
        job_id, text = lock
        for lock_format in ("requirements", "pylock", "pip-report"):
            exported = served.http.get(f"/jobs/{job_id}/lock", params={"format": lock_format})
            content = exported.text
            document = resolve(
                served, releases, REQUIREMENTS, lock={"format": lock_format, "content": content}
            )
            assert pins(document) == LOCKED, lock_format
            assert document["result"]["changes"] == [], lock_format
            assert document["result"]["warnings"] == [], lock_format
        assert uv_compile(tmp_path, releases, REQUIREMENTS, text) == LOCKED

    def test_upgrade_packages_moves_only_that_package_as_uv_does(
        self, served: Cluster, releases: str, lock: tuple[str, str], tmp_path: Path
    ) -> None:
        """``upgrade_packages: [NAME]`` equals ``uv pip compile -o lock.txt -P NAME``: the
        package moves, and what it forces; a specifier there also constrains."""
        _, text = lock
        for upgrade, expected in UPGRADES.items():
            document = resolve(
                served,
                releases,
                REQUIREMENTS,
                lock={"format": "requirements", "content": text},
                upgrade_packages=[upgrade],
            )
            assert pins(document) == expected, upgrade
            assert uv_compile(tmp_path, releases, REQUIREMENTS, text, "-P", upgrade) == expected
            assert set(moved(document)) == {n for n in expected if expected[n] != LOCKED[n]}

    def test_a_requirement_change_moves_only_the_pin_it_invalidates(
        self, served: Cluster, releases: str, lock: tuple[str, str], tmp_path: Path
    ) -> None:
        """``util>=1.2`` invalidates util's pin only; uv agrees."""
        _, text = lock
        changed = [*REQUIREMENTS, "util>=1.2"]
        document = resolve(
            served, releases, changed, lock={"format": "requirements", "content": text}
        )
        assert pins(document) == {**LOCKED, "util": "1.2"}
        assert uv_compile(tmp_path, releases, changed, text) == pins(document)
        [change] = document["result"]["changes"]
        assert change == {
            "name": "util",
            "from": "1.1",
            "to": "1.2",
            "kind": "upgraded",
            "reason": "util 1.1 no longer satisfies the requirement util>=1.2",
        }

    def test_a_requirement_change_that_forces_others_as_uv_does(
        self, served: Cluster, releases: str, lock: tuple[str, str], tmp_path: Path
    ) -> None:
        """``app>=1.1`` needs lib 2, which needs core 2: those three move, util and tool stay."""
        _, text = lock
        changed = ["app>=1.1", "tool"]
        document = resolve(
            served, releases, changed, lock={"format": "requirements", "content": text}
        )
        expected = {**LOCKED, "app": "1.1", "lib": "2.1", "core": "2.0"}
        assert pins(document) == expected
        assert uv_compile(tmp_path, releases, changed, text) == expected
        reasons = {c["name"]: c["reason"] for c in document["result"]["changes"]}
        assert reasons == {
            "app": "app 1.0 no longer satisfies the requirement app>=1.1",
            "lib": "lib 1.5 no longer satisfies app 1.1's lib>=2",
            "core": "core 1.0 no longer satisfies lib 2.1's core>=2",
        }

    def test_upgrade_is_a_fresh_resolution(
        self, served: Cluster, releases: str, lock: tuple[str, str], tmp_path: Path
    ) -> None:
        _, text = lock
        fresh = resolve(served, releases, REQUIREMENTS)
        document = resolve(
            served,
            releases,
            REQUIREMENTS,
            lock={"format": "requirements", "content": text},
            upgrade=True,
        )
        assert pins(document) == pins(fresh)
        assert uv_compile(tmp_path, releases, REQUIREMENTS, text, "--upgrade") == pins(fresh)
        assert set(moved(document)) == set(LOCKED)


class TestJobAsLock:
    def test_an_earlier_job_is_a_lock(
        self, served: Cluster, releases: str, lock: tuple[str, str]
    ) -> None:
        """``{"job": id}`` keeps that job's pins; the diff route reports the same changes."""
        job_id, _ = lock
        document = resolve(
            served, releases, REQUIREMENTS, lock={"job": job_id}, upgrade_packages=["tool"]
        )
        assert pins(document) == {**LOCKED, "tool": "2.0"}
        assert moved(document) == {"tool": ("1.0", "2.0", "upgraded")}
        diff = served.http.get(f"/jobs/{document['id']}/diff", params={"against": job_id})
        assert diff.status_code == 200, diff.text
        assert [(c["name"], c["from"], c["to"], c["kind"]) for c in diff.json()["changes"]] == [
            ("tool", "1.0", "2.0", "upgraded")
        ]

    def test_another_clients_job_is_a_404_problem(
        self, served: Cluster, releases: str, lock: tuple[str, str]
    ) -> None:
        """To Bob, Alice's job does not exist: nothing is queued for him."""
        job_id, _ = lock
        response = served.http.post(
            "/resolve",
            json={
                "requirements": REQUIREMENTS,
                "indexes": [{"url": releases}],
                "lock": {"job": job_id},
            },
            headers={"Authorization": f"Bearer {TOKENS['bob']}"},
        )
        assert response.status_code == 404, response.text
        problem = response.json()
        assert problem["type"] == "urn:resolvd:problem:lock-job-not-found"
        assert problem["errors"][0]["field"] == "lock.job"
