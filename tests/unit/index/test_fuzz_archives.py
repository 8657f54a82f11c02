"""Property tests of the archive readers (``service.index.archives``).

Broken archives of every kind (arbitrary bytes, truncated, bytes flipped, header fields
rewritten: declared sizes, CRCs, offsets, name lengths; duplicate entries; hostile tar headers)
end in ``ArchiveError``, ``ArchiveContentError`` or ``MemberTooLargeError``, and nothing else. A
reader that does return bytes returns the archive's real METADATA / PKG-INFO, never other bytes.
Decompression bombs stop at the cap without inflating what lies beyond it.
"""

from __future__ import annotations

import gzip
import io
import struct
import tarfile
import tempfile
import tracemalloc
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO

import pytest
from hypothesis import given, reject
from hypothesis import strategies as st

from service.index.archives import (
    ArchiveContentError,
    ArchiveError,
    MemberTooLargeError,
    read_sdist_pkg_info,
    read_wheel_metadata,
)
from tests.fuzz import fuzz_settings
from tests.unit.index.builders import make_metadata, make_sdist_tar, make_sdist_zip, make_wheel
from tests.unit.index.test_archives import read_piecewise

LIMIT = 64 * 1024
UNPACKED_LIMIT = 1024 * 1024
TYPED = (ArchiveError, ArchiveContentError, MemberTooLargeError)
METADATA = make_metadata("demo", "1.0", requires=["click>=8"], padding=300)

Reader = Callable[[bytes], bytes]


@contextmanager
def opened(data: bytes, where: str) -> Iterator[IO[bytes]]:
    """The bytes as the client hands them over: in memory, or spooled to disk."""
    if where == "memory":
        yield io.BytesIO(data)
        return
    with tempfile.TemporaryFile() as spool:
        spool.write(data)
        spool.seek(0)
        yield spool


def read_whole_wheel(data: bytes, where: str = "memory") -> bytes:
    with opened(data, where) as fileobj:
        return read_wheel_metadata(fileobj, "demo", LIMIT)


def read_tar_sdist(data: bytes, where: str = "memory") -> bytes:
    with opened(data, where) as fileobj:
        return read_sdist_pkg_info(fileobj, "demo-1.0.tar.gz", LIMIT, UNPACKED_LIMIT)


def read_zip_sdist(data: bytes, where: str = "memory") -> bytes:
    with opened(data, where) as fileobj:
        return read_sdist_pkg_info(fileobj, "demo-1.0.zip", LIMIT, UNPACKED_LIMIT)


def read_by_range(data: bytes, where: str = "memory") -> bytes:
    del where  # the piecewise reader works on bytes already fetched
    return read_piecewise(data, tail=4096)


READERS: dict[str, Callable[[bytes, str], bytes]] = {
    "wheel": read_whole_wheel,
    "wheel-by-range": read_by_range,
    "sdist-tar": read_tar_sdist,
    "sdist-zip": read_zip_sdist,
}


def read_or_refuse(reader: str, data: bytes, where: str, real: bytes | None) -> None:
    """Typed errors only; any bytes returned are the real member's (when there is one)."""
    try:
        content = READERS[reader](data, where)
    except TYPED:
        return
    if real is not None:
        assert content == real


# -- archives to break --------------------------------------------------------------------------


def _zip64_wheel() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        with archive.open("demo-1.0.dist-info/METADATA", "w", force_zip64=True) as member:
            member.write(METADATA)
        archive.writestr("demo-1.0.dist-info/WHEEL", b"Wheel-Version: 1.0\n")
    return buffer.getvalue()


# zipfile mistakes an end-record signature inside a comment for the record; the range reader
# does not, and the client falls back from it to zipfile: readable by range only.
_SIGNATURE_COMMENT = b"PK\x05\x06 a comment holding the end-record signature"


def wheels(*, by_range: bool) -> st.SearchStrategy[bytes]:
    """Real wheels of the kinds each reader reads (the range reader: stored or deflated)."""
    built = st.builds(
        lambda compression, filler, comment: make_wheel(
            "demo", "1.0", METADATA, compression=compression, filler_files=filler, comment=comment
        ),
        st.sampled_from(
            [zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED]
            + ([] if by_range else [zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA])
        ),
        st.integers(min_value=0, max_value=3),
        st.sampled_from([b"", b"a comment", *([_SIGNATURE_COMMENT] if by_range else [])]),
    )
    return built | st.just(_zip64_wheel())


ARCHIVES = {
    "wheel": wheels(by_range=False),
    "wheel-by-range": wheels(by_range=True),
    "sdist-tar": st.just(make_sdist_tar("demo-1.0", METADATA)),
    "sdist-zip": st.just(make_sdist_zip("demo-1.0", METADATA)),
}

