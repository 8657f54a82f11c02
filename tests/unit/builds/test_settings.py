"""``[builds]``: off by default, set from TOML or the environment, checked on load."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.settings import SettingsError, load_settings


class TestBuildSettings:
    def test_off_by_default_with_the_bubblewrap_sandbox(self) -> None:
        builds = load_settings(environ={}).builds
        assert (builds.enabled, builds.sandbox) == (False, "bwrap")

    def test_from_toml(self, tmp_path: Path) -> None:
        config = tmp_path / "resolvd.toml"
        config.write_text(
            '[builds]\nenabled = true\nsandbox = "none"\ntimeout_seconds = 60\nmemory_mb = 512\n'
        )
        builds = load_settings(config, environ={}).builds
        assert (builds.enabled, builds.sandbox, builds.timeout_seconds, builds.memory_mb) == (
            True,
            "none",
            60,
            512,
        )

    def test_from_the_environment(self) -> None:
        environ = {"RESOLVD_BUILDS_ENABLED": "true", "RESOLVD_BUILDS_MEMORY_MB": "2048"}
        builds = load_settings(environ=environ).builds
        assert (builds.enabled, builds.memory_mb) == (True, 2048)

    @pytest.mark.parametrize(
        "environ",
        [
            {"RESOLVD_BUILDS_SANDBOX": "chroot"},
            {"RESOLVD_BUILDS_MEMORY_MB": "16"},
            {"RESOLVD_BUILDS_TIMEOUT_SECONDS": "0"},
        ],
    )
    def test_invalid_values_are_refused(self, environ: dict[str, str]) -> None:
        with pytest.raises(SettingsError, match="builds"):
            load_settings(environ=environ)
