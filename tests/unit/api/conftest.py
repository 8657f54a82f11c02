"""API fixtures: the app on the test Redis, with or without an in-process (scripted) worker.

``Client``, ``ClientFactory`` and ``count_queued`` live in ``tests.support.api`` (re-exported
here for older imports).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from service.api import create_app
from service.settings import Settings
from tests.support.api import Client, ClientFactory, count_queued
from tests.support.scripted import ScriptedResolver

__all__ = ["Client", "ClientFactory", "count_queued"]


@pytest.fixture
def make_client(settings: Settings, resolver: ScriptedResolver) -> ClientFactory:
    """``async with make_client(worker=False, settings=..., environ=...) as client``."""

    @contextlib.asynccontextmanager
    async def factory(
        *,
        worker: bool = False,
        settings: Settings = settings,
        environ: Mapping[str, str] | None = None,
        **options: Any,
    ) -> AsyncIterator[Client]:
        app = create_app(
            settings,
            in_process_worker=worker,
            resolver=resolver,
            environ=environ,
            **options,
        )
        async with AsyncTestClient(app=app) as client:
            yield client

    return factory


@pytest.fixture
async def api(make_client: ClientFactory) -> AsyncIterator[Client]:
    """The API with no worker: jobs stay queued."""
    async with make_client() as client:
        yield client


@pytest.fixture
async def api_with_worker(make_client: ClientFactory) -> AsyncIterator[Client]:
    """The API with an in-process SAQ worker running the scripted resolver."""
    async with make_client(worker=True) as client:
        yield client
