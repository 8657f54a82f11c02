"""Load packse resolver scenarios (the corpus uv tests against) into indexes and requests.

The corpus is read where it lives, never copied: ``$RESOLVD_CORPORA/packse-scenarios`` or
``../shared/corpora/packse-scenarios`` beside the repository. Its format is described in
``corpora/README.md``; the mapping onto a ``POST /resolve`` body is in ``Scenario.make_request``.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.indexserver import IndexSpec, Project, Release

__all__ = [
    "DEFAULT_PLATFORM",
    "DEFAULT_PYTHON",
    "DEFAULT_REQUIRES_PYTHON",
    "REPO_ROOT",
    "Expected",
    "Scenario",
    "ScenarioError",
    "find_corpus",
    "iter_scenarios",
    "load_scenario",
    "select",
]

REPO_ROOT = Path(__file__).resolve().parents[2]
# packse's defaults: a version without ``requires_python`` declares ">=3.12", and a scenario
# without a Python runs on 3.12 (the uv test suite's interpreter).
DEFAULT_REQUIRES_PYTHON = ">=3.12"
DEFAULT_PYTHON = "3.12"
# No platform named: the service's out-of-the-box target (uv's suite uses its CI host's).
DEFAULT_PLATFORM = "x86_64-manylinux_2_28"


class ScenarioError(ValueError):
    """A scenario file is missing, not TOML, or not in the corpus format; names the file."""


@dataclass(frozen=True)
class Expected:
    """What uv's test suite expects: satisfiable or not, and some pinned versions."""

    satisfiable: bool
    # canonical name -> version, as written; compare with packaging.version.Version.
    packages: Mapping[str, str]
    explanation: str | None


@dataclass(frozen=True)
class Scenario:
    name: str
    category: str
    description: str
    index: IndexSpec
    requirements: tuple[str, ...]
    python_version: str
    platform: str
    prerelease: str | None
    resolution: str | None
    only_binary: tuple[str, ...]
    no_binary: tuple[str, ...]
    # Universal scenarios expect one lock for every environment of the domain (marker forks).
    universal: bool
    # Universal only: the lock's Python range, and environments every package needs a file for.
    requires_python: str
    required_environments: tuple[str, ...]
    # ``[testgen] disable = true``: uv's own suite does not run these.
    disabled: bool
    expected: Expected

    @property
    def key(self) -> str:
        return f"{self.category}/{self.name}"

    @property
    def requirement_names(self) -> tuple[str, ...]:
        """The project names the root requires, as written."""
        return tuple(Requirement(line).name for line in self.requirements)

    def make_request(self, index_url: str) -> dict[str, Any]:
        """The ``POST /resolve`` body that asks the service what uv is asked for this scenario.

        Universal scenarios become universal requests, with the lock's Python range as uv's
        test suite gives it (``requires_python``). Not mapped, because the API has no such
        input: ``[environment] additional_python`` (interpreters uv may build sdists with; the
        service reads sdist metadata and never builds).
        """
        body: dict[str, Any] = {
            "requirements": list(self.requirements),
            "environment": {"python_version": self.python_version, "platform": self.platform},
            "indexes": [{"url": index_url}],
        }
        if self.universal:
            body["universal"] = True
            body["requires_python"] = self.requires_python
            if self.required_environments:
                body["required_environments"] = list(self.required_environments)
        if self.prerelease is not None:
            body["prerelease"] = self.prerelease
        if self.resolution is not None:
            body["resolution"] = self.resolution
        if self.only_binary:
            body["only_binary"] = list(self.only_binary)
        if self.no_binary:
            body["no_binary"] = list(self.no_binary)
        return body


def find_corpus(environ: Mapping[str, str] | None = None) -> Path | None:
    """The packse scenario directory, or ``None`` when this checkout has no corpus beside it."""
    environ = os.environ if environ is None else environ
    corpora = Path(environ.get("RESOLVD_CORPORA") or REPO_ROOT.parent / "shared" / "corpora")
    directory = corpora / "packse-scenarios"
    return directory if directory.is_dir() else None


