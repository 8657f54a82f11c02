"""Reading core metadata out of archives: a wheel's zip directory piecewise, or a whole file.

Pure and synchronous. The piecewise functions serve HTTP range requests: find the central
directory from the archive's tail, list its entries, locate ``<project>-<version>.dist-info/
METADATA`` and inflate that one member from the bytes around it. The whole-file functions read
a downloaded wheel or sdist from a file object without extracting anything to disk, bounded in
what they inflate (callers run them in a thread: inflating is CPU work).

``ArchiveError`` means "this archive is not what it should be" (the range path answers it with
a whole download); ``ArchiveContentError`` means the archive is readable but holds no usable
metadata; ``MemberTooLargeError`` means the member exceeds the size cap.
"""

from __future__ import annotations

import gzip
import io
import lzma
import re
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Sequence
from typing import IO, Protocol

import msgspec
from packaging.utils import canonicalize_name

from service.index.inflate import INFLATE_ERRORS, RAW_DEFLATE, inflater

__all__ = [
    "ArchiveContentError",
    "ArchiveError",
    "CentralDirectory",
    "MemberTooLargeError",
    "ZipEntry",
    "find_central_directory",
    "find_metadata_entry",
    "inflate_member",
    "member_extent",
    "parse_central_directory",
    "read_sdist_pkg_info",
    "read_wheel_metadata",
]

_EOCD = struct.Struct("<4s4H2IH")
_EOCD_SIG = b"PK\x05\x06"
_ZIP64_LOCATOR = struct.Struct("<4sIQI")
_ZIP64_LOCATOR_SIG = b"PK\x06\x07"
_ZIP64_EOCD = struct.Struct("<4sQ2H2I4Q")
_ZIP64_EOCD_SIG = b"PK\x06\x06"
_CENTRAL = struct.Struct("<4s6H3I5H2I")
_CENTRAL_SIG = b"PK\x01\x02"
_LOCAL = struct.Struct("<4s5H3I2H")
_LOCAL_SIG = b"PK\x03\x04"
_ZIP64_EXTRA_ID = 0x0001
_FLAG_ENCRYPTED = 0x1
_FLAG_UTF8 = 0x800
_STORED, _DEFLATED = 0, 8
_DIST_INFO_METADATA = re.compile(r"^(?P<dir>[^/]+)\.dist-info/METADATA$")
_PKG_INFO = re.compile(r"^(?:\./)?[^/]+/PKG-INFO$")


class ArchiveError(ValueError):
    """The archive's structure is broken or outside what the piecewise reader handles."""


class ArchiveContentError(ValueError):
    """The archive is readable but has no single metadata file for the project."""


class MemberTooLargeError(ValueError):
    """The metadata member (or what must be inflated to reach it) exceeds its cap."""


class CentralDirectory(msgspec.Struct, frozen=True):
    """Where the zip central directory lies, as absolute offsets in the archive."""

    offset: int
    size: int


class ZipEntry(msgspec.Struct, frozen=True):
    """One central-directory record: enough to find and inflate the member."""

    name: str
    method: int
    flags: int
    crc: int
    compressed_size: int
    file_size: int
    header_offset: int


