"""The target environment: marker values and wheel tags from a Python version and platform."""

import pytest

from service.resolution.environment import (
    SUPPORTED_PLATFORMS,
    UnsupportedTargetError,
    make_target_environment,
    python_lower_bound,
)


class TestMarkers:
    @pytest.mark.parametrize(
        ("platform", "sys_platform", "machine", "os_name"),
        [
            ("x86_64-manylinux_2_28", "linux", "x86_64", "posix"),
            ("linux", "linux", "x86_64", "posix"),
            ("aarch64-apple-darwin", "darwin", "arm64", "posix"),
            ("macos", "darwin", "arm64", "posix"),
            ("x86_64-pc-windows-msvc", "win32", "AMD64", "nt"),
            ("aarch64-unknown-linux-musl", "linux", "aarch64", "posix"),
        ],
    )
    def test_platform_sets_marker_values(
        self, platform: str, sys_platform: str, machine: str, os_name: str
    ) -> None:
        """Each uv platform name yields the marker values that platform reports."""
        target = make_target_environment("3.12", platform)
        assert target.markers["sys_platform"] == sys_platform
        assert target.markers["platform_machine"] == machine
        assert target.markers["os_name"] == os_name

    def test_minor_version_means_patch_zero(self) -> None:
        """'3.9' targets 3.9.0, like uv's --python-version."""
        target = make_target_environment("3.9", "linux")
        assert target.markers["python_version"] == "3.9"
        assert target.python_full_version == "3.9.0"


class TestTags:
    @pytest.mark.parametrize(
        ("tag", "compatible"),
        [
            ("py3-none-any", True),
            ("cp312-cp312-manylinux_2_17_x86_64", True),
            ("cp312-cp312-manylinux2014_x86_64", True),
            ("cp312-abi3-manylinux1_x86_64", True),
            ("cp311-abi3-manylinux_2_28_x86_64", True),
            ("cp312-cp312-manylinux_2_31_x86_64", False),
            ("cp312-cp312-musllinux_1_2_x86_64", False),
            ("cp311-cp311-manylinux_2_17_x86_64", False),
            ("graalpy310-none-any", False),
            ("py3-none-macosx_10_0_ppc64", False),
            ("cp312-abi3-win_amd64", False),
        ],
    )
    def test_manylinux_2_28_compatibility(self, tag: str, compatible: bool) -> None:
        """Wheels are compatible exactly when packaging's tag rules say so for the target."""
        target = make_target_environment("3.12", "x86_64-manylinux_2_28")
        assert (target.best_tag_rank((tag,)) is not None) is compatible

    def test_specific_tags_rank_before_generic(self) -> None:
        """A binary wheel for the platform is preferred over a pure-Python one."""
        target = make_target_environment("3.12", "x86_64-manylinux_2_28")
        binary = target.best_tag_rank(("cp312-cp312-manylinux_2_17_x86_64",))
        pure = target.best_tag_rank(("py3-none-any",))
        assert binary is not None and pure is not None and binary < pure

    def test_windows_and_macos_tags(self) -> None:
        """Windows and macOS targets accept their own platform tags only."""
        windows = make_target_environment("3.12", "x86_64-pc-windows-msvc")
        mac = make_target_environment("3.12", "aarch64-apple-darwin")
        assert windows.best_tag_rank(("cp312-abi3-win_amd64",)) is not None
        assert windows.best_tag_rank(("py3-none-macosx_11_0_arm64",)) is None
        assert mac.best_tag_rank(("py3-none-macosx_11_0_arm64",)) is not None


class TestRequiresPython:
    @pytest.mark.parametrize(
        ("python", "requires", "allowed"),
        [
            ("3.9", ">=3.10", False),
            ("3.11", ">=3.10", True),
            ("3.9", "<=3.8", True),
            ("3.9", ">=3.9.4", False),
            ("3.9.0", ">=3.9.0", True),
            ("3.13.0", ">=3.13.2", False),
            ("3.12", "~=3.8", True),
            ("3.12", "==3.13.*", False),
            ("3.12", ">=3.8,<3.11", True),
            ("3.12", None, True),
            ("3.12", "not a specifier", True),
        ],
    )
    def test_only_lower_bounds_count(
        self, python: str, requires: str | None, allowed: bool
    ) -> None:
        """Requires-Python upper bounds are ignored, as uv does; lower bounds are honoured."""
        assert make_target_environment(python, "linux").allows_python(requires) is allowed

    def test_lower_bound_of_compatible_release(self) -> None:
        """'~=3.8' is read as '>=3.8'."""
        bound = python_lower_bound("~=3.8")
        assert bound is not None and str(bound) == ">=3.8"


class TestValidation:
    def test_unknown_platform_names_the_field(self) -> None:
        """An unknown platform raises an error naming environment.platform."""
        with pytest.raises(UnsupportedTargetError) as caught:
            make_target_environment("3.12", "amiga")
        assert caught.value.field == "environment.platform"

    @pytest.mark.parametrize("version", ["3", "2.7", "3.x", "3.12.1.1", ""])
    def test_bad_python_version_names_the_field(self, version: str) -> None:
        """A Python version that is not 3.X or 3.X.Y is refused."""
        with pytest.raises(UnsupportedTargetError) as caught:
            make_target_environment(version, "linux")
        assert caught.value.field == "environment.python_version"

    def test_vocabulary_covers_uv_names(self) -> None:
        """The common uv --python-platform names are all accepted."""
        for name in (
            "linux",
            "macos",
            "windows",
            "x86_64-manylinux2014",
            "x86_64-manylinux_2_17",
            "aarch64-manylinux_2_28",
            "x86_64-unknown-linux-gnu",
            "x86_64-apple-darwin",
            "i686-pc-windows-msvc",
        ):
            assert name in SUPPORTED_PLATFORMS
