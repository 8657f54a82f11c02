"""Real-shaped project pages: the wheels under ``/opt`` among the thousands of files of real pages.

The ``/opt`` indexes hold one wheel per version (CPython 3.11, x86_64 Linux) for a handful of
versions, so their pages are a few hundred bytes; pypi.org's run to megabytes (pydantic-core's
JSON page lists about 15,000 files, botocore's several thousand versions). ``make_shaped_page``
generates, deterministically from the project's name, what a real page holds besides the wheels
on disk, in PyPI's own JSON shape (PEP 691, with PEP 700 sizes and upload times):

* per real version, its sibling wheels for other interpreters (cp39…cp313, free-threaded) and
  platforms (Windows, macOS, musl, aarch64, ppc64le, s390x) and an sdist;
* hundreds of older versions (and release candidates of the real ones), each with the wheels a
  release of its era shipped, Requires-Python drawn from the strings real pages use, a few yanked;
* PEP 658 metadata for most projects, none for about one in five (``has_pep658``).

Every generated file is unusable for the benchmark's target (CPython 3.11 on
``x86_64-manylinux_2_34``): no ``py3-none-any``, no ``abi3``, no compatible ``cp311`` wheel and no
sdist of a padded version. So every resolver still picks among the real wheels, reading the same
metadata as on the plain index, and a generated file is only ever fetched by mistake (it would
404); what changes is the page each resolver has to download, decompress and parse, and the
versions it walks past. The files of a real version that a resolver could use are exactly the
ones on disk plus that version's sdist, which none of them picks over a compatible wheel.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from packaging.version import InvalidVersion, Version

__all__ = ["RealWheel", "has_pep658", "make_shaped_page", "render_html", "render_json"]

# Projects whose real pages are known to be huge: (padded versions, files per padded version).
# Orders of magnitude from pypi.org, not exact counts.
_HEAVY: dict[str, tuple[int, int]] = {
    "pydantic-core": (150, 95),
    "grpcio": (300, 30),
    "orjson": (150, 40),
    "numpy": (110, 30),
    "pillow": (90, 40),
    "cryptography": (90, 30),
    "lxml": (80, 40),
    "pyarrow": (50, 30),
    "pandas": (90, 25),
    "scipy": (70, 30),
    "psutil": (90, 25),
    "botocore": (1800, 1),
    "boto3": (1800, 1),
    "pyzmq": (80, 35),
    "tornado": (80, 15),
    "matplotlib": (70, 30),
    "regex": (250, 30),
    "charset-normalizer": (60, 60),
    "rpds-py": (60, 60),
    "jiter": (40, 60),
    "tokenizers": (60, 35),
    "debugpy": (60, 30),
}
_OLD_PYTHONS = ("cp27", "cp35", "cp36", "cp37", "cp38", "cp39", "cp310")
_NEW_PYTHONS = ("cp39", "cp310", "cp312", "cp313", "cp313t", "cp314")
# Platform tags no x86_64 glibc target takes, then x86_64 glibc (fine for other interpreters).
_OTHER_PLATFORMS = (
    "win32",
    "win_amd64",
    "win_arm64",
    "macosx_10_9_x86_64",
    "macosx_11_0_arm64",
    "macosx_10_9_universal2",
    "musllinux_1_1_x86_64",
    "musllinux_1_2_aarch64",
    "manylinux_2_17_aarch64.manylinux2014_aarch64",
    "manylinux_2_17_ppc64le.manylinux2014_ppc64le",
    "manylinux_2_17_s390x.manylinux2014_s390x",
    "manylinux_2_5_i686.manylinux1_i686",
)
_X86_64 = "manylinux_2_17_x86_64.manylinux2014_x86_64"
# The kind of Requires-Python strings real pages carry (53 distinct across 50,000 files).
_REQUIRES_PYTHON = (
    None,
    ">=2.7",
    ">=2.7, !=3.0.*, !=3.1.*, !=3.2.*, !=3.3.*",
    ">=2.7, !=3.0.*, !=3.1.*, !=3.2.*, !=3.3.*, !=3.4.*",
    ">=3.5",
    ">=3.6",
    ">=3.6.1",
    ">=3.7",
    ">=3.7,<4.0",
    ">=3.8",
    ">=3.8,<3.13",
    "~=3.8",
    ">=3.9",
    ">=3.9,<4",
    ">=3.10",
)
_FILES_HOST = "files"


@dataclass(frozen=True)
class RealWheel:
    """A wheel on disk: its name, sha256, size, and what its METADATA says of Python."""

    filename: str
    sha256: str
    size: int
    requires_python: str | None
    metadata_sha256: str | None


def has_pep658(project: str) -> bool:
    """Whether ``project``'s shaped page advertises PEP 658 metadata (about four in five do)."""
    return _digest(project, "pep658")[0] % 5 != 0


