"""pip's installation report, format version "1", for the resolution.

The shape ``pip install --dry-run --report`` writes
(https://pip.pypa.io/en/stable/reference/installation-report/): one ``install`` entry per
package with ``download_info`` (url and ``archive_info`` hashes, as PEP 610 spells them),
``is_direct`` (true for a direct URL requirement's package), ``is_yanked``, ``requested``,
``requested_extras`` for what the request asked extras of, and ``metadata`` holding what the
resolution knows of the core metadata: name, version, ``requires_dist`` (the resolved
dependencies' names, not the original specifiers) and ``requires_python``. ``environment`` is
the target's PEP 508 marker values. ``pip_version`` names the producer, ``resolvd <version>``:
no pip ran, and a consumer must not mistake the report for one pip wrote.
"""

from __future__ import annotations

from importlib import metadata
from typing import Any

import msgspec

from service.diagnostics.redact import redact_url
from service.export.source import CREATED_BY, LockSource, NotUniversalError
from service.resolution.result import FileRef, ResolvedPackage

__all__ = ["REPORT_VERSION", "format_pip_report"]

REPORT_VERSION = "1"


def _producer() -> str:
    try:
        return f"{CREATED_BY} {metadata.version(CREATED_BY)}"
    except metadata.PackageNotFoundError:  # running from a source tree that was never installed
        return CREATED_BY


def _archive_info(file: FileRef) -> dict[str, Any]:
    hashes = dict(sorted(file.hashes.items()))
    info: dict[str, Any] = {"hashes": hashes}
    preferred = "sha256" if "sha256" in hashes else next(iter(hashes), None)
    if preferred is not None:
        info["hash"] = f"{preferred}={hashes[preferred]}"
    return info


def _install_entry(source: LockSource, package: ResolvedPackage) -> dict[str, Any]:
    file = source.files(package)[0] if package.file is None else package.file
    core: dict[str, Any] = {
        "name": package.name,
        "version": package.version,
        "requires_dist": list(package.dependencies),
    }
    if package.requires_python:
        core["requires_python"] = package.requires_python
    entry: dict[str, Any] = {
        "download_info": {
            "url": redact_url(file.url),
            "archive_info": _archive_info(file),
        },
        "is_direct": package.direct,
        "is_yanked": source.is_yanked(package),
        "requested": package.requested,
        "metadata": core,
    }
    if package.requested and (extras := source.requested_extras(package)):
        entry["requested_extras"] = extras
    return entry


def format_pip_report(source: LockSource) -> str:
    """The resolution as pip installation report JSON (indented, newline-terminated).

    A report describes one installation, so a universal lock has none: ``NotUniversalError``.
    """
    if source.universal:
        raise NotUniversalError(source.job_id, "pip-report")
    report = {
        "version": REPORT_VERSION,
        "pip_version": _producer(),
        "install": [_install_entry(source, package) for package in source.packages],
        "environment": dict(source.target.markers),
    }
    return msgspec.json.format(msgspec.json.encode(report), indent=2).decode() + "\n"
