"""Real archive bytes for tests: core metadata, wheels and sdists, with knobs to break them."""

from __future__ import annotations

import hashlib
import io
import random
import tarfile
import warnings
import zipfile
from collections.abc import Sequence

__all__ = ["make_metadata", "make_sdist_tar", "make_sdist_zip", "make_wheel", "sha256"]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_metadata(
    name: str,
    version: str,
    *,
    metadata_version: str = "2.1",
    requires: Sequence[str] = (),
    requires_python: str | None = None,
    extras: Sequence[str] = (),
    dynamic: Sequence[str] = (),
    padding: int = 0,
) -> bytes:
    """A METADATA/PKG-INFO document; ``padding`` adds a description of that many bytes."""
    lines = [f"Metadata-Version: {metadata_version}", f"Name: {name}", f"Version: {version}"]
    lines += [f"Dynamic: {field}" for field in dynamic]
    if requires_python is not None:
        lines.append(f"Requires-Python: {requires_python}")
    lines += [f"Provides-Extra: {extra}" for extra in extras]
    lines += [f"Requires-Dist: {requirement}" for requirement in requires]
    return ("\n".join(lines) + "\n\n" + "x" * padding).encode()


def make_wheel(
    name: str,
    version: str,
    metadata: bytes,
    *,
    dist_info: str | None = None,
    compression: int = zipfile.ZIP_DEFLATED,
    trailing_bytes: int = 0,
    filler_files: int = 0,
    duplicate_metadata: bool = False,
    comment: bytes = b"",
    built: bool = False,
) -> bytes:
    """A wheel whose ``.dist-info/METADATA`` is ``metadata``, written first.

    ``trailing_bytes`` of incompressible data follow it, pushing METADATA out of the tail;
    ``filler_files`` small members make the central directory large. ``built`` lays the wheel
    out as build backends do instead: the files first, then METADATA, WHEEL and a RECORD with
    a line per file.
    """
    dist_info = dist_info or f"{name.replace('-', '_')}-{version}.dist-info"
    buffer = io.BytesIO()
    if built:
        with zipfile.ZipFile(buffer, "w", compression=compression) as zf:
            files = [f"payload/{'f' * 60}/{number:06d}.py" for number in range(filler_files)]
            record = [f"{file},sha256={sha256(file.encode())[:43]},0" for file in files]
            for file in files:
                zf.writestr(file, b"")
            zf.writestr(f"{dist_info}/METADATA", metadata)
            zf.writestr(f"{dist_info}/WHEEL", b"Wheel-Version: 1.0\nTag: py3-none-any\n")
            zf.writestr(f"{dist_info}/RECORD", "\n".join(record).encode())
        return buffer.getvalue()
    with warnings.catch_warnings(), zipfile.ZipFile(buffer, "w", compression=compression) as zf:
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate we may write on purpose
        zf.writestr(f"{dist_info}/METADATA", metadata)
        if duplicate_metadata:
            zf.writestr(f"{dist_info}/METADATA", metadata.replace(b"Name:", b"Name: evil\nX:"))
        if trailing_bytes:
            noise = random.Random(0).randbytes(trailing_bytes)
            zf.writestr("payload/blob.bin", noise, compress_type=zipfile.ZIP_STORED)
        for number in range(filler_files):
            zf.writestr(f"payload/{'f' * 60}/{number:06d}.py", b"")
        zf.writestr(f"{dist_info}/WHEEL", b"Wheel-Version: 1.0\nTag: py3-none-any\n")
        zf.comment = comment
    return buffer.getvalue()


def make_sdist_tar(
    top: str, pkg_info: bytes | None, *, extra: dict[str, bytes] | None = None
) -> bytes:
    """A ``.tar.gz`` with ``<top>/PKG-INFO`` (unless ``None``) and ``extra`` members."""
    members = dict(extra or {})
    if pkg_info is not None:
        members = {f"{top}/PKG-INFO": pkg_info, **members}
    members.setdefault(f"{top}/setup.py", b"")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path, data in members.items():
            info = tarfile.TarInfo(path)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def make_sdist_zip(top: str, pkg_info: bytes) -> bytes:
    """A ``.zip`` sdist with ``<top>/PKG-INFO``."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"{top}/PKG-INFO", pkg_info)
        zf.writestr(f"{top}/setup.py", b"")
    return buffer.getvalue()
