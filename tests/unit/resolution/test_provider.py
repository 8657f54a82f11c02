"""The provider hands resolvelib candidates it reads only as far as the resolver looks."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator, Sequence

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version
from resolvelib.structs import build_iter_view

from service.resolution.bridge import FetchBridge
from service.resolution.candidates import Candidate, SpecifierRequirement
from service.resolution.provider import Provider
from tests.unit.resolution.records import make_candidate


class CountingFinder:
    """Yields candidates of ``versions`` in order, noting each one it produced."""

    def __init__(self, versions: Sequence[str]) -> None:
        self.versions = versions
        self.produced: list[str] = []

    def iter_candidates(
        self, name: str, extras: frozenset[str], accept: Callable[[Version], bool]
    ) -> Iterator[Candidate]:
        for version in self.versions:
            if accept(Version(version)):
                self.produced.append(version)
                yield make_candidate(f"{name}=={version}")


@pytest.fixture
def bridge() -> Iterator[FetchBridge]:
    loop = asyncio.new_event_loop()
    try:
        yield FetchBridge(loop, stop=threading.Event(), deadline=time.monotonic() + 60)
    finally:
        loop.close()


def find(
    finder: CountingFinder,
    bridge: FetchBridge,
    *lines: str,
    excluded: Sequence[str] = (),
    constraints: Sequence[str] = (),
) -> list[str]:
    """What the resolver's view of ``find_matches`` yields, read twice."""
    provider = Provider(
        finder,  # type: ignore[arg-type]
        bridge,
        constraints={"a": [SpecifierSet(c) for c in constraints]},
    )
    matches = provider.find_matches(
        identifier="a",
        requirements={"a": iter([SpecifierRequirement(Requirement(line)) for line in lines])},
        incompatibilities={"a": iter([make_candidate(f"a=={v}") for v in excluded])},
    )
    view = build_iter_view(matches)
    assert finder.produced == [], "nothing is read before the resolver looks"
    assert bool(view)
    assert finder.produced == [finder.produced[0]], "asking if any exist reads one candidate"
    first = [str(c.version) for c in view]
    assert [str(c.version) for c in view] == first, "a second reading replays the first"
    return first


class TestFindMatches:
    def test_read_lazily_and_once(self, bridge: FetchBridge) -> None:
        """The candidate list is produced on demand, and only once however often it is read."""
        finder = CountingFinder(["3.0", "2.0", "1.0"])
        assert find(finder, bridge, "a") == ["3.0", "2.0", "1.0"]
        assert finder.produced == ["3.0", "2.0", "1.0"]

    def test_filters(self, bridge: FetchBridge) -> None:
        """Every requirement, the constraints and the known incompatibilities filter."""
        finder = CountingFinder(["4.0", "3.0", "2.0", "1.0"])
        versions = find(finder, bridge, "a>=1", "a!=4.0", excluded=["3.0"], constraints=["<3"])
        assert versions == ["2.0", "1.0"]
