"""resolvelib's resolver with its per-round rescans memoised.

Every round, resolvelib asks again, for *every* known identifier, whether the current pin still
satisfies every requirement on it, and re-ranks every unpinned identifier: O(n²) calls on an
n-package resolution, and most of a warm resolution's CPU (a 244-package set: 78,000 pin checks
over 210,000 requirements, 2.4 of 2.9 s in the resolver thread). Both answers depend only on
objects resolvelib replaces rather than mutates — an identifier's ``Criterion`` and its pinned
candidate — plus, for the preference, the backtrack causes. So each is remembered per identifier
with those objects and reused while they are the same ones (compared by identity, the objects
kept alive by the memo so that an identity is never reused). The answers are exactly
resolvelib's; only repeated work is skipped.

This subclasses resolvelib's ``Resolution``, whose hooks are private; resolvelib is pinned below
1.3 in pyproject.toml for that reason, and ``tests/unit/resolution/test_resolver.py`` checks the
hooks are still called.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Generic, TypeVar

from resolvelib import AbstractProvider, BaseReporter, Resolver
from resolvelib.resolvers import Criterion, Resolution, Result
from resolvelib.resolvers.resolution import _build_result

__all__ = ["MemoResolver"]

RT = TypeVar("RT")
CT = TypeVar("CT")
KT = TypeVar("KT")


class _MemoResolution(Resolution[RT, CT, KT], Generic[RT, CT, KT]):
    def __init__(
        self, provider: AbstractProvider[RT, CT, KT], reporter: BaseReporter[RT, CT, KT]
    ) -> None:
        super().__init__(provider, reporter)
        self._satisfying: dict[KT, tuple[Criterion[RT, CT], CT, bool]] = {}
        self._preferences: dict[KT, tuple[Criterion[RT, CT], tuple[Any, ...], Any]] = {}

    def _is_current_pin_satisfying(self, name: KT, criterion: Criterion[RT, CT]) -> bool:
        pin = self.state.mapping.get(name)
        if pin is None:
            return False
        memo = self._satisfying.get(name)
        if memo is not None and memo[0] is criterion and memo[1] is pin:
            return memo[2]
        satisfying = super()._is_current_pin_satisfying(name, criterion)
        self._satisfying[name] = (criterion, pin, satisfying)
        return satisfying

    def _get_preference(self, name: KT) -> Any:
        criterion = self.state.criteria[name]
        # resolvelib updates the causes in place: compare their contents, not the list.
        causes = tuple(self.state.backtrack_causes)
        memo = self._preferences.get(name)
        if memo is not None and memo[0] is criterion and memo[1] == causes:
            return memo[2]
        preference = super()._get_preference(name)
        self._preferences[name] = (criterion, causes, preference)
        return preference


class MemoResolver(Resolver[RT, CT, KT]):
    """``resolvelib.Resolver`` running a ``_MemoResolution`` (see the module docstring)."""

    def resolve(self, requirements: Iterable[RT], max_rounds: int = 100) -> Result[RT, CT, KT]:  # type: ignore[override]
        resolution = _MemoResolution(self.provider, self.reporter)
        state = resolution.resolve(requirements, max_rounds=max_rounds)
        return _build_result(state)
