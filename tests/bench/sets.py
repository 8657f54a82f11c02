"""The requirement sets the benchmark resolves, and which index serves each.

Real sets resolve against the wheels under ``/opt/pypi*`` (one to a dozen versions per
project) for CPython 3.11 on ``x86_64-manylinux_2_34``; every one was checked with
``uv pip compile`` against the loopback index. ``STACK`` is a mixed data/web/notebook
requirements file whose resolution is 244 packages; it was picked greedily from the projects that
resolve on their own, largest closures first, skipping those that conflict with the rest
(torch, langchain, celery, redis and about 45 others do not resolve on this index at all).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Literal

from tests.bench.synthetic import SyntheticSet, make_backtracking_set, make_scaling_set

__all__ = ["LIVE_SETS", "SETS", "STACK", "BenchSet", "find_sets"]

STACK = (
    "jupyter",
    "fastmcp",
    "pypsa",
    "spacy",
    "streamlit",
    "datasets",
    "supabase",
    "requests",
    "numpy",
    "pandas",
    "pydantic",
    "httpx",
    "pyyaml",
    "rich",
)


@dataclass(frozen=True)
class BenchSet:
    """One row of the table.

    A ``real`` set names ``requirements`` and the ``variant`` of the /opt index (``pep658`` or
    ``plain``); a ``synthetic`` set builds its own index with ``make``. ``quick`` sets also run
    under ``--quick``.
    """

    name: str
    description: str
    source: Literal["real", "synthetic", "live"]
    requirements: tuple[str, ...] = ()
    variant: str = "pep658"
    make: Callable[[], SyntheticSet] | None = None
    quick: bool = False
    # One lock over tools.UNIVERSAL_DOMAIN, beside ``uv lock`` there
    # (no pip run: pip has no universal mode).
    universal: bool = False


SETS: tuple[BenchSet, ...] = (
    BenchSet("flask", "flask, PEP 658 index", "real", ("flask",), quick=True),
    BenchSet("requests", "requests, PEP 658 index", "real", ("requests",)),
    BenchSet("jupyter", "jupyter (97 packages), PEP 658 index", "real", ("jupyter",), quick=True),
    BenchSet(
        "jupyter-plain",
        "jupyter without PEP 658: METADATA by range request or download",
        "real",
        ("jupyter",),
        variant="plain",
    ),
    BenchSet("stack244", "14 top-level names, 244 packages, PEP 658 index", "real", STACK),
    BenchSet("stack244-plain", "the same without PEP 658", "real", STACK, variant="plain"),
    BenchSet(
        "flask-shaped",
        "flask on real-shaped pages (JSON, thousands of files, some without PEP 658)",
        "real",
        ("flask",),
        variant="shaped",
        quick=True,
    ),
    BenchSet(
        "jupyter-shaped",
        "jupyter (97 packages) on real-shaped pages",
        "real",
        ("jupyter",),
        variant="shaped",
        quick=True,
    ),
    BenchSet(
        "data-shaped",
        "pandas, scikit-learn, matplotlib, scipy on real-shaped pages",
        "real",
        ("pandas", "scikit-learn", "matplotlib", "scipy"),
        variant="shaped",
    ),
    BenchSet(
        "streamlit-shaped",
        "streamlit (about 50 packages, ~20 MB of pages: dagster-sized) on real-shaped pages",
        "real",
        ("streamlit",),
        variant="shaped",
    ),
    BenchSet(
        "stack244-shaped",
        "the STACK set (244 packages) on real-shaped pages: 177,000 files, 109 MB of JSON",
        "real",
        STACK,
        variant="shaped",
    ),
    BenchSet(
        "jupyter-univ",
        "jupyter as one universal lock (Linux, CPython 3.11.*: uv lock), PEP 658 index",
        "real",
        ("jupyter",),
        universal=True,
    ),
    BenchSet(
        "stack244-univ",
        "stack244 as one universal lock (Linux, CPython 3.11.*: uv lock), PEP 658 index",
        "real",
        STACK,
        universal=True,
    ),
    BenchSet("synth10", "10 synthetic projects", "synthetic", make=partial(make_scaling_set, 10)),
    BenchSet(
        "synth100",
        "100 synthetic projects",
        "synthetic",
        make=partial(make_scaling_set, 100),
        quick=True,
    ),
    BenchSet(
        "synth300", "300 synthetic projects", "synthetic", make=partial(make_scaling_set, 300)
    ),
    BenchSet(
        "synth1000",
        "1000 synthetic projects",
        "synthetic",
        make=partial(make_scaling_set, 1000),
    ),
    BenchSet(
        "backtrack",
        "root pins base==1.0.0; 2 chains x 40 versions to walk back",
        "synthetic",
        make=make_backtracking_set,
        quick=True,
    ),
)


# ``--live``: the same kinds of sets against the real default index (what the issue measured).
LIVE_SETS: tuple[BenchSet, ...] = (
    BenchSet("live-flask", "flask", "live", ("flask",), quick=True),
    BenchSet("live-jupyter", "jupyter", "live", ("jupyter",), quick=True),
    BenchSet(
        "live-data",
        "pandas, scikit-learn, matplotlib, scipy",
        "live",
        ("pandas", "scikit-learn", "matplotlib", "scipy"),
    ),
    BenchSet("live-fastapi", "fastapi[all]", "live", ("fastapi[all]",)),
    BenchSet("live-dagster", "dagster (about 50 packages, ~20 MB of pages)", "live", ("dagster",)),
    BenchSet("live-stack", "the STACK set", "live", STACK),
)


def find_sets(*, quick: bool, only: tuple[str, ...] = (), live: bool = False) -> list[BenchSet]:
    """The sets to run: ``only`` names them (any order kept as in ``SETS``), else all or quick.

    ``live`` picks from ``LIVE_SETS`` instead.
    """
    sets = LIVE_SETS if live else SETS
    if only:
        unknown = set(only) - {s.name for s in sets}
        if unknown:
            raise ValueError(f"unknown set(s) {sorted(unknown)}; known: {[s.name for s in sets]}")
        return [s for s in sets if s.name in only]
    return [s for s in sets if s.quick or not quick]
