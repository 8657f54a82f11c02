"""``pylock.toml``: a valid PEP 751 document for the one target the resolution was made for."""

from __future__ import annotations

import re
import tomllib
from datetime import UTC, datetime
from typing import Any

import pytest
from packaging.pylock import Pylock

from service.export import MissingHashError
from service.export.pylock import format_pylock
from tests.unit.export.resolutions import (
    CORP_REDACTED,
    HASH,
    MIRROR,
    SECRET,
    TWO_INDEXES,
    TWO_INDEXES_OPTIONS,
    package,
    source,
)

UPLOADED = datetime(2024, 5, 1, 12, tzinfo=UTC)
LINUX_312 = (
    'python_version == "3.12" and implementation_name == "cpython" and '
    'sys_platform == "linux" and platform_machine == "x86_64"'
)


def wheel(name: str, version: str) -> dict[str, Any]:
    filename = f"{name}-{version}-py3-none-any.whl"
    return {
        "name": filename,
        "url": f"https://ci:****@files.example/{filename}",
        "hashes": {"sha256": HASH},
        "size": 1234,
        "upload-time": UPLOADED,
    }


TWO_INDEXES_LOCK = {
    "lock-version": "1.0",
    "created-by": "resolvd",
    "environments": [LINUX_312],
    "requires-python": "==3.12.*",
    "packages": [
        {
            "name": "asgiref",
            "version": "3.8.1",
            "index": CORP_REDACTED,
            "sdist": {
                "name": "asgiref-3.8.1.tar.gz",
                "url": "https://ci:****@files.example/asgiref-3.8.1.tar.gz",
                "hashes": {"sha256": HASH},
                "size": 1234,
            },
        },
        {
            "name": "click",
            "version": "8.1.7",
            "index": CORP_REDACTED,
            "wheels": [wheel("click", "8.1.7")],
        },
        {
            "name": "flask",
            "version": "3.0.0",
            "requires-python": ">=3.8",
            "dependencies": [{"name": "asgiref"}, {"name": "click"}],
            "index": CORP_REDACTED,
            "wheels": [wheel("flask", "3.0.0")],
        },
        {
            "name": "toolbelt",
            "version": "1.2.0",
            "dependencies": [{"name": "click"}],
            "index": MIRROR,
            "wheels": [wheel("toolbelt", "1.2.0")],
        },
    ],
    "tool": {
        "resolvd": {"job": "job-1", "python-version": "3.12", "platform": "x86_64-manylinux_2_28"}
    },
}


class TestFormatPylock:
    def test_expected_document(self) -> None:
        """Sorted packages, each with its redacted index, its one file and its dependencies."""
        text = format_pylock(source(TWO_INDEXES, **TWO_INDEXES_OPTIONS))
        assert tomllib.loads(text) == TWO_INDEXES_LOCK
        assert SECRET not in text

    def test_the_written_text_is_a_valid_pylock(self) -> None:
        """``packaging.pylock`` reads it back, and selects the locked files for the target."""
        lock = Pylock.from_dict(tomllib.loads(format_pylock(source(TWO_INDEXES))))
        target = {
            "python_full_version": "3.12.3",
            "python_version": "3.12",
            "implementation_name": "cpython",
            "sys_platform": "linux",
            "platform_machine": "x86_64",
        }
        chosen = {
            package.name: file.filename
            for package, file in lock.select(environment=target)  # type: ignore[arg-type]
        }
        assert chosen == {
            "asgiref": "asgiref-3.8.1.tar.gz",
            "click": "click-8.1.7-py3-none-any.whl",
            "flask": "flask-3.0.0-py3-none-any.whl",
            "toolbelt": "toolbelt-1.2.0-py3-none-any.whl",
        }

    @pytest.mark.parametrize(
        ("python_version", "platform", "requires_python", "environment"),
        [
            ("3.12", "x86_64-manylinux_2_28", "==3.12.*", LINUX_312),
            (
                "3.11.4",
                "aarch64-apple-darwin",
                "==3.11.*,>=3.11.4",
                'python_version == "3.11" and implementation_name == "cpython" and '
                'sys_platform == "darwin" and platform_machine == "arm64"',
            ),
            (
                "3.13",
                "x86_64-pc-windows-msvc",
                "==3.13.*",
                'python_version == "3.13" and implementation_name == "cpython" and '
                'sys_platform == "win32" and platform_machine == "AMD64"',
            ),
        ],
    )
    def test_the_lock_names_its_target(
        self, python_version: str, platform: str, requires_python: str, environment: str
    ) -> None:
        """``requires-python`` is the target's minor series; ``environments`` its markers."""
        packages = [package("click", "8.1.7", requested=True)]
        lock = tomllib.loads(
            format_pylock(source(packages, python_version=python_version, platform=platform))
        )
        assert lock["requires-python"] == requires_python
        assert lock["environments"] == [environment]

    def test_a_python_cap_the_resolver_ignored_is_not_written(self) -> None:
        """Upper bounds are ignored when resolving (as uv does); writing one that excludes the
        target would make the lock uninstallable where it was made for."""
        packages = [
            package("capped", "1.0", requested=True, requires_python=">=3.8,<3.12"),
            package("open", "1.0", requested=True, requires_python=">=3.8"),
        ]
        lock = tomllib.loads(format_pylock(source(packages)))
        assert [p.get("requires-python") for p in lock["packages"]] == [None, ">=3.8"]

    def test_every_hash_published_is_kept(self) -> None:
        """Any algorithm the index published is recorded, not only sha256."""
        packages = [package("click", "8.1.7", requested=True, hashes={"sha512": "cc", "md5": "bb"})]
        lock = tomllib.loads(format_pylock(source(packages)))
        assert lock["packages"][0]["wheels"][0]["hashes"] == {"md5": "bb", "sha512": "cc"}

    def test_a_file_without_any_hash_cannot_be_locked(self) -> None:
        """PEP 751 requires a hash for every file."""
        packages = [package("click", "8.1.7", requested=True, hashes={})]
        with pytest.raises(
            MissingHashError, match=re.escape("click 8.1.7: the index published no hash")
        ):
            format_pylock(source(packages))

    def test_a_direct_url_package_has_no_index(self) -> None:
        """A direct URL requirement's package keeps its file URL and hashes, and no index."""
        packages = [package("click", "8.1.7", requested=True, direct=True)]
        lock = tomllib.loads(format_pylock(source(packages)))
        [entry] = lock["packages"]
        assert "index" not in entry
        assert entry["wheels"][0]["url"].endswith("/click-8.1.7-py3-none-any.whl")
        Pylock.from_dict(lock)
