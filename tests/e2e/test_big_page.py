"""A hostile page under the byte cap: 600,000 links, 48 MB of HTML, against ``resolvd serve``.

What must hold (issue 16, part 2): the job ends in a coded diagnostic (``page_too_large``) within
its deadline, the serve process's memory returns near its baseline, no value the cache stored is
larger than ``cache.max_value_bytes``, and ``/healthz`` keeps answering fast while the page is
read.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from service.settings import CacheSettings
from tests.support.cluster import Cluster, assert_not_internal
from tests.support.health import HealthProbe
from tests.unit.index.loopback import StaticServer

LINKS = 600_000
DEADLINE_SECONDS = 60
# RSS after the job may be this much above the baseline (allocator slack, caches filled).
RSS_SLACK = 0.20


def make_huge_page(links: int = LINKS) -> bytes:
    """A PEP 503 page of ``links`` well-formed wheel links (about 80 bytes each)."""
    digest = "0" * 64
    anchors = "".join(
        f'<a href="/f/huge-0.{n}-py3-none-any.whl#sha256={digest}">w{n}</a>\n' for n in range(links)
    )
    return f"<!DOCTYPE html><html><body>\n{anchors}</body></html>\n".encode()


def rss_kib(pid: int) -> int:
    """Resident memory of ``pid`` and its children (uvicorn may fork), in KiB."""
    total = 0
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(child) for child in children.read_text().split()]
    for each in pids:
        for line in Path(f"/proc/{each}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total


@pytest.fixture(scope="module")
def huge_page() -> bytes:
    return make_huge_page()


@pytest.fixture
def huge_index(huge_page: bytes) -> Iterator[str]:
    """A loopback index whose only project, ``huge``, has the 48 MB page."""
    with StaticServer() as server:
        server.add("/simple/huge/", huge_page, content_type="text/html", chunk=1024 * 1024)
        yield f"{server.base_url}/simple"


def run_huge_job(cluster: Cluster, huge_index: str) -> tuple[dict[str, Any], float]:
    body = {
        "requirements": ["huge"],
        "indexes": [{"url": huge_index}],
        "deadline_seconds": DEADLINE_SECONDS,
    }
    started = time.monotonic()
    response = cluster.submit(body)
    assert response.status_code == 202, response.text
    document = cluster.wait_job(response.json()["id"], timeout=DEADLINE_SECONDS + 30)
    return document, time.monotonic() - started


@pytest.fixture
def serving(cluster: Cluster, huge_index: str) -> Cluster:
    """``resolvd serve`` with its in-process worker, allowed to read the huge index, warmed up
    with one ordinary job (so the baseline holds what any job loads)."""
    cluster.env["RESOLVD_ALLOWED_INDEX_URLS"] += "," + huge_index.rsplit("/", 1)[0] + "/"
    cluster.serve()
    cluster.wait_ready()
    response = cluster.submit({"requirements": ["flask"], "indexes": [{"name": "corp"}]})
    assert response.status_code in (200, 202), response.text
    warm = cluster.wait_job(response.json()["id"])
    assert warm["status"] == "succeeded", warm
    return cluster


class TestHugePage:
    def test_ends_in_page_too_large_with_memory_and_cache_bounded(
        self, serving: Cluster, huge_index: str, clean_redis: str
    ) -> None:
        """A coded failure within the deadline; RSS back within 20%; no cache value past cap."""
        pid = serving.services[0].process.pid
        baseline = rss_kib(pid)
        document, took = run_huge_job(serving, huge_index)
        assert_not_internal(document)
        assert document["status"] == "failed", document
        codes = [hint["code"] for hint in document["failure"]["hints"]]
        assert "page_too_large" in codes, document["failure"]
        assert took < DEADLINE_SECONDS
        time.sleep(2)  # let the worker finish its bookkeeping
        after = rss_kib(pid)
        assert after <= baseline * (1 + RSS_SLACK), (baseline, after)
        client = redis.Redis.from_url(clean_redis)
        try:
            sizes = [
                client.memory_usage(key) or 0
                for key in client.scan_iter("resolvd:cache:*")
                if client.type(key) == b"string"
            ]
        finally:
            client.close()
        assert max(sizes, default=0) <= CacheSettings().max_value_bytes

    def test_healthz_stays_fast_while_the_page_is_read(
        self, serving: Cluster, huge_index: str
    ) -> None:
        """Every /healthz during the job answers 200 in under 100 ms.

        Today this holds because the page is parsed in a thread in slices of the GIL (25 ms at
        worst here); with the in-process worker off the API's event loop it holds regardless.
        """
        with HealthProbe(serving.base_url) as probe:
            document, _ = run_huge_job(serving, huge_index)
        assert document["status"] == "failed"
        assert probe.failures == []
        assert probe.slowest < 0.1, probe.slowest
