"""Property tests of core-metadata parsing and checking (``service.index.metadata``).

Any bytes are either parsed (a valid name and a normalized version) or refused with
``MetadataError``; the checks that follow raise only their own typed errors; a METADATA
document generated here parses back to the fields it was written with.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from packaging.metadata import parse_email
from packaging.version import Version as PackagingVersion

from service.index.metadata import (
    MetadataError,
    MetadataMismatchError,
    UnusableSdistMetadataError,
    _plain_headers,
    check_metadata_matches,
    check_sdist_metadata,
    parse_core_metadata,
)
from service.index.models import CoreMetadata
from service.index.pages import DistName, parse_dist_filename
from tests.fuzz import fuzz_settings
from tests.fuzz.strategies import (
    Version,
    canonical,
    dist_filenames,
    project_names,
    requirements,
    specifier_sets,
    versions,
)

_FIELDS = [
    "Metadata-Version",
    "Name",
    "Version",
    "Requires-Dist",
    "Requires-Python",
    "Provides-Extra",
    "Dynamic",
    "Summary",
    "Keywords",
    "Project-URL",
    "Description",
    "NAME",
    "X-Unknown",
]
_HOSTILE_VALUES = [
    "",
    "=?utf-8?q?=E2=82=AC?=",
    "=?bogus?x?zz?=",
    "\x00",
    "a\r\nb",
    "2.2",
    "1.0",
]
header_values = st.sampled_from(_HOSTILE_VALUES) | st.text(max_size=30)


# Numbers longer than int() converts (4300 digits) are well-formed versions as far as the
# grammar goes, so they get a good share of the version fields.
_HUGE_VERSIONS = st.sampled_from(["1" * 5000, "1." + "9" * 4301, "1.0.post" + "7" * 4400])
_VALID = {
    "Metadata-Version": st.sampled_from(["1.0", "2.1", "2.2", "2.4"]) | _HUGE_VERSIONS,
    "Name": project_names,
    "Version": versions().map(lambda version: version.written) | _HUGE_VERSIONS,
    "Requires-Dist": requirements(),
    "Requires-Python": specifier_sets(),
    "Dynamic": st.sampled_from(["Requires-Dist", "requires-python", "Description"]),
}


@st.composite
def header_soups(draw: st.DrawFn) -> bytes:
    """A plausible document gone wrong: fields dropped, repeated, hostile, folded, mis-encoded."""
    lines = []
    for field, valid in _VALID.items():
        for _ in range(draw(st.sampled_from([0, 1, 1, 1, 2]))):
            value = draw(valid if draw(st.booleans()) else header_values)
            lines.append(f"{draw(st.sampled_from([field, field.upper()]))}: {value}")
    for _ in range(draw(st.sampled_from([0, 0, 1, 2, 3]))):
        field = draw(st.sampled_from(_FIELDS) | st.text(max_size=8))
        separator = draw(st.sampled_from([": ", ":", " : ", ""]))
        position = draw(st.integers(min_value=0, max_value=len(lines)))
        lines.insert(position, f"{field}{separator}{draw(header_values)}")
    if lines and draw(st.integers(min_value=0, max_value=3)) == 0:
        position = draw(st.integers(min_value=0, max_value=len(lines) - 1))
        lines.insert(position, draw(st.sampled_from([" folded", "\tfolded", "", "  "])))
    newline = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    text = newline.join(lines) + newline * draw(st.integers(min_value=0, max_value=2))
    text += draw(st.text(max_size=40))
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "utf-8", "latin-1", "utf-16", "cp1252"]))
    return text.encode(encoding, errors="replace")


def check_everything(document: bytes, expected: DistName) -> None:
    """Parse and check as the client does; only the module's typed errors may come out."""
    try:
        metadata = parse_core_metadata(document)
    except MetadataError:
        return
    assert metadata.name
    assert metadata.version == str(PackagingVersion(metadata.version))
    with contextlib.suppress(MetadataMismatchError):
        check_metadata_matches(metadata, expected)
    with contextlib.suppress(UnusableSdistMetadataError):
        check_sdist_metadata(metadata)


any_dist_name = dist_filenames().map(lambda name: parse_dist_filename(name.filename))


