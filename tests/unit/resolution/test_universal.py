"""Universal resolution against a real loopback index: forks, merged markers, every file."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator

import pytest
from packaging.requirements import Requirement

from service.index import IndexClient
from service.index.models import Index
from service.resolution import Progress, ResolutionFailed, ResolveRequest, Target, resolve_request
from service.resolution.candidates import SpecifierRequirement
from service.resolution.markers import format_marker, parse_marker, python_range_marker
from service.resolution.result import Resolution
from service.resolution.scope import RegionScope
from service.resolution.universal import make_domain, split_dependencies
from service.settings import FetchLimits
from tests.indexserver import IndexServer, IndexSpec, Project, Release

pytestmark = pytest.mark.timeout(30)

PY312 = python_range_marker(">=3.12")


@pytest.fixture
async def client() -> AsyncIterator[IndexClient]:
    async with IndexClient(FetchLimits(retries=0, fetch_deadline=10)) as client:
        yield client


def universal(*requirements: str, **options: object) -> ResolveRequest:
    options.setdefault(
        "environment", Target(python_version="3.12", platform="x86_64-manylinux_2_28")
    )
    return ResolveRequest(requirements=tuple(requirements), universal=True, **options)  # type: ignore[arg-type]


async def resolve(
    client: IndexClient, server: IndexServer, spec: IndexSpec, req: ResolveRequest
) -> Resolution:
    server.add_index(spec)
    index = Index(name=spec.name, url=server.url(spec.name))
    return await resolve_request(
        req, indexes=[index], client=client, progress=Progress(), stop=threading.Event()
    )


def entries(resolution: Resolution) -> list[str]:
    return [
        f"{p.name}=={p.version}" + (f" ; {p.markers}" if p.markers else "")
        for p in resolution.packages
    ]


def dependencies(region: object, *lines: str) -> list[SpecifierRequirement]:
    scope = RegionScope(region)  # type: ignore[arg-type]
    made = []
    for line in lines:
        requirement = Requirement(line)
        where = scope.applies(requirement.marker, frozenset())
        if where is not None:
            made.append(SpecifierRequirement(requirement, marker=where))
    return made


class TestForkRule:
    def test_one_name_under_disjoint_markers_splits(self) -> None:
        """Two requirements on one name under different markers split the region (uv's rule),
        with a remainder where neither applies."""
        deps = dependencies(PY312, "a>=2; sys_platform == 'linux'", "a<2; sys_platform == 'darwin'")
        forks = [format_marker(fork.region) for fork in split_dependencies(PY312, deps)]
        assert len(forks) == 3
        assert any("linux" in (f or "") and "darwin" not in (f or "") for f in forks)

    def test_a_single_conditional_requirement_does_not_split(self) -> None:
        """One requirement under a platform marker is kept with its marker, unsplit."""
        deps = dependencies(PY312, "appnope; sys_platform == 'darwin'", "b")
        assert [fork.region for fork in split_dependencies(PY312, deps)] == [PY312]

    def test_a_requirement_raising_the_lowest_python_splits(self) -> None:
        """A requirement only for newer Pythons than the region's lowest splits at that bound."""
        region = python_range_marker(">=3.10")
        deps = dependencies(region, "a>=2; python_version >= '3.12'")
        assert len(split_dependencies(region, deps)) == 2

    def test_markers_that_cannot_hold_are_dropped(self) -> None:
        """Within Python >=3.12, a requirement for Python < 3.10 is never seen."""
        assert dependencies(PY312, "importlib-metadata; python_version < '3.10'") == []

    def test_the_domain_is_the_range_narrowed_by_environments(self) -> None:
        """environments narrow the lock's Python range to their union."""
        domain = make_domain(">=3.11", ["sys_platform == 'linux'", "sys_platform == 'darwin'"])
        assert (
            format_marker(domain & parse_marker("sys_platform == 'win32'")) is None
            or (domain & parse_marker("sys_platform == 'win32'")).is_empty()
        )


class TestUniversalResolution:
    async def test_forks_give_each_platform_its_version(
        self, index_server: IndexServer, client: IndexClient
    ) -> None:
        """numpy>=2 on Linux and numpy<2 on macOS: one lock holding both, each with its marker."""
        spec = IndexSpec("u", [Project("numpy", [Release("1.26.4"), Release("2.1.0")])])
        req = universal("numpy>=2; sys_platform == 'linux'", "numpy<2; sys_platform == 'darwin'")
        resolution = await resolve(client, index_server, spec, req)
        assert entries(resolution) == [
            "numpy==1.26.4 ; sys_platform == 'darwin'",
            "numpy==2.1.0 ; sys_platform == 'linux'",
        ]
        assert resolution.requires_python == ">=3.12"

    async def test_conditional_dependencies_carry_their_path_markers(
        self, index_server: IndexServer, client: IndexClient
    ) -> None:
        """A dependency reached only through a platform-conditional parent inherits its marker;
        one reached unconditionally has none."""
        spec = IndexSpec(
            "u",
            [
                Project("app", [Release("1.0", requires=["tool; sys_platform == 'win32'", "six"])]),
                Project("tool", [Release("1.0", requires=["colorama"])]),
                Project("colorama", [Release("0.4")]),
                Project("six", [Release("1.16")]),
            ],
        )
        resolution = await resolve(client, index_server, spec, universal("app"))
        assert entries(resolution) == [
            "app==1.0",
            "colorama==0.4 ; sys_platform == 'win32'",
            "six==1.16",
            "tool==1.0 ; sys_platform == 'win32'",
        ]

    async def test_newer_pythons_get_newer_versions(
        self, index_server: IndexServer, client: IndexClient
    ) -> None:
        """When the newest version needs a newer Python than the lock's lowest, the range is
        split: older Pythons get the last version they can run (uv's requires-python forks)."""
        spec = IndexSpec(
            "u",
            [
                Project(
                    "lib",
                    [
                        Release("1.0", requires_python=">=3.9"),
                        Release("2.0", requires_python=">=3.11"),
                    ],
                )
            ],
        )
        resolution = await resolve(
            client, index_server, spec, universal("lib", requires_python=">=3.9")
        )
        assert entries(resolution) == [
            "lib==1.0 ; python_full_version < '3.11'",
            "lib==2.0 ; python_full_version >= '3.11'",
        ]

    async def test_every_file_usable_in_the_domain_is_listed(
        self, index_server: IndexServer, client: IndexClient
    ) -> None:
        """All platform wheels and the sdist, but not a wheel for a Python outside the domain."""
        tags = (
            "cp312-cp312-manylinux_2_17_x86_64",
            "cp312-cp312-macosx_11_0_arm64",
            "cp312-cp312-win_amd64",
            "cp310-cp310-manylinux_2_17_x86_64",
        )
        spec = IndexSpec("u", [Project("fast", [Release("1.0", wheel_tags=tags, sdist=True)])])
        resolution = await resolve(client, index_server, spec, universal("fast"))
        (package,) = resolution.packages
        names = sorted(file.filename for file in package.files)
        assert names == [
            "fast-1.0-cp312-cp312-macosx_11_0_arm64.whl",
            "fast-1.0-cp312-cp312-manylinux_2_17_x86_64.whl",
            "fast-1.0-cp312-cp312-win_amd64.whl",
            "fast-1.0.tar.gz",
        ]
        assert package.file is None

    async def test_conflicting_non_sibling_requirements_fail_naming_no_fork(
        self, index_server: IndexServer, client: IndexClient
    ) -> None:
        """Like uv, requirements of two different packages are not split on: they conflict."""
        spec = IndexSpec(
            "u",
            [
                Project("a", [Release("1.0", requires=["c<2; sys_platform == 'linux'"])]),
                Project("b", [Release("1.0", requires=["c>=2; sys_platform == 'darwin'"])]),
                Project("c", [Release("1.0"), Release("2.0")]),
            ],
        )
        with pytest.raises(ResolutionFailed) as failed:
            await resolve(client, index_server, spec, universal("a", "b"))
        assert failed.value.failure.kind == "unsatisfiable"

    async def test_a_failing_fork_is_named(
        self, index_server: IndexServer, client: IndexClient
    ) -> None:
        """A conflict inside one fork says which fork ("for split (...)")."""
        spec = IndexSpec("u", [Project("a", [Release("1.0")])])
        req = universal("a>=2; sys_platform == 'linux'", "a<2; sys_platform == 'darwin'")
        with pytest.raises(ResolutionFailed) as failed:
            await resolve(client, index_server, spec, req)
        assert "for split (sys_platform == 'linux')" in failed.value.failure.message

    async def test_required_environments_pass_over_versions_without_their_wheel(
        self, index_server: IndexServer, client: IndexClient
    ) -> None:
        """A wheel-only version lacking a wheel for a required environment is passed over."""
        spec = IndexSpec(
            "u",
            [
                Project(
                    "torchy",
                    [
                        Release(
                            "1.0",
                            wheel_tags=(
                                "cp312-cp312-manylinux_2_17_x86_64",
                                "cp312-cp312-macosx_11_0_x86_64",
                            ),
                        ),
                        Release("2.0", wheel_tags=("cp312-cp312-manylinux_2_17_x86_64",)),
                    ],
                )
            ],
        )
        req = universal(
            "torchy",
            environments=("sys_platform == 'darwin' and platform_machine == 'x86_64'",),
            required_environments=("sys_platform == 'darwin' and platform_machine == 'x86_64'",),
        )
        resolution = await resolve(client, index_server, spec, req)
        assert [p.version for p in resolution.packages] == ["1.0"]

    async def test_a_missing_required_environment_is_a_coded_hint_naming_it(
        self, index_server: IndexServer, client: IndexClient
    ) -> None:
        """No version has a wheel for the required environment: the failure's hint says which
        environment, and the setting to change."""
        spec = IndexSpec(
            "u",
            [
                Project(
                    "torchy", [Release("2.0", wheel_tags=("cp312-cp312-manylinux_2_17_x86_64",))]
                )
            ],
        )
        darwin = "sys_platform == 'darwin' and platform_machine == 'x86_64'"
        req = universal("torchy", environments=(darwin,), required_environments=(darwin,))
        with pytest.raises(ResolutionFailed) as failed:
            await resolve(client, index_server, spec, req)
        hints = [h for h in failed.value.failure.hints if h.data.get("environment")]
        assert hints and hints[0].code == "no_compatible_wheels"
        assert hints[0].data["setting"] == "required_environments"
        assert "darwin" in hints[0].message
