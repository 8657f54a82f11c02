"""Fixtures for real processes: ``world`` (the ``corp`` index) and ``cluster``.

``cluster`` is a ``tests.support.cluster.Cluster`` on the flushed test Redis, configured with one
index, ``corp``, on the test's ``index_server``; requests may also name URLs under the index
server (``allowed_index_urls``). Its processes are always stopped when the test ends.

Import helpers from ``tests.support``; the names re-exported below keep older imports working.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.indexserver import IndexServer, IndexSpec
from tests.support.cluster import PROJECTS, Cluster, assert_not_internal
from tests.support.processes import ROOT, Service, free_port, make_service_env

__all__ = ["PROJECTS", "ROOT", "Cluster", "Service", "assert_not_internal", "free_port"]


@pytest.fixture
def world(index_server: IndexServer) -> str:
    """The ``corp`` index on the loopback index server; returns its URL."""
    return index_server.add_index(IndexSpec("corp", PROJECTS))


@pytest.fixture
def cluster(
    tmp_path: Path, clean_redis: str, index_server: IndexServer, world: str
) -> Iterator[Cluster]:
    """Processes against the test Redis, configured with only loopback indexes; always stopped."""
    config = tmp_path / "resolvd.toml"
    config.write_text(f'[[index]]\nname = "corp"\nurl = "{world}"\n')
    env = make_service_env(
        {
            "RESOLVD_CONFIG": str(config),
            "RESOLVD_REDIS_URL": clean_redis,
            "RESOLVD_ALLOWED_INDEX_URLS": index_server.base_url + "/",
            "RESOLVD_JOBS_HEARTBEAT_SECONDS": "2",
        }
    )
    cluster = Cluster(tmp_path, env)
    try:
        yield cluster
    finally:
        cluster.close()