# Fixed-size parts of the zip records whose fields a mutation may rewrite: (offset, width).
_ZIP_FIELDS = {
    b"PK\x03\x04": [(6, 2), (8, 2), (14, 4), (18, 4), (22, 4), (26, 2), (28, 2)],
    b"PK\x01\x02": [(8, 2), (10, 2), (16, 4), (20, 4), (24, 4), (28, 2), (30, 2), (42, 4)],
    b"PK\x05\x06": [(4, 2), (8, 2), (10, 2), (12, 4), (16, 4), (20, 2)],
    b"PK\x06\x06": [(4, 8), (24, 8), (32, 8), (40, 8), (48, 8)],  # ZIP64 end record
    b"PK\x06\x07": [(8, 8)],  # ZIP64 locator: where the ZIP64 end record is
}
_WIDTH_FORMATS = {2: "<H", 4: "<I", 8: "<Q"}


@st.composite
def mutations(draw: st.DrawFn, archive: bytes) -> bytes:
    """``archive`` with one to three corruptions: header fields, flipped or lost bytes."""
    data = bytearray(archive)
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        kind = draw(
            st.sampled_from(["field", "field", "data", "flip", "overwrite", "truncate", "cut"])
        )
        if not data:
            break
        at = draw(st.integers(min_value=0, max_value=len(data) - 1))
        if kind == "field":
            records = [
                (position, signature)
                for signature in _ZIP_FIELDS
                for position in _find_all(bytes(data), signature)
            ]
            if not records:
                continue
            position, signature = draw(st.sampled_from(records))
            offset, width = draw(st.sampled_from(_ZIP_FIELDS[signature]))
            if position + offset + width > len(data):
                continue
            old = struct.unpack_from(_WIDTH_FORMATS[width], data, position + offset)[0]
            top = 2 ** (8 * width) - 1
            value = draw(
                st.sampled_from([0, 1, top, max(old - 1, 0), min(old + 1, top)])
                | st.integers(min_value=0, max_value=top)
            )
            struct.pack_into(_WIDTH_FORMATS[width], data, position + offset, value)
        elif kind == "data":  # the start of a member's data: deflate, bzip2 or LZMA headers
            starts = [
                position + 30 + sum(struct.unpack_from("<2H", data, position + 26))
                for position in _find_all(bytes(data), b"PK\x03\x04")
                if position + 30 <= len(data)
            ]
            if not starts:
                continue
            at = min(draw(st.sampled_from(starts)) + draw(st.integers(0, 15)), len(data) - 1)
            data[at] ^= 1 << draw(st.integers(min_value=0, max_value=7))
        elif kind == "flip":
            data[at] ^= 1 << draw(st.integers(min_value=0, max_value=7))
        elif kind == "overwrite":
            data[at : at + 8] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "truncate":
            del data[at:]
        else:
            del data[at : at + draw(st.integers(min_value=1, max_value=64))]
    return bytes(data)


def _find_all(data: bytes, needle: bytes) -> list[int]:
    found, position = [], data.find(needle)
    while position >= 0:
        found.append(position)
        position = data.find(needle, position + 1)
    return found


_where = st.sampled_from(["memory", "disk"])


class TestBrokenArchives:
    @given(reader=st.sampled_from(sorted(READERS)), data=st.binary(max_size=1024), where=_where)
    @fuzz_settings(200)
    def test_arbitrary_bytes_are_refused_with_typed_errors(
        self, reader: str, data: bytes, where: str
    ) -> None:
        """Bytes that are no archive at all."""
        read_or_refuse(reader, data, where, None)

    @given(
        reader=st.sampled_from(["sdist-tar"]),
        data=st.binary(max_size=2048).map(gzip.compress),
        where=_where,
    )
    @fuzz_settings(100)
    def test_gzipped_garbage_is_refused_with_typed_errors(
        self, reader: str, data: bytes, where: str
    ) -> None:
        """Valid gzip around bytes that are no tar: the tar layer's errors are typed too."""
        read_or_refuse(reader, data, where, None)

    @given(
        case=st.sampled_from(sorted(READERS)).flatmap(
            lambda reader: ARCHIVES[reader].flatmap(mutations).map(lambda data: (reader, data))
        ),
        where=_where,
    )
    @fuzz_settings(400)
    def test_corrupted_archives_yield_the_real_member_or_typed_errors(
        self, case: tuple[str, bytes], where: str
    ) -> None:
        """Truncation, bit flips, lost spans, rewritten sizes, CRCs, offsets and name lengths."""
        reader, data = case
        read_or_refuse(reader, data, where, METADATA)

    @given(reader=st.sampled_from(sorted(READERS)), archive=st.data())
    @fuzz_settings(50)
    def test_intact_archives_yield_the_member(self, reader: str, archive: st.DataObject) -> None:
        """Without corruption, every reader returns METADATA byte for byte."""
        assert READERS[reader](archive.draw(ARCHIVES[reader]), "memory") == METADATA