def _digest(*parts: str) -> bytes:
    return hashlib.sha256("\0".join(parts).encode()).digest()


def _fake_sha(filename: str) -> str:
    return hashlib.sha256(filename.encode()).hexdigest()


def _older_versions(oldest_real: Version, count: int, rng: random.Random) -> list[str]:
    """Up to ``count`` release numbers below ``oldest_real``, oldest first, as real ones grow.

    Walks down from ``oldest_real``: patches, then minors, then majors, so a project whose first
    real version is 2.0 still gets hundreds of 1.x and 0.x releases.
    """
    release = [*oldest_real.release, 0, 0][:3]
    major, minor, patch = release
    versions: list[str] = []
    while len(versions) < count:
        if patch > 0:
            patch -= 1
        elif minor > 0:
            minor, patch = minor - 1, rng.randint(0, 12)
        elif major > 0:
            major, minor, patch = major - 1, rng.randint(3, 30), rng.randint(0, 12)
        else:
            break
        candidate = f"{major}.{minor}.{patch}"
        if Version(candidate) < oldest_real:
            versions.append(candidate)
    return versions[::-1]


def _upload_time(rng: random.Random, position: float) -> str:
    year = 2012 + int(position * 12)
    return (
        f"{year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T"
        f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}."
        f"{rng.randint(0, 999999):06d}Z"
    )


def _file(
    filename: str,
    url: str,
    *,
    sha256: str,
    requires_python: str | None,
    size: int,
    upload_time: str,
    metadata_sha256: str | None,
    yanked: bool | str = False,
) -> dict[str, Any]:
    """One file as pypi.org's JSON lists it, keys in its order."""
    entry: dict[str, Any] = {}
    if metadata_sha256 is not None:
        entry["core-metadata"] = {"sha256": metadata_sha256}
        entry["data-dist-info-metadata"] = {"sha256": metadata_sha256}
    else:
        entry["core-metadata"] = False
        entry["data-dist-info-metadata"] = False
    entry |= {
        "filename": filename,
        "hashes": {"sha256": sha256},
        "provenance": None,
        "requires-python": requires_python,
        "size": size,
        "upload-time": upload_time,
        "url": url,
        "yanked": yanked,
    }
    return entry


def _generated_files(
    stem: str,
    version: str,
    tags: Sequence[str],
    *,
    sdist: bool,
    files_url: str,
    rng: random.Random,
    position: float,
    requires_python: str | None,
    pep658: bool,
    yanked: bool | str = False,
) -> Iterator[dict[str, Any]]:
    names = [f"{stem}-{version}-{tag}.whl" for tag in tags]
    if sdist:
        names.append(f"{stem.lower()}-{version}.tar.gz")
    uploaded = _upload_time(rng, position)
    for filename in names:
        sha = _fake_sha(filename)
        yield _file(
            filename,
            f"{files_url}/{_FILES_HOST}/{sha[:2]}/{sha[2:4]}/{sha[4:]}/{filename}",
            sha256=sha,
            requires_python=requires_python,
            size=rng.randint(20_000, 40_000_000),
            upload_time=uploaded,
            metadata_sha256=_fake_sha(filename + ".metadata") if pep658 else None,
            yanked=yanked,
        )


def _binary_tags(pythons: Sequence[str], rng: random.Random, width: int) -> list[str]:
    """``width`` interpreter/platform wheel tags, none usable by CPython 3.11 on x86_64 Linux."""
    tags: list[str] = []
    platforms = [*_OTHER_PLATFORMS, _X86_64]
    for python in pythons:
        abi = "cp313t" if python == "cp313t" else python
        interpreter = "cp313" if python == "cp313t" else python
        for platform in platforms:
            if python == "cp311" and platform == _X86_64:
                continue
            tags.append(f"{interpreter}-{abi}-{platform}")
    rng.shuffle(tags)
    return sorted(tags[:width])


