"""Markers as sets of environments: the algebra universal resolution runs on.

A universal lock holds for every environment in its *domain* (a Requires-Python range, narrowed
by ``environments``). The resolver splits the domain into *forks* and must answer, for a
requirement's marker and a fork's marker region, "never here", "always here" or "somewhere
here". Those are questions about sets of environments, which is what a PEP 508 marker denotes;
``dep-logic`` (PDM's marker and specifier algebra, a typed port of poetry-core's) provides the
intersection, union, complement and emptiness test. Everything here is pure and memoised by the
markers' text: the same few hundred markers recur in every job.

Conventions (uv's):

* Requires-Python is judged by its lower bound only (``>=3.8,<4`` reads as ``>=3.8``): a version
  is usable in a region when every Python of the region satisfies that lower bound.
* ``extra == "x"`` clauses are settled before anything else: a Requires-Dist line applies to the
  base candidate where it holds with no extra, and to an extras candidate where it holds with
  one of its extras but not without (the base candidate, which every extras candidate depends
  on, already brings the rest).
* Some platform markers exclude each other although PEP 508 does not say so: ``os_name == 'nt'``
  never holds with ``sys_platform == 'linux'``, ``platform_system == 'FreeBSD'`` never with
  ``sys_platform == 'win32'`` (uv's list, ``_NEVER_TOGETHER``). Every emptiness test here knows
  them, so ``pywinpty; os_name == 'nt'`` is dropped from a lock whose environments are Linux.
* ``platform_system`` values that name exactly one ``sys_platform`` are read as it
  (``platform_system == 'Darwin'`` is ``sys_platform == 'darwin'``), as uv does, so the two
  spellings meet in one variable; ``FreeBSD`` and the like are not (their ``sys.platform``
  carries a version).
* A wheel's tags become the marker of the environments that could install it (interpreter and
  ABI → Python version and implementation; platform → ``sys_platform`` and
  ``platform_machine``), so "is this file usable anywhere in the lock's domain?" is an
  emptiness test too.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator, Sequence

from dep_logic.markers import (
    AnyMarker,
    BaseMarker,
    EmptyMarker,
    InvalidMarker,
    MarkerUnion,
    MultiMarker,
)
from dep_logic.markers import parse_marker as _parse_marker
from dep_logic.markers.single import MarkerExpression
from dep_logic.specifiers import RangeSpecifier, UnionSpecifier
from dep_logic.specifiers.base import BaseSpecifier
from packaging.markers import Marker
from packaging.utils import canonicalize_name
from packaging.version import Version

from service.resolution.environment import python_lower_bound

__all__ = [
    "ANY",
    "EMPTY",
    "BaseMarker",
    "InvalidMarker",
    "covers",
    "disjoint",
    "format_marker",
    "is_empty",
    "lower_python_bound",
    "marker_extras",
    "parse_marker",
    "python_range_marker",
    "requirement_marker",
    "requires_python_marker",
    "simplify",
    "wheel_marker",
]

ANY: BaseMarker = AnyMarker()
EMPTY: BaseMarker = EmptyMarker()
_PYTHON_NAMES = ("python_version", "python_full_version")
_TRAILING_ZEROS = re.compile(r"(python_full_version (?:<|<=|>|>=|==|!=) '\d+\.\d+)(?:\.0)+'")


# Values of one marker that never hold with these values of ``sys_platform`` (uv's list of
# known incompatibilities: what real interpreters report, beyond PEP 508's grammar).
_SYS_PLATFORMS = (
    "aix",
    "android",
    "emscripten",
    "ios",
    "linux",
    "darwin",
    "win32",
    "cygwin",
    "wasi",
)
_NEVER_TOGETHER: dict[tuple[str, str], tuple[str, ...]] = {
    ("os_name", "nt"): ("linux", "darwin", "ios"),
    ("os_name", "posix"): ("win32",),
    **{
        ("platform_system", system): tuple(
            p for p in _SYS_PLATFORMS if not (p == "ios" and system in {"iOS", "iPadOS"})
        )
        for system in ("FreeBSD", "NetBSD", "OpenBSD", "SunOS", "iOS", "iPadOS")
    },
}


@functools.cache
def _any_of(name: str, values: tuple[str, ...]) -> BaseMarker:
    marker = EMPTY
    for value in values:
        marker = marker | parse_marker(f"{name} == '{value}'")
    return marker


_SYSTEM_PLATFORMS = {
    "Windows": "win32",
    "Darwin": "darwin",
    "Linux": "linux",
    "AIX": "aix",
    "Emscripten": "emscripten",
    "Android": "android",
}
_SYSTEM_NAMES = "|".join(_SYSTEM_PLATFORMS)
_PLATFORM_SYSTEM = re.compile(rf"""\bplatform_system\s*(==|!=)\s*(["'])({_SYSTEM_NAMES})\2""")


def parse_marker(text: str) -> BaseMarker:
    """dep-logic's marker of ``text``, ``platform_system`` read as ``sys_platform`` where the
    two name the same platforms."""
    if "platform_system" in text:
        text = _PLATFORM_SYSTEM.sub(
            lambda m: f"sys_platform {m[1]} '{_SYSTEM_PLATFORMS[m[3]]}'", text
        )
    return _parse_marker(text)


def _implies(conjunct: BaseMarker, implied: BaseMarker) -> bool:
    return (conjunct & ~implied).is_empty()


def _impossible(conjunct: BaseMarker) -> bool:
    """Whether a conjunction pins a platform pair that ``_NEVER_TOGETHER`` rules out."""
    return any(
        _implies(conjunct, _any_of(name, (value,)))
        and _implies(conjunct, _any_of("sys_platform", platforms))
        for (name, value), platforms in _NEVER_TOGETHER.items()
    )


@functools.lru_cache(maxsize=16384)
def _is_empty(text: str) -> bool:
    for conjunct in _conjuncts(parse_marker(text)):
        joined = _join([conjunct])
        if not joined.is_empty() and not _impossible(joined):
            return False
    return True


def is_empty(marker: BaseMarker) -> bool:
    """Whether ``marker`` holds in no environment (``_NEVER_TOGETHER`` included)."""
    if marker.is_empty():
        return True
    if marker.is_any():
        return False
    text = str(marker)
    if "sys_platform" not in text or ("os_name" not in text and "platform_system" not in text):
        return False
    return _is_empty(text)


def covers(region: BaseMarker, marker: BaseMarker) -> bool:
    """Whether ``marker`` holds in every environment of ``region``."""
    if marker.is_any():
        return True
    return is_empty(region & ~marker)


def disjoint(region: BaseMarker, marker: BaseMarker) -> bool:
    """Whether ``marker`` holds in no environment of ``region``."""
    return is_empty(region & marker)


# -- from PEP 508 requirement markers ----------------------------------------------------------


def _atom(item: tuple[object, object, object]) -> str:
    left, op, right = (str(getattr(part, "value", part)) for part in item)
    # packaging keeps a literal on either side ("linux" == sys_platform); so does the text.
    if type(item[0]).__name__ == "Variable":
        return f'{left} {op} "{right}"'
    return f'"{left}" {op} {right}'


def _is_extra(item: tuple[object, object, object]) -> bool:
    return any(
        type(part).__name__ == "Variable" and getattr(part, "value", None) == "extra"
        for part in (item[0], item[2])
    )


def _extra_holds(item: tuple[object, object, object], extra: str) -> bool:
    left, op, right = (getattr(part, "value", part) for part in item)
    value = right if type(item[0]).__name__ == "Variable" else left
    wanted = canonicalize_name(str(value)) if str(value) else ""
    if str(op) == "==":
        return extra == wanted
    if str(op) == "!=":
        return extra != wanted
    # "in" / "not in" on extras are legal but unseen in practice: let packaging decide.
    return Marker(_atom(item)).evaluate({"extra": extra})


def marker_extras(marker: Marker) -> frozenset[str]:
    """The extras ``marker`` names (``extra == "x"``), canonical."""

    def walk(tree: object) -> Iterator[str]:
        if isinstance(tree, tuple) and _is_extra(tree):
            left, _, right = tree
            value = right if type(left).__name__ == "Variable" else left
            yield canonicalize_name(str(getattr(value, "value", value)))
        elif isinstance(tree, list):
            for item in tree:
                yield from walk(item)

    return frozenset(walk(marker._markers))


def _build(tree: object, extra: str) -> BaseMarker:
    """A dep-logic marker for packaging's parsed marker list, ``extra`` substituted."""
    if isinstance(tree, tuple):
        if _is_extra(tree):
            return ANY if _extra_holds(tree, extra) else EMPTY
        return parse_marker(_atom(tree))
    assert isinstance(tree, list)
    groups: list[BaseMarker] = [ANY]
    for item in tree:
        if item == "or":
            groups.append(ANY)
        elif item != "and":
            groups[-1] = groups[-1] & _build(item, extra)
    result = groups[0]
    for group in groups[1:]:
        result = result | group
    return result


@functools.lru_cache(maxsize=16384)
def _marker_with_extra(text: str, extra: str) -> BaseMarker:
    return _build(Marker(text)._markers, extra)


def requirement_marker(marker: Marker | None, extras: frozenset[str] = frozenset()) -> BaseMarker:
    """Where a Requires-Dist line applies: for the base candidate (``extras`` empty), or for an
    extras candidate (see the module docstring)."""
    if marker is None:
        return EMPTY if extras else ANY
    text = str(marker)
    base = _marker_with_extra(text, "")
    if not extras:
        return base
    with_extras = EMPTY
    for extra in sorted(extras):
        with_extras = with_extras | _marker_with_extra(text, extra)
    return with_extras & ~base


# -- Python versions ---------------------------------------------------------------------------


def _full_version(version: str) -> str:
    parts = version.split(".")
    return ".".join([*parts, *["0"] * (3 - len(parts))]) if len(parts) < 3 else version


@functools.lru_cache(maxsize=4096)
def requires_python_marker(requires_python: str | None) -> BaseMarker:
    """The environments whose Python satisfies ``requires_python``'s lower bound (uv's reading).

    Unparsable or bound-less values constrain nothing, as they do for a single target.
    """
    if not requires_python:
        return ANY
    bound = python_lower_bound(requires_python)
    if bound is None:
        return ANY
    result = ANY
    for spec in bound:
        version = spec.version.removesuffix(".*")
        result = result & parse_marker(f'python_full_version {spec.operator} "{version}"')
    return result


@functools.lru_cache(maxsize=1024)
def python_range_marker(specifiers: str) -> BaseMarker:
    """The environments whose Python is in ``specifiers`` (all of it, upper bounds included):
    the lock's ``requires_python``. Raises ``InvalidMarker`` for a specifier that is not one."""
    result = ANY
    for part in (p.strip() for p in specifiers.split(",")):
        if not part:
            continue
        match = re.fullmatch(r"(~=|===|==|!=|<=|>=|<|>)\s*(\S+)", part)
        if match is None:
            raise InvalidMarker(f"{part!r} is not a version specifier")
        op, version = match.groups()
        if op == "===":
            op = "=="
        if not version.endswith(".*"):
            version = _full_version(version)
        result = result & parse_marker(f'python_full_version {op} "{version}"')
    return result


def _specifier_of(marker: BaseMarker) -> BaseSpecifier | None:
    """The Python-version set of a marker made of Python clauses only (None: not such)."""
    if isinstance(marker, MarkerExpression):
        return marker.specifier if marker.name in _PYTHON_NAMES else None
    if isinstance(marker, MultiMarker | MarkerUnion):
        parts = [_specifier_of(m) for m in marker.markers]
        if any(part is None for part in parts):
            return None
        result = parts[0]
        assert result is not None
        for part in parts[1:]:
            assert part is not None
            result = (result & part) if isinstance(marker, MultiMarker) else (result | part)
        return result
    return None


@functools.lru_cache(maxsize=4096)
def _lower_bound(text: str) -> Version | None:
    marker = parse_marker(text).only(*_PYTHON_NAMES)
    if marker.is_any() or marker.is_empty():
        return None
    specifier = _specifier_of(marker)
    if isinstance(specifier, UnionSpecifier):
        specifier = specifier.ranges[0]
    if isinstance(specifier, RangeSpecifier) and specifier.min is not None:
        return specifier.min
    return None


def lower_python_bound(region: BaseMarker) -> Version | None:
    """The lowest Python version ``region`` admits, where its Python clauses say one."""
    if region.is_any() or region.is_empty():
        return None
    return _lower_bound(str(region))


def raises_python(region: BaseMarker, marker: BaseMarker) -> bool:
    """Whether ``marker`` within ``region`` lifts the lowest Python (uv forks on such a
    requirement so that the part above the new bound can use versions that need it)."""
    narrowed = lower_python_bound(region & marker)
    if narrowed is None:
        return False
    current = lower_python_bound(region)
    return current is None or narrowed > current


# -- wheel tags --------------------------------------------------------------------------------

_IMPLEMENTATIONS = {"cp": "cpython", "pp": "pypy", "graalpy": "graalpy", "ip": "ironpython"}
_LINUX_PLATFORM = re.compile(r"^(?:manylinux_\d+_\d+|musllinux_\d+_\d+|manylinux\d+|linux)_(.+)$")
_MAC_MACHINES = {
    "x86_64": ("x86_64",),
    "arm64": ("arm64",),
    "universal2": ("x86_64", "arm64"),
    "intel": ("x86_64",),
    "universal": ("x86_64", "arm64"),
    "i386": ("i386",),
    "ppc64": ("ppc64",),
    "ppc": ("ppc",),
    "fat64": ("x86_64",),
    "fat32": ("i386",),
    "fat": ("i386",),
}
_WINDOWS_MACHINES = {"win_amd64": "AMD64", "win32": "x86", "win_arm64": "ARM64", "win_ia64": "ia64"}


def _machines(values: Iterable[str]) -> str:
    return " or ".join(f'platform_machine == "{value}"' for value in values)


@functools.lru_cache(maxsize=4096)
def _platform_marker(platform: str) -> BaseMarker:
    if platform == "any":
        return ANY
    if platform in _WINDOWS_MACHINES:
        return parse_marker(
            f'sys_platform == "win32" and platform_machine == "{_WINDOWS_MACHINES[platform]}"'
        )
    if platform.startswith(("manylinux", "musllinux", "linux_")):
        match = _LINUX_PLATFORM.match(platform)
        if match is None:
            return parse_marker('sys_platform == "linux"')
        return parse_marker(f'sys_platform == "linux" and platform_machine == "{match[1]}"')
    if platform.startswith("macosx_"):
        machine = platform.split("_", 3)[-1]
        machines = _MAC_MACHINES.get(machine, (machine,))
        return parse_marker(f'sys_platform == "darwin" and ({_machines(machines)})')
    if platform.startswith("android_"):
        return parse_marker('sys_platform == "android"')
    if platform.startswith("ios_"):
        return parse_marker('sys_platform == "ios"')
    # A platform no marker describes (a BSD, an unknown system): usable nowhere we can name.
    return EMPTY


@functools.lru_cache(maxsize=4096)
def _python_marker(interpreter: str, abi: str) -> BaseMarker:
    match = re.fullmatch(r"([a-z]+)(\d)(\d*)", interpreter)
    if match is None:
        return EMPTY
    family, major, minor = match.groups()
    if major != "3":
        return EMPTY  # Python 2 wheels install nowhere a lock can target
    if family == "py":
        if not minor:
            return ANY
        return parse_marker(f'python_full_version >= "3.{minor}"')
    implementation = _IMPLEMENTATIONS.get(family)
    if implementation is None or not minor:
        return EMPTY
    python = f'python_version == "3.{minor}"'
    if abi == "abi3":
        python = f'python_full_version >= "3.{minor}"'
    elif abi == "none":
        python = f'python_full_version >= "3.{minor}"' if family == "cp" else python
    return parse_marker(f'{python} and implementation_name == "{implementation}"')


@functools.lru_cache(maxsize=16384)
def _tag_marker(tag: str) -> BaseMarker:
    interpreter, _, rest = tag.partition("-")
    abi, _, platform = rest.partition("-")
    return _python_marker(interpreter, abi) & _platform_marker(platform)


def wheel_marker(tags: Sequence[str]) -> BaseMarker:
    """The environments that could install a wheel with these (expanded) tags."""
    result = EMPTY
    for tag in tags:
        result = result | _tag_marker(tag)
        if result.is_any():
            break
    return result


# -- presentation ------------------------------------------------------------------------------


def _conjuncts(marker: BaseMarker) -> list[list[BaseMarker]]:
    """``marker`` in disjunctive normal form: a list of conjunctions of single clauses."""
    if isinstance(marker, MarkerUnion):
        return [c for m in marker.markers for c in _conjuncts(m)]
    if isinstance(marker, MultiMarker):
        product: list[list[BaseMarker]] = [[]]
        for part in marker.markers:
            product = [left + right for left in product for right in _conjuncts(part)]
        return product
    return [[marker]]


def _join(conjuncts: Sequence[Sequence[BaseMarker]]) -> BaseMarker:
    result = EMPTY
    for conjunct in conjuncts:
        term = ANY
        for atom in conjunct:
            term = term & atom
        result = result | term
    return result


def _equivalent(a: BaseMarker, b: BaseMarker, domain: BaseMarker) -> bool:
    return is_empty(domain & a & ~b) and is_empty(domain & b & ~a)


@functools.lru_cache(maxsize=8192)
def _simplify(text: str, domain_text: str) -> BaseMarker:
    marker, domain = parse_marker(text), parse_marker(domain_text)
    if covers(domain, marker):
        return ANY
    if disjoint(domain, marker):
        return EMPTY
    conjuncts = _conjuncts(marker)
    outside = ~domain.only(*_PYTHON_NAMES)
    # Drop the clauses the domain already implies (requires-python's own bound, say), and
    # widen a Python range to the domain's edge where that reads shorter ("< 3.12", not
    # "~= 3.11.0" in a lock for ">=3.11") ...
    for index, conjunct in enumerate(conjuncts):
        kept = list(conjunct)
        for atom in conjunct:
            trial = [a for a in kept if a is not atom]
            if _equivalent(_join([trial]), _join([kept]), domain):
                kept = trial
                continue
            if isinstance(atom, MarkerExpression) and atom.name in _PYTHON_NAMES:
                wider = atom | outside
                if len(str(wider)) < len(str(atom)):
                    kept = [wider if a is atom else a for a in kept]
        conjuncts[index] = kept
    # ... then the alternatives the others already cover.
    position = 0
    while position < len(conjuncts) and len(conjuncts) > 1:
        fewer = conjuncts[:position] + conjuncts[position + 1 :]
        if _equivalent(_join(fewer), _join(conjuncts), domain):
            conjuncts = fewer
        else:
            position += 1
    simplified = _join(conjuncts)
    # dep-logic's own normal form is sometimes shorter still; keep whichever reads shorter.
    return min((simplified, marker), key=lambda m: len(str(m)))


def simplify(marker: BaseMarker, domain: BaseMarker) -> BaseMarker:
    """The shortest marker found that selects, within ``domain``, what ``marker`` selects."""
    if marker.is_any() or marker.is_empty():
        return marker
    return _simplify(str(marker), str(domain))


def _python_full(atom: MarkerExpression) -> str | None:
    """A ``python_version`` clause as the ``python_full_version`` one uv writes, when exact."""
    match = re.fullmatch(r"(\d+)\.(\d+)", atom.value)
    if atom.name != "python_version" or atom.reversed or match is None:
        return None
    major, minor = match[1], int(match[2])
    following = f"{major}.{minor + 1}"
    return {
        ">=": f"python_full_version >= '{atom.value}'",
        "<": f"python_full_version < '{atom.value}'",
        ">": f"python_full_version >= '{following}'",
        "<=": f"python_full_version < '{following}'",
        "==": f"python_full_version == '{atom.value}.*'",
        "!=": f"python_full_version != '{atom.value}.*'",
    }.get(atom.op)


def _atom_text(atom: BaseMarker) -> str:
    if isinstance(atom, MarkerExpression):
        if atom.name == "python_full_version" and atom.op == "~=":
            # dep-logic's "~= 3.11.0" is the 3.11 series.
            series = re.fullmatch(r"(\d+\.\d+)\.0", atom.value)
            if series:
                return f"python_full_version == '{series[1]}.*'"
        full = _python_full(atom)
        if full is not None:
            return full
    text = str(atom).replace('"', "'")
    # python_full_version < '3.12.0' reads as uv writes it: < '3.12' (equal under PEP 440).
    return _TRAILING_ZEROS.sub(r"\1'", text)


def _atom_order(text: str) -> tuple[int, str]:
    # Python clauses first, then the others by name (as uv writes conjunctions).
    return (0 if text.startswith("python_") else 1, text)


def format_marker(marker: BaseMarker) -> str | None:
    """PEP 508 text for ``marker`` as uv writes it: alternatives of conjunctions, Python
    clauses as ``python_full_version``, single quotes; ``None`` for "always"."""
    if marker.is_any():
        return None
    if marker.is_empty():
        return "python_full_version < '0'"  # never: no environment has Python below 0
    alternatives = []
    for conjunct in _conjuncts(marker):
        atoms = sorted((_atom_text(atom) for atom in conjunct), key=_atom_order)
        alternatives.append(" and ".join(f"({a})" if " or " in a else a for a in atoms))
    if len(alternatives) == 1:
        return alternatives[0]
    return " or ".join(f"({a})" if " and " in a else a for a in alternatives)
