"""Reading a pyproject.toml's requirements, as ``uv pip compile pyproject.toml`` selects them."""

from __future__ import annotations

import pytest

from service.resolution.pyproject import ProjectInputs, PyprojectError, read_pyproject

PYPROJECT = """
[project]
name = "My_App"
version = "1.0"
requires-python = ">=3.10"
dependencies = ["flask>=2", "requests; python_version >= '3.8'"]

[project.optional-dependencies]
Socks = ["pysocks"]
speed = ["ujson", "my-app[socks]; sys_platform == 'linux'"]

[dependency-groups]
test = ["pytest", {include-group = "Lint"}]
lint = ["ruff"]
docs = ["sphinx"]
"""


def problems(content: str, **chosen: list[str]) -> list[tuple[str, str]]:
    with pytest.raises(PyprojectError) as caught:
        read_pyproject(content, **chosen)  # type: ignore[arg-type]
    return [(problem.field, problem.message) for problem in caught.value.problems]


class TestSelection:
    def test_dependencies_and_requires_python(self) -> None:
        """Without extras or groups: ``[project].dependencies`` and ``requires-python``."""
        assert read_pyproject(PYPROJECT) == ProjectInputs(
            requirements=("flask>=2", 'requests; python_version >= "3.8"'),
            requires_python=">=3.10",
        )

    def test_extras_by_normalized_name_with_self_references_expanded(self) -> None:
        """An extra is found by its normalized name; ``my-app[socks]`` expands that extra of
        the project itself, under the referencing line's marker."""
        selected = read_pyproject(PYPROJECT, extras=["SPEED"])
        assert selected.requirements[2:] == ("ujson", 'pysocks; sys_platform == "linux"')

    def test_all_selects_every_extra_once(self) -> None:
        """``"all"`` is every extra; a requirement selected twice is listed once."""
        selected = read_pyproject(PYPROJECT, extras=["speed", "all", "socks"])
        assert selected.requirements[2:] == ("ujson", 'pysocks; sys_platform == "linux"', "pysocks")

    def test_groups_expand_include_group(self) -> None:
        """A group's ``include-group`` entries are replaced by that group's requirements."""
        selected = read_pyproject(PYPROJECT, groups=["test", "docs"])
        assert selected.requirements[2:] == ("pytest", "ruff", "sphinx")

    def test_groups_without_a_project_table(self) -> None:
        """PEP 735 groups need no ``[project]`` table."""
        selected = read_pyproject('[dependency-groups]\ndev = ["pytest"]\n', groups=["dev"])
        assert selected == ProjectInputs(requirements=("pytest",))


class TestRefusals:
    def test_unknown_extra_and_group_name_their_position(self) -> None:
        """Each unknown name is a problem at its position, listing what is declared."""
        found = problems(PYPROJECT, extras=["socks", "gpu"], groups=["nope"])
        assert [field for field, _ in found] == ["extras[1]", "groups[0]"]
        assert "declared: socks, speed" in found[0][1]
        assert "declared: docs, lint, test" in found[1][1]

    def test_include_group_cycle(self) -> None:
        """Groups including each other are refused, naming the cycle."""
        content = (
            '[dependency-groups]\na = ["x", {include-group = "b"}]\nb = [{include-group = "a"}]\n'
        )
        [(field, message)] = problems(content, groups=["a"])
        assert field == "groups[0]" and "a -> b -> a" in message

    def test_include_of_an_unknown_group(self) -> None:
        [(field, message)] = problems(
            '[dependency-groups]\na = [{include-group = "zzz"}]\n', groups=["a"]
        )
        assert field == "content" and "dependency-groups.a[0] includes an unknown group" in message

    @pytest.mark.parametrize(
        ("content", "expected"),
        [
            ("[project\n", "not valid TOML"),
            ('[project]\ndependencies = ["flask >= = 2"]\n', "project.dependencies[0]"),
            ('[project]\ndependencies = "flask"\n', "must be an array"),
            ('[project]\nrequires-python = "3.10+"\n', "project.requires-python"),
            ('[project]\ndynamic = ["dependencies"]\n', "is dynamic"),
            ('[dependency-groups]\nDev = ["a"]\ndev = ["b"]\n', "same normalized name"),
            ('[dependency-groups]\ndev = [{include-group = "x", extra = 1}]\n', "include-group"),
        ],
    )
    def test_malformed_content(self, content: str, expected: str) -> None:
        """What cannot be read is a problem of ``content``, saying where in the file."""
        found = problems(content, groups=["dev"] if "dependency-groups" in content else [])
        assert found[0][0] == "content"
        assert expected in found[0][1]
