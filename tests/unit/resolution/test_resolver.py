"""MemoResolver: resolvelib's answers, without its per-round rescans."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import pytest
from resolvelib import AbstractProvider, BaseReporter, Resolver
from resolvelib.resolvers import ResolutionImpossible

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
    def __init__(self) -> None:
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
            for version in sorted(INDEX[identifier], reverse=True)
            if version not in bad and all(version in allowed for _, allowed in wanted)
        ]

    def is_satisfied_by(self, requirement: Requirement, candidate: Candidate) -> bool:
        self.satisfied_calls += 1
        return candidate[1] in requirement[1]

    def get_dependencies(self, candidate: Candidate) -> Sequence[Requirement]:
        return INDEX[candidate[0]][candidate[1]]


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
