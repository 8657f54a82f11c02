"""Specification of the packse scenario loader, checked against the real corpus."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conformance.scenarios import (
    DEFAULT_PLATFORM,
    DEFAULT_REQUIRES_PYTHON,
    Scenario,
    ScenarioError,
    find_corpus,
    iter_scenarios,
    load_scenario,
    select,
)
from tests.indexserver import Release
from tests.indexserver.artifacts import make_index

CORPUS = find_corpus()
needs_corpus = pytest.mark.skipif(
    CORPUS is None, reason="no packse-scenarios corpus beside the repository (RESOLVD_CORPORA)"
)
INDEX_URL = "http://127.0.0.1:1/s/simple"


def scenario(key: str) -> Scenario:
    assert CORPUS is not None
    return load_scenario(CORPUS / f"{key}.toml")


def release(found: Scenario, project: str, version: str) -> Release:
    [match] = [
        r
        for p in found.index.projects
        if p.name == project
        for r in p.releases
        if r.version == version
    ]
    return match


@needs_corpus
class TestCorpus:
    def test_every_file_loads_and_builds(self) -> None:
        """Every scenario file loads, and its index builds into real files."""
        assert CORPUS is not None
        scenarios = list(iter_scenarios(CORPUS))
        assert len(scenarios) == len(list(CORPUS.glob("*/*.toml")))
        assert len({s.name for s in scenarios}) == len(scenarios)
        for found in scenarios:
            make_index(found.index)

    def test_counts(self) -> None:
        """The corpus splits into runnable, universal and disabled scenarios."""
        assert CORPUS is not None
        scenarios = list(iter_scenarios(CORPUS))
        assert sum(s.disabled for s in scenarios) == 4
        assert sum(s.universal and not s.disabled for s in scenarios) == 50
        assert sum(not s.universal and not s.disabled for s in scenarios) == 135

    def test_select_filters_on_category_and_name(self) -> None:
        """--only matches a substring of category/name."""
        assert CORPUS is not None
        chosen = select(list(iter_scenarios(CORPUS)), "yanked/")
        assert chosen
        assert all(s.category == "yanked" for s in chosen)


@needs_corpus
class TestMapping:
    def test_simple_defaults(self) -> None:
        """Without options: Python 3.12, the default platform, index by URL, sdist and wheel."""
        found = scenario("simple/single-package")
        assert found.make_request(INDEX_URL) == {
            "requirements": ["a"],
            "environment": {"python_version": "3.12", "platform": DEFAULT_PLATFORM},
            "indexes": [{"url": INDEX_URL}],
        }
        published = release(found, "a", "2.0.0")
        assert published.requires_python == DEFAULT_REQUIRES_PYTHON
        assert (published.wheel, published.sdist) == (True, True)
        assert tuple(published.wheel_tags) == ("py3-none-any",)
        assert found.index.name == "single-package"
        assert found.expected.packages == {"a": "2.0.0"}
        assert not found.universal
        assert not found.disabled

    def test_environment_python(self) -> None:
        """[environment] python is the target Python when no resolver option overrides it."""
        found = scenario("requires_python/python-greater-than-current")
        assert found.make_request(INDEX_URL)["environment"]["python_version"] == "3.9"
        assert not found.expected.satisfiable

    def test_resolver_python_overrides_environment(self) -> None:
        """resolver_options.python (uv's --python-version) wins over [environment] python."""
        found = scenario("requires_python/incompatible-python-compatible-override")
        assert found.python_version == "3.11"
        patch = scenario("requires_python/python-patch-override-patch-compatible")
        assert patch.python_version == "3.9.0"

    def test_python_platform(self) -> None:
        """python_platform maps to environment.platform verbatim; wheel flags and tags carry."""
        found = scenario("wheels/no-sdist-no-wheels-with-matching-platform")
        assert found.make_request(INDEX_URL)["environment"]["platform"] == "x86_64-manylinux2014"
        published = release(found, "a", "1.0.0")
        assert published.sdist is False
        assert tuple(published.wheel_tags) == ("py3-none-macosx_10_0_ppc64",)

    def test_no_build_and_no_binary(self) -> None:
        """no_build becomes only_binary and no_binary stays no_binary, both as name lists."""
        assert scenario("wheels/no-build").make_request(INDEX_URL)["only_binary"] == ["a"]
        no_binary = scenario("wheels/no-binary").make_request(INDEX_URL)
        assert no_binary["no_binary"] == ["a"]
        assert "only_binary" not in no_binary

    def test_prereleases_and_resolution(self) -> None:
        """prereleases = true asks for prerelease "allow"; resolution passes through."""
        assert scenario("prereleases/package-prereleases-boundary").prerelease == "allow"
        assert scenario("prereleases/package-only-prereleases").prerelease is None
        lowest = scenario("fork/lowest-fork-min-python").make_request(INDEX_URL)
        assert lowest["resolution"] == "lowest"
        assert lowest["universal"] is True

    def test_universal_lock_range(self) -> None:
        """A universal scenario's lock range is the root's requires_python (packse's >=3.12 by
        default); a `kind = "compile"` one starts at its interpreter, as uv pip compile does."""
        assert scenario("fork/basic").make_request(INDEX_URL)["requires_python"] == ">=3.12"
        patch = scenario("fork/requires-python-patch-overlap").make_request(INDEX_URL)
        assert patch["requires_python"] == ">=3.10.1"
        compiled = scenario("fork/lowest-fork-min-python").make_request(INDEX_URL)
        assert compiled["requires_python"] == ">=3.11"
        assert "requires_python" not in scenario("wheels/no-binary").make_request(INDEX_URL)

    def test_extras_yanked_and_wheel_flags(self) -> None:
        """Extras, yanked and wheel = false reach the published releases."""
        extras = release(scenario("extras/all-extras-required"), "a", "1.0.0")
        assert {k: tuple(v) for k, v in extras.extras.items()} == {
            "all": ("a[extra_b]", "a[extra_c]"),
            "extra_b": ("b",),
            "extra_c": ("c",),
        }
        assert release(scenario("yanked/package-only-yanked"), "a", "1.0.0").yanked is True
        assert release(scenario("wheels/no-wheels"), "a", "1.0.0").wheel is False
        declared = release(scenario("requires_python/python-less-than-current"), "a", "1.0.0")
        assert declared.requires_python == "<=3.8"

    def test_disabled_and_empty(self) -> None:
        """[testgen] disable marks a scenario; an empty [packages] table is an empty index."""
        assert scenario("wheels/android").disabled
        assert scenario("does_not_exist/requires-package-does-not-exist").index.projects == ()

    def test_expected_names_are_canonical(self) -> None:
        """Expected package names are canonicalized; versions stay as written."""
        found = scenario("simple/dependency-groups")
        assert found.expected.packages["typing-extensions"] == "4.10.0"


class TestErrors:
    def test_not_toml(self, tmp_path: Path) -> None:
        """A file that is not TOML raises ScenarioError naming it."""
        path = tmp_path / "cat" / "broken.toml"
        path.parent.mkdir()
        path.write_text("name = ")
        with pytest.raises(ScenarioError, match=r"broken\.toml"):
            load_scenario(path)

    def test_not_a_scenario(self, tmp_path: Path) -> None:
        """A TOML file without the scenario tables raises ScenarioError naming it."""
        path = tmp_path / "cat" / "empty.toml"
        path.parent.mkdir()
        path.write_text('name = "empty"\n')
        with pytest.raises(ScenarioError, match=r"empty\.toml"):
            load_scenario(path)

    def test_corpus_location(self, tmp_path: Path) -> None:
        """RESOLVD_CORPORA names the corpora directory; without packse-scenarios there is none."""
        assert find_corpus({"RESOLVD_CORPORA": str(tmp_path)}) is None
        (tmp_path / "packse-scenarios").mkdir()
        assert find_corpus({"RESOLVD_CORPORA": str(tmp_path)}) == tmp_path / "packse-scenarios"
