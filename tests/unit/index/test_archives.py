"""Reading METADATA out of zip directories piecewise, and out of whole wheels and sdists."""

from __future__ import annotations

import gzip
import io
import re
import struct
import tarfile
import tempfile
import tracemalloc
import zipfile
import zlib

import msgspec
import pytest

from service.index.archives import (
    ArchiveContentError,
    ArchiveError,
    MemberTooLargeError,
    find_central_directory,
    find_metadata_entry,
    inflate_member,
    member_extent,
    parse_central_directory,
    read_sdist_pkg_info,
    read_wheel_metadata,
)
from tests.unit.index.builders import make_metadata, make_sdist_tar, make_sdist_zip, make_wheel

METADATA = make_metadata("demo", "1.0", requires=["click>=8"])
LIMIT = 1024 * 1024


def read_piecewise(archive: bytes, project: str = "demo", tail: int = 65536) -> bytes:
    """What the range path does, from in-memory bytes: tail, directory, member."""
    start = max(0, len(archive) - tail)
    directory = find_central_directory(archive[start:], start)
    listing = archive[directory.offset : directory.offset + directory.size]
    entries = parse_central_directory(listing)
    entry = find_metadata_entry(entries, project)
    begin, end = member_extent(entries, entry, directory)
    return inflate_member(archive[begin:end], entry, LIMIT)


class TestPiecewise:
    @pytest.mark.parametrize("compression", [zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED])
    def test_metadata_from_directory_and_member(self, compression: int) -> None:
        """Deflated and stored members inflate to the METADATA bytes."""
        assert read_piecewise(make_wheel("demo", "1.0", METADATA, compression=compression)) == (
            METADATA
        )

    def test_archive_comment_is_skipped(self) -> None:
        """The end record is found before a trailing archive comment."""
        wheel = make_wheel("demo", "1.0", METADATA, comment=b"PK\x05\x06 not a record " * 3)
        assert read_piecewise(wheel) == METADATA

    def test_large_directory_reports_its_offset_before_the_tail(self) -> None:
        """A directory larger than the tail is located, for a second range request."""
        wheel = make_wheel("demo", "1.0", METADATA, filler_files=1500)
        start = len(wheel) - 65536
        directory = find_central_directory(wheel[start:], start)
        assert directory.offset < start
        assert read_piecewise(wheel, tail=len(wheel)) == METADATA

    def test_zip64_extra_fields_are_read(self) -> None:
        """Sizes and offsets moved into ZIP64 extra fields are used."""
        buffer = io.BytesIO()
        with (
            zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zf,
            zf.open("demo-1.0.dist-info/METADATA", "w", force_zip64=True) as member,
        ):
            member.write(METADATA)
        assert read_piecewise(buffer.getvalue()) == METADATA

    def test_not_a_zip_is_an_archive_error(self) -> None:
        """No end record means the piecewise reader gives up."""
        with pytest.raises(ArchiveError, match="no end of central directory"):
            find_central_directory(b"<html>not a wheel</html>", 0)

    def test_prepended_data_is_an_archive_error(self) -> None:
        """Offsets that do not add up (data before the zip) are left to the whole-file reader."""
        wheel = b"junk" + make_wheel("demo", "1.0", METADATA)
        with pytest.raises(ArchiveError, match="does not end where"):
            find_central_directory(wheel, 0)

    def test_crc_mismatch_is_an_archive_error(self) -> None:
        """A member whose bytes were altered fails its CRC check."""
        wheel = bytearray(make_wheel("demo", "1.0", METADATA, compression=zipfile.ZIP_STORED))
        position = wheel.index(b"click>=8")
        wheel[position] = ord("C")
        with pytest.raises(ArchiveError, match="CRC"):
            read_piecewise(bytes(wheel))

    def test_declared_size_over_the_limit_is_too_large(self) -> None:
        """The declared size is checked before inflating."""
        wheel = make_wheel("demo", "1.0", make_metadata("demo", "1.0", padding=LIMIT))
        with pytest.raises(MemberTooLargeError):
            read_piecewise(wheel)

    def test_lying_declared_size_still_stops_at_the_limit(self) -> None:
        """A member that inflates past the limit is stopped even if its header understates it."""
        wheel = make_wheel("demo", "1.0", make_metadata("demo", "1.0", padding=2 * LIMIT))
        start = max(0, len(wheel) - 65536)
        directory = find_central_directory(wheel[start:], start)
        entries = parse_central_directory(
            wheel[directory.offset : directory.offset + directory.size]
        )
        entry = find_metadata_entry(entries, "demo")
        lying = msgspec.structs.replace(entry, file_size=10)
        begin, end = member_extent(entries, entry, directory)
        with pytest.raises(MemberTooLargeError, match="inflates beyond"):
            inflate_member(wheel[begin:end], lying, LIMIT)

    def test_duplicate_metadata_entries_are_refused(self) -> None:
        """Two METADATA entries for the project is an ambiguity, not a choice."""
        wheel = make_wheel("demo", "1.0", METADATA, duplicate_metadata=True)
        with pytest.raises(ArchiveContentError, match="2 METADATA entries"):
            read_piecewise(wheel)

    def test_dist_info_of_another_project_is_not_used(self) -> None:
        """Only the dist-info directory named for the project counts."""
        wheel = make_wheel("demo", "1.0", METADATA, dist_info="other-1.0.dist-info")
        with pytest.raises(
            ArchiveContentError, match=re.escape("no demo-<version>.dist-info/METADATA")
        ):
            read_piecewise(wheel)

    def test_truncated_directory_is_an_archive_error(self) -> None:
        """A directory cut short is detected."""
        with pytest.raises(ArchiveError, match="truncated"):
            parse_central_directory(b"PK\x01\x02" + bytes(10))

    def test_unsupported_compression_is_left_to_zipfile(self) -> None:
        """Methods other than stored and deflate make the piecewise reader give up."""
        wheel = make_wheel("demo", "1.0", METADATA, compression=zipfile.ZIP_BZIP2)
        with pytest.raises(ArchiveError, match="compression method 12"):
            read_piecewise(wheel)
        assert read_wheel_metadata(io.BytesIO(wheel), "demo", LIMIT) == METADATA