def find_central_directory(tail: bytes, tail_offset: int) -> CentralDirectory:
    """Locate the central directory from the last bytes of an archive starting at ``tail_offset``.

    Handles archive comments and ZIP64 (when its records lie within ``tail``). The directory
    must end where the end records begin: no prepended data, no multi-disk archives.
    """
    # The record is the last signature whose comment length reaches exactly to the end: a
    # comment may itself contain the signature bytes.
    position = len(tail)
    while True:
        position = tail.rfind(_EOCD_SIG, 0, position)
        if position < 0:
            raise ArchiveError("no end of central directory record in the archive's tail")
        if len(tail) - position < _EOCD.size:
            continue
        _sig, disk, cd_disk, _here, total, size, offset, comment = _EOCD.unpack_from(tail, position)
        if position + _EOCD.size + comment == len(tail):
            break
    if disk != 0 or cd_disk != 0:
        raise ArchiveError("multi-disk archive")
    end = tail_offset + position
    if total == 0xFFFF or 0xFFFFFFFF in (size, offset):
        locator = position - _ZIP64_LOCATOR.size
        if locator < 0 or tail[locator : locator + 4] != _ZIP64_LOCATOR_SIG:
            raise ArchiveError("ZIP64 locator missing")
        _sig, _disk, record_at, _disks = _ZIP64_LOCATOR.unpack_from(tail, locator)
        relative = record_at - tail_offset
        if relative < 0 or relative + _ZIP64_EOCD.size > len(tail):
            raise ArchiveError("ZIP64 end record lies outside the fetched tail")
        fields = _ZIP64_EOCD.unpack_from(tail, relative)
        if fields[0] != _ZIP64_EOCD_SIG:
            raise ArchiveError("ZIP64 end record signature mismatch")
        size, offset, end = fields[8], fields[9], record_at
    if offset + size != end:
        raise ArchiveError("central directory does not end where the end record begins")
    return CentralDirectory(offset=offset, size=size)


def _zip64_values(extra: bytes, wanted: int) -> list[int]:
    position = 0
    while position + 4 <= len(extra):
        header_id, length = struct.unpack_from("<2H", extra, position)
        body = extra[position + 4 : position + 4 + length]
        if header_id == _ZIP64_EXTRA_ID:
            if len(body) < 8 * wanted:
                raise ArchiveError("truncated ZIP64 extra field")
            return list(struct.unpack_from(f"<{wanted}Q", body))
        position += 4 + length
    raise ArchiveError("ZIP64 extra field missing")


def parse_central_directory(data: bytes) -> list[ZipEntry]:
    """Every record of a central directory, in order."""
    entries: list[ZipEntry] = []
    position = 0
    while position < len(data):
        if len(data) - position < _CENTRAL.size:
            raise ArchiveError("truncated central directory record")
        fields = _CENTRAL.unpack_from(data, position)
        if fields[0] != _CENTRAL_SIG:
            raise ArchiveError("central directory record signature mismatch")
        flags, method, crc, csize, usize = fields[3], fields[4], fields[7], fields[8], fields[9]
        name_len, extra_len, comment_len, offset = fields[10], fields[11], fields[12], fields[16]
        start = position + _CENTRAL.size
        raw_name = data[start : start + name_len]
        extra = data[start + name_len : start + name_len + extra_len]
        position = start + name_len + extra_len + comment_len
        if position > len(data):
            raise ArchiveError("truncated central directory record")
        # ZIP64 stores the real values, in this order, for each field saturated at 0xFFFFFFFF.
        saturated = [v == 0xFFFFFFFF for v in (usize, csize, offset)]
        if any(saturated):
            values = iter(_zip64_values(extra, sum(saturated)))
            usize = next(values) if saturated[0] else usize
            csize = next(values) if saturated[1] else csize
            offset = next(values) if saturated[2] else offset
        name = raw_name.decode("utf-8" if flags & _FLAG_UTF8 else "cp437", errors="replace")
        entries.append(ZipEntry(name, method, flags, crc, csize, usize, offset))
    return entries


def _metadata_candidates(names: Sequence[str], project: str) -> list[str]:
    wanted = canonicalize_name(project)
    found: list[str] = []
    for name in names:
        match = _DIST_INFO_METADATA.match(name)
        if match and canonicalize_name(match["dir"].rpartition("-")[0]) == wanted:
            found.append(name)
    return found


def _single_metadata(names: Sequence[str], project: str) -> str:
    found = _metadata_candidates(names, project)
    if not found:
        raise ArchiveContentError(f"the wheel has no {project}-<version>.dist-info/METADATA")
    if len(found) > 1:
        raise ArchiveContentError(
            f"the wheel has {len(found)} METADATA entries for {project}: {', '.join(found)}"
        )
    return found[0]


