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

Even answered from the memos, a method call per identifier per round (three: which pins no
longer fit, which unpinned one to try, which fitting pins the new one unsettled) was a fifth of
a warm 244-package resolution. So ``resolve`` itself is overridden: resolvelib 1.2's round loop
step for step, with each of those scans one loop that reads the memo inline, and after a pin
only the identifiers the pin changed are checked again (a pin changes its own identifier's pin
and its dependencies' criteria, recorded as ``_add_to_criteria`` makes them; anything else,
a backjump, a rollback, information removed, makes the next scan a full one).

This subclasses resolvelib's ``Resolution``, whose hooks are private; resolvelib is pinned below
1.3 in pyproject.toml for that reason, and ``tests/unit/resolution/test_resolver.py`` checks the
hooks are still called and compares the answers with resolvelib's own on random indexes.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable
from typing import Any, Generic, TypeVar

from resolvelib import AbstractProvider, BaseReporter, Resolver
from resolvelib.resolvers import (
    Criterion,
    RequirementsConflicted,
    Resolution,
    ResolutionImpossible,
    ResolutionTooDeep,
    Result,
)
from resolvelib.resolvers.resolution import _build_result
from resolvelib.structs import IteratorMapping, State

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
        # The unsatisfied identifiers of the state last scanned (carried to the copy of it that
        # ``_push_new_state`` makes), and the identifiers whose criterion or pin may have
        # changed since: only those are checked again (``_unsatisfied``).
        self._known: tuple[State[RT, CT, KT], set[KT]] | None = None
        self._changed: set[KT] = set()
        # When optimistic backjumping began (round) and how many rounds it may take.
        self._optimistic_rounds: tuple[int, int] | None = None

    def _is_current_pin_satisfying(self, name: KT, criterion: Criterion[RT, CT]) -> bool:
        pin = self._states[-1].mapping.get(name)
        if pin is None:
            return False
        memo = self._satisfying.get(name)
        if memo is not None and memo[0] is criterion and memo[1] is pin:
            return memo[2]
        satisfying = super()._is_current_pin_satisfying(name, criterion)
        self._satisfying[name] = (criterion, pin, satisfying)
        return satisfying

    def _add_to_criteria(
        self,
        criteria: dict[KT, Criterion[RT, CT]],
        requirement: RT,
        parent: CT | None,
    ) -> None:
        self._changed.add(self._p.identify(requirement))
        super()._add_to_criteria(criteria, requirement, parent)

    def _push_new_state(self) -> None:
        base = self._states[-1]
        super()._push_new_state()
        if self._known is not None and self._known[0] is base:
            self._known = (self._states[-1], self._known[1])

    def _rollback_states(self) -> None:
        super()._rollback_states()
        self._known = None

    def _unsatisfied(self) -> list[KT]:
        """Every identifier whose pin is missing or no longer fits, in the criteria's order.

        After a pin, only the identifiers it changed (the pinned one and those its
        dependencies reached) are checked again; after a backjump or a rollback, all are.
        """
        state = self._states[-1]
        if self._known is not None and self._known[0] is state:
            unsatisfied = self._known[1]
            changed = [name for name in self._changed if name in state.criteria]
            unsatisfied.difference_update(changed)
            unsatisfied.update(self._unsatisfied_names(changed))
        else:
            unsatisfied = set(self._unsatisfied_names())
        self._changed = set()
        self._known = (state, unsatisfied)
        return [name for name in state.criteria if name in unsatisfied]

    def _unsatisfied_names(self, among: Iterable[KT] | None = None) -> list[KT]:
        """The identifiers (of ``among``, else all) whose pin is missing or no longer fits.

        resolvelib's comprehension calls ``_is_current_pin_satisfying`` once per identifier and
        round; this loop reads the memo inline and calls it only for a changed criterion or
        pin, which is what makes a warm resolution's rounds cheap.
        """
        state = self._states[-1]
        mapping, criteria, memo = state.mapping, state.criteria, self._satisfying
        names = criteria if among is None else among
        unsatisfied = []
        for name in names:
            pin = mapping.get(name)
            if pin is None:
                unsatisfied.append(name)
                continue
            criterion = criteria[name]
            known = memo.get(name)
            if known is not None and known[0] is criterion and known[1] is pin:
                if not known[2]:
                    unsatisfied.append(name)
            elif not self._is_current_pin_satisfying(name, criterion):
                unsatisfied.append(name)
        return unsatisfied

    def _most_preferred(self, names: Iterable[KT]) -> KT:
        """``min(names, key=self._get_preference)``, each preference remembered while the
        identifier's criterion and the backtrack causes are the same."""
        state = self._states[-1]
        criteria, memo = state.criteria, self._preferences
        # resolvelib updates the causes in place: compare their contents, not the list.
        causes = tuple(state.backtrack_causes)
        best: tuple[KT, Any] | None = None
        for name in names:
            criterion = criteria[name]
            known = memo.get(name)
            if known is not None and known[0] is criterion and known[1] == causes:
                preference = known[2]
            else:
                preference = self._get_preference(name)
                memo[name] = (criterion, causes, preference)
            if best is None or preference < best[1]:
                best = (name, preference)
        assert best is not None, "no identifier to choose from"
        return best[0]

    def resolve(self, requirements: Iterable[RT], max_rounds: int) -> State[RT, CT, KT]:
        """resolvelib 1.2's ``Resolution.resolve``, round for round, with its scans of every
        identifier done by ``_unsatisfied_names`` and ``_most_preferred``."""
        if self._states:
            raise RuntimeError("already resolved")
        self._r.starting()
        # A plain dict, not resolvelib's OrderedDict: it keeps insertion order and pops the last
        # item as backjumping needs, and copying one every round costs a fifth as much.
        self._states = [State(mapping={}, criteria={}, backtrack_causes=[])]
        for requirement in requirements:
            try:
                self._add_to_criteria(self.state.criteria, requirement, parent=None)
            except RequirementsConflicted as e:
                raise ResolutionImpossible(e.criterion.information) from e
        # The root state is kept as the sentinel the first pin can backtrack to.
        self._push_new_state()
        for round_index in range(max_rounds):
            self._r.starting_round(index=round_index)
            if self._optimistic_run_out(round_index, max_rounds):
                self._rollback_states()
                continue
            unsatisfied = self._unsatisfied()
            if not unsatisfied:
                self._r.ending(state=self.state)
                return self.state
            satisfied = set(self.state.criteria) - set(unsatisfied)
            chosen = self._choose(unsatisfied)
            failure = self._attempt_to_pin_criterion(chosen)
            if failure:
                self._known = None
                self._backjump_from(failure)
            else:
                # Pins the new one unsettled stop being sources of information (which changes
                # every criterion). Only what the pin changed can have been unsettled.
                self._changed.add(chosen)
                unsettled = set(self._unsatisfied_names(self._changed & satisfied))
                if unsettled:
                    self._known = None
                    self._remove_information_from_criteria(self.state.criteria, unsettled)
                self._push_new_state()
            self._r.ending_round(index=round_index, state=self.state)
        raise ResolutionTooDeep(max_rounds)

    def _optimistic_run_out(self, round_index: int, max_rounds: int) -> bool:
        """Whether optimistic backjumping (resolvelib's, started by a backjump that saved the
        states) has had its share of the remaining rounds, so the saved states come back."""
        if not self._optimistic_backjumping_ratio or self._save_states is None:
            return False
        if self._optimistic_rounds is None:
            cutoff = int((max_rounds - round_index) * self._optimistic_backjumping_ratio)
            self._optimistic_rounds = (round_index, cutoff)
            return cutoff <= 0
        started, cutoff = self._optimistic_rounds
        return round_index - started >= cutoff

    def _choose(self, unsatisfied: list[KT]) -> KT:
        """The identifier to pin next: the provider narrows, the preference picks."""
        narrowed = unsatisfied
        if len(unsatisfied) > 1:
            state = self.state
            narrowed = list(
                self._p.narrow_requirement_selection(
                    identifiers=unsatisfied,
                    resolutions=state.mapping,
                    candidates=IteratorMapping(state.criteria, operator.attrgetter("candidates")),
                    information=IteratorMapping(state.criteria, operator.attrgetter("information")),
                    backtrack_causes=state.backtrack_causes,
                )
            )
        if not narrowed:
            raise RuntimeError("narrow_requirement_selection returned 0 names")
        return narrowed[0] if len(narrowed) == 1 else self._most_preferred(narrowed)

    def _backjump_from(self, failure: list[Criterion[RT, CT]]) -> None:
        """Backjump past the pin that failed, leaving an unpinned state for the next round; a
        failed optimistic backjump restores the saved states instead."""
        causes = self._extract_causes(failure)
        self._r.resolving_conflicts(causes=causes)
        try:
            success = self._backjump(causes)
        except ResolutionImpossible:
            # A backjump may start optimistic backjumping (and save the states): ask after it.
            if not (self._optimistic_backjumping_ratio and self._save_states):
                raise
            success, failed_optimistic = False, True
        else:
            failed_optimistic = not success and bool(
                self._optimistic_backjumping_ratio and self._save_states
            )
        if failed_optimistic and self._save_states:
            self._rollback_states()
            return
        self.state.backtrack_causes[:] = causes
        if not success:
            raise ResolutionImpossible(self.state.backtrack_causes)


class MemoResolver(Resolver[RT, CT, KT]):
    """``resolvelib.Resolver`` running a ``_MemoResolution`` (see the module docstring)."""

    def resolve(self, requirements: Iterable[RT], max_rounds: int = 100) -> Result[RT, CT, KT]:  # type: ignore[override]
        resolution = _MemoResolution(self.provider, self.reporter)
        state = resolution.resolve(requirements, max_rounds=max_rounds)
        return _build_result(state)
