"""Pytest plugin: ``index_server``, a fresh ``IndexServer`` per test.

Load it with ``pytest_plugins = ["tests.indexserver.fixtures"]`` in a conftest (or ``-p``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.indexserver.server import IndexServer

__all__ = ["index_server"]


@pytest.fixture
def index_server() -> Iterator[IndexServer]:
    """A running index server on loopback with no indexes yet; closed after the test."""
    with IndexServer() as server:
        yield server
