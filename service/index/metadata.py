"""Core metadata (METADATA / PKG-INFO): parsing and the checks that make it trustworthy.

Pure functions. ``parse_core_metadata`` reads the email-header format leniently with
``packaging.metadata``; ``check_metadata_matches`` insists the metadata describes the file it
came from; ``check_sdist_metadata`` applies PEP 643 (only static ``Requires-Dist`` and
``Requires-Python`` in a Metadata-Version 2.2+ PKG-INFO can be used without a build).
"""

from __future__ import annotations

from packaging.metadata import parse_email
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from service.index.models import CoreMetadata
from service.index.pages import DistName

__all__ = [
    "MetadataError",
    "MetadataMismatchError",
    "UnusableSdistMetadataError",
    "check_metadata_matches",
    "check_sdist_metadata",
    "parse_core_metadata",
]

_STATIC_SINCE = Version("2.2")
_NEEDED_FIELDS = ("requires-dist", "requires-python")


class MetadataError(ValueError):
    """Metadata that cannot be parsed; the client maps it to InvalidResponseError."""


class MetadataMismatchError(MetadataError):
    """Metadata for another name or version than its file's (InconsistentMetadataError)."""


class UnusableSdistMetadataError(ValueError):
    """An sdist's PKG-INFO that cannot stand in for a build (UnusableMetadataError)."""


def parse_core_metadata(data: bytes) -> CoreMetadata:
    """The fields the resolver needs from a METADATA/PKG-INFO document.

    The version is normalized (``1.0.0a1``); the name is kept as written. Raises
    ``MetadataError`` when the name or version is missing or invalid, or a field the resolver
    reads could not be parsed.
    """
    raw, unparsed = parse_email(data)
    broken = sorted(
        key
        for key in unparsed
        if key in {"name", "version", "metadata-version", "requires-dist", "requires-python"}
    )
    if broken:
        raise MetadataError(f"unparsable metadata field(s): {', '.join(broken)}")
    name, version = raw.get("name"), raw.get("version")
    if not name or not version:
        raise MetadataError("metadata lacks a Name or Version field")
    try:
        normalized = str(Version(version))
    # A plain ValueError too: int() refuses the 4300+ digit numbers a version may hold.
    except (InvalidVersion, ValueError) as exc:
        raise MetadataError(f"metadata has an invalid version {version[:100]!r}") from exc
    return CoreMetadata(
        name=name,
        version=normalized,
        metadata_version=raw.get("metadata_version", "1.0"),
        requires_dist=tuple(raw.get("requires_dist", ())),
        requires_python=raw.get("requires_python"),
        provides_extra=tuple(raw.get("provides_extra", ())),
        dynamic=tuple(raw.get("dynamic", ())),
    )


def check_metadata_matches(metadata: CoreMetadata, expected: DistName) -> None:
    """Raise ``MetadataMismatchError`` unless name and version agree with the filename's."""
    if canonicalize_name(metadata.name) != expected.project:
        raise MetadataMismatchError(
            f"inconsistent metadata: the file is for {expected.project} but its metadata "
            f"names {metadata.name!r}"
        )
    if Version(metadata.version) != Version(expected.version):
        raise MetadataMismatchError(
            f"inconsistent metadata: the file is version {expected.version} but its metadata "
            f"says {metadata.version}"
        )


def check_sdist_metadata(metadata: CoreMetadata) -> None:
    """Raise ``UnusableSdistMetadataError`` unless PEP 643 makes the dependencies static."""
    try:
        metadata_version = Version(metadata.metadata_version)
    except (InvalidVersion, ValueError):  # ValueError: a number int() will not convert
        metadata_version = Version("0")
    if metadata_version < _STATIC_SINCE:
        raise UnusableSdistMetadataError(
            f"the sdist's PKG-INFO has Metadata-Version {metadata.metadata_version}; "
            f"static metadata needs {_STATIC_SINCE} or later (PEP 643), so only a build "
            "could tell its dependencies"
        )
    dynamic = sorted(field for field in metadata.dynamic if field.strip().lower() in _NEEDED_FIELDS)
    if dynamic:
        raise UnusableSdistMetadataError(
            f"the sdist's PKG-INFO marks {', '.join(dynamic)} as Dynamic (PEP 643), so only a "
            "build could tell them"
        )
