"""Fleet diagnostics and secrecy, end to end: real API and worker processes, real Redis.

Jobs run against a private index that needs credentials (a canary secret) and blocks one
version with 403. Afterwards the canary must appear nowhere a user or operator can look — job
documents, every route, process logs, metrics, and every key and value in Redis — while the
summary and metrics count what happened by code, index and status.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.indexserver import IndexServer, IndexSpec, Project, Release
from tests.support.cluster import Cluster

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

USER = "ci-bot"
CANARY = f"canary-{secrets.token_hex(12)}"

PRIVATE = IndexSpec(
    "private",
    [
        Project("flask", [Release("3.0.0", requires=["click>=8"])]),
        Project("click", [Release("8.1.7")]),
        Project("blocked", [Release("1.0"), Release("2.0")]),
    ],
    basic_auth=(USER, CANARY),
)


def dump_redis(url: str) -> str:
    """Every key and value in the test database, as text."""
    client = redis.Redis.from_url(url)
    parts: list[str] = []
    try:
        for key in client.scan_iter(count=500):
            kind = client.type(key).decode()
            if kind == "string":
                value: Any = client.get(key)
            elif kind == "hash":
                value = client.hgetall(key)
            elif kind == "list":
                value = client.lrange(key, 0, -1)
            elif kind == "set":
                value = client.smembers(key)
            elif kind == "zset":
                value = client.zrange(key, 0, -1, withscores=True)
            else:
                value = kind
            parts.append(f"{key!r} {value!r}")
    finally:
        client.close()
    return "\n".join(parts)


@pytest.fixture
def private_cluster(cluster: Cluster, index_server: IndexServer, tmp_path: Path) -> Cluster:
    url = index_server.add_index(PRIVATE)
    inline = url.replace("http://", f"http://{USER}:{CANARY}@")
    config = tmp_path / "private.toml"
    config.write_text(
        f"""
[[index]]
name = "private"
url = "{url}"
username_env = "PRIVATE_USER"
password_env = "PRIVATE_PASSWORD"
ignore_error_codes = {{ metadata = [403] }}

[[index]]
name = "inline"
url = "{inline}"
"""
    )
    env = {"RESOLVD_CONFIG": str(config), "PRIVATE_USER": USER, "PRIVATE_PASSWORD": CANARY}
    index_server.inject("/private/files/blocked-2.0-*", status=403)
    cluster.serve("--no-worker", env=env)
    cluster.start("worker", "worker", "--concurrency", "2", env=env)
    cluster.wait_ready()
    return cluster


def run(cluster: Cluster, body: dict[str, Any]) -> dict[str, Any]:
    response = cluster.submit(body)
    assert response.status_code in (200, 202), response.text
    return cluster.wait_job(response.json()["id"])


class TestDiagnosticsAndSecrets:
    def test_counts_by_code_and_no_secret_anywhere(
        self, private_cluster: Cluster, clean_redis: str
    ) -> None:
        """The summary and metrics count skips and failures by code, index and status, and
        the canary credential appears in no document, route, log line, metric or Redis value."""
        cluster = private_cluster
        ok = run(cluster, {"requirements": ["flask"], "indexes": [{"name": "private"}]})
        assert ok["status"] == "succeeded", ok
        skipped = run(cluster, {"requirements": ["blocked"], "indexes": [{"name": "private"}]})
        assert skipped["status"] == "succeeded"
        assert [p["version"] for p in skipped["result"]["packages"]] == ["1.0"]
        [warning] = skipped["result"]["warnings"]
        assert (warning["code"], warning["status"], warning["index"]) == (
            "metadata_unavailable",
            403,
            "private",
        )
        strict = run(
            cluster,
            {
                "requirements": ["blocked"],
                "indexes": [{"name": "private", "ignore_error_codes": {"metadata": []}}],
            },
        )
        assert strict["status"] == "failed"
        assert strict["failure"]["kind"] == "metadata_error"
        inline = run(cluster, {"requirements": ["click"], "indexes": [{"name": "inline"}]})
        assert inline["status"] == "succeeded", inline

        # A worker counts a job just after writing its terminal document: wait for all four.
        until = time.monotonic() + 10
        summary = cluster.http.get("/diagnostics/summary").json()
        while sum(summary["jobs"].values()) < 4 and time.monotonic() < until:
            time.sleep(0.1)
            summary = cluster.http.get("/diagnostics/summary").json()
        assert summary["jobs"] == {"succeeded": 3, "failed": 1}
        assert summary["failures_by_kind"] == {"metadata_error": 1}
        codes = {(c["code"], c["severity"]): c["count"] for c in summary["diagnostics"]}
        assert codes[("metadata_unavailable", "warning")] == 1
        assert codes[("metadata_unavailable", "error")] == 1
        by_index = {(c["code"], c["index"], c["status"]) for c in summary["by_index_status"]}
        assert ("metadata_unavailable", "private", 403) in by_index
        upstream = {(u["index"], u["status"]): u["count"] for u in summary["upstream_responses"]}
        assert upstream[("private", 403)] >= 2
        assert upstream[("private", 200)] >= 3
        assert [p["package"] for p in summary["top_failing_packages"]] == ["blocked"]

        metrics = cluster.http.get("/metrics").text
        assert (
            'resolvd_diagnostics_total{code="metadata_unavailable",severity="warning"} 1.0'
            in metrics
        )
        assert 'resolvd_upstream_responses_total{index="private",status="403"}' in metrics
        assert 'resolvd_job_failures_total{kind="metadata_error"} 1.0' in metrics

        outputs = {
            "documents": json.dumps([ok, skipped, strict, inline]),
            "indexes": cluster.http.get("/indexes").text,
            "summary": json.dumps(summary),
            "metrics": metrics,
            "openapi": cluster.http.get("/schema/openapi.json").text,
            "logs": cluster.logs(),
            "redis": dump_redis(clean_redis),
        }
        basic = base64.b64encode(f"{USER}:{CANARY}".encode()).decode()
        for where, text in outputs.items():
            assert CANARY not in text, f"the credential leaked into {where}"
            assert basic not in text, f"the Basic credential leaked into {where}"
        assert f"{USER}:****@" in outputs["indexes"]
