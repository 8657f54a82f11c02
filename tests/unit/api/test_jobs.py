"""``/jobs/{id}``: reading, waiting, streaming and cancelling, with an in-process worker."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any

import msgspec
import pytest
from redis.asyncio import Redis
from saq.job import Status
from saq.queue.redis import RedisQueue

from service.api.controllers import jobs as jobs_controller
from service.jobs.model import GAVE_UP_MESSAGE
from service.jobs.queue import QUEUE_NAME
from service.settings import Settings
from tests.support.api import Client, ClientFactory, count_queued
from tests.support.scripted import ScriptedResolver

PROBLEM = "application/problem+json"


async def submit(api: Client, requirement: str, **fields: Any) -> dict[str, Any]:
    response = await api.post("/resolve", json={"requirements": [requirement], **fields})
    assert response.status_code == 202, response.text
    document: dict[str, Any] = response.json()
    return document


async def wait_until(api: Client, job_id: str, status: str) -> dict[str, Any]:
    for _ in range(100):
        document: dict[str, Any] = (await api.get(f"/jobs/{job_id}")).json()
        if document["status"] == status:
            return document
        await asyncio.sleep(0.05)
    raise AssertionError(f"job {job_id} never became {status}")


def parse_events(text: str) -> list[dict[str, str]]:
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            if line.startswith(":"):
                continue
            name, _, value = line.partition(": ")
            fields[name] = fields[name] + "\n" + value if name in fields else value
        if fields:
            events.append(fields)
    return events


class TestRead:
    async def test_a_job_reads_back(self, api: Client) -> None:
        """``GET /jobs/{id}`` returns the document ``POST /resolve`` returned."""
        submitted = await submit(api, "ok")
        response = await api.get(f"/jobs/{submitted['id']}")
        assert response.status_code == 200
        assert response.json() == submitted

    async def test_an_unknown_job_is_a_404_problem(self, api: Client) -> None:
        """Unknown ids: 404 problem ``job-not-found``."""
        response = await api.get("/jobs/does-not-exist")
        assert response.status_code == 404
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["type"] == "urn:resolvd:problem:job-not-found"

    async def test_unknown_routes_are_404_problems(self, api: Client) -> None:
        """Even the router's own 404 is a problem document."""
        response = await api.get("/nowhere")
        assert response.status_code == 404
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["type"] == "urn:resolvd:problem:not-found"

    @pytest.mark.parametrize("wait", ["31", "-1", "soon"])
    async def test_wait_out_of_range_is_refused(self, api: Client, wait: str) -> None:
        """``wait`` must be 0-30: a 400 problem naming the parameter."""
        submitted = await submit(api, "ok")
        response = await api.get(f"/jobs/{submitted['id']}", params={"wait": wait})
        assert response.status_code == 400
        assert response.json()["errors"][0]["field"] == "wait"


class TestWait:
    async def test_wait_returns_when_the_job_ends(
        self, api_with_worker: Client, resolver: ScriptedResolver
    ) -> None:
        """The reply is held until the job finishes, then comes at once."""
        submitted = await submit(api_with_worker, "slow")
        threading.Timer(0.5, resolver.release.set).start()
        started = time.monotonic()
        response = await api_with_worker.get(f"/jobs/{submitted['id']}", params={"wait": 10})
        elapsed = time.monotonic() - started
        assert response.json()["status"] == "succeeded"
        assert 0.3 < elapsed < 5

    async def test_wait_gives_up_after_n_seconds(self, api: Client) -> None:
        """A job that does not end is returned as it is after ``wait`` seconds."""
        submitted = await submit(api, "ok")
        started = time.monotonic()
        response = await api.get(f"/jobs/{submitted['id']}", params={"wait": 1})
        elapsed = time.monotonic() - started
        assert response.json()["status"] == "queued"
        assert 0.9 < elapsed < 3

    async def test_wait_on_an_unknown_job_is_404_at_once(self, api: Client) -> None:
        """Waiting does not delay a 404."""
        started = time.monotonic()
        response = await api.get("/jobs/nope", params={"wait": 10})
        assert response.status_code == 404
        assert time.monotonic() - started < 2


