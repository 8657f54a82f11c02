"""The marker algebra universal resolution runs on: markers as sets of environments."""

from __future__ import annotations

import pytest
from packaging.requirements import Requirement

from service.resolution.markers import (
    ANY,
    covers,
    disjoint,
    format_marker,
    lower_python_bound,
    parse_marker,
    python_range_marker,
    raises_python,
    requirement_marker,
    requires_python_marker,
    simplify,
    wheel_marker,
)

LINUX = parse_marker("sys_platform == 'linux'")
DARWIN = parse_marker("sys_platform == 'darwin'")
PY312 = python_range_marker(">=3.12")


class TestSetQuestions:
    def test_disjoint_platforms(self) -> None:
        """Two platforms share no environment; a platform and a Python range do."""
        assert disjoint(LINUX, DARWIN)
        assert not disjoint(LINUX, PY312)

    def test_covers_is_inclusion(self) -> None:
        """A region covers a marker when the marker holds everywhere in it."""
        assert covers(LINUX & PY312, LINUX)
        assert not covers(PY312, LINUX)
        assert covers(LINUX, ANY)

    @pytest.mark.parametrize(
        ("region", "marker"),
        [
            ("sys_platform == 'linux'", "os_name == 'nt'"),
            ("sys_platform == 'darwin' and python_version >= '3.11'", "os_name == 'nt'"),
            ("sys_platform == 'win32'", "os_name == 'posix'"),
            ("sys_platform == 'win32'", "platform_system == 'FreeBSD'"),
            ("sys_platform == 'linux' or sys_platform == 'darwin'", "os_name == 'nt'"),
        ],
    )
    def test_platform_markers_real_interpreters_never_combine(
        self, region: str, marker: str
    ) -> None:
        """uv's known incompatibilities: no interpreter reports both (``pywinpty; os_name ==
        'nt'`` is no dependency on Linux), though PEP 508 alone allows it."""
        assert disjoint(parse_marker(region), parse_marker(marker))
        assert covers(parse_marker(region), ~parse_marker(marker))

    def test_platform_system_reads_as_the_sys_platform_it_names(self) -> None:
        """uv's normalization: ``appnope; platform_system == 'Darwin'`` is no Linux dependency,
        and is written with ``sys_platform``; ``FreeBSD`` keeps its own variable."""
        darwin = requirement_marker(Requirement("appnope; platform_system == 'Darwin'").marker)
        assert disjoint(LINUX, darwin)
        assert format_marker(darwin) == "sys_platform == 'darwin'"
        assert covers(LINUX, parse_marker("platform_system != 'Windows'"))
        assert format_marker(parse_marker("platform_system == 'FreeBSD'")) == (
            "platform_system == 'FreeBSD'"
        )

    @pytest.mark.parametrize(
        ("region", "marker"),
        [
            ("sys_platform == 'linux'", "platform_system == 'Java'"),
            ("sys_platform != 'win32'", "os_name == 'nt'"),  # cygwin, say
            ("sys_platform == 'ios'", "platform_system == 'iOS'"),
        ],
    )
    def test_other_platform_pairs_stay_possible(self, region: str, marker: str) -> None:
        assert not disjoint(parse_marker(region), parse_marker(marker))


class TestRequirementMarkers:
    def test_base_candidate_sees_lines_without_extras(self) -> None:
        """A line guarded by an extra does not apply to the base candidate at all."""
        line = Requirement("pysocks; extra == 'socks' and sys_platform != 'win32'")
        assert requirement_marker(line.marker).is_empty()
        assert format_marker(requirement_marker(Requirement("x").marker)) is None

    def test_extras_candidate_keeps_the_environment_part(self) -> None:
        """For the extras candidate, only the environment condition of the line remains."""
        line = Requirement("pysocks; extra == 'socks' and sys_platform != 'win32'")
        marker = requirement_marker(line.marker, frozenset({"socks"}))
        assert format_marker(marker) == "sys_platform != 'win32'"
        assert requirement_marker(line.marker, frozenset({"other"})).is_empty()

    def test_extras_candidate_leaves_the_base_lines_to_the_base(self) -> None:
        """A line that holds without any extra belongs to the base candidate, not the extras."""
        line = Requirement("six; python_version < '3.10'")
        assert requirement_marker(line.marker, frozenset({"socks"})).is_empty()


