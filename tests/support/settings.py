"""Settings for tests: the test Redis and loopback-only indexes."""

from __future__ import annotations

import msgspec

from service.settings import IndexSettings, JobSettings, RedisSettings, Settings
from tests.support.redis import configured_redis_url

__all__ = ["make_test_settings"]


def make_test_settings(redis_url: str | None = None, **overrides: object) -> Settings:
    """Settings on ``redis_url`` (by default the configured test URL) with two indexes on
    loopback port 9 (discard), so that nothing configured reaches another host.

    ``overrides`` replace top-level sections (``limits=Limits(...)``).
    """
    settings = Settings(
        redis=RedisSettings(url=redis_url or configured_redis_url()),
        index=(
            IndexSettings(name="pypi", url="http://127.0.0.1:9/pypi/simple"),
            IndexSettings(name="corp", url="http://127.0.0.1:9/corp/simple"),
        ),
        jobs=JobSettings(heartbeat_seconds=2, max_tries=3, worker_concurrency=2),
    )
    return msgspec.structs.replace(settings, **overrides)
