"""Hypothesis strategies for the things an index serves: names, versions, filenames, tags.

Each strategy that produces something written also produces what a correct parser must read
back from it, computed here from the generated parts and never by the code under test:
``versions()`` yields ``(written, normalized)``, ``wheel_filenames()`` yields the filename
with its canonical project, normalized version and expanded tags.
"""

from __future__ import annotations

import itertools
import re
import string
from dataclasses import dataclass

from hypothesis import strategies as st

__all__ = [
    "DistFilename",
    "Version",
    "canonical",
    "dist_filenames",
    "project_names",
    "requirements",
    "specifier_sets",
    "versions",
    "wheel_filenames",
]

_ALNUM = string.ascii_letters + string.digits
_LOWER_ALNUM = string.ascii_lowercase + string.digits
# (Built from alphabets rather than st.from_regex, which is several times slower to draw.)
_words = st.text(alphabet=_ALNUM, min_size=1, max_size=6)

# PEP 508 names: letters and digits, with runs of ., _ and - inside.
project_names = st.lists(_words, min_size=1, max_size=3).flatmap(
    lambda words: st.lists(
        st.sampled_from([".", "_", "-", "--", "_."]),
        min_size=len(words) - 1,
        max_size=len(words) - 1,
    ).map(lambda seps: "".join(w + s for w, s in zip(words, [*seps, ""], strict=True)))
)


