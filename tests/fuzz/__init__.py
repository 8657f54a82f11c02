"""Shared settings for the fuzz tests (schemathesis on the API, hypothesis on the parsers).

In CI every fuzz test is deterministic and bounded: a fixed number of examples, derandomized
(the same inputs on every run), no example database written into the checkout, no deadline (two
busy cores make timings meaningless). ``HYPOTHESIS_PROFILE=deep`` runs fifty times as many
random examples and keeps Hypothesis's database (``.hypothesis/``) so that a failure found
replays first next time, for hunting locally; lift pytest's per-test timeout for it::

    HYPOTHESIS_PROFILE=deep .venv/bin/pytest --timeout=0 -q tests/unit/index/test_fuzz_*.py
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

__all__ = ["DEEP", "DEEP_FACTOR", "fuzz_settings"]

DEEP = os.environ.get("HYPOTHESIS_PROFILE") == "deep"
DEEP_FACTOR = 50


def fuzz_settings(examples: int, *, suppress: tuple[HealthCheck, ...] = ()) -> settings:
    """Settings for one fuzz test: ``examples`` examples in CI, ``DEEP_FACTOR`` times more deep.

    ``too_slow`` is always suppressed: generation time on two shared cores says nothing.
    """
    if DEEP:
        return settings(
            max_examples=examples * DEEP_FACTOR,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, *suppress],
        )
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        print_blob=False,
        suppress_health_check=[HealthCheck.too_slow, *suppress],
    )