class TestEvents:
    async def test_the_stream_carries_each_change_until_the_end(
        self, api_with_worker: Client, resolver: ScriptedResolver
    ) -> None:
        """``job`` events with increasing ids, the last one terminal; then the stream ends."""
        submitted = await submit(api_with_worker, "slow")
        threading.Timer(0.6, resolver.release.set).start()
        response = await api_with_worker.get(f"/jobs/{submitted['id']}/events")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = parse_events(response.text)
        assert {event["event"] for event in events} == {"job"}
        versions = [int(event["id"]) for event in events]
        assert versions == sorted(versions)
        assert len(set(versions)) == len(versions)
        documents = [json.loads(event["data"]) for event in events]
        assert documents[-1]["status"] == "succeeded"
        assert "running" in {document["status"] for document in documents}

    async def test_a_finished_job_streams_one_event(self, api_with_worker: Client) -> None:
        """A job that has already ended: one event, then the stream closes."""
        submitted = await submit(api_with_worker, "ok")
        await wait_until(api_with_worker, submitted["id"], "succeeded")
        response = await api_with_worker.get(f"/jobs/{submitted['id']}/events")
        events = parse_events(response.text)
        assert len(events) == 1
        assert json.loads(events[0]["data"])["status"] == "succeeded"

    async def test_events_for_an_unknown_job_are_a_404_problem(self, api: Client) -> None:
        """The 404 comes before any stream starts."""
        response = await api.get("/jobs/nope/events")
        assert response.status_code == 404
        assert response.headers["content-type"] == PROBLEM


class TestCancel:
    async def test_cancelling_a_queued_job_removes_it_from_the_queue(
        self, api: Client, redis_client: Redis
    ) -> None:
        """DELETE on a queued job: ``cancelled``, and no worker will ever see it."""
        submitted = await submit(api, "ok")
        response = await api.delete(f"/jobs/{submitted['id']}")
        assert response.status_code == 200
        assert response.json()["status"] == "cancelled"
        assert response.json()["failure"]["kind"] == "cancelled"
        assert (await api.get(f"/jobs/{submitted['id']}")).json()["status"] == "cancelled"
        assert await count_queued(redis_client) == (1, 0)

    async def test_cancelling_a_running_job_stops_the_resolver(
        self, api_with_worker: Client, resolver: ScriptedResolver
    ) -> None:
        """DELETE on a running job: the resolver's stop event is set within half a second."""
        submitted = await submit(api_with_worker, "slow")
        await wait_until(api_with_worker, submitted["id"], "running")
        response = await api_with_worker.delete(f"/jobs/{submitted['id']}")
        cancelled_at = time.monotonic()
        assert response.json()["status"] == "cancelled"
        while not resolver.stops[0].is_set():
            assert time.monotonic() - cancelled_at < 0.5
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.3)
        final = (await api_with_worker.get(f"/jobs/{submitted['id']}")).json()
        assert final["status"] == "cancelled"
        assert final["result"] is None

    async def test_cancelling_a_finished_job_changes_nothing(self, api_with_worker: Client) -> None:
        """DELETE on a finished job: 200 with the document unchanged."""
        submitted = await submit(api_with_worker, "ok")
        finished = await wait_until(api_with_worker, submitted["id"], "succeeded")
        response = await api_with_worker.delete(f"/jobs/{submitted['id']}")
        assert response.status_code == 200
        assert response.json() == finished

    async def test_cancelling_an_unknown_job_is_404(self, api: Client) -> None:
        """DELETE on an unknown id: 404 problem."""
        response = await api.delete("/jobs/nope")
        assert response.status_code == 404
        assert response.json()["type"] == "urn:resolvd:problem:job-not-found"


