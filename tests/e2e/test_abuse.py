"""A hostile client and a hostile index against ``resolvd serve`` (issue 16), as real processes.

Each test reproduces one defect the adversarial probe found (the 600k-link page is in
``test_big_page.py``):

- ``TestWatcherFlood``: 300 long-polls and 100 event streams from one client on its running
  job, while another client's job runs: every flooding request is answered 200 or 429 (with
  ``Retry-After``), ``/healthz`` answers every probe (its latencies are printed, not asserted),
  and the other job succeeds on its first try. Before: 503s and connections dropped mid-response.
- ``TestWatchLimit``: ``limits.max_watches_per_client`` and its slots coming back.
- ``TestStoreLoss``: an event stream whose Redis goes away ends cleanly.
- ``TestBadInputs``: values the URL library refuses, a 200 KB name, 1,000 indexes and a
  ``text/plain`` body are each a 4xx naming the field, and queue nothing. Before: queued, then
  failed as ``internal``.
- ``TestOffOriginFile``: a file link to another loopback port is refused with
  ``file_origin_refused`` and the listener there sees no connection.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from tests.indexserver import IndexServer, IndexSpec, Project, Release
from tests.support.cluster import Cluster, assert_not_internal
from tests.support.health import HealthProbe
from tests.support.redis import RedisServer
from tests.unit.index.edge import Listener
from tests.unit.index.loopback import StaticServer

FLOOD_POLLS = 300
FLOOD_STREAMS = 100
# The flooded job walks a chain of projects, each page and file delayed, so it runs (and
# changes its document, waking every waiter) for the whole flood.
CHAIN_LENGTH = 20
CHAIN_DELAY_SECONDS = 0.3
TOKENS = {"flooder": "tok-flooder-1", "other": "tok-other-2"}
TERMINAL = ("succeeded", "failed", "cancelled")


def make_chain(length: int = CHAIN_LENGTH) -> IndexSpec:
    """``link0`` needs ``link1`` needs ... ``link<length-1>``: a resolution of ``length`` steps."""
    projects = [
        Project(f"link{n}", [Release("1.0", requires=[f"link{n + 1}"] if n + 1 < length else [])])
        for n in range(length)
    ]
    return IndexSpec("chain", projects)


def bearer(client: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[client]}"}


@pytest.fixture
def two_clients(cluster: Cluster) -> Cluster:
    """``cluster`` with bearer tokens for ``flooder`` and ``other``; ``cluster.http`` is other's."""
    cluster.env["RESOLVD_AUTH_TOKENS_ENV"] = "ABUSE_TEST_TOKENS"
    cluster.env["ABUSE_TEST_TOKENS"] = " ".join(f"{c}:{t}" for c, t in TOKENS.items())
    cluster.http.headers.update(bearer("other"))
    return cluster


def describe(kind: str, response: httpx.Response, body: bytes) -> str:
    """One flooding request's outcome: ``200``, ``429``, or what went wrong with it."""
    status = response.status_code
    if status == 429:
        return "429" if response.headers.get("Retry-After") else f"{kind} 429 without Retry-After"
    if status != 200:
        return f"{kind} {status}: {body[:200]!r}"
    if kind == "stream":
        documents = [
            json.loads(line.removeprefix(b"data: "))
            for line in body.splitlines()
            if line.startswith(b"data: {")
        ]
        if not documents or documents[-1]["status"] not in TERMINAL:
            return "stream 200 ended before the job did"
    return "200"


async def flood(base_url: str, job_id: str) -> list[str]:
    """``FLOOD_POLLS`` long-polls and ``FLOOD_STREAMS`` event streams on ``job_id`` at once."""
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=0)
    async with httpx.AsyncClient(
        base_url=base_url, headers=bearer("flooder"), timeout=60, limits=limits, trust_env=False
    ) as client:

        async def one(kind: str) -> str:
            url = f"/jobs/{job_id}" + ("/events" if kind == "stream" else "")
            params = {"wait": 25} if kind == "poll" else None
            try:
                async with client.stream("GET", url, params=params) as response:
                    body = await response.aread()
            except httpx.HTTPError as exc:
                return f"{kind}: no HTTP answer ({type(exc).__name__})"
            return describe(kind, response, body)

        kinds = ["poll"] * FLOOD_POLLS + ["stream"] * FLOOD_STREAMS
        return list(await asyncio.gather(*(one(kind) for kind in kinds)))


