"""Health, readiness, the index listing, and the in-memory fallback when Redis is down."""

from __future__ import annotations

import logging

import msgspec
import pytest

from service.jobs.backend import BackendUnavailable
from service.settings import ErrorCodes, IndexSettings, RedisSettings, Settings
from tests.support.api import Client, ClientFactory

UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"


class TestHealth:
    async def test_healthz(self, api: Client) -> None:
        """The process answers ``{"status": "ok"}``."""
        response = await api.get("/healthz")
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}


class TestReadiness:
    async def test_not_ready_without_a_worker(self, api: Client) -> None:
        """Redis answers but no worker beat: 503 with Retry-After."""
        response = await api.get("/readyz")
        assert response.status_code == 503
        assert int(response.headers["retry-after"]) > 0
        assert response.json()["store_reachable"] is True
        assert response.json()["workers"] == 0

    async def test_ready_with_the_in_process_worker(self, api_with_worker: Client) -> None:
        """The in-process worker's heartbeat counts."""
        response = await api_with_worker.get("/readyz")
        assert response.status_code == 200
        assert response.json()["status"] == "ready"
        assert response.json()["workers"] >= 1


class TestIndexes:
    async def test_indexes_are_listed_with_redacted_urls_and_policies(
        self, make_client: ClientFactory, settings: Settings
    ) -> None:
        """Name, URL without its password, the default policy (page 404 always included),
        format and explicitness."""
        configured = msgspec.structs.replace(
            settings,
            index=(
                IndexSettings(
                    name="corp",
                    url="http://deploy:s3cret@127.0.0.1:9/corp/simple",
                    ignore_error_codes=ErrorCodes(page=(403,), metadata=(401, 403)),
                ),
                IndexSettings(
                    name="wheels", url="http://127.0.0.1:9/wheels/", format="flat", explicit=True
                ),
            ),
        )
        async with make_client(settings=configured) as api:
            response = await api.get("/indexes")
        assert response.status_code == 200
        assert response.json() == [
            {
                "name": "corp",
                "url": "http://deploy:****@127.0.0.1:9/corp/simple",
                "ignore_error_codes": {"page": [403, 404], "metadata": [401, 403]},
                "format": "simple",
                "explicit": False,
            },
            {
                "name": "wheels",
                "url": "http://127.0.0.1:9/wheels/",
                "ignore_error_codes": {"page": [404, 410], "metadata": []},
                "format": "flat",
                "explicit": True,
            },
        ]
        assert "s3cret" not in response.text


class TestMemoryFallback:
    @pytest.fixture
    def no_redis(self, settings: Settings) -> Settings:
        return msgspec.structs.replace(settings, redis=RedisSettings(url=UNREACHABLE_REDIS))

    async def test_without_redis_the_server_runs_jobs_in_memory(
        self,
        make_client: ClientFactory,
        no_redis: Settings,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """``auto`` with Redis down: one warning line, and jobs still run in-process."""
        with caplog.at_level(logging.WARNING, logger="service.jobs.backend"):
            async with make_client(settings=no_redis, worker=True, backend="auto") as api:
                submitted = (await api.post("/resolve", json={"requirements": ["ok"]})).json()
                done = await api.get(f"/jobs/{submitted['id']}", params={"wait": 5})
                ready = await api.get("/readyz")
        assert done.json()["status"] == "succeeded"
        assert ready.status_code == 200
        assert ready.json()["store"] == "memory"
        warnings = [r for r in caplog.records if r.name == "service.jobs.backend"]
        assert len(warnings) == 1
        assert "in-process job store" in warnings[0].getMessage()

    async def test_requiring_redis_fails_startup_clearly(
        self, make_client: ClientFactory, no_redis: Settings
    ) -> None:
        """``redis`` with Redis down: startup fails with a message naming the URL."""
        with pytest.raises(BaseExceptionGroup) as raised:
            async with make_client(settings=no_redis, backend="redis"):
                pass
        assert raised.group_contains(BackendUnavailable, match=r"127\.0\.0\.1:1")


class TestMetrics:
    async def test_metrics_expose_the_job_system(self, api_with_worker: Client) -> None:
        """Prometheus text: finished jobs by status, queue depth, live workers, submissions."""
        submitted = (await api_with_worker.post("/resolve", json={"requirements": ["ok"]})).json()
        await api_with_worker.get(f"/jobs/{submitted['id']}", params={"wait": 5})
        await api_with_worker.post("/resolve", json={"requirements": ["ok"]})
        response = await api_with_worker.get("/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        text = response.text
        assert "# TYPE resolvd_jobs_finished_total counter" in text
        assert 'resolvd_jobs_finished_total{status="succeeded"} 1.0' in text
        assert 'resolvd_jobs_finished_total{status="cancelled"} 0.0' in text
        assert "resolvd_queue_depth 0.0" in text
        assert "resolvd_workers_alive 1.0" in text
        assert 'resolvd_jobs_submitted_total{outcome="created"} 1.0' in text
        assert 'resolvd_jobs_submitted_total{outcome="deduplicated"} 1.0' in text


class TestDiagnosticsSummaryWindow:
    @pytest.mark.parametrize(
        "since", ["2026-11-24T00:00:00Z", "2026-11-24t00:00:00.5z", "2026-11-24T01:00:00+01:00"]
    )
    async def test_rfc3339_times_open_the_window(self, api: Client, since: str) -> None:
        """Any RFC 3339 date-time with a zone is a window start, to the hour."""
        response = await api.get("/diagnostics/summary", params={"since": since})
        assert response.status_code == 200
        assert response.json()["since"].startswith("2026-11-24T00:00:00")

    @pytest.mark.parametrize(
        "since", ["0.5", "1764000000", "2026-11-24", "2026-11-24T00:00:00", "2026-13-01T00:00:00Z"]
    )
    async def test_anything_else_is_a_400_naming_since(self, api: Client, since: str) -> None:
        """Timestamps, bare dates, zoneless or impossible times are refused, not guessed at."""
        response = await api.get("/diagnostics/summary", params={"since": since})
        assert response.status_code == 400
        assert [e["field"] for e in response.json()["errors"]] == ["since"]
