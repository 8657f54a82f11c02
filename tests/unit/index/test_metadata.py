"""Core metadata parsing and the checks that make it usable (PEP 643, name/version agreement)."""

from __future__ import annotations

import re

import pytest

from service.index.metadata import (
    MetadataError,
    MetadataMismatchError,
    UnusableSdistMetadataError,
    check_metadata_matches,
    check_sdist_metadata,
    parse_core_metadata,
)
from service.index.pages import DistName, parse_dist_filename
from tests.unit.index.builders import make_metadata


def expected_for(filename: str) -> DistName:
    parsed = parse_dist_filename(filename)
    assert parsed is not None
    return parsed


class TestParseCoreMetadata:
    def test_fields_the_resolver_needs(self) -> None:
        """Name, normalized version, dependencies, Python range, extras and Dynamic are read."""
        metadata = parse_core_metadata(
            make_metadata(
                "Demo.Pkg",
                "1.0.0-RC1",
                metadata_version="2.2",
                requires=["click>=8", 'socks; extra == "socks"'],
                requires_python=">=3.9",
                extras=["socks"],
                dynamic=["Description"],
            )
        )
        assert metadata.name == "Demo.Pkg"
        assert metadata.version == "1.0.0rc1"
        assert metadata.metadata_version == "2.2"
        assert metadata.requires_dist == ("click>=8", 'socks; extra == "socks"')
        assert metadata.requires_python == ">=3.9"
        assert metadata.provides_extra == ("socks",)
        assert metadata.dynamic == ("Description",)

    @pytest.mark.parametrize(
        ("document", "message"),
        [
            (b"<html>Sign in</html>", "lacks a Name or Version"),
            (b"Metadata-Version: 2.1\nName: demo\n\n", "lacks a Name or Version"),
            (b"Metadata-Version: 2.1\nName: demo\nVersion: one\n\n", "invalid version"),
            (b"Name: demo\nVersion: " + b"1" * 4301 + b"\n\n", "invalid version"),
            (b"Metadata-Version: 2.1\nName: a\nName: b\nVersion: 1\n\n", "unparsable"),
        ],
    )
    def test_unusable_documents_are_errors(self, document: bytes, message: str) -> None:
        """Missing, invalid or repeated identity fields are parse errors."""
        with pytest.raises(MetadataError, match=message):
            parse_core_metadata(document)


class TestCheckMetadataMatches:
    def test_matching_name_and_version_pass(self) -> None:
        """Names compare normalized, versions compare as versions."""
        metadata = parse_core_metadata(make_metadata("Demo_Pkg", "1.0.0"))
        check_metadata_matches(metadata, expected_for("demo.pkg-1.0-py3-none-any.whl"))

    @pytest.mark.parametrize(
        ("name", "version"), [("other", "1.0"), ("demo", "2.0")], ids=["name", "version"]
    )
    def test_mismatch_is_inconsistent(self, name: str, version: str) -> None:
        """Metadata for another project or version is reported as inconsistent."""
        metadata = parse_core_metadata(make_metadata(name, version))
        with pytest.raises(MetadataMismatchError, match="inconsistent"):
            check_metadata_matches(metadata, expected_for("demo-1.0.tar.gz"))


class TestCheckSdistMetadata:
    def test_static_metadata_2_2_is_usable(self) -> None:
        """Metadata-Version 2.2 without dynamic dependencies can stand in for a build."""
        check_sdist_metadata(
            parse_core_metadata(
                make_metadata("demo", "1.0", metadata_version="2.2", dynamic=["Description"])
            )
        )

    def test_metadata_version_int_would_choke_on_is_unusable(self) -> None:
        """A 4301-digit Metadata-Version is no version at all: unusable, not a ValueError."""
        metadata = parse_core_metadata(make_metadata("demo", "1.0", metadata_version="1" * 4301))
        with pytest.raises(
            UnusableSdistMetadataError, match=re.escape("static metadata needs 2.2")
        ):
            check_sdist_metadata(metadata)

    def test_old_metadata_version_is_unusable(self) -> None:
        """Before 2.2 nothing says the fields are static."""
        metadata = parse_core_metadata(make_metadata("demo", "1.0", metadata_version="2.1"))
        with pytest.raises(UnusableSdistMetadataError, match=re.escape("Metadata-Version 2.1")):
            check_sdist_metadata(metadata)

    @pytest.mark.parametrize("field", ["Requires-Dist", "requires-python"])
    def test_dynamic_dependencies_are_unusable(self, field: str) -> None:
        """Dynamic Requires-Dist or Requires-Python (any case) needs a build."""
        metadata = parse_core_metadata(
            make_metadata("demo", "1.0", metadata_version="2.4", dynamic=[field])
        )
        with pytest.raises(UnusableSdistMetadataError, match=f"{field} as Dynamic"):
            check_sdist_metadata(metadata)
