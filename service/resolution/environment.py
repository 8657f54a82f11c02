"""The target environment: PEP 508 marker values and wheel tags for a Python version + platform.

``platform`` takes uv's ``--python-platform`` vocabulary. Each name maps to an operating system,
a machine architecture and a platform-tag family (manylinux with a glibc version, musllinux,
macOS with a minimum version, Windows), from which ``packaging.tags`` derives the ordered list of
compatible wheel tags, most specific first.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

from packaging import tags
from packaging.specifiers import InvalidSpecifier, Specifier, SpecifierSet
from packaging.version import InvalidVersion, Version

__all__ = [
    "SUPPORTED_PLATFORMS",
    "TargetEnvironment",
    "UnsupportedTargetError",
    "make_target_environment",
    "python_lower_bound",
]

OS = Literal["linux", "musllinux", "macos", "windows"]


@dataclass(frozen=True)
class _Platform:
    os: OS
    arch: str
    # manylinux/musllinux: (major, minor) libc version; macOS: minimum OS version.
    version: tuple[int, int] = (0, 0)


_LINUX_ARCHES = ("x86_64", "aarch64", "i686", "armv7", "ppc64le", "s390x", "riscv64")
_MANYLINUX_MINORS = range(17, 41)


def _make_platforms() -> dict[str, _Platform]:
    platforms: dict[str, _Platform] = {
        "linux": _Platform("linux", "x86_64", (2, 28)),
        "windows": _Platform("windows", "x86_64"),
        "macos": _Platform("macos", "aarch64", (13, 0)),
        "x86_64-pc-windows-msvc": _Platform("windows", "x86_64"),
        "i686-pc-windows-msvc": _Platform("windows", "i686"),
        "aarch64-pc-windows-msvc": _Platform("windows", "aarch64"),
        "aarch64-apple-darwin": _Platform("macos", "aarch64", (13, 0)),
        "x86_64-apple-darwin": _Platform("macos", "x86_64", (13, 0)),
    }
    for arch in _LINUX_ARCHES:
        platforms[f"{arch}-unknown-linux-gnu"] = _Platform("linux", arch, (2, 28))
        platforms[f"{arch}-unknown-linux-musl"] = _Platform("musllinux", arch, (1, 2))
        platforms[f"{arch}-manylinux2014"] = _Platform("linux", arch, (2, 17))
        for minor in _MANYLINUX_MINORS:
            platforms[f"{arch}-manylinux_2_{minor}"] = _Platform("linux", arch, (2, minor))
    return platforms


_PLATFORMS = _make_platforms()
SUPPORTED_PLATFORMS: frozenset[str] = frozenset(_PLATFORMS)

_PYTHON_VERSION = re.compile(r"^3\.(\d{1,2})(?:\.(\d{1,3}))?$")

# Legacy manylinux aliases (PEP 600): wheels still carry these names.
_LEGACY_MANYLINUX = {(2, 17): "manylinux2014", (2, 12): "manylinux2010", (2, 5): "manylinux1"}


class UnsupportedTargetError(ValueError):
    """A Python version or platform the service cannot target; ``field`` names which."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def _linux_platform_tags(platform: _Platform) -> Iterator[str]:
    arch = platform.arch
    if platform.os == "musllinux":
        major, minor = platform.version
        for musl_minor in range(minor, -1, -1):
            yield f"musllinux_{major}_{musl_minor}_{arch}"
    else:
        _, glibc_minor = platform.version
        for minor in range(glibc_minor, 4, -1):
            yield f"manylinux_2_{minor}_{arch}"
            if (legacy := _LEGACY_MANYLINUX.get((2, minor))) and arch in ("x86_64", "i686") + (
                ("aarch64", "ppc64le", "s390x", "armv7l") if minor == 17 else ()
            ):
                yield f"{legacy}_{arch}"
    yield f"linux_{arch}"


def _platform_tags(platform: _Platform) -> list[str]:
    if platform.os in ("linux", "musllinux"):
        arch = "armv7l" if platform.arch == "armv7" else platform.arch
        return list(_linux_platform_tags(_Platform(platform.os, arch, platform.version)))
    if platform.os == "macos":
        arch = "arm64" if platform.arch == "aarch64" else platform.arch
        return list(tags.mac_platforms(platform.version, arch))
    return [{"x86_64": "win_amd64", "i686": "win32", "aarch64": "win_arm64"}[platform.arch]]


def _marker_machine(platform: _Platform) -> str:
    if platform.os == "windows":
        return {"x86_64": "AMD64", "i686": "x86", "aarch64": "ARM64"}[platform.arch]
    if platform.os == "macos":
        return "arm64" if platform.arch == "aarch64" else platform.arch
    return "armv7l" if platform.arch == "armv7" else platform.arch