def start_flood(base_url: str, job_id: str) -> tuple[threading.Thread, list[str]]:
    outcomes: list[str] = []
    thread = threading.Thread(
        target=lambda: outcomes.extend(asyncio.run(flood(base_url, job_id))), daemon=True
    )
    thread.start()
    return thread, outcomes


@pytest.fixture
def chain_url(index_server: IndexServer) -> str:
    """The slow chain's index; ``corp`` is slowed too, so that the other client's job writes
    its progress all through a flood."""
    url = index_server.add_index(make_chain())
    index_server.inject("/chain/*", delay=CHAIN_DELAY_SECONDS)
    index_server.inject("/corp/*", delay=0.2)
    return url


@pytest.fixture
def stuck_url(index_server: IndexServer) -> str:
    """An index whose one project's page takes a minute: a job on it stays running."""
    url = index_server.add_index(IndexSpec("stuck", [Project("stuck", [Release("1.0")])]))
    index_server.inject("/stuck/*", delay=60)
    return url


def read_record(redis_url: str, job_id: str) -> dict[str, Any]:
    client = redis.Redis.from_url(redis_url)
    try:
        raw = client.get(f"resolvd:job:{job_id}")
    finally:
        client.close()
    assert raw is not None, job_id
    record: dict[str, Any] = json.loads(raw)
    return record


def client_names(redis_url: str) -> set[str]:
    """The names of the connections Redis has open (``CLIENT LIST``)."""
    client = redis.Redis.from_url(redis_url)
    try:
        return {str(entry["name"]) for entry in client.client_list()}
    finally:
        client.close()


