"""pip's installation report (version "1") for the resolution."""

from __future__ import annotations

import json

from service.export.pip_report import format_pip_report
from tests.unit.export.resolutions import (
    HASH,
    SECRET,
    TWO_INDEXES,
    TWO_INDEXES_OPTIONS,
    package,
    source,
    yanked,
)

LINUX_312 = {
    "implementation_name": "cpython",
    "implementation_version": "3.12.0",
    "os_name": "posix",
    "platform_machine": "x86_64",
    "platform_python_implementation": "CPython",
    "platform_release": "",
    "platform_system": "Linux",
    "platform_version": "",
    "python_full_version": "3.12.0",
    "python_version": "3.12",
    "sys_platform": "linux",
}


def download(filename: str) -> dict[str, object]:
    return {
        "url": f"https://ci:****@files.example/{filename}",
        "archive_info": {"hashes": {"sha256": HASH}, "hash": f"sha256={HASH}"},
    }


def install(
    name: str,
    version: str,
    filename: str,
    *,
    requested: bool = False,
    requires_dist: list[str] | None = None,
    metadata: dict[str, object] | None = None,
    **extra: object,
) -> dict[str, object]:
    core = {"name": name, "version": version, "requires_dist": requires_dist or []}
    return {
        "download_info": download(filename),
        "is_direct": False,
        "is_yanked": False,
        "requested": requested,
        "metadata": {**core, **(metadata or {})},
        **extra,
    }


class TestFormatPipReport:
    def test_expected_report(self) -> None:
        """One entry per package (sorted), its download, requested flag and what metadata is
        known; requested extras only on what the request asked extras of; the target's
        marker values as ``environment``."""
        report = json.loads(format_pip_report(source(TWO_INDEXES, **TWO_INDEXES_OPTIONS)))
        assert report == {
            "version": "1",
            "pip_version": report["pip_version"],
            "install": [
                install("asgiref", "3.8.1", "asgiref-3.8.1.tar.gz"),
                install("click", "8.1.7", "click-8.1.7-py3-none-any.whl"),
                install(
                    "flask",
                    "3.0.0",
                    "flask-3.0.0-py3-none-any.whl",
                    requested=True,
                    requires_dist=["asgiref", "click"],
                    metadata={"requires_python": ">=3.8"},
                    requested_extras=["async"],
                ),
                install(
                    "toolbelt",
                    "1.2.0",
                    "toolbelt-1.2.0-py3-none-any.whl",
                    requested=True,
                    requires_dist=["click"],
                ),
            ],
            "environment": LINUX_312,
        }

    def test_the_producer_is_named_not_disguised_as_pip(self) -> None:
        """``pip_version`` says resolvd wrote the report: no pip ran."""
        report = json.loads(format_pip_report(source([package("click", "8.1.7")])))
        assert report["pip_version"].startswith("resolvd")

    def test_a_yanked_pin_is_flagged(self) -> None:
        """A yanked version used because the request pinned it is ``is_yanked``."""
        packages = [package("click", "8.1.7", requested=True), package("flask", "3.0.0")]
        report = json.loads(
            format_pip_report(source(packages, warnings=[yanked("click", "8.1.7")]))
        )
        assert [item["is_yanked"] for item in report["install"]] == [True, False]

    def test_credentials_never_appear(self) -> None:
        """Download URLs are redacted."""
        assert SECRET not in format_pip_report(source(TWO_INDEXES, **TWO_INDEXES_OPTIONS))

    def test_a_file_without_hashes_has_empty_archive_info(self) -> None:
        """The report does not need a hash; it says there is none rather than refusing."""
        report = json.loads(format_pip_report(source([package("click", "8.1.7", hashes={})])))
        assert report["install"][0]["download_info"]["archive_info"] == {"hashes": {}}

    def test_a_direct_url_package_is_direct(self) -> None:
        """``is_direct`` is true for a direct URL requirement's package only."""
        packages = [package("click", "8.1.7", direct=True), package("flask", "3.0.0")]
        report = json.loads(format_pip_report(source(packages)))
        assert [item["is_direct"] for item in report["install"]] == [True, False]
