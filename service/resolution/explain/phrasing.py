"""How the explanation words things: version sets, reasons, and the requirers of a package.

Pure functions of strings and versions; nothing here reads the search.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType

from packaging.version import Version

from service.resolution.result import Reason

__all__ = [
    "HEADER",
    "UNSATISFIABLE",
    "depend_verb",
    "describe_reason",
    "format_version_set",
    "is_plural",
    "join_requirers",
]

HEADER = "No solution found when resolving dependencies:"
UNSATISFIABLE = "we can conclude that your requirements are unsatisfiable"


def format_version_set(name: str, chosen: Sequence[Version], universe: Sequence[Version]) -> str:
    """Collapse ``chosen`` (a subset of ``universe``) into ranges the way a person writes them.

    ``a`` when nothing is chosen, ``a==1.0`` for one, ``all versions of a`` for every one,
    ``a>=2.0`` / ``a<=1.0`` for runs that reach an end of the universe, ``a>=1.0,<=1.4`` for
    inner runs, joined by `` | ``.
    """
    ordered = sorted(set(universe))
    picked = set(chosen)
    if not picked:
        return name
    if len(ordered) == 1 and picked >= set(ordered):
        return f"{name}=={ordered[0]}"
    if picked >= set(ordered):
        return f"all versions of {name}"
    runs: list[list[Version]] = []
    for position, version in enumerate(ordered):
        if version in picked:
            if runs and runs[-1][-1] == ordered[position - 1]:
                runs[-1].append(version)
            else:
                runs.append([version])
    parts = []
    for run in runs:
        low, high = run[0], run[-1]
        if low == high:
            parts.append(f"{name}=={low}")
        elif low == ordered[0]:
            parts.append(f"{name}<={high}")
        elif high == ordered[-1]:
            parts.append(f"{name}>={low}")
        else:
            parts.append(f"{name}>={low},<={high}")
    return " | ".join(parts)


def is_plural(subject: str) -> bool:
    """Whether a subject from ``format_version_set`` names more than one version."""
    return subject.startswith("all versions") or "|" in subject or ">" in subject or "<" in subject


def depend_verb(subject: str) -> str:
    return "depend" if is_plural(subject) else "depends"


# (singular, plural) phrasing of why versions were passed over; ``{name}`` is the package,
# ``{tag}`` the part of the wheel tags that did not match.
_REASON_TEXT: Mapping[Reason, tuple[str, str]] = MappingProxyType(
    {
        Reason.METADATA_UNAVAILABLE: ("could not be fetched from the network",) * 2,
        Reason.REQUIRES_PYTHON: (
            "requires a different Python version",
            "require a different Python",
        ),
        Reason.YANKED: ("was yanked", "were yanked"),
        Reason.NO_COMPATIBLE_WHEELS: (
            "has no wheels with a matching {tag} and no source distribution",
            "have no wheels with a matching {tag} and no source distribution",
        ),
        Reason.REQUIRED_ENVIRONMENT: (
            "has no wheel for a required environment and no source distribution",
            "have no wheel for a required environment and no source distribution",
        ),
        Reason.NO_BINARY: (
            "has no source distribution (no_binary is set for {name})",
            "have no source distribution (no_binary is set for {name})",
        ),
        Reason.ONLY_BINARY: (
            "has no usable wheels (only_binary is set for {name})",
            "have no usable wheels (only_binary is set for {name})",
        ),
        Reason.EXCLUDE_NEWER: (
            "was published after the exclude_newer cutoff",
            "were published after the exclude_newer cutoff",
        ),
        Reason.SDIST_DYNAMIC_METADATA: (
            "has only a source distribution whose metadata needs a build",
            "have only source distributions whose metadata needs a build",
        ),
        Reason.BUILD_FAILED: (
            "has only a source distribution whose metadata build failed",
            "have only source distributions whose metadata build failed",
        ),
        Reason.INVALID_METADATA: ("has invalid metadata", "have invalid metadata"),
        Reason.INCONSISTENT_METADATA: (
            "has metadata inconsistent with its file name",
            "have metadata inconsistent with their file names",
        ),
    }
)


def describe_reason(reason: Reason, subject: str, *, name: str = "", tag: str = "") -> str:
    """Why ``subject`` (one version or a set of them) was passed over, agreeing in number."""
    singular, plural = _REASON_TEXT[reason]
    return (plural if is_plural(subject) else singular).format(name=name, tag=tag)


def join_requirers(clauses: Sequence[str]) -> str:
    """``you require a`` + ``you require b`` -> ``you require a and b``; others joined by and."""
    unique = list(dict.fromkeys(clauses))
    mine = [c.removeprefix("you require ") for c in unique if c.startswith("you require ")]
    others = [c for c in unique if not c.startswith("you require ")]
    parts = [*others, *([f"you require {' and '.join(mine)}"] if mine else [])]
    return " and ".join(parts)
