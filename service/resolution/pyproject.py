"""A ``pyproject.toml`` read into requirement lines, as ``uv pip compile pyproject.toml`` reads it.

``read_pyproject`` takes the text and the chosen ``extras`` and ``groups`` and returns the
requirement lines they select: ``[project].dependencies``, the named
``[project.optional-dependencies]`` (``"all"``: every extra; a self-reference such as
``"me[test]"`` expands that extra of the project itself, as uv and pip do) and the PEP 735
``[dependency-groups]`` (``{include-group = "..."}`` expanded, cycles refused), plus
``[project].requires-python``. Nothing is fetched or built: a project whose dependencies are
``dynamic`` is refused.

Dependency groups are expanded here rather than with the ``dependency-groups`` package (PEP 735's
reference implementation): its errors are bare ``ValueError``/``LookupError`` messages, while a
refusal here must name the request field it comes from (``pyproject.groups[1]``), and the
expansion is a short recursive walk that follows the PEP's rules (names compared normalized,
duplicate normalized names refused, an include entry holding exactly ``include-group``).
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from packaging.markers import Marker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name

__all__ = ["ALL_EXTRAS", "ProjectInputs", "PyprojectError", "read_pyproject"]

# The extra name that selects every extra the project declares (uv's --all-extras).
ALL_EXTRAS = "all"


@dataclass(frozen=True)
class FieldProblem:
    """One reason the pyproject cannot be used: ``field`` relative to ``pyproject``
    (``content``, ``extras[0]``, ``groups[1]``) and the message."""

    field: str
    message: str


class PyprojectError(ValueError):
    """The pyproject or its chosen extras and groups cannot be used; ``problems`` says where."""

    def __init__(self, problems: Sequence[FieldProblem]) -> None:
        super().__init__("; ".join(f"pyproject.{p.field}: {p.message}" for p in problems))
        self.problems = tuple(problems)


@dataclass(frozen=True)
class ProjectInputs:
    """What the pyproject selects: requirement lines in declaration order, and Requires-Python."""

    requirements: tuple[str, ...]
    requires_python: str | None = None


@dataclass
class _Reader:
    problems: list[FieldProblem] = field(default_factory=list)

    def add(self, where: str, message: str) -> None:
        self.problems.append(FieldProblem(where, message))

    def requirement_lines(self, values: object, where: str) -> list[Requirement]:
        """``values`` as a TOML array of PEP 508 strings; each bad one is a problem."""
        if not isinstance(values, list):
            self.add("content", f"{where} must be an array of requirement strings")
            return []
        parsed = []
        for position, value in enumerate(values):
            if not isinstance(value, str):
                self.add("content", f"{where}[{position}] must be a requirement string")
                continue
            try:
                parsed.append(Requirement(value))
            except InvalidRequirement as exc:
                self.add("content", f"{where}[{position}]: invalid requirement: {exc}")
        return parsed


def _table(document: Mapping[str, object], key: str, reader: _Reader) -> dict[str, object]:
    value = document.get(key, {})
    if not isinstance(value, dict):
        reader.add("content", f"[{key}] must be a table")
        return {}
    return value


def _with_marker(requirement: Requirement, marker: Marker | None) -> Requirement:
    """``requirement`` also conditioned on ``marker`` (a self-referencing extra's marker)."""
    if marker is None:
        return requirement
    combined = Requirement(str(requirement))
    combined.marker = (
        marker if requirement.marker is None else Marker(f"({requirement.marker}) and ({marker})")
    )
    return combined


def _expand_extras(
    project: str | None,
    extras: Mapping[str, list[Requirement]],
    chosen: Sequence[str],
) -> list[Requirement]:
    """The requirements of the ``chosen`` extras, self-references to ``project`` expanded."""
    out: list[Requirement] = []
    seen: set[tuple[str, str | None]] = set()

    def visit(extra: str, marker: Marker | None) -> None:
        key = (extra, None if marker is None else str(marker))
        if key in seen:
            return
        seen.add(key)
        for requirement in extras.get(extra, []):
            if project is not None and canonicalize_name(requirement.name) == project:
                for inner in sorted(canonicalize_name(e) for e in requirement.extras):
                    visit(inner, requirement.marker or marker)
                continue
            out.append(_with_marker(requirement, marker))

    for extra in chosen:
        visit(extra, None)
    return out


def _read_extras(
    reader: _Reader, project: Mapping[str, object], name: str | None, chosen: Sequence[str]
) -> list[Requirement]:
    table = project.get("optional-dependencies", {})
    if not isinstance(table, dict):
        reader.add("content", "[project.optional-dependencies] must be a table")
        return []
    extras: dict[str, list[Requirement]] = {
        canonicalize_name(extra): reader.requirement_lines(
            lines, f"project.optional-dependencies.{extra}"
        )
        for extra, lines in table.items()
    }
    wanted: list[str] = []
    for position, extra in enumerate(chosen):
        normalized = canonicalize_name(extra)
        if normalized == ALL_EXTRAS:
            wanted.extend(sorted(extras))
        elif normalized in extras:
            wanted.append(normalized)
        else:
            declared = ", ".join(sorted(extras)) or "none"
            reader.add(
                f"extras[{position}]",
                f"the project declares no extra {extra!r} (declared: {declared}; "
                f"{ALL_EXTRAS!r} selects every one)",
            )
    return _expand_extras(name, extras, wanted)


def _expand_group(
    reader: _Reader,
    groups: Mapping[str, tuple[str, list[object]]],
    group: str,
    where: str,
    trail: tuple[str, ...],
) -> list[Requirement]:
    """The requirements of one dependency group with its ``include-group`` entries expanded;
    ``trail`` is the chain of groups being expanded (a cycle is a problem at ``where``)."""
    if group in trail:
        cycle = " -> ".join((*trail[trail.index(group) :], group))
        reader.add(where, f"dependency groups include each other in a cycle: {cycle}")
        return []
    declared, entries = groups[group]
    out: list[Requirement] = []
    for position, entry in enumerate(entries):
        location = f"dependency-groups.{declared}[{position}]"
        if isinstance(entry, str):
            try:
                out.append(Requirement(entry))
            except InvalidRequirement as exc:
                reader.add("content", f"{location}: invalid requirement: {exc}")
            continue
        included = entry.get("include-group") if isinstance(entry, dict) else None
        if not isinstance(entry, dict) or set(entry) != {"include-group"}:
            reader.add("content", f"{location} must be a requirement or {{include-group = ...}}")
        elif not isinstance(included, str) or canonicalize_name(included) not in groups:
            reader.add("content", f"{location} includes an unknown group {included!r}")
        else:
            out.extend(
                _expand_group(reader, groups, canonicalize_name(included), where, (*trail, group))
            )
    return out


def _read_groups(
    reader: _Reader, document: Mapping[str, object], chosen: Sequence[str]
) -> list[Requirement]:
    if not chosen:
        return []
    table = _table(document, "dependency-groups", reader)
    groups: dict[str, tuple[str, list[object]]] = {}
    for declared, entries in table.items():
        normalized = canonicalize_name(declared)
        if normalized in groups:
            reader.add(
                "content",
                f"dependency groups {groups[normalized][0]!r} and {declared!r} have the same "
                "normalized name",
            )
        elif not isinstance(entries, list):
            reader.add("content", f"dependency-groups.{declared} must be an array")
        else:
            groups[normalized] = (declared, entries)
    out: list[Requirement] = []
    for position, group in enumerate(chosen):
        normalized = canonicalize_name(group)
        if normalized not in groups:
            declared = ", ".join(sorted(name for name, _ in groups.values())) or "none"
            reader.add(
                f"groups[{position}]",
                f"the pyproject declares no dependency group {group!r} (declared: {declared})",
            )
            continue
        out.extend(_expand_group(reader, groups, normalized, f"groups[{position}]", ()))
    return out


def _read_project(
    reader: _Reader, project: Mapping[str, object]
) -> tuple[str | None, list[Requirement], str | None]:
    """The project's normalized name, its dependencies and its Requires-Python."""
    raw_name = project.get("name")
    name = canonicalize_name(raw_name) if isinstance(raw_name, str) else None
    dynamic = project.get("dynamic", [])
    if isinstance(dynamic, list) and "dependencies" in dynamic:
        reader.add(
            "content",
            "[project].dependencies is dynamic: resolvd does not build projects; "
            "declare the dependencies statically",
        )
    dependencies = reader.requirement_lines(project.get("dependencies", []), "project.dependencies")
    requires_python = project.get("requires-python")
    if requires_python is not None:
        try:
            SpecifierSet(str(requires_python))
        except InvalidSpecifier as exc:
            reader.add("content", f"project.requires-python: not a version specifier: {exc}")
            requires_python = None
    return name, dependencies, None if requires_python is None else str(requires_python)


def read_pyproject(
    content: str, *, extras: Sequence[str] = (), groups: Sequence[str] = ()
) -> ProjectInputs:
    """The requirement lines ``content`` selects with ``extras`` and ``groups`` (module doc).

    Raises ``PyprojectError`` with every problem found, each naming its field.
    """
    reader = _Reader()
    try:
        document = tomllib.loads(content)
    except tomllib.TOMLDecodeError as exc:
        raise PyprojectError([FieldProblem("content", f"not valid TOML: {exc}")]) from exc
    project = _table(document, "project", reader)
    name, requirements, requires_python = _read_project(reader, project)
    requirements += _read_extras(reader, project, name, extras)
    requirements += _read_groups(reader, document, groups)
    if reader.problems:
        raise PyprojectError(reader.problems)
    return ProjectInputs(
        requirements=tuple(dict.fromkeys(str(r) for r in requirements)),
        requires_python=requires_python,
    )
