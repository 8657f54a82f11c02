"""What an index publishes: plain frozen descriptions that ``artifacts`` turns into bytes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

__all__ = ["IndexSpec", "Project", "Release"]


@dataclass(frozen=True)
class Release:
    """One published version of a project and the files it ships.

    ``requires`` lines go into METADATA verbatim, so a test can publish a malformed one.
    ``extras`` maps an extra to its requirements; each becomes ``Provides-Extra`` plus
    ``Requires-Dist: req; extra == "x"`` (an existing marker is kept, parenthesised).
    ``yanked`` is ``True`` or a reason string (PEP 592). ``pep658`` serves each wheel's METADATA
    beside it as ``<file>.metadata`` and advertises its hash on the project page.
    ``sdist_files`` makes an sdist a real project to build (a ``setup.py``); ``prebuilt`` serves
    real wheels made elsewhere.
    """

    version: str
    requires: Sequence[str] = ()
    extras: Mapping[str, Sequence[str]] = field(default_factory=dict)
    requires_python: str | None = None
    wheel: bool = True
    # One wheel per entry; an entry may be a compressed tag set ("py3-none-a.b").
    wheel_tags: Sequence[str] = ("py3-none-any",)
    sdist: bool = False
    sdist_metadata_version: str = "2.2"
    # Core-metadata field names ("Requires-Dist") listed as ``Dynamic:`` in the sdist's PKG-INFO.
    sdist_dynamic: Sequence[str] = ()
    yanked: bool | str = False
    upload_time: str | None = None
    pep658: bool = True
    # Members of the sdist by path under its root ("setup.py"), added to or replacing the
    # generated PKG-INFO and pyproject.toml; a None value leaves that member out.
    sdist_files: Mapping[str, str | None] = field(default_factory=dict)
    # Files served as they are, beside the generated ones: (file name, content).
    prebuilt: Sequence[tuple[str, bytes]] = ()


@dataclass(frozen=True)
class Project:
    """A project as the user would name it; its page lives at the PEP 503 normalized name."""

    name: str
    releases: Sequence[Release] = ()


@dataclass(frozen=True)
class IndexSpec:
    """One index served under ``/<name>/simple/``.

    ``formats`` lists the page formats it can serve ("json", "html"); an HTML-only index ignores
    a JSON ``Accept``. With ``basic_auth`` every request under ``/<name>/`` needs those
    credentials, else 401.
    """

    name: str
    projects: Sequence[Project] = ()
    formats: tuple[str, ...] = ("json", "html")
    basic_auth: tuple[str, str] | None = None