class TestPython:
    @pytest.mark.parametrize(
        ("requires_python", "within"),
        [(">=3.8,<4", True), (">=3.12", True), (">=3.13", False), (None, True), ("junk", True)],
    )
    def test_requires_python_reads_the_lower_bound_only(
        self, requires_python: str | None, within: bool
    ) -> None:
        """As uv does, upper bounds are ignored; unparsable values constrain nothing."""
        assert covers(PY312, requires_python_marker(requires_python)) is within

    def test_lower_bound_of_a_region(self) -> None:
        """The lowest Python of a region, whatever else the region says."""
        assert str(lower_python_bound(python_range_marker(">=3.10"))) == "3.10.0"
        region = python_range_marker(">=3.10") & parse_marker("python_version >= '3.12'") & LINUX
        assert str(lower_python_bound(region)) == "3.12"
        assert lower_python_bound(LINUX) is None

    def test_raising_the_lowest_python(self) -> None:
        """A lower bound above the region's raises it; an upper bound never does."""
        region = python_range_marker(">=3.10")
        assert raises_python(region, parse_marker("python_version >= '3.12'"))
        assert not raises_python(region, parse_marker("python_version < '3.12'"))
        assert not raises_python(region, LINUX)


class TestWheels:
    @pytest.mark.parametrize(
        ("tags", "region", "installable"),
        [
            (("py3-none-any",), LINUX, True),
            (("cp312-cp312-manylinux_2_17_x86_64",), LINUX & PY312, True),
            (("cp312-cp312-manylinux_2_17_x86_64",), DARWIN, False),
            (("cp311-cp311-manylinux_2_17_x86_64",), PY312, False),
            (("cp39-abi3-macosx_10_9_universal2",), DARWIN & PY312, True),
            (("cp312-cp312-win_amd64",), parse_marker("sys_platform == 'win32'"), True),
            (("py2-none-any",), ANY, False),
        ],
    )
    def test_a_wheel_installs_where_its_tags_say(
        self, tags: tuple[str, ...], region: object, installable: bool
    ) -> None:
        """Interpreter, ABI and platform tags become the marker of where a wheel installs."""
        assert (not disjoint(region, wheel_marker(tags))) is installable  # type: ignore[arg-type]

    def test_manylinux_names_the_machine(self) -> None:
        """A manylinux tag's machine is the part after the glibc version."""
        marker = wheel_marker(("cp312-cp312-manylinux_2_17_aarch64",))
        assert disjoint(marker, parse_marker("platform_machine == 'x86_64'"))
        assert not disjoint(marker, parse_marker("platform_machine == 'aarch64'"))


class TestPresentation:
    def test_clauses_the_domain_implies_are_dropped(self) -> None:
        """Within a lock for >=3.12, 'python >= 3.12 and linux' is written 'linux'."""
        marker = parse_marker("python_full_version >= '3.12' and sys_platform == 'linux'")
        assert format_marker(simplify(marker, PY312)) == "sys_platform == 'linux'"

    def test_ranges_widen_to_the_domain_edge(self) -> None:
        """[3.11, 3.12) in a lock for >=3.11 reads as uv writes it: < '3.12'."""
        domain = python_range_marker(">=3.11")
        marker = domain & parse_marker("python_full_version < '3.12'")
        assert format_marker(simplify(marker, domain)) == "python_full_version < '3.12'"

    def test_what_holds_everywhere_has_no_marker(self) -> None:
        """A marker covering the domain is no condition at all."""
        assert format_marker(simplify(LINUX | ~LINUX, PY312)) is None
        assert format_marker(simplify(requires_python_marker(">=3.8"), PY312)) is None