class TestAllowedMethods:
    @pytest.mark.parametrize(
        ("path", "allowed"),
        [("/jobs/x", {"DELETE", "GET", "OPTIONS"}), ("/jobs/x/events", {"GET", "OPTIONS"})],
    )
    async def test_options_and_405_list_every_method(
        self, api: Client, path: str, allowed: set[str]
    ) -> None:
        """``Allow`` names every method of the path (Litestar 2's OPTIONS named only one)."""
        for response, status in ((await api.options(path), 204), (await api.put(path), 405)):
            assert response.status_code == status
            assert set(response.headers["allow"].split(", ")) == allowed


class TestOutcomesThroughTheApi:
    async def test_an_unsatisfiable_job_reports_its_failure(self, api_with_worker: Client) -> None:
        """The resolver's failure is the document's ``failure``."""
        submitted = await submit(api_with_worker, "unsat")
        document = await wait_until(api_with_worker, submitted["id"], "failed")
        assert document["failure"]["kind"] == "unsatisfiable"
        assert document["result"] is None

    async def test_an_internal_error_leaks_nothing(self, api_with_worker: Client) -> None:
        """A crashing resolver: ``internal``, and the secret in its exception stays hidden."""
        submitted = await submit(api_with_worker, "crash")
        response = await api_with_worker.get(f"/jobs/{submitted['id']}", params={"wait": 5})
        assert response.json()["failure"]["kind"] == "internal"
        assert "hunter2" not in response.text


class TestAbandonedJobs:
    async def test_a_job_the_queue_gave_up_on_is_failed_when_read(
        self, api: Client, redis_client: Redis
    ) -> None:
        """Queue says failed (tries exhausted), document says queued: the read repairs it."""
        submitted = await submit(api, "ok")
        await give_up(redis_client, submitted["id"])
        document = (await api.get(f"/jobs/{submitted['id']}")).json()
        assert document["status"] == "failed"
        assert document["failure"]["kind"] == "internal"
        assert document["failure"]["message"] == GAVE_UP_MESSAGE.format(tries=1)

    async def test_a_stream_ends_when_the_queue_gives_up_on_its_job(
        self,
        make_client: ClientFactory,
        settings: Settings,
        clean_redis: str,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """The event stream reads as ``GET`` does: a job given up on mid-stream is failed and
        ends the stream, where it used to stream keepalives until the job expired."""
        monkeypatch.setattr(jobs_controller, "_KEEPALIVE_SECONDS", 0.1)
        expiring = msgspec.structs.replace(
            settings, jobs=msgspec.structs.replace(settings.jobs, result_ttl_seconds=5)
        )
        async with make_client(settings=expiring) as api:
            submitted = await submit(api, "ok")

            def give_up_now() -> None:
                asyncio.run(give_up_on(clean_redis, submitted["id"]))

            threading.Timer(0.5, give_up_now).start()
            response = await api.get(f"/jobs/{submitted['id']}/events")
        events = parse_events(response.text)
        assert [event["event"] for event in events] == ["job", "job"]
        last = json.loads(events[-1]["data"])
        assert last["status"] == "failed"
        assert last["failure"]["message"] == GAVE_UP_MESSAGE.format(tries=1)

    async def test_an_abandoned_job_captures_no_identical_request(
        self, api: Client, redis_client: Redis
    ) -> None:
        """Deduplication does not hand out a job nobody will finish."""
        submitted = await submit(api, "ok")
        await give_up(redis_client, submitted["id"])
        again = await submit(api, "ok")
        assert again["id"] != submitted["id"]
        assert again["status"] == "queued"
        summary = (await api.get("/diagnostics/summary")).json()
        assert summary["jobs"] == {"failed": 1}
        assert summary["failures_by_kind"] == {"internal": 1}


async def give_up_on(redis_url: str, job_id: str) -> None:
    """``give_up`` on a connection of its own (for another thread's event loop)."""
    async with Redis.from_url(redis_url) as redis:
        await give_up(redis, job_id)


async def give_up(redis: Redis, job_id: str) -> None:
    """Make SAQ end the job FAILED, as it does when a job's last try is swept."""
    queue = RedisQueue(redis, name=QUEUE_NAME)
    saq_job = await queue.job(job_id)
    assert saq_job is not None
    await queue.finish(saq_job, Status.FAILED, error="swept")