def make_shaped_page(
    project: str, real: Sequence[RealWheel], *, files_url: str, real_files_url: str
) -> list[dict[str, Any]]:
    """Every file of ``project``'s real-shaped page, oldest version first, as JSON-ready dicts.

    ``real`` are the wheels on disk (linked at ``real_files_url/<filename>``); generated files
    link under ``files_url``, where nothing answers them.
    """
    rng = random.Random(_digest(project, "page"))
    pep658 = has_pep658(project)
    by_version: dict[str, list[RealWheel]] = {}
    stem = project.replace("-", "_")
    for wheel in real:
        parts = wheel.filename[: -len(".whl")].split("-")
        stem = parts[0]
        by_version.setdefault(parts[1], []).append(wheel)
    try:
        real_versions = sorted(by_version, key=Version)
    except InvalidVersion:
        real_versions = sorted(by_version)
    binary = any(not w.filename.endswith("-none-any.whl") for w in real)
    heavy = _HEAVY.get(project)
    if heavy is not None:
        padded_count, width = heavy
    elif binary:
        padded_count, width = rng.randint(40, 150), rng.randint(10, 50)
    else:
        padded_count = rng.choice((15, 30, 60, 120, 250, 400))
        width = 1
    oldest_real = Version(real_versions[0]) if real_versions else Version("1000")
    padded = _older_versions(oldest_real, padded_count, rng)
    total = len(padded) + len(real_versions)
    files: list[dict[str, Any]] = []
    for position, version in enumerate(padded):
        era = position / max(total, 1)
        pythons = _OLD_PYTHONS[int(era * 4) : int(era * 4) + 4]
        tags = _binary_tags(pythons, rng, width) if binary else ["py2-none-any"]
        yanked: bool | str = False
        if rng.random() < 0.01:
            yanked = rng.choice((True, "broken build", "security issue"))
        files += _generated_files(
            stem,
            version,
            tags,
            sdist=False,
            files_url=files_url,
            rng=rng,
            position=era,
            requires_python=_REQUIRES_PYTHON[min(int(era * 10), len(_REQUIRES_PYTHON) - 1)],
            pep658=pep658,
            yanked=yanked,
        )
    for offset, version in enumerate(real_versions):
        era = (len(padded) + offset) / max(total, 1)
        wheels = by_version[version]
        requires_python = wheels[0].requires_python
        plain_release = Version(version).public == version and not Version(version).is_prerelease
        if plain_release and rng.random() < 0.3:
            pre_tags = _binary_tags(_NEW_PYTHONS, rng, width) if binary else ["py2-none-any"]
            files += _generated_files(
                stem,
                f"{version}rc1",
                pre_tags,
                sdist=False,
                files_url=files_url,
                rng=rng,
                position=era,
                requires_python=requires_python,
                pep658=pep658,
            )
        uploaded = _upload_time(rng, era)
        for wheel in wheels:
            files.append(
                _file(
                    wheel.filename,
                    f"{real_files_url}/{wheel.filename}",
                    sha256=wheel.sha256,
                    requires_python=requires_python,
                    size=wheel.size,
                    upload_time=uploaded,
                    metadata_sha256=wheel.metadata_sha256 if pep658 else None,
                )
            )
        siblings = _binary_tags([*_NEW_PYTHONS, "cp311"], rng, width * 2) if binary else []
        files += _generated_files(
            stem,
            version,
            siblings,
            sdist=True,
            files_url=files_url,
            rng=rng,
            position=era,
            requires_python=requires_python,
            pep658=pep658,
        )
    return files


def render_json(project: str, files: Sequence[dict[str, Any]]) -> bytes:
    """The page as pypi.org sends ``application/vnd.pypi.simple.v1+json``."""
    versions = sorted(
        {f["filename"].split("-")[1] for f in files if f["filename"].endswith(".whl")}
    )
    page = {
        "alternate-locations": [],
        "files": list(files),
        "meta": {"_last-serial": int.from_bytes(_digest(project)[:3], "big"), "api-version": "1.4"},
        "name": project,
        "project-status": {"status": "active"},
        "versions": versions,
    }
    return json.dumps(page, separators=(",", ":")).encode()


def render_html(project: str, files: Sequence[dict[str, Any]]) -> bytes:
    """The same files as pypi.org's PEP 503 HTML page."""
    import html  # noqa: PLC0415 - only the HTML variant needs it

    lines = [
        "<!DOCTYPE html>",
        "<html>",
        "  <head>",
        '    <meta name="pypi:repository-version" content="1.4">',
        '    <meta name="pypi:project-status" content="active">',
        f"    <title>Links for {html.escape(project)}</title>",
        "  </head>",
        "  <body>",
        f"    <h1>Links for {html.escape(project)}</h1>",
    ]
    for entry in files:
        href = f"{entry['url']}#sha256={entry['hashes']['sha256']}"
        attributes = [f'href="{html.escape(href)}"']
        if entry["requires-python"]:
            attributes.append(f'data-requires-python="{html.escape(entry["requires-python"])}"')
        if metadata := entry["core-metadata"]:
            value = f"sha256={metadata['sha256']}"
            attributes += [f'data-dist-info-metadata="{value}"', f'data-core-metadata="{value}"']
        if entry["yanked"] is True:
            attributes.append('data-yanked=""')
        elif entry["yanked"]:
            attributes.append(f'data-yanked="{html.escape(entry["yanked"])}"')
        lines.append(f"    <a {' '.join(attributes)}>{html.escape(entry['filename'])}</a><br />")
    lines += ["  </body>", "</html>"]
    return ("\n".join(lines) + "\n").encode()