class TestWatcherFlood:
    @pytest.mark.parametrize(
        "watch_cap",
        [None, FLOOD_POLLS + FLOOD_STREAMS],
        ids=["default-cap", "cap-above-the-flood"],
    )
    def test_a_flood_of_waiters_does_not_starve_another_clients_job(
        self,
        two_clients: Cluster,
        chain_url: str,
        clean_redis: str,
        watch_cap: int | None,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """300 long-polls and 100 streams on one client's running job: every one is answered
        200 or 429 (with Retry-After), /healthz answers every probe, and the other client's job
        succeeds on its first try. With the cap raised above the flood, all are served: the
        worker's store never shares a pool with the waiters (its connections are its own)."""
        cluster = two_clients
        if watch_cap is not None:
            cluster.env["RESOLVD_LIMITS_MAX_WATCHES_PER_CLIENT"] = str(watch_cap)
        cluster.serve()
        cluster.wait_ready()
        flooded = cluster.submit(
            {"requirements": ["link0"], "indexes": [{"url": chain_url}]},
            headers=bearer("flooder"),
        )
        assert flooded.status_code == 202, flooded.text
        with HealthProbe(cluster.base_url) as probe:
            thread, outcomes = start_flood(cluster.base_url, flooded.json()["id"])
            other = cluster.submit({"requirements": ["flask"], "indexes": [{"name": "corp"}]})
            assert other.status_code == 202, other.text
            document = cluster.wait_job(other.json()["id"])
            thread.join(timeout=90)
        with capsys.disabled():
            print(f"\n[{watch_cap or 'default'} cap] {probe.summary()}; flood: {Counter(outcomes)}")
        assert not thread.is_alive(), "the flood did not end"
        assert_not_internal(document)
        assert document["status"] == "succeeded", document
        assert read_record(clean_redis, document["id"])["attempts"] == 1
        assert len(outcomes) == FLOOD_POLLS + FLOOD_STREAMS
        assert set(outcomes) <= {"200", "429"}, Counter(outcomes)
        if watch_cap is None:
            assert "429" in outcomes and "200" in outcomes, Counter(outcomes)
        else:
            assert set(outcomes) == {"200"}, Counter(outcomes)
        assert probe.failures == [], probe.failures[:5]
        assert probe.latencies, "no /healthz probe was answered"
        # Why the other job was safe: serve's in-process worker has Redis connections (and
        # pools) of its own, apart from the API's that the waiters use.
        assert {"resolvd-api", "resolvd-worker", "resolvd-worker-queue"} <= client_names(
            clean_redis
        )


async def wait_until_admitted(client: httpx.AsyncClient, job_id: str) -> None:
    """A short wait, repeated until one is admitted again (the slots were given back)."""
    for _ in range(300):
        response = await client.get(f"/jobs/{job_id}", params={"wait": 0.01})
        if response.status_code == 200:
            return
        assert response.status_code == 429, response.text
        await asyncio.sleep(0.05)
    raise AssertionError("no slot was given back")


def flooder(base_url: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base_url, headers=bearer("flooder"), timeout=30, trust_env=False
    )


class TestWatchLimit:
    async def test_waits_and_streams_past_the_limit_are_429_until_slots_free(
        self, two_clients: Cluster, stuck_url: str
    ) -> None:
        """With limits.max_watches_per_client = 2: a third wait or a stream is a
        ``too-many-watches`` 429 with Retry-After (a plain read is not limited, nor is another
        client); a stream holds a slot until its client leaves; 404s hold none."""
        cluster = two_clients
        cluster.env["RESOLVD_LIMITS_MAX_WATCHES_PER_CLIENT"] = "2"
        cluster.serve()
        cluster.wait_ready()
        stuck = cluster.submit(
            {"requirements": ["stuck"], "indexes": [{"url": stuck_url}]},
            headers=bearer("flooder"),
        )
        job_id = stuck.json()["id"]
        async with flooder(cluster.base_url) as client:
            for path in ("/jobs/nope/events", "/jobs/nope?wait=1", "/jobs/nope/events"):
                assert (await client.get(path)).status_code == 404
            waits = await asyncio.gather(
                *(client.get(f"/jobs/{job_id}", params={"wait": 2}) for _ in range(3))
            )
            assert sorted(w.status_code for w in waits) == [200, 200, 429]
            async with (
                client.stream("GET", f"/jobs/{job_id}/events") as first,
                client.stream("GET", f"/jobs/{job_id}/events") as second,
            ):
                # Each stream holds its slot from its first event on. (The line iterators are
                # kept: one collected early would close its connection.)
                streams = [first.aiter_lines(), second.aiter_lines()]
                for lines in streams:
                    assert (await anext(lines)).startswith("id:")
                refused = await client.get(f"/jobs/{job_id}", params={"wait": 1})
                assert refused.status_code == 429
                assert refused.headers["content-type"] == "application/problem+json"
                assert refused.headers["retry-after"] == "5"
                assert refused.json()["type"] == "urn:resolvd:problem:too-many-watches"
                assert "limits.max_watches_per_client" in refused.json()["detail"]
                assert (await client.get(f"/jobs/{job_id}/events")).status_code == 429
                assert (await client.get(f"/jobs/{job_id}")).status_code == 200
                others = cluster.http.get("/jobs/nope", params={"wait": 0.01})
                assert others.status_code == 404
            # The streams' client left: their slots come back.
            await wait_until_admitted(client, job_id)
            assert (await client.delete(f"/jobs/{job_id}")).json()["status"] == "cancelled"


@pytest.fixture
def lone_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own, which it may stop."""
    server = RedisServer(tmp_path / "redis")
    server.start()
    try:
        yield server
    finally:
        server.stop()


class TestStoreLoss:
    async def test_an_event_stream_ends_cleanly_when_the_store_goes(
        self, cluster: Cluster, stuck_url: str, lone_redis: RedisServer
    ) -> None:
        """Redis stops mid-stream: the stream ends with its body complete (no connection
        dropped mid-response), and the API answers again once Redis is back."""
        cluster.env["RESOLVD_REDIS_URL"] = lone_redis.url
        cluster.serve()
        cluster.wait_ready()
        job_id = cluster.submit(
            {"requirements": ["stuck"], "indexes": [{"url": stuck_url}]}
        ).json()["id"]
        async with (
            httpx.AsyncClient(base_url=cluster.base_url, timeout=30, trust_env=False) as client,
            client.stream("GET", f"/jobs/{job_id}/events") as stream,
        ):
            lines = stream.aiter_lines()
            assert (await anext(lines)).startswith("id:")
            lone_redis.stop()
            rest = [line async for line in lines]
        assert not any(line.startswith("event: gone") for line in rest), rest
        lone_redis.start()
        cluster.wait_ready("/healthz")
        assert "Exception in ASGI application" not in cluster.logs(), cluster.logs()


def bad_inputs(index_base: str) -> dict[str, tuple[dict[str, Any] | bytes, int, str, str]]:
    """name -> (body, or raw bytes sent as text/plain; status; problem slug; field named)."""
    allowed = f"{index_base}/corp/simple"
    return {
        "200-kb-requirement-name": (
            {"requirements": ["a" * 200_000]},
            422,
            "invalid-requirement",
            "requirements[0]",
        ),
        "tab-in-index-url": (
            {"requirements": ["flask"], "indexes": [{"url": allowed[:-3] + "\tple"}]},
            422,
            "index-url-not-allowed",
            "indexes[0].url",
        ),
        "crlf-in-index-url": (
            {"requirements": ["flask"], "indexes": [{"url": allowed + "\r\nX-Evil: 1"}]},
            422,
            "index-url-not-allowed",
            "indexes[0].url",
        ),
        "100-kb-index-url": (
            {"requirements": ["flask"], "indexes": [{"url": f"{allowed}/{'a' * 100_000}"}]},
            422,
            "index-url-not-allowed",
            "indexes[0].url",
        ),
        "1000-indexes": (
            {
                "requirements": ["flask"],
                "indexes": [{"url": f"{index_base}/i{n}/simple"} for n in range(1000)],
            },
            422,
            "too-many-indexes",
            "indexes",
        ),
        "text-plain-body": (
            json.dumps({"requirements": ["flask"]}).encode(),
            415,
            "unsupported-media-type",
            "Content-Type",
        ),
    }


class TestBadInputs:
    def test_each_bad_input_is_a_4xx_naming_the_field_and_queues_nothing(
        self, cluster: Cluster, index_server: IndexServer, clean_redis: str
    ) -> None:
        """Values the URL library would refuse (under an allowed prefix, so only the new checks
        stop them), a 200 KB name, 1,000 indexes and a text/plain body: each a problem naming
        its field; no job document and nothing on the queue."""
        cluster.serve()
        cluster.wait_ready()
        for name, (body, status, slug, field) in bad_inputs(index_server.base_url).items():
            if isinstance(body, bytes):
                response = cluster.http.post(
                    "/resolve", content=body, headers={"Content-Type": "text/plain"}
                )
            else:
                response = cluster.submit(body)
            problem = response.json()
            assert response.status_code == status, (name, response.text[:500])
            assert problem["type"] == f"urn:resolvd:problem:{slug}", (name, problem)
            assert field in [error["field"] for error in problem["errors"]], (name, problem)
        client = redis.Redis.from_url(clean_redis)
        try:
            assert client.keys("resolvd:job:*") == []
            assert client.llen("saq:resolvd:queued") == 0
        finally:
            client.close()
        assert "Traceback" not in cluster.logs(), cluster.logs()


WHEEL = "demo-1.0-py3-none-any.whl"


def page_linking(url: str) -> bytes:
    """A PEP 691 page for ``demo`` whose one file lives at ``url``."""
    file = {"filename": WHEEL, "url": url, "hashes": {}, "core-metadata": {"sha256": "0" * 64}}
    return json.dumps({"meta": {"api-version": "1.1"}, "name": "demo", "files": [file]}).encode()


class TestOffOriginFile:
    async def test_a_file_link_to_another_loopback_port_sees_no_request(
        self, cluster: Cluster
    ) -> None:
        """An allowed index links its file on another port: the job fails with
        ``file_origin_refused`` and the listener there sees no connection."""
        async with Listener() as listener:
            with StaticServer() as index:
                index.add(
                    "/simple/demo/",
                    page_linking(f"{listener.base_url}/files/{WHEEL}"),
                    content_type="application/vnd.pypi.simple.v1+json",
                )
                cluster.env["RESOLVD_ALLOWED_INDEX_URLS"] += f",{index.base_url}/"
                cluster.serve()
                cluster.wait_ready()
                body = {"requirements": ["demo"], "indexes": [{"url": f"{index.base_url}/simple"}]}
                async with httpx.AsyncClient(
                    base_url=cluster.base_url, timeout=30, trust_env=False
                ) as client:
                    job = (await client.post("/resolve", json=body)).json()
                    for _ in range(30):
                        document = (
                            await client.get(f"/jobs/{job['id']}", params={"wait": 10})
                        ).json()
                        if document["status"] in TERMINAL:
                            break
            await asyncio.sleep(0.2)  # a connection in the backlog would be counted now
            assert listener.connections == 0
        assert_not_internal(document)
        assert document["status"] == "failed", document
        codes = {error["code"] for error in document["failure"]["fetch_errors"]}
        assert codes == {"file_origin_refused"}, document["failure"]
