"""The root conftest: loads the shared fixtures (``tests.support.fixtures``) and the loopback
index server (``tests.indexserver.fixtures``). Nothing here touches a remote host.

Import helpers from ``tests.support``; the names below are re-exported only so that imports
written before it existed keep working.
"""

from __future__ import annotations

from tests.support.settings import make_test_settings

pytest_plugins = ["tests.indexserver.fixtures", "tests.support.fixtures"]

__all__ = ["make_test_settings"]