@dataclass(frozen=True)
class TargetEnvironment:
    """Everything the resolver needs to know about where the result will be installed."""

    python_version: str
    platform_name: str
    python_full_version: str
    markers: dict[str, str]
    supported_tags: tuple[str, ...]

    @cached_property
    def tag_priority(self) -> dict[str, int]:
        """Tag string -> rank (0 is the most preferred)."""
        return {tag: rank for rank, tag in enumerate(self.supported_tags)}

    @cached_property
    def python(self) -> Version:
        return Version(self.python_full_version)

    @property
    def key(self) -> tuple[str, str]:
        """What the target is made from: equal keys, equal targets."""
        return (self.python_full_version, self.platform_name)

    @cached_property
    def _python_verdicts(self) -> dict[str, bool]:
        # Requires-Python strings repeat across thousands of files (53 distinct in 50,000).
        return {}

    def best_tag_rank(self, file_tags: tuple[str, ...]) -> int | None:
        """The best rank among ``file_tags``, or None when none is compatible."""
        ranks = [self.tag_priority[tag] for tag in file_tags if tag in self.tag_priority]
        return min(ranks) if ranks else None

    def allows_python(self, requires_python: str | None) -> bool:
        """Whether the target Python satisfies ``requires_python``'s lower bound.

        Like uv, upper bounds are ignored: packages routinely cap Requires-Python
        pessimistically, and honouring caps makes otherwise sound resolutions fail.
        """
        if not requires_python:
            return True
        verdicts = self._python_verdicts
        allowed = verdicts.get(requires_python)
        if allowed is None:
            bound = python_lower_bound(requires_python)
            allowed = verdicts[requires_python] = bound is None or bound.contains(
                self.python, prereleases=True
            )
        return allowed


@functools.lru_cache(maxsize=4096)
def python_lower_bound(requires_python: str) -> SpecifierSet | None:
    """The lower-bound part of a Requires-Python specifier set (None if unparsable or empty).

    Computed once per distinct string in the process; callers never mutate the result."""
    try:
        specifiers = SpecifierSet(requires_python)
    except InvalidSpecifier:
        return None
    kept: list[str] = []
    for spec in specifiers:
        version = spec.version.removesuffix(".*")
        if spec.operator in (">=", ">"):
            kept.append(str(spec))
        elif spec.operator in ("~=", "==", "==="):
            kept.append(f">={version}")
    try:
        return SpecifierSet(",".join(kept)) if kept else None
    except InvalidSpecifier:
        return None


@functools.lru_cache(maxsize=256)
def make_target_environment(python_version: str, platform: str) -> TargetEnvironment:
    """Build the target for ``python_version`` ("3.12" or "3.12.4") and a uv platform name.

    One per (version, platform) in the process, so that every job for the same target shares
    its tag table and its Requires-Python verdicts; callers never mutate it (``markers``)."""
    match = _PYTHON_VERSION.match(python_version)
    if not match:
        raise UnsupportedTargetError(
            "environment.python_version", f"expected 3.X or 3.X.Y, got {python_version!r}"
        )
    spec = _PLATFORMS.get(platform)
    if spec is None:
        raise UnsupportedTargetError(
            "environment.platform",
            f"unknown platform {platform!r}; use uv's --python-platform names such as "
            "'x86_64-manylinux_2_28', 'aarch64-apple-darwin', 'x86_64-pc-windows-msvc', 'linux'",
        )
    minor = int(match[1])
    full = f"3.{minor}.{match[2] or 0}"
    try:
        Version(full)
        Specifier(f"=={full}")
    except (InvalidVersion, InvalidSpecifier) as exc:  # pragma: no cover - regex guards this
        raise UnsupportedTargetError("environment.python_version", str(exc)) from exc
    os_values = {
        "linux": ("posix", "linux", "Linux"),
        "musllinux": ("posix", "linux", "Linux"),
        "macos": ("posix", "darwin", "Darwin"),
        "windows": ("nt", "win32", "Windows"),
    }[spec.os]
    markers = {
        "implementation_name": "cpython",
        "implementation_version": full,
        "os_name": os_values[0],
        "platform_machine": _marker_machine(spec),
        "platform_python_implementation": "CPython",
        "platform_release": "",
        "platform_system": os_values[2],
        "platform_version": "",
        "python_full_version": full,
        "python_version": f"3.{minor}",
        "sys_platform": os_values[1],
    }
    platform_tags = _platform_tags(spec)
    supported = [
        *tags.cpython_tags((3, minor), platforms=platform_tags),
        *tags.compatible_tags((3, minor), interpreter=f"cp3{minor}", platforms=platform_tags),
    ]
    return TargetEnvironment(
        python_version=f"3.{minor}",
        platform_name=platform,
        python_full_version=full,
        markers=markers,
        supported_tags=tuple(dict.fromkeys(str(tag) for tag in supported)),
    )
