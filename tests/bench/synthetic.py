"""Seeded synthetic indexes: scaling sets of 10…1000 projects and a backtracking-heavy set.

Every set is *resolvable by construction*. The generator first picks a witness version of each
project, then writes the witness releases' dependencies with specifiers the other witnesses
satisfy, so the witnesses form one valid resolution. The other releases get dependencies in the
same shapes aimed at random versions, and some newer ones need Python 3.12: a resolver meets
the ordinary conflicts of a real index, not a puzzle with no answer.

Dependencies only point from ``pkgNNNN`` to a higher-numbered project, so the graph is acyclic,
and every non-root project has one dependent present in all its releases, so a resolution
reaches all ``n`` projects. ``check_witness`` re-verifies both properties from the spec alone.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.indexserver import IndexSpec, Project, Release

__all__ = [
    "SyntheticSet",
    "check_resolution",
    "check_witness",
    "make_backtracking_set",
    "make_scaling_set",
]

SEED = 20_240_611


@dataclass(frozen=True)
class SyntheticSet:
    """An index to serve, the root requirements, and one known resolution of them."""

    spec: IndexSpec
    requirements: tuple[str, ...]
    witness: Mapping[str, str]  # normalized name -> version


def _make_versions(rng: random.Random, count: int) -> list[Version]:
    """``count`` ascending versions, mostly patch bumps with the odd minor or major."""
    major, minor, patch = rng.choice((0, 1, 1, 2)), rng.randrange(6), 0
    versions = []
    for _ in range(count):
        versions.append(Version(f"{major}.{minor}.{patch}"))
        roll = rng.random()
        if roll < 0.05:
            major, minor, patch = major + 1, 0, 0
        elif roll < 0.30:
            minor, patch = minor + 1, 0
        else:
            patch += 1
    return versions


def _make_specifier(rng: random.Random, target: Version, versions: Sequence[Version]) -> str:
    """A specifier in one of the shapes real metadata uses, satisfied by ``target``."""
    lower = rng.choice([v for v in versions if v <= target])
    others = [v for v in versions if v != target]
    roll = rng.random()
    if roll < 0.35:
        return f">={lower}"
    if roll < 0.60:
        return f">={lower},<{target.major + 1}"
    if roll < 0.75:
        return f"~={target.major}.{target.minor}"
    if roll < 0.85 and others:
        return f">={lower},!={rng.choice(others)}"
    if roll < 0.95:
        higher = [v for v in versions if v > target]
        return f"<{rng.choice(higher) if higher else Version(f'{target.major + 1}')}"
    return ""


def make_scaling_set(n: int, seed: int = SEED) -> SyntheticSet:
    """``n`` projects of 5-30 releases each with acyclic random dependencies, served as ``synthN``.

    The roots are the first ``max(2, n // 20)`` projects; a witness is the newest release three
    times in four, otherwise one from the newer half (the releases above it then pin
    incompatible dependency ranges or need a newer Python, which is what makes a resolver work).
    """
    if n < 2:
        raise ValueError("a scaling set needs at least two projects")
    rng = random.Random(f"{seed}-{n}")
    names = [f"pkg{i:04d}" for i in range(n)]
    versions = [_make_versions(rng, rng.randint(5, 30)) for _ in names]
    witness_index = [
        len(vs) - 1 if rng.random() < 0.75 else rng.randrange(len(vs) // 2, len(vs))
        for vs in versions
    ]
    root_count = max(2, n // 20)
    # Core edges hold in every release; extra edges appear from some release onwards.
    core: list[list[int]] = [[] for _ in names]
    for child in range(root_count, n):
        core[rng.randrange(child)].append(child)
    extra: list[list[tuple[int, int]]] = [[] for _ in names]
    for parent in range(n - 1):
        for _ in range(rng.choice((0, 0, 1, 1, 2, 3))):
            child = rng.randrange(parent + 1, n)
            if child not in core[parent]:
                since = rng.randrange(len(versions[parent]))
                extra[parent].append((child, min(since, witness_index[parent])))

    projects = []
    for i, name in enumerate(names):
        releases = []
        for position, version in enumerate(versions[i]):
            is_witness = position == witness_index[i]
            children = list(core[i]) + [c for c, since in extra[i] if position >= since]
            requires = []
            for child in dict.fromkeys(children):
                child_versions = versions[child]
                target = (
                    child_versions[witness_index[child]]
                    if is_witness
                    else rng.choice(child_versions)
                )
                specifier = _make_specifier(rng, target, child_versions)
                requires.append(f"{names[child]}{specifier}")
            newer = position > witness_index[i]
            requires_python = ">=3.12" if newer and rng.random() < 0.3 else ">=3.8"
            releases.append(
                Release(str(version), requires=requires, requires_python=requires_python)
            )
        projects.append(Project(name, releases))

    requirements = []
    for i in range(root_count):
        target = versions[i][witness_index[i]]
        requirements.append(f"{names[i]}{_make_specifier(rng, target, versions[i])}")
    witness = {names[i]: str(versions[i][witness_index[i]]) for i in range(n)}
    spec = IndexSpec(name=f"synth{n}", projects=projects)
    return SyntheticSet(spec, tuple(requirements), witness)


def make_backtracking_set(chains: int = 2, depth: int = 40) -> SyntheticSet:
    """Roots pin ``base==1.0.0``; every release but the oldest of each chain needs ``base>=2``.

    Chain ``k`` is ``topK`` → ``midK`` → ``base``: ``topK`` release ``v`` needs ``midK>=v``, and
    every ``midK`` release except ``1.0`` needs ``base>=2``. A resolver that takes the newest
    ``topK`` first has to walk back through all ``depth`` releases of both projects.
    """
    base_versions = [f"{v}.0.0" for v in range(1, 11)]
    projects = [Project("base", [Release(v) for v in base_versions])]
    requirements = ["base==1.0.0"]
    witness = {"base": "1.0.0"}
    for k in range(chains):
        top, mid = f"top{k}", f"mid{k}"
        projects.append(
            Project(
                top, [Release(f"{v}.0", requires=[f"{mid}>={v}.0"]) for v in range(1, depth + 1)]
            )
        )
        mid_releases = [Release("1.0", requires=["base<2"])]
        mid_releases += [Release(f"{v}.0", requires=["base>=2"]) for v in range(2, depth + 1)]
        projects.append(Project(mid, mid_releases))
        requirements.append(top)
        witness |= {top: "1.0", mid: "1.0"}
    spec = IndexSpec(name=f"backtrack{chains}x{depth}", projects=projects)
    return SyntheticSet(spec, tuple(requirements), witness)


def check_witness(synthetic: SyntheticSet) -> list[str]:
    """What is wrong with ``synthetic``: cycles, or a requirement its witness does not satisfy.

    Empty means the dependency graph over all releases is acyclic and the witness releases
    reachable from the roots satisfy the roots and each other's dependencies.
    """
    return _find_cycles(synthetic.spec) + check_resolution(synthetic, synthetic.witness)


def _find_cycles(spec: IndexSpec) -> list[str]:
    edges: dict[str, set[str]] = {
        canonicalize_name(project.name): {
            canonicalize_name(Requirement(line).name)
            for release in project.releases
            for line in release.requires
        }
        for project in spec.projects
    }
    problems: list[str] = []
    state: dict[str, int] = {}  # 1 = on the DFS stack, 2 = done

    def visit(name: str) -> None:
        state[name] = 1
        for child in sorted(edges.get(name, set())):
            if state.get(child) == 1:
                problems.append(f"cycle through {name} -> {child}")
            elif child not in state:
                visit(child)
        state[name] = 2

    for name in sorted(edges):
        if name not in state:
            visit(name)
    return problems


def check_resolution(synthetic: SyntheticSet, resolution: Mapping[str, str]) -> list[str]:
    """Why ``resolution`` (normalized name -> version) is not a solution of ``synthetic``.

    Walks from the root requirements through the chosen releases' dependencies: every
    requirement met must name a published release that satisfies it and allows Python 3.11.
    Empty means it is a valid resolution (it may still differ from another valid one).
    """
    releases = {
        canonicalize_name(project.name): {Version(r.version): r for r in project.releases}
        for project in synthetic.spec.projects
    }
    problems: list[str] = []
    pending = [Requirement(line) for line in synthetic.requirements]
    seen: set[str] = set()
    while pending:
        requirement = pending.pop()
        name = canonicalize_name(requirement.name)
        chosen = resolution.get(name)
        if chosen is None or Version(chosen) not in releases.get(name, {}):
            problems.append(f"{name} is required ({requirement}) but {chosen or 'not chosen'}")
            continue
        if not requirement.specifier.contains(chosen, prereleases=True):
            problems.append(f"{name}=={chosen} does not satisfy {requirement}")
        if name in seen:
            continue
        seen.add(name)
        release = releases[name][Version(chosen)]
        python = Requirement(f"python{release.requires_python or ''}").specifier
        if not python.contains("3.11"):
            problems.append(f"{name}=={chosen} needs Python {release.requires_python}")
        pending.extend(Requirement(line) for line in release.requires)
    return problems