# -- tar headers --------------------------------------------------------------------------------

_MEMBER_NAMES = [
    "demo-1.0/PKG-INFO",
    "./demo-1.0/PKG-INFO",
    "other-1.0/PKG-INFO",
    "PKG-INFO",
    "demo-1.0/src/demo.egg-info/PKG-INFO",
    "demo-1.0/setup.py",
    "demo-1.0",
]
_PAX_KEYS = [
    "path",
    "linkpath",
    "size",
    "uid",
    "mtime",
    "hdrcharset",
    "GNU.sparse.map",
    "GNU.sparse.size",
    "GNU.sparse.offset",
    "GNU.sparse.numbytes",
    "GNU.sparse.name",
    "GNU.sparse.major",
    "GNU.sparse.minor",
    "GNU.sparse.realsize",
]
_TYPES = [tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.FIFOTYPE]
pax_values = st.sampled_from(["", "0", "1", "-1", "1,2,3", "x", "0,999999999", "9" * 30]) | st.text(
    alphabet=st.characters(blacklist_categories=["Cs"]), max_size=12
)


@st.composite
def tar_members(draw: st.DrawFn) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(draw(st.sampled_from(_MEMBER_NAMES) | st.text(max_size=20)))
    info.type = draw(st.sampled_from(_TYPES))
    data = draw(st.sampled_from([METADATA, b"", b"x" * 600]))
    info.size = len(data) if info.type == tarfile.REGTYPE else 0
    info.linkname = draw(st.sampled_from(["", "demo-1.0/PKG-INFO", "../../etc/passwd"]))
    info.pax_headers = draw(st.dictionaries(st.sampled_from(_PAX_KEYS), pax_values, max_size=3))
    return info, data


@st.composite
def hostile_tars(draw: st.DrawFn) -> bytes:
    """A tar.gz of members with any name, type, link and PAX header (GNU sparse included)."""
    buffer = io.BytesIO()
    fmt = draw(st.sampled_from([tarfile.PAX_FORMAT, tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT]))
    try:
        with tarfile.open(fileobj=buffer, mode="w:gz", format=fmt) as archive:
            for info, data in draw(st.lists(tar_members(), min_size=1, max_size=4)):
                archive.addfile(info, io.BytesIO(data) if info.type == tarfile.REGTYPE else None)
    except (ValueError, tarfile.TarError, UnicodeError):
        reject()  # tarfile itself would not write it
    return buffer.getvalue()


class TestHostileTarHeaders:
    @given(data=hostile_tars(), where=_where)
    @fuzz_settings(300)
    def test_any_member_layout_is_read_or_refused_with_typed_errors(
        self, data: bytes, where: str
    ) -> None:
        """Links, directories, FIFOs, odd names, malformed PAX and GNU sparse headers."""
        read_or_refuse("sdist-tar", data, where, None)


# -- bombs --------------------------------------------------------------------------------------

BOMB_BYTES = 32 * 1024 * 1024
PEAK_BUDGET = 4 * 1024 * 1024  # a few times the largest cap in play (the range reader's 1 MiB)


def _lying_sizes(archive: bytes, size: int) -> bytes:
    """Every declared uncompressed size in the zip's headers set to ``size``."""
    data = bytearray(archive)
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        for position in _find_all(archive, signature):
            struct.pack_into("<I", data, position + offset, size)
    return bytes(data)


def _zip_bomb() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("demo-1.0.dist-info/METADATA", bytes(BOMB_BYTES))
    return buffer.getvalue()


def _tar_bomb(name: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        info = tarfile.TarInfo(name)
        info.size = BOMB_BYTES
        archive.addfile(info, io.BytesIO(bytes(BOMB_BYTES)))
    return buffer.getvalue()


BOMBS = {
    "zip-declared": lambda: ("wheel", _zip_bomb()),
    "zip-lying": lambda: ("wheel", _lying_sizes(_zip_bomb(), 100)),
    "zip-lying-by-range": lambda: ("wheel-by-range", _lying_sizes(_zip_bomb(), 100)),
    "tar-member": lambda: ("sdist-tar", _tar_bomb("demo-1.0/PKG-INFO")),
    "tar-padding": lambda: ("sdist-tar", _tar_bomb("demo-1.0/data.bin")),
}


class TestBombs:
    @pytest.mark.parametrize("bomb", sorted(BOMBS))
    def test_bombs_stop_at_the_cap_in_bounded_memory(self, bomb: str) -> None:
        """Tens of MiB packed into kilobytes: refused, with a peak memory of a few MiB."""
        reader, data = BOMBS[bomb]()
        assert len(data) < 256 * 1024
        tracemalloc.start()
        try:
            with pytest.raises(TYPED):
                READERS[reader](data, "memory")
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < PEAK_BUDGET, f"peak {peak} bytes while refusing {bomb}"