class TestWholeWheel:
    def test_metadata_is_read(self) -> None:
        """The project's METADATA is returned from a whole wheel."""
        wheel = make_wheel("demo", "1.0", METADATA)
        assert read_wheel_metadata(io.BytesIO(wheel), "demo", LIMIT) == METADATA

    def test_duplicates_are_refused(self) -> None:
        """zipfile would silently pick one of two same-named entries; we refuse."""
        wheel = make_wheel("demo", "1.0", METADATA, duplicate_metadata=True)
        with pytest.raises(ArchiveContentError):
            read_wheel_metadata(io.BytesIO(wheel), "demo", LIMIT)

    def test_declared_size_is_checked(self) -> None:
        """A member declaring more than the limit is not read."""
        wheel = make_wheel("demo", "1.0", make_metadata("demo", "1.0", padding=2000))
        with pytest.raises(MemberTooLargeError, match="declares"):
            read_wheel_metadata(io.BytesIO(wheel), "demo", 1000)

    def test_broken_zip_is_an_archive_error(self) -> None:
        """A file that is no zip is an archive error."""
        with pytest.raises(ArchiveError, match="unreadable zip"):
            read_wheel_metadata(io.BytesIO(b"PK\x03\x04 broken"), "demo", LIMIT)

    def test_directory_offset_past_the_data_is_an_archive_error(self) -> None:
        """zipfile's negative seek (a ValueError, in memory) is an archive error, not a crash."""
        wheel = bytearray(make_wheel("demo", "1.0", METADATA))
        end_record = wheel.rindex(b"PK\x05\x06")
        (offset,) = struct.unpack_from("<I", wheel, end_record + 16)
        struct.pack_into("<I", wheel, end_record + 16, offset + 1000)
        with pytest.raises(ArchiveError, match="negative seek"):
            read_wheel_metadata(io.BytesIO(bytes(wheel)), "demo", LIMIT)

    @pytest.mark.parametrize("where", ["memory", "disk"])
    def test_zip64_directory_offset_beyond_any_seek_is_an_archive_error(
        self, where: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """An offset of 2**64 - 1 (OverflowError in memory, ValueError on disk) is refused."""
        monkeypatch.setattr(zipfile, "ZIP64_LIMIT", 10)  # any archive gets ZIP64 end records
        wheel = bytearray(make_wheel("demo", "1.0", METADATA))
        monkeypatch.undo()
        struct.pack_into("<Q", wheel, wheel.index(b"PK\x06\x06") + 48, 2**64 - 1)
        with tempfile.TemporaryFile() as spool:
            spool.write(wheel)
            spool.seek(0)
            fileobj = io.BytesIO(bytes(wheel)) if where == "memory" else spool
            with pytest.raises(ArchiveError, match="unreadable zip"):
                read_wheel_metadata(fileobj, "demo", LIMIT)

    def test_corrupt_lzma_member_is_an_archive_error(self) -> None:
        """lzma's own error type, for a member whose LZMA properties are garbage, is wrapped."""
        wheel = bytearray(make_wheel("demo", "1.0", METADATA, compression=zipfile.ZIP_LZMA))
        local = wheel.index(b"PK\x03\x04")
        name_length, extra_length = struct.unpack_from("<2H", wheel, local + 26)
        properties = local + 30 + name_length + extra_length + 4  # after the LZMA version bytes
        wheel[properties : properties + 5] = b"\xff" * 5
        with pytest.raises(ArchiveError, match="unreadable zip"):
            read_wheel_metadata(io.BytesIO(bytes(wheel)), "demo", LIMIT)

    def test_utf8_flagged_name_that_is_no_utf8_is_an_archive_error(self) -> None:
        """A member name flagged UTF-8 but not decodable is an archive error."""
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as zf:
            zf.writestr("demo-1.0.dist-info/METADATA", METADATA)
            zf.writestr("payload/\xff", b"")  # stored as UTF-8 (c3 bf), flagged so
        wheel = buffer.getvalue().replace(b"payload/\xc3\xbf", b"payload/\xff\xbf")
        with pytest.raises(ArchiveError, match="utf-8"):
            read_wheel_metadata(io.BytesIO(wheel), "demo", LIMIT)


class TestSdists:
    def test_pkg_info_from_tar_gz(self) -> None:
        """``<top>/PKG-INFO`` is read from a tar.gz stream."""
        sdist = make_sdist_tar(
            "demo-1.0", METADATA, extra={"demo-1.0/src/x.egg-info/PKG-INFO": b"no"}
        )
        assert read_sdist_pkg_info(io.BytesIO(sdist), "demo-1.0.tar.gz", LIMIT, 10 * LIMIT) == (
            METADATA
        )

    def test_pkg_info_from_zip(self) -> None:
        """``<top>/PKG-INFO`` is read from a zip sdist."""
        sdist = make_sdist_zip("demo-1.0", METADATA)
        assert read_sdist_pkg_info(io.BytesIO(sdist), "demo-1.0.zip", LIMIT, 10 * LIMIT) == METADATA

    def test_missing_pkg_info(self) -> None:
        """An sdist without a top-level PKG-INFO has no usable metadata."""
        sdist = make_sdist_tar("demo-1.0", None)
        with pytest.raises(ArchiveContentError, match=re.escape("no <top>/PKG-INFO")):
            read_sdist_pkg_info(io.BytesIO(sdist), "demo-1.0.tar.gz", LIMIT, 10 * LIMIT)

    def test_two_top_level_pkg_infos_are_refused(self) -> None:
        """Two candidates is an ambiguity."""
        sdist = make_sdist_tar("demo-1.0", METADATA, extra={"other-1.0/PKG-INFO": METADATA})
        with pytest.raises(ArchiveContentError, match="2 top-level PKG-INFO"):
            read_sdist_pkg_info(io.BytesIO(sdist), "demo-1.0.tar.gz", LIMIT, 10 * LIMIT)

    def test_decompression_bomb_stops_at_the_unpacked_limit(self) -> None:
        """A tar.gz inflating past the limit is stopped, not unpacked."""
        sdist = make_sdist_tar("demo-1.0", METADATA, extra={"demo-1.0/zeros": bytes(4 * LIMIT)})
        assert len(sdist) < LIMIT // 100
        with pytest.raises(MemberTooLargeError, match="inflates beyond"):
            read_sdist_pkg_info(io.BytesIO(sdist), "demo-1.0.tar.gz", LIMIT, 2 * LIMIT)

    def test_corrupt_gzip_is_an_archive_error(self) -> None:
        """Bytes that are not gzip are an archive error."""
        with pytest.raises(ArchiveError, match=re.escape("unreadable tar.gz")):
            read_sdist_pkg_info(io.BytesIO(b"nope"), "demo-1.0.tar.gz", LIMIT, LIMIT)

    def test_contents_that_fail_the_gzip_crc_are_an_archive_error(self) -> None:
        """Deflate has no check of its own: a PKG-INFO altered in the stream must fail the CRC,
        even when the trailer holding it lies past padding the tar reader has no need to read."""
        tar = gzip.decompress(make_sdist_tar("demo-1.0", METADATA)) + bytes(64 * 1024)
        altered = gzip.compress(tar.replace(b"click>=8", b"evil>=66"))
        trailer = struct.pack("<2I", zlib.crc32(tar), len(tar))  # the original's CRC and size
        with pytest.raises(ArchiveError, match="CRC check failed"):
            read_sdist_pkg_info(
                io.BytesIO(altered[:-8] + trailer), "demo-1.0.tar.gz", LIMIT, 10 * LIMIT
            )

    def test_malformed_gnu_sparse_header_is_an_archive_error(self) -> None:
        """tarfile's unguarded int() on a GNU sparse map (a ValueError) is an archive error."""
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.PAX_FORMAT) as archive:
            info = tarfile.TarInfo("demo-1.0/PKG-INFO")
            info.size = len(METADATA)
            info.pax_headers = {"GNU.sparse.map": "1,,2", "GNU.sparse.size": "9"}
            archive.addfile(info, io.BytesIO(METADATA))
        with pytest.raises(ArchiveError, match="invalid literal"):
            read_sdist_pkg_info(io.BytesIO(buffer.getvalue()), "demo-1.0.tar.gz", LIMIT, LIMIT)

    def test_headers_of_members_already_read_are_not_kept(self) -> None:
        """15,000 empty members (a 35 kB tar.gz) are read in well under 1 MiB of memory."""
        header = tarfile.TarInfo("demo-1.0/empty").tobuf(format=tarfile.USTAR_FORMAT)
        sdist = gzip.compress(header * 15_000 + bytes(1024), 9)
        tracemalloc.start()
        try:
            with pytest.raises(ArchiveContentError, match=re.escape("no <top>/PKG-INFO")):
                read_sdist_pkg_info(io.BytesIO(sdist), "demo-1.0.tar.gz", LIMIT, 16 * LIMIT)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < LIMIT  # tarfile would otherwise keep ~7 MB of TarInfo objects

    def test_truncated_tar_is_an_archive_error(self) -> None:
        """A tar.gz cut short is an archive error."""
        sdist = gzip.compress(make_sdist_tar("demo-1.0", METADATA)[:40])
        with pytest.raises(ArchiveError):
            read_sdist_pkg_info(io.BytesIO(sdist), "demo-1.0.tar.gz", LIMIT, LIMIT)


def test_struct_sizes_match_the_zip_specification() -> None:
    """The fixed parts of the records are the sizes APPNOTE gives."""
    from service.index import archives  # noqa: PLC0415 - private layout constants under test

    sizes = {
        name: getattr(archives, name).size
        for name in ("_EOCD", "_ZIP64_LOCATOR", "_ZIP64_EOCD", "_CENTRAL", "_LOCAL")
    }
    assert sizes == {
        "_EOCD": 22,
        "_ZIP64_LOCATOR": 20,
        "_ZIP64_EOCD": 56,
        "_CENTRAL": 46,
        "_LOCAL": 30,
    }
    assert struct.calcsize("<4s") == 4
