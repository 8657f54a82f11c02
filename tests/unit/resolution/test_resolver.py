"""MemoResolver: resolvelib's answers, without its per-round rescans."""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import pytest
from resolvelib import AbstractProvider, BaseReporter, Resolver
from resolvelib.resolvers import ResolutionImpossible, ResolutionTooDeep

from service.resolution.resolver import MemoResolver

# name -> version -> dependencies as (name, allowed versions); a small index that backtracks:
# app 2 needs lib 2, which needs dep<3, but top needs dep 3, so app 1 (with lib 1) is the answer.
INDEX: dict[str, dict[int, list[tuple[str, frozenset[int]]]]] = {
    "app": {2: [("lib", frozenset({2}))], 1: [("lib", frozenset({1}))]},
    "lib": {2: [("dep", frozenset({1, 2}))], 1: [("dep", frozenset({1, 2, 3}))]},
    "dep": {3: [], 2: [], 1: []},
    "top": {1: [("dep", frozenset({3}))], 2: [("nope", frozenset({1}))]},
    "nope": {},
}
Requirement = tuple[str, frozenset[int]]
Candidate = tuple[str, int]


class CountingProvider(AbstractProvider[Requirement, Candidate, str]):
    def __init__(self, index: dict[str, dict[int, list[Requirement]]] = INDEX) -> None:
        self.index = index
        self.satisfied_calls = 0
        self.preference_calls = 0

    def identify(self, requirement_or_candidate: Requirement | Candidate) -> str:
        return requirement_or_candidate[0]

    def get_preference(self, identifier: str, *args: Any, **kwargs: Any) -> Any:
        self.preference_calls += 1
        return identifier

    def find_matches(
        self,
        identifier: str,
        requirements: Mapping[str, Iterator[Requirement]],
        incompatibilities: Mapping[str, Iterator[Candidate]],
    ) -> Iterable[Candidate]:
        wanted = list(requirements[identifier])
        bad = {candidate[1] for candidate in incompatibilities[identifier]}
        return [
            (identifier, version)
            for version in sorted(self.index[identifier], reverse=True)
            if version not in bad and all(version in allowed for _, allowed in wanted)
        ]

    def is_satisfied_by(self, requirement: Requirement, candidate: Candidate) -> bool:
        self.satisfied_calls += 1
        return candidate[1] in requirement[1]

    def get_dependencies(self, candidate: Candidate) -> Sequence[Requirement]:
        return self.index[candidate[0]][candidate[1]]


ROOTS = [("app", frozenset({1, 2})), ("top", frozenset({1, 2}))]


class TestMemoResolver:
    def test_same_answer_as_resolvelib(self) -> None:
        """The memos change no answer: the same pins as resolvelib's own resolver."""
        plain = Resolver(CountingProvider(), BaseReporter()).resolve(ROOTS, max_rounds=100)
        memo = MemoResolver(CountingProvider(), BaseReporter()).resolve(ROOTS, max_rounds=100)
        assert (
            dict(memo.mapping)
            == dict(plain.mapping)
            == {
                "app": ("app", 1),
                "lib": ("lib", 1),
                "dep": ("dep", 3),
                "top": ("top", 1),
            }
        )

    def test_repeated_questions_are_not_asked_again(self) -> None:
        """Pin checks and preferences are asked less often than resolvelib asks for them."""
        plain, memo = CountingProvider(), CountingProvider()
        Resolver(plain, BaseReporter()).resolve(ROOTS, max_rounds=100)
        MemoResolver(memo, BaseReporter()).resolve(ROOTS, max_rounds=100)
        assert memo.satisfied_calls < plain.satisfied_calls
        assert memo.preference_calls < plain.preference_calls

    def test_failures_are_resolvelibs(self) -> None:
        """An impossible set fails as resolvelib fails."""
        with pytest.raises(ResolutionImpossible):
            MemoResolver(CountingProvider(), BaseReporter()).resolve(
                [("top", frozenset({2}))], max_rounds=100
            )


def _random_index(seed: int) -> dict[str, dict[int, list[tuple[str, frozenset[int]]]]]:
    """Six projects of one to four versions, each depending on up to three later projects
    (no cycles) with a random set of allowed versions: many conflict, some cannot resolve."""
    rng = random.Random(seed)
    names = [f"p{i}" for i in range(6)]
    index: dict[str, dict[int, list[tuple[str, frozenset[int]]]]] = {}
    for position, name in enumerate(names):
        later = names[position + 1 :]
        index[name] = {
            version: [
                (dep, frozenset(v for v in range(1, 5) if rng.random() < 0.6))
                for dep in rng.sample(later, k=min(len(later), rng.randint(0, 3)))
            ]
            for version in range(1, rng.randint(1, 4) + 1)
        }
    return index


def _outcome(resolver: Resolver[Requirement, Candidate, str], roots: list[Requirement]) -> object:
    try:
        return dict(resolver.resolve(roots, max_rounds=200).mapping)
    except ResolutionImpossible:
        return "impossible"
    except ResolutionTooDeep:
        return "too deep"


@pytest.mark.parametrize("seed", range(300))
def test_random_indexes_resolve_as_resolvelib(seed: int) -> None:
    """The overridden round loop pins what resolvelib's own pins, and fails where it fails,
    on random indexes full of conflicts (backjumps included)."""
    index = _random_index(seed)
    roots: list[Requirement] = [("p0", frozenset({1, 2, 3, 4})), ("p1", frozenset({1, 2, 3}))]
    plain = _outcome(Resolver(CountingProvider(index), BaseReporter()), roots)
    memo = _outcome(MemoResolver(CountingProvider(index), BaseReporter()), roots)
    assert memo == plain
