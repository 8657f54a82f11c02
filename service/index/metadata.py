"""Core metadata (METADATA / PKG-INFO): parsing and the checks that make it trustworthy.

Pure functions. ``parse_core_metadata`` reads the email-header format leniently with
``packaging.metadata``, behind a fast path for the plain documents nearly every wheel carries
(``email``'s parser costs milliseconds a document, the largest share of a cold resolution's
event-loop CPU after the pages); ``check_metadata_matches`` insists the metadata describes
the file it came from; ``check_sdist_metadata`` applies PEP 643 (only static ``Requires-Dist``
and ``Requires-Python`` in a Metadata-Version 2.2+ PKG-INFO can be used without a build).
"""

from __future__ import annotations

import re
from typing import Any

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
# The header fields parse_core_metadata reads (email name -> packaging's raw key): single-use
# ones, then multiple-use ones.
_SINGLE = {
    "name": "name",
    "version": "version",
    "metadata-version": "metadata_version",
    "requires-python": "requires_python",
}
_MULTIPLE = {
    "requires-dist": "requires_dist",
    "provides-extra": "provides_extra",
    "dynamic": "dynamic",
}
# What email reads as a header name (RFC 5322's ftext); any other line ends its header block.
_FIELD_NAME = re.compile(r"[\x21-\x39\x3b-\x7e]+")
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
    raw, unparsed = _plain_headers(data) or parse_email(data)
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


def _plain_headers(data: bytes) -> tuple[dict[str, Any], dict[str, list[str]]] | None:
    """What ``parse_email`` makes of the fields read here, for a plain document: UTF-8, LF
    line ends, header names as email reads them, and the fields read here in ASCII, unfolded
    and single-use ones once. ``None`` for anything else, which ``parse_email`` then reads.
    ``tests/unit/index/test_metadata.py`` holds the two to the same answers."""
    head = data.partition(b"\n\n")[0]
    if b"\r" in head or b"=?" in head or b"\0" in head:
        return None
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return None
    raw: dict[str, Any] = {}
    last = ""
    for line in text.split("\n"):
        if line[:1] in {" ", "\t"}:
            if last in _SINGLE or last in _MULTIPLE:
                return None  # a folded value that is read: email's folding rules apply
            continue
        key, colon, value = line.partition(":")
        if not colon or not _FIELD_NAME.fullmatch(key):
            return None
        last = key.lower()
        value = value.lstrip(" \t")
        if (last in _SINGLE or last in _MULTIPLE) and not value.isascii():
            return None
        if last in _SINGLE:
            if _SINGLE[last] in raw:
                return None
            raw[_SINGLE[last]] = value
        elif last in _MULTIPLE:
            raw.setdefault(_MULTIPLE[last], []).append(value)
    return raw, {}


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