def _names(value: object, option: str, path: Path) -> tuple[str, ...]:
    """``no_build`` / ``no_binary``: a list of package names, or ``true`` meaning all of them."""
    if value is True:
        return (":all:",)
    if value is None or value is False:
        return ()
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ScenarioError(f"{path}: resolver_options.{option} must be a bool or a list of names")


def _make_release(version: str, table: Mapping[str, Any]) -> Release:
    return Release(
        version,
        requires=tuple(table.get("requires", ())),
        extras={extra: tuple(reqs) for extra, reqs in table.get("extras", {}).items()},
        requires_python=table.get("requires_python", DEFAULT_REQUIRES_PYTHON),
        wheel=table.get("wheel", True),
        wheel_tags=tuple(table.get("wheel_tags", ("py3-none-any",))),
        sdist=table.get("sdist", True),
        yanked=table.get("yanked", False),
    )


def _make_expected(table: Mapping[str, Any]) -> Expected:
    return Expected(
        satisfiable=bool(table["satisfiable"]),
        packages={canonicalize_name(n): str(v) for n, v in table.get("packages", {}).items()},
        explanation=table.get("explanation"),
    )


def load_scenario(path: Path) -> Scenario:
    """Read one scenario file; its category is the directory it sits in."""
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ScenarioError(f"{path}: {exc}") from exc
    try:
        return _make_scenario(path, data)
    except (KeyError, TypeError, AttributeError) as exc:
        raise ScenarioError(f"{path}: not in the scenario format ({exc!r})") from exc


def _make_scenario(path: Path, data: Mapping[str, Any]) -> Scenario:
    options: Mapping[str, Any] = data.get("resolver_options", {})
    environment: Mapping[str, Any] = data.get("environment", {})
    projects = tuple(
        Project(name, tuple(_make_release(v, t) for v, t in package.get("versions", {}).items()))
        for name, package in data.get("packages", {}).items()
    )
    prereleases = options.get("prereleases", False)
    python_version = str(options.get("python") or environment.get("python") or DEFAULT_PYTHON)
    # uv's suite runs universal scenarios as `uv lock` of a project whose requires-python is
    # the root's (packse's default otherwise), or, for `kind = "compile"` ones, as
    # `uv pip compile --universal`, whose range starts at the interpreter's version.
    if data.get("testgen", {}).get("kind") == "compile":
        requires_python = f">={python_version}"
    else:
        requires_python = str(data["root"].get("requires_python") or DEFAULT_REQUIRES_PYTHON)
    return Scenario(
        name=data["name"],
        category=path.parent.name,
        description=data.get("description", "").strip(),
        index=IndexSpec(name=data["name"], projects=projects),
        requirements=tuple(data["root"]["requires"]),
        # ``resolver_options.python`` is uv's --python-version; it overrides the interpreter's.
        python_version=python_version,
        platform=str(options.get("python_platform") or DEFAULT_PLATFORM),
        prerelease="allow" if prereleases else None,
        resolution=options.get("resolution"),
        # packse's no_build is uv's --no-build-package / --only-binary: wheels only.
        only_binary=_names(options.get("no_build"), "no_build", path),
        no_binary=_names(options.get("no_binary"), "no_binary", path),
        universal=bool(options.get("universal", False)),
        requires_python=requires_python,
        required_environments=tuple(options.get("required_environments", ())),
        disabled=bool(data.get("testgen", {}).get("disable", False)),
        expected=_make_expected(data["expected"]),
    )


def iter_scenarios(corpus: Path) -> Iterator[Scenario]:
    """Every scenario under ``corpus``, ordered by category, then file name."""
    for path in sorted(corpus.glob("*/*.toml")):
        yield load_scenario(path)


def select(scenarios: Sequence[Scenario], only: str | None) -> list[Scenario]:
    """The scenarios whose ``category/name`` contains ``only`` (all when ``only`` is empty)."""
    return [s for s in scenarios if not only or only in s.key]