def find_metadata_entry(entries: Sequence[ZipEntry], project: str) -> ZipEntry:
    """The one ``.dist-info/METADATA`` entry for ``project``; duplicates are refused."""
    name = _single_metadata([entry.name for entry in entries], project)
    return next(entry for entry in entries if entry.name == name)


def member_extent(
    entries: Sequence[ZipEntry], entry: ZipEntry, directory: CentralDirectory
) -> tuple[int, int]:
    """Byte range ``[start, end)`` of ``entry``'s local header and data: up to the next member."""
    following = [e.header_offset for e in entries if e.header_offset > entry.header_offset]
    end = min(following, default=directory.offset)
    if end <= entry.header_offset or end > directory.offset:
        raise ArchiveError("member offsets are out of order")
    return entry.header_offset, end


def inflate_member(data: bytes, entry: ZipEntry, max_size: int) -> bytes:
    """Inflate ``entry`` from ``data``, which starts at its local header.

    Checks the local header, the declared and actual sizes and the CRC. Stored and deflated
    members only (anything else is an ``ArchiveError``, for the whole-file reader to handle).
    """
    if entry.file_size > max_size:
        raise MemberTooLargeError(f"{entry.name} declares {entry.file_size} bytes")
    if entry.flags & _FLAG_ENCRYPTED:
        raise ArchiveError(f"{entry.name} is encrypted")
    if len(data) < _LOCAL.size or data[:4] != _LOCAL_SIG:
        raise ArchiveError("local file header signature mismatch")
    fields = _LOCAL.unpack_from(data)
    start = _LOCAL.size + fields[9] + fields[10]
    compressed = data[start : start + entry.compressed_size]
    if len(compressed) != entry.compressed_size:
        raise ArchiveError(f"{entry.name} is truncated")
    if entry.method == _STORED:
        content = compressed
    elif entry.method == _DEFLATED:
        try:
            content = inflater(RAW_DEFLATE).decompress(compressed, max_size + 1)
        except INFLATE_ERRORS as exc:
            raise ArchiveError(f"{entry.name} does not inflate: {exc}") from exc
        if len(content) > max_size:
            raise MemberTooLargeError(f"{entry.name} inflates beyond {max_size} bytes")
    else:
        raise ArchiveError(f"{entry.name} uses compression method {entry.method}")
    if len(content) != entry.file_size or zlib.crc32(content) != entry.crc:
        raise ArchiveError(f"{entry.name} does not match its declared size and CRC")
    return content


# -- whole files --------------------------------------------------------------------------------

# ValueError: a negative seek in memory, a UTF-8-flagged name that is no UTF-8. OverflowError: a
# ZIP64 offset beyond what a seek takes. LZMAError: a corrupt LZMA member (bzip2's is an OSError).
_ZIP_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    lzma.LZMAError,
    NotImplementedError,
    EOFError,
    RuntimeError,
    OSError,
    ValueError,
    OverflowError,
)


def _read_zip_member(
    fileobj: IO[bytes], select: Callable[[list[str]], str], max_size: int
) -> bytes:
    try:
        with zipfile.ZipFile(fileobj) as archive:
            infos = archive.infolist()
            name = select([info.filename for info in infos])
            matching = [info for info in infos if info.filename == name]
            if len(matching) > 1:
                raise ArchiveContentError(f"the archive holds {name} {len(matching)} times")
            info = matching[0]
            if info.file_size > max_size:
                raise MemberTooLargeError(f"{name} declares {info.file_size} bytes")
            with archive.open(info) as member:
                content = member.read(max_size + 1)
    except (ArchiveContentError, MemberTooLargeError):
        raise  # ValueErrors too, but already the answer
    except _ZIP_ERRORS as exc:
        raise ArchiveError(f"unreadable zip archive: {exc}") from exc
    if len(content) > max_size:
        raise MemberTooLargeError(f"{name} inflates beyond {max_size} bytes")
    return content


