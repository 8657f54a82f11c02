"""What moved between two locks: a pure function from two package lists to ``changes``.

``diff_packages`` compares what a lock held (``before``) with what a resolution holds
(``after``), both as ``LockedPackage`` entries, and lists each package that was ``added``,
``removed``, ``upgraded``, ``downgraded`` or ``replaced`` (the same version from another file or
index), sorted by name. It serves both a job's ``changes`` (its lock against its result) and
``GET /jobs/{id}/diff`` (one job's result against another's). It knows nothing of why a package
moved: ``service.resolution.run`` adds that from what the resolver learned.

A name may appear more than once (a universal lock's per-marker entries): entries of one name are
paired by marker, and a name with exactly one entry on each side is paired whatever its markers.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

from packaging.version import Version

from service.resolution.request import LockedFile, LockedPackage
from service.resolution.result import ChangeKind, PackageChange

__all__ = ["diff_packages", "same_file", "same_index"]


def same_file(a: LockedFile, b: LockedFile) -> bool | None:
    """Whether two descriptions name one file: by a hash both give, else by filename;
    ``None`` when they share neither."""
    common = a.hashes.keys() & b.hashes.keys()
    if common:
        return all(a.hashes[algorithm] == b.hashes[algorithm] for algorithm in common)
    if a.filename and b.filename:
        return a.filename == b.filename
    return None


def same_index(a: str | None, b: str | None) -> bool | None:
    """Whether two index URLs (or names) are one index; ``None`` when either is unknown."""
    if not a or not b:
        return None
    return a.rstrip("/") == b.rstrip("/")


def _file_kept(before: Sequence[LockedFile], after: Sequence[LockedFile]) -> bool:
    """Whether ``after``'s files are among ``before``'s (unknown counts as kept)."""
    for file in after:
        verdicts = [same_file(old, file) for old in before]
        if verdicts and all(verdict is False for verdict in verdicts):
            return False
    return True


def _describe_replacement(before: LockedPackage, after: LockedPackage) -> str | None:
    """What a same-version entry changed: its index or its file; ``None`` when nothing did."""
    if same_index(before.index, after.index) is False:
        return f"index {before.index} -> {after.index}"
    if not _file_kept(before.files, after.files):
        old = ", ".join(f.filename or f.url or "?" for f in before.files)
        new = ", ".join(f.filename or f.url or "?" for f in after.files)
        return f"file {old} -> {new}"
    return None


def _compare(before: LockedPackage, after: LockedPackage) -> PackageChange | None:
    old, new = Version(before.version), Version(after.version)
    kind: ChangeKind
    reason = None
    if new > old:
        kind = "upgraded"
    elif new < old:
        kind = "downgraded"
    else:
        reason = _describe_replacement(before, after)
        if reason is None:
            return None
        kind = "replaced"
    return PackageChange(
        name=after.name, from_=before.version, to=after.version, kind=kind, reason=reason
    )


def _pair(
    before: list[LockedPackage], after: list[LockedPackage]
) -> Iterable[tuple[LockedPackage | None, LockedPackage | None]]:
    """Entries of one name, paired: one each side always; else by marker, the rest alone."""
    if len(before) == 1 and len(after) == 1:
        yield before[0], after[0]
        return
    unmatched = list(after)
    for old in before:
        new = next((entry for entry in unmatched if entry.marker == old.marker), None)
        if new is not None:
            unmatched.remove(new)
        yield old, new
    for new in unmatched:
        yield None, new


def diff_packages(
    before: Iterable[LockedPackage], after: Iterable[LockedPackage]
) -> list[PackageChange]:
    """The changes from ``before`` to ``after``, sorted by name; ``reason`` is
    set only for ``replaced`` (what changed: the index or the file)."""
    old_by_name: dict[str, list[LockedPackage]] = defaultdict(list)
    new_by_name: dict[str, list[LockedPackage]] = defaultdict(list)
    for entry in before:
        old_by_name[entry.name].append(entry)
    for entry in after:
        new_by_name[entry.name].append(entry)
    changes: list[PackageChange] = []
    for name in sorted(old_by_name.keys() | new_by_name.keys()):
        for old, new in _pair(old_by_name.get(name, []), new_by_name.get(name, [])):
            if old is None and new is not None:
                changes.append(
                    PackageChange(name=name, from_=None, to=new.version, kind="added", reason=None)
                )
            elif new is None and old is not None:
                changes.append(
                    PackageChange(
                        name=name, from_=old.version, to=None, kind="removed", reason=None
                    )
                )
            elif old is not None and new is not None and (change := _compare(old, new)):
                changes.append(change)
    return changes
