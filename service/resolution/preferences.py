"""Preferences: a previous lock's pins, tried first and never required (uv's meaning).

A request's ``lock`` turns into ``Preferences``: for each project, the locked versions that apply
to the target (an entry whose marker is false there is another environment's), each with the
index and files it was locked from. The finder offers a preferred version before any other when
the requirements accept it, picks its locked file and index where they are still offered, and
otherwise goes on as if there were no lock: a preference that no longer fits is passed over,
never a reason to fail. ``upgrade`` drops every preference and ``upgrade_packages`` those of the
projects it names (their specifiers constrain, as uv's ``-P`` does; ``run`` applies those).

A locked pre-release stays preferred unless pre-releases are banned for that project
(``disallow``, or ``explicit`` without an explicit pre-release requirement), as uv keeps one
from an existing output file. A locked version that is now yanked is passed over (the finder
records it), unlike uv, which keeps it: a lock update is where a yanked pin should surface.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from packaging.markers import Marker, UndefinedEnvironmentName
from packaging.requirements import Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

from service.diagnostics.model import Code, Diagnostic, Severity
from service.diagnostics.redact import redact_url
from service.index.models import DistFile, Index
from service.resolution.changes import same_file, same_index
from service.resolution.environment import TargetEnvironment
from service.resolution.request import LockedFile, LockedPackage, LockInput, ResolveRequest

__all__ = [
    "Preference",
    "Preferences",
    "check_lock_environment",
    "iter_applicable",
    "make_preferences",
    "upgraded_names",
]


class _Versioned(Protocol):
    @property
    def version(self) -> Version: ...


_Entry = TypeVar("_Entry", bound=_Versioned)


@dataclass(frozen=True)
class Preference:
    """One locked version of a project, with where it came from."""

    version: Version
    index: str | None
    files: tuple[LockedFile, ...]


class Preferences:
    """The preferred versions of each project, in the order they are tried."""

    def __init__(self, by_name: Mapping[str, Sequence[Preference]] | None = None) -> None:
        self._by_name = {name: tuple(found) for name, found in (by_name or {}).items()}

    def __bool__(self) -> bool:
        return bool(self._by_name)

    @property
    def names(self) -> list[str]:
        """Every project with a preference, sorted."""
        return sorted(self._by_name)

    def find(self, name: str, version: Version) -> Preference | None:
        return next((p for p in self._by_name.get(name, ()) if p.version == version), None)

    def put_first(
        self, name: str, stable: list[_Entry], pre: list[_Entry], *, prereleases: bool
    ) -> tuple[list[_Entry], list[_Entry]]:
        """``stable`` and ``pre`` (each in the finder's order) with the preferred versions
        moved to the front of ``stable``; a preferred pre-release only when ``prereleases``."""
        preferred = [
            preference.version
            for preference in self._by_name.get(name, ())
            if prereleases or not preference.version.is_prerelease
        ]
        if not preferred:
            return stable, pre
        rank = {version: position for position, version in enumerate(preferred)}
        first = sorted(
            (e for e in [*stable, *pre] if e.version in rank), key=lambda e: rank[e.version]
        )
        return (
            [*first, *(e for e in stable if e.version not in rank)],
            [e for e in pre if e.version not in rank],
        )

    def prefers_file(self, name: str, version: Version, file: DistFile) -> bool:
        """Whether ``file`` is one the lock pinned for ``name`` ``version``."""
        preference = self.find(name, version) if name in self._by_name else None
        if preference is None:
            return False
        offered = LockedFile(filename=file.filename, hashes=file.hashes)
        return any(same_file(locked, offered) for locked in preference.files)

    def prefers_index(self, name: str, version: Version, index: Index) -> bool:
        """Whether the lock took ``name`` ``version`` from ``index``."""
        preference = self.find(name, version) if name in self._by_name else None
        return preference is not None and bool(same_index(preference.index, redact_url(index.url)))


def _applies(marker: str | None, target: TargetEnvironment) -> bool:
    if marker is None:
        return True
    parsed = Marker(marker)
    try:
        return parsed.evaluate({**target.markers, "extra": ""})
    except UndefinedEnvironmentName:  # a pylock marker on dependency_groups or extras (sets)
        return parsed.evaluate(dict(target.markers), "lock_file")


def iter_applicable(lock: LockInput, target: TargetEnvironment) -> Iterator[LockedPackage]:
    """The lock's entries for ``target``: those without a marker or whose marker holds there."""
    return (entry for entry in lock.packages if _applies(entry.marker, target))


def upgraded_names(request: ResolveRequest) -> frozenset[str]:
    """The projects ``upgrade_packages`` names (canonical)."""
    return frozenset(canonicalize_name(Requirement(line).name) for line in request.upgrade_packages)


def make_preferences(request: ResolveRequest, target: TargetEnvironment) -> Preferences:
    """The request's lock as preferences for ``target``, less what ``upgrade`` lifts."""
    if request.lock is None or request.upgrade:
        return Preferences()
    lifted = upgraded_names(request)
    by_name: dict[str, list[Preference]] = defaultdict(list)
    for entry in iter_applicable(request.lock, target):
        if entry.name not in lifted:
            by_name[entry.name].append(Preference(Version(entry.version), entry.index, entry.files))
    return Preferences(by_name)


def check_lock_environment(lock: LockInput, target: TargetEnvironment) -> Diagnostic | None:
    """A warning when the lock says it was made for another environment than ``target``."""
    elsewhere = [m for m in lock.environments if not _applies(m, target)]
    made_for = None
    if lock.environments and len(elsewhere) == len(lock.environments):
        made_for = " or ".join(elsewhere)
    elif lock.requires_python:
        try:
            python = SpecifierSet(lock.requires_python)
        except InvalidSpecifier:
            python = SpecifierSet()
        if not python.contains(target.python, prereleases=True):
            made_for = f"Python {lock.requires_python}"
    if made_for is None:
        return None
    return Diagnostic(
        code=Code.LOCK_ENVIRONMENT_MISMATCH,
        severity=Severity.WARNING,
        message=f"The lock was made for another environment ({made_for}), not Python "
        f"{target.python_version} on {target.platform_name}; its pins were only "
        "preferences here.",
        data={
            "lock_environments": list(lock.environments),
            "requires_python": lock.requires_python,
        },
    )
