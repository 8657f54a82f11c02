"""Where a resolution must hold: one target environment, or a marker region of a universal lock.

The finder asks its scope three questions and never looks at markers or tags itself:

* ``allows_python(requires_python)``: may a file or version with this Requires-Python be used?
* ``wheel_rank(tags)``: could a wheel with these tags be installed here, and how preferable is it
  (lower is better; ``None`` means nowhere in scope)?
* ``applies(marker, extras)``: where does a Requires-Dist line apply — never (``None``), always
  (``ANY``), or under a condition (the requirement's marker, for the lock's per-package markers)?

``TargetScope`` answers for one environment, exactly as a single-target resolution always has.
``RegionScope`` answers for every environment in a marker region at once (see
``service.resolution.markers``); universal resolution gives each fork its own region.
"""

from __future__ import annotations

from typing import Protocol

from packaging.markers import Marker

from service.resolution.environment import TargetEnvironment
from service.resolution.markers import (
    ANY,
    BaseMarker,
    covers,
    disjoint,
    format_marker,
    is_empty,
    requirement_marker,
    requires_python_marker,
    wheel_marker,
)

__all__ = ["RegionScope", "Scope", "TargetScope"]


class Scope(Protocol):
    """What the finder needs to know about where the resolution will be installed."""

    @property
    def key(self) -> str:
        """Identifies the scope for caches: equal keys give equal answers."""
        ...

    @property
    def required_environment(self) -> str | None:
        """The environment of ``required_environments`` the scope lies in, if any: a version
        with no file here is then reported as missing it."""
        ...

    def allows_python(self, requires_python: str | None) -> bool: ...

    def wheel_rank(self, tags: tuple[str, ...]) -> int | None: ...

    def applies(self, marker: Marker | None, extras: frozenset[str]) -> BaseMarker | None: ...


# Marker answers per target, shared by every job of the process: markers belong to the cached
# (shared) requirements, so jobs meet the same marker objects again and again. An entry keeps
# its marker alive, so that its id is never reused while the entry exists.
_EVALUATED: dict[tuple[str, int, str], tuple[bool, Marker]] = {}
_MAX_EVALUATED = 200_000


class TargetScope:
    """One target environment: markers evaluate to true or false, wheels rank by tag priority."""

    __slots__ = ("_key", "target")

    def __init__(self, target: TargetEnvironment) -> None:
        self.target = target
        self._key = f"target:{target.platform_name}:{target.python_full_version}"

    @property
    def key(self) -> str:
        return self._key

    @property
    def required_environment(self) -> str | None:
        return None

    def allows_python(self, requires_python: str | None) -> bool:
        return self.target.allows_python(requires_python)

    def wheel_rank(self, tags: tuple[str, ...]) -> int | None:
        return self.target.best_tag_rank(tags)

    def evaluate(self, marker: Marker | None, extra: str) -> bool:
        if marker is None:
            return True
        key = (self._key, id(marker), extra)
        memo = _EVALUATED.get(key)
        if memo is not None:
            return memo[0]
        result = marker.evaluate({**self.target.markers, "extra": extra})
        if len(_EVALUATED) > _MAX_EVALUATED:
            _EVALUATED.clear()
        _EVALUATED[key] = (result, marker)
        return result

    def applies(self, marker: Marker | None, extras: frozenset[str]) -> BaseMarker | None:
        if not extras:
            return ANY if self.evaluate(marker, "") else None
        # An extras candidate brings only what its extras add: the base candidate, which it
        # depends on, brings the rest.
        if marker is None or self.evaluate(marker, ""):
            return None
        return ANY if any(self.evaluate(marker, extra) for extra in extras) else None


class RegionScope:
    """Every environment in ``region`` (a fork of a universal resolution) at once."""

    __slots__ = ("_applies", "_python", "_required", "_wheels", "region")

    def __init__(
        self, region: BaseMarker, *, required_environment: BaseMarker | None = None
    ) -> None:
        self.region = region
        self._required = required_environment
        self._python: dict[str | None, bool] = {}
        self._wheels: dict[tuple[str, ...], int | None] = {}
        self._applies: dict[tuple[str, frozenset[str]], BaseMarker | None] = {}

    @property
    def key(self) -> str:
        return f"region:{self.region}"

    @property
    def required_environment(self) -> str | None:
        return None if self._required is None else format_marker(self._required)

    def allows_python(self, requires_python: str | None) -> bool:
        """Every Python of the region satisfies the lower bound (uv's reading)."""
        known = self._python.get(requires_python)
        if known is None:
            known = self._python[requires_python] = covers(
                self.region, requires_python_marker(requires_python)
            )
        return known

    def wheel_rank(self, tags: tuple[str, ...]) -> int | None:
        """0 for a wheel every environment of the region can install, 1 for one some can."""
        if tags in self._wheels:
            return self._wheels[tags]
        marker = wheel_marker(tags)
        rank = None if disjoint(self.region, marker) else (0 if marker.is_any() else 1)
        self._wheels[tags] = rank
        return rank

    def applies(self, marker: Marker | None, extras: frozenset[str]) -> BaseMarker | None:
        key = (str(marker) if marker is not None else "", extras)
        if key in self._applies:
            return self._applies[key]
        where = requirement_marker(marker, extras)
        answer: BaseMarker | None
        if is_empty(where) or disjoint(self.region, where):
            answer = None
        elif covers(self.region, where):
            answer = ANY
        else:
            answer = where
        self._applies[key] = answer
        return answer