def canonical(name: str) -> str:
    """PEP 503 normalization, spelled out independently of ``packaging``."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class Version:
    """A version as written in a file or header, and its PEP 440 normal form."""

    written: str
    normalized: str


_numbers = st.integers(min_value=0, max_value=10_000)
_PRE_SPELLINGS = {"a": ["a", "alpha"], "b": ["b", "beta"], "rc": ["rc", "c", "pre", "preview"]}


@st.composite
def versions(draw: st.DrawFn, *, dashes: bool = True) -> Version:
    """PEP 440 versions in several spellings; ``dashes=False`` for filename use (no ``-``)."""
    epoch = draw(st.none() | st.integers(min_value=1, max_value=5))
    release = draw(st.lists(_numbers, min_size=1, max_size=4))
    pad = draw(st.booleans())  # leading zeros are spelled but not significant
    written = [f"{epoch}!" if epoch else ""]
    written.append(".".join(f"0{n}" if pad else str(n) for n in release))
    normalized = [f"{epoch}!" if epoch else "", ".".join(str(n) for n in release)]
    separators = ["", "."] + (["-"] if dashes else [])
    if (pre := draw(st.none() | st.sampled_from(sorted(_PRE_SPELLINGS)))) is not None:
        number = draw(_numbers)
        spelling = draw(st.sampled_from(_PRE_SPELLINGS[pre]))
        written.append(f"{draw(st.sampled_from(separators))}{spelling}{number}")
        normalized.append(f"{pre}{number}")
    if (post := draw(st.none() | _numbers)) is not None:
        written.append(f"{draw(st.sampled_from(separators))}post{post}")
        normalized.append(f".post{post}")
    if (dev := draw(st.none() | _numbers)) is not None:
        written.append(f"{draw(st.sampled_from(separators))}dev{dev}")
        normalized.append(f".dev{dev}")
    local_segments = st.text(alphabet=_LOWER_ALNUM, min_size=1, max_size=5).map(
        lambda segment: segment.lstrip("0") or "z" if segment.isdigit() else segment
    )
    local = draw(st.lists(local_segments, max_size=3))
    if local:
        written.append("+" + ".".join(local))
        normalized.append("+" + ".".join(local))
    text = "".join(written)
    if draw(st.booleans()):
        text = text.upper()  # PEP 440 is case-insensitive
    return Version(written=text, normalized="".join(normalized))


_INTERPRETERS = ["py2", "py3", "py312", "cp311", "cp312", "pp310"]
_ABIS = ["none", "abi3", "cp312", "cp311"]
_PLATFORMS = [
    "any",
    "manylinux_2_17_x86_64",
    "manylinux2014_x86_64",
    "musllinux_1_2_aarch64",
    "macosx_11_0_arm64",
    "win_amd64",
]


@dataclass(frozen=True)
class DistFilename:
    """A distribution filename and what it says."""

    filename: str
    project: str  # canonical
    version: str  # normalized
    kind: str  # "wheel" | "sdist"
    tags: tuple[str, ...]  # sorted, expanded; () for sdists


def _tag_set(draw: st.DrawFn, choices: list[str]) -> list[str]:
    return sorted(draw(st.sets(st.sampled_from(choices), min_size=1, max_size=3)))


@st.composite
def wheel_filenames(draw: st.DrawFn, project: str | None = None) -> DistFilename:
    """``{name}-{version}[-{build}]-{python}-{abi}-{platform}.whl``, tag sets compressed."""
    name = project if project is not None else draw(project_names)
    escaped = re.sub(r"[-_.]+", "_", name)
    version = draw(versions(dashes=False))
    build_number = st.integers(min_value=0, max_value=999)
    build_suffix = st.text(alphabet=string.ascii_lowercase, max_size=3)
    build = draw(
        st.none() | st.builds(lambda n, suffix: f"{n}{suffix}", build_number, build_suffix)
    )
    pythons, abis, platforms = (_tag_set(draw, c) for c in (_INTERPRETERS, _ABIS, _PLATFORMS))
    parts = [escaped, version.written, *([build] if build else [])]
    parts += [".".join(pythons), ".".join(abis), ".".join(platforms)]
    tags = tuple(sorted("-".join(t) for t in itertools.product(pythons, abis, platforms)))
    return DistFilename(
        filename="-".join(parts) + ".whl",
        project=canonical(name),
        version=version.normalized,
        kind="wheel",
        tags=tags,
    )


@st.composite
def sdist_filenames(draw: st.DrawFn, project: str | None = None) -> DistFilename:
    """``{name}-{version}.tar.gz`` or ``.zip``."""
    name = project if project is not None else draw(project_names)
    version = draw(versions(dashes=False))
    extension = draw(st.sampled_from([".tar.gz", ".zip"]))
    return DistFilename(
        filename=f"{name}-{version.written}{extension}",
        project=canonical(name),
        version=version.normalized,
        kind="sdist",
        tags=(),
    )


def dist_filenames(project: str | None = None) -> st.SearchStrategy[DistFilename]:
    """Wheel or sdist filenames, for ``project`` when given."""
    return wheel_filenames(project) | sdist_filenames(project)


_OPERATORS = ["==", "!=", ">=", "<=", ">", "<", "~="]


@st.composite
def specifier_sets(draw: st.DrawFn) -> str:
    """Valid specifier sets: ``>=3.8``, ``>=1.0,<2``, ``!=3.10.*``."""
    specifiers = []
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        operator = draw(st.sampled_from([*_OPERATORS, "==*", "!=*"]))
        release = ".".join(str(n) for n in draw(st.lists(_numbers, min_size=2, max_size=3)))
        if operator.endswith("*"):
            specifiers.append(f"{operator[:-1]}{release}.*")
        else:
            specifiers.append(f"{operator}{release}")
    return ",".join(specifiers)


@st.composite
def requirements(draw: st.DrawFn) -> str:
    """Valid PEP 508 requirements: name, extras, specifiers, markers."""
    text = draw(project_names)
    if extras := draw(st.lists(st.text(alphabet=string.ascii_lowercase, min_size=1), max_size=2)):
        text += f"[{','.join(extras)}]"
    if draw(st.booleans()):
        text += draw(specifier_sets())
    marker = draw(
        st.none()
        | st.sampled_from(
            [
                'python_version >= "3.8"',
                'sys_platform == "win32"',
                'extra == "socks"',
                'platform_machine != "arm64" and python_version < "3.13"',
            ]
        )
    )
    if marker is not None:
        text += f"; {marker}"
    return text