class TestHostileMetadata:
    @given(document=st.binary(max_size=2048), expected=any_dist_name)
    @fuzz_settings(200)
    def test_arbitrary_bytes_parse_or_raise_metadata_error(
        self, document: bytes, expected: DistName
    ) -> None:
        """Any bytes: a parsed document, or ``MetadataError``; the checks raise only theirs."""
        check_everything(document, expected)

    @given(document=header_soups(), expected=any_dist_name)
    @fuzz_settings(300)
    def test_header_soup_parses_or_raises_metadata_error(
        self, document: bytes, expected: DistName
    ) -> None:
        """Repeated, folded, empty, mis-encoded and enormous header values: typed errors only."""
        check_everything(document, expected)


@st.composite
def documents(draw: st.DrawFn) -> tuple[bytes, str, Version, CoreMetadata]:
    """A METADATA document, the name and version it was written with, and what it must say."""
    name = draw(project_names)
    version = draw(versions())
    expected = CoreMetadata(
        name=name,
        version=version.normalized,
        metadata_version=draw(st.sampled_from(["1.2", "2.1", "2.2", "2.3", "2.4"])),
        requires_dist=tuple(draw(st.lists(requirements(), max_size=5))),
        requires_python=draw(st.none() | specifier_sets()),
        provides_extra=tuple(draw(st.lists(st.sampled_from(["socks", "dev", "a-b"]), max_size=2))),
        dynamic=tuple(draw(st.lists(st.sampled_from(["Description", "Keywords"]), max_size=2))),
    )
    lines = [
        f"Metadata-Version: {expected.metadata_version}",
        f"Name: {name}",
        f"Version: {version.written}",
        *(f"Dynamic: {field}" for field in expected.dynamic),
        *([f"Requires-Python: {expected.requires_python}"] if expected.requires_python else []),
        *(f"Provides-Extra: {extra}" for extra in expected.provides_extra),
        *(f"Requires-Dist: {requirement}" for requirement in expected.requires_dist),
        "Summary: " + draw(st.text(alphabet=st.characters(blacklist_categories=["Cc", "Cs"]))),
    ]
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    # The description may look like headers: it is the body, and must not change the fields.
    body = draw(st.text() | st.just("Name: evil\nVersion: 666\nRequires-Dist: evil\n"))
    document = (newline.join(lines) + newline + newline + body).encode()
    return document, name, version, expected


class TestRoundTrip:
    @given(generated=documents())
    @fuzz_settings(200)
    def test_generated_metadata_reads_back_as_written(
        self, generated: tuple[bytes, str, Version, CoreMetadata]
    ) -> None:
        """Name as written, version normalized, dependencies, Python range, extras, Dynamic."""
        document, name, version, expected = generated
        assert parse_core_metadata(document) == expected
        for filename in (f"{name}-{version.normalized}.tar.gz", f"{name}-{version.normalized}.zip"):
            dist_name = parse_dist_filename(filename)
            assert dist_name is not None
            assert dist_name.project == canonical(name)
            check_metadata_matches(parse_core_metadata(document), dist_name)


_READ_FIELDS = (
    "name",
    "version",
    "metadata_version",
    "requires_python",
    "requires_dist",
    "provides_extra",
    "dynamic",
)


def _fields(raw: Mapping[str, Any]) -> dict[str, Any]:
    return {key: raw.get(key) for key in _READ_FIELDS}


class TestFastPath:
    """``parse_core_metadata`` reads plain documents without ``email``; where it does, the
    fields it reads are exactly what ``packaging.metadata.parse_email`` makes of them."""

    @given(document=header_soups())
    @fuzz_settings(500)
    def test_header_soup_reads_as_packaging_reads_it(self, document: bytes) -> None:
        plain = _plain_headers(document)
        if plain is not None:
            assert _fields(plain[0]) == _fields(parse_email(document)[0])

    @given(generated=documents())
    @fuzz_settings(200)
    def test_generated_documents_take_the_fast_path(
        self, generated: tuple[bytes, str, Version, CoreMetadata]
    ) -> None:
        document = generated[0]
        head = document.partition(b"\n\n")[0]
        plain = _plain_headers(document)
        if not any(mark in head for mark in (b"\r", b"=?", b"\0")):
            assert plain is not None
        if plain is not None:
            assert _fields(plain[0]) == _fields(parse_email(document)[0])
