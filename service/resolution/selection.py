"""File selection: which files of a version a target can use, best first, and why not.

``FileJudge`` is the one place that decides whether a distribution file is usable in the
resolution's scope (``service.resolution.scope``: one target, or a universal lock's marker
region), for Requires-Python, ``exclude_newer``, ``no_binary``/``only_binary`` and wheel tags,
and how usable files rank (not yanked, then wheels by the scope's rank, then sdists). Its
``key`` is everything the verdicts depend on, so verdicts can be shared by every job with the
same key.

``PageVersions`` applies a judge to one project page, one version at a time, newest first, as
the finder reaches them; ``find_page_versions`` keeps one per (index, page body, judge) in the
process, so every job that reads the same page for the same target reuses the verdicts the
first job paid for. Nothing here touches the network or the event loop.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from packaging.version import Version

from service.index.models import DistFile, Index, ProjectPage
from service.resolution.result import Reason
from service.resolution.scope import Scope

__all__ = ["FileChoice", "FileJudge", "PageVersions", "find_page_versions", "parse_time"]

# When several files of a version are unusable, the reason reported is the most telling one.
_REASON_PRIORITY = (
    Reason.REQUIRES_PYTHON,
    Reason.EXCLUDE_NEWER,
    Reason.NO_BINARY,
    Reason.ONLY_BINARY,
    Reason.NO_COMPATIBLE_WHEELS,
)
# Shared verdicts kept per process: one per page, target and options a worker has seen lately.
_SHARED_PAGES = 2048


def parse_time(value: str | None) -> datetime | None:
    """An RFC 3339 / ISO 8601 time (UTC when it names no zone), or ``None``."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class FileChoice:
    """The verdict on one version's files: the usable ones, best first, or why there are none.

    ``rejection`` is ``None`` when ``usable`` is not empty, and when there were no files at all
    (every file of the version failed to parse: no such version); ``detail`` is the
    Requires-Python or upload time behind a ``requires_python`` or ``exclude_newer`` rejection.
    ``wheel_tags`` are every tag of the version's wheels, for explaining a tag mismatch.
    """

    usable: tuple[DistFile, ...]
    rejection: Reason | None = None
    detail: str | None = None
    wheel_tags: tuple[str, ...] = ()

    @property
    def best(self) -> DistFile | None:
        return self.usable[0] if self.usable else None


class FileJudge:
    """Judges distribution files for one scope and one request's file options.

    ``no_binary`` / ``only_binary`` are whether the project being judged is named by the
    request's lists (``:all:`` included); ``cutoff`` is the ``exclude_newer`` cutoff for the
    project. Under a cutoff a file without an upload time is excluded too, as uv does: nothing
    says it is old enough.
    """

    def __init__(
        self,
        scope: Scope,
        *,
        no_binary: bool = False,
        only_binary: bool = False,
        cutoff: datetime | None = None,
    ) -> None:
        self._scope = scope
        self._no_binary = no_binary
        self._only_binary = only_binary
        self._cutoff = cutoff
        self.key = (scope.key, scope.required_environment, no_binary, only_binary, cutoff)

    def problem(self, file: DistFile) -> Reason | None:
        """Why ``file`` cannot be used for the target, or ``None`` when it can."""
        if not self._scope.allows_python(file.requires_python):
            return Reason.REQUIRES_PYTHON
        if self._cutoff is not None:
            uploaded = parse_time(file.upload_time)
            if uploaded is None or uploaded > self._cutoff:
                return Reason.EXCLUDE_NEWER
        if file.kind == "wheel":
            if self._no_binary:
                return Reason.NO_BINARY
            if self._scope.wheel_rank(file.tags) is None:
                return Reason.NO_COMPATIBLE_WHEELS
        elif self._only_binary:
            return Reason.ONLY_BINARY
        return None

    def choose(self, files: Sequence[DistFile]) -> FileChoice:
        """The verdict on one version's ``files``."""
        usable: list[tuple[tuple[int, int, int], DistFile]] = []
        problems: list[Reason] = []
        details: dict[Reason, str | None] = {}
        wheel_tags: list[str] = []
        for file in files:
            if file.kind == "wheel":
                wheel_tags.extend(file.tags)
            problem = self.problem(file)
            if problem is not None:
                problems.append(problem)
                details.setdefault(
                    problem,
                    file.requires_python if problem is Reason.REQUIRES_PYTHON else file.upload_time,
                )
                continue
            rank = self._scope.wheel_rank(file.tags) if file.kind == "wheel" else None
            # Non-yanked first, then wheels by tag priority, then sdists.
            usable.append(((int(file.yanked), 0 if rank is not None else 1, rank or 0), file))
        if not problems and not usable:
            return FileChoice(())  # no files: no such version
        if not usable:
            reason = min(problems, key=_REASON_PRIORITY.index)
            timed = reason in (Reason.REQUIRES_PYTHON, Reason.EXCLUDE_NEWER)
            detail = details.get(reason) if timed else None
            required = self._scope.required_environment
            if reason is Reason.NO_COMPATIBLE_WHEELS and required is not None:
                reason, detail = Reason.REQUIRED_ENVIRONMENT, required
            return FileChoice((), reason, detail, tuple(wheel_tags))
        usable.sort(key=lambda item: item[0])
        return FileChoice(tuple(file for _, file in usable), wheel_tags=tuple(wheel_tags))


class PageVersions:
    """One page's versions, newest first, and each one's ``FileChoice`` made on first use."""

    def __init__(self, page: ProjectPage, judge: FileJudge) -> None:
        self.page = page
        self.judge = judge
        self.versions: tuple[Version, ...] = page.versions
        self.tiers: tuple[tuple[Version, ...], ...] = (
            self.versions,
        )  # the search order: one tier (finder.ProjectVersions)
        self._choices: dict[Version, FileChoice] = {}

    def choice(self, version: Version) -> FileChoice:
        """The verdict on ``version``'s files (an empty one when none of them parses)."""
        choice = self._choices.get(version)
        if choice is None:
            # Two threads may both judge a version the first time: the verdicts are equal.
            choice = self.judge.choose(self.page.files_of(version))
            self._choices[version] = choice
        return choice


_shared: OrderedDict[tuple[object, ...], PageVersions] = OrderedDict()
_shared_lock = threading.Lock()


def find_page_versions(index: Index, page: ProjectPage, judge: FileJudge) -> PageVersions:
    """The process's ``PageVersions`` for ``page`` (as fetched from ``index``) and ``judge``.

    Keyed by the index's cache identity, the page's body digest and the judge's key: a page
    that changed upstream has another digest and starts afresh; the oldest are forgotten.
    """
    key = (index.identity, page.name, page.listing.digest, judge.key)
    with _shared_lock:
        found = _shared.get(key)
        if found is not None:
            _shared.move_to_end(key)
            return found
        found = _shared[key] = PageVersions(page, judge)
        while len(_shared) > _SHARED_PAGES:
            _shared.popitem(last=False)
        return found
