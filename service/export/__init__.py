"""Exports: a succeeded job's resolution as a file another tool installs from.

Three formats, each a pure function from a ``LockSource`` to text: a PEP 751 ``pylock.toml``
(``pylock``), a pip-tools style ``requirements.txt`` with ``--hash`` lines and ``# via``
comments (``requirements``), and pip's installation report, version "1" (``pip_report``).
``make_lock_source`` turns a job document into their input and refuses a job that has not
succeeded. Every URL written is redacted.

This package reads finished jobs: it may import ``service.jobs.model`` and the result, request
and environment types of ``service.resolution`` (the target's marker values), and
``service.diagnostics`` for redaction. It never imports Litestar or ``service.api`` (HTTP media
types and filenames are the controller's), touches the network or reads the settings: the
caller passes the configured indexes' URLs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from service.export.pip_report import format_pip_report
from service.export.pylock import format_pylock
from service.export.requirements import format_requirements
from service.export.source import (
    ExportError,
    LockSource,
    MissingHashError,
    NotSucceededError,
    NotUniversalError,
    make_lock_source,
)

__all__ = [
    "FORMATTERS",
    "ExportError",
    "LockFormat",
    "LockSource",
    "MissingHashError",
    "NotSucceededError",
    "NotUniversalError",
    "format_lock",
    "make_lock_source",
]

LockFormat = Literal["pylock", "requirements", "pip-report"]

FORMATTERS: dict[LockFormat, Callable[[LockSource], str]] = {
    "pylock": format_pylock,
    "requirements": format_requirements,
    "pip-report": format_pip_report,
}


def format_lock(lock_format: LockFormat, source: LockSource) -> str:
    """``source`` in ``lock_format``; raises ``ExportError`` when the format cannot hold it."""
    return FORMATTERS[lock_format](source)