def read_wheel_metadata(fileobj: IO[bytes], project: str, max_size: int) -> bytes:
    """The bytes of a whole wheel's ``.dist-info/METADATA`` for ``project``."""
    return _read_zip_member(fileobj, lambda names: _single_metadata(names, project), max_size)


def _single_pkg_info(names: Sequence[str]) -> str:
    found = [name for name in names if _PKG_INFO.match(name)]
    if not found:
        raise ArchiveContentError("the sdist has no <top>/PKG-INFO")
    if len(found) > 1:
        raise ArchiveContentError(f"the sdist has {len(found)} top-level PKG-INFO files")
    return found[0]


class _Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class _BoundedReader(io.RawIOBase):
    """Reads from ``source`` until ``limit`` bytes have passed, then raises MemberTooLargeError."""

    def __init__(self, source: _Readable, limit: int) -> None:
        super().__init__()
        self._source = source
        self._left = limit
        self._limit = limit

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]  # RawIOBase's buffer type
        chunk = self._source.read(min(len(buffer), self._left + 1))
        if len(chunk) > self._left:
            raise MemberTooLargeError(f"the sdist inflates beyond {self._limit} bytes")
        self._left -= len(chunk)
        buffer[: len(chunk)] = chunk
        return len(chunk)


# ValueError: tarfile converts some PAX fields (GNU sparse maps) with an unguarded int().
_TAR_ERRORS = (tarfile.TarError, gzip.BadGzipFile, zlib.error, EOFError, OSError, ValueError)


_DRAIN_BYTES = 64 * 1024


def _read_tar_pkg_info(fileobj: IO[bytes], max_size: int, max_unpacked: int) -> bytes:
    found: list[tuple[str, bytes]] = []
    try:
        unpacked = io.BufferedReader(
            _BoundedReader(gzip.GzipFile(fileobj=fileobj, mode="rb"), max_unpacked)
        )
        # Stream mode: members are read in order, never seeking, never touching the disk.
        with tarfile.open(fileobj=unpacked, mode="r|") as archive:
            while (member := archive.next()) is not None:
                # Even in stream mode tarfile keeps every header it read: a tar.gz of a million
                # empty members, a few hundred kilobytes packed, would hold them all in memory.
                archive.members.clear()  # type: ignore[attr-defined]  # typeshed leaves it out
                if not _PKG_INFO.match(member.name):
                    continue
                if not member.isfile():
                    raise ArchiveContentError(f"{member.name} is not a regular file")
                if member.size > max_size:
                    raise MemberTooLargeError(f"{member.name} declares {member.size} bytes")
                extracted = archive.extractfile(member)
                if extracted is None:
                    raise ArchiveContentError(f"{member.name} cannot be read")
                found.append((member.name, extracted.read(max_size + 1)))
                if len(found) > 1:
                    break  # already ambiguous; keep no more than two in memory
        # gzip's CRC, the only check on what a tar holds, is verified at the stream's end: past
        # the tar's end-of-archive blocks lies padding, and the trailer to check.
        while unpacked.read(_DRAIN_BYTES):
            pass
    except (ArchiveContentError, MemberTooLargeError):
        raise  # ValueErrors too, but already the answer
    except _TAR_ERRORS as exc:
        raise ArchiveError(f"unreadable tar.gz archive: {exc}") from exc
    _single_pkg_info([name for name, _ in found])
    return found[0][1]


def read_sdist_pkg_info(
    fileobj: IO[bytes], filename: str, max_size: int, max_unpacked: int
) -> bytes:
    """The bytes of a whole sdist's ``<top>/PKG-INFO``; ``.tar.gz`` or ``.zip`` by ``filename``.

    A tar.gz is read as a stream and inflated at most ``max_unpacked`` bytes, so a
    decompression bomb ends in ``MemberTooLargeError``; it is scanned past the first PKG-INFO
    so that a second top-level one is noticed and refused.
    """
    if filename.endswith(".zip"):
        return _read_zip_member(fileobj, _single_pkg_info, max_size)
    return _read_tar_pkg_info(fileobj, max_size, max_unpacked)
