"""What the ``resolvd`` commands set up in their own process before they serve."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from service import cli


def _unset_arena_max(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unset for the test, and unset again after it (whatever the code under test sets)."""
    monkeypatch.setenv("MALLOC_ARENA_MAX", "")
    monkeypatch.delenv("MALLOC_ARENA_MAX")


class TestMallocArenas:
    def test_server_processes_default_to_two_arenas(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Unless the operator chose, the process and those it starts get two malloc arenas."""
        _unset_arena_max(monkeypatch)
        cli._limit_malloc_arenas()
        assert os.environ["MALLOC_ARENA_MAX"] == "2"

    def test_the_operators_choice_is_kept(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("MALLOC_ARENA_MAX", "8")
        cli._limit_malloc_arenas()
        assert os.environ["MALLOC_ARENA_MAX"] == "8"

    def test_a_process_started_afterwards_inherits_the_limit(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        _unset_arena_max(monkeypatch)
        cli._limit_malloc_arenas()
        child = subprocess.run(
            [sys.executable, "-c", "import os; print(os.environ['MALLOC_ARENA_MAX'])"],
            capture_output=True,
            text=True,
            check=True,
        )
        assert child.stdout.strip() == "2"
