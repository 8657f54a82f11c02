"""``RecordedSearch``: a finder's records written by hand, for testing the explanation.

It implements ``service.resolution.explain.facts.Search`` the way the finder does, without a
network: a test lists the versions each page had, the versions passed over and why, the
dependencies loaded, and the pages a probe may find. Every probe is logged in ``probes``.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Collection

from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version
from resolvelib.structs import RequirementInformation

from service.diagnostics.model import Diagnostic
from service.index.models import DistFile, Index, ProjectPage
from service.index.pages import MEDIA_JSON, parse_page
from service.resolution.candidates import Candidate, ResolverRequirement, SpecifierRequirement
from service.resolution.environment import TargetEnvironment, make_target_environment
from service.resolution.finder import ProjectVersions, VersionEntry
from service.resolution.request import ResolveRequest, Target
from service.resolution.result import Reason, VersionRejection
from service.resolution.selection import FileChoice

__all__ = ["Information", "RecordedSearch", "make_candidate", "make_info"]

Information = RequirementInformation[ResolverRequirement, Candidate]
PYTHON, PLATFORM = "3.12", "x86_64-manylinux_2_28"


def _wheel(name: str, version: str, tags: Collection[str] = ("py3-none-any",)) -> DistFile:
    tag = ".".join(sorted(tags)) if tags else "py3-none-any"
    return DistFile(
        filename=f"{name}-{version}-{tag}.whl",
        url=f"https://files.example/{name}-{version}-{tag}.whl",
        kind="wheel",
        version=version,
        tags=tuple(tags),
    )


def make_candidate(pin: str, *, index: str = "corp") -> Candidate:
    """``b==1.0`` or ``b[x]==1.0`` as a resolver candidate."""
    requirement = Requirement(pin)
    name, version = canonicalize_name(requirement.name), next(iter(requirement.specifier)).version
    return Candidate(
        name,
        Version(version),
        _wheel(name, version),
        Index(name=index, url=f"https://{index}.example/simple/"),
        frozenset(requirement.extras),
    )


def make_info(line: str, parent: str | None = None) -> Information:
    """resolvelib's record of a requirement: ``line``, declared by ``parent`` or by the user."""
    candidate = make_candidate(parent) if parent else None
    return RequirementInformation(SpecifierRequirement(Requirement(line), candidate), candidate)


class _Records:
    def __init__(self) -> None:
        self.rejections: dict[str, dict[str, VersionRejection]] = defaultdict(dict)
        self.excluded_prereleases: dict[str, set[Version]] = defaultdict(set)
        self.dependencies: dict[tuple[str, str], list[Requirement]] = {}
        self.warnings: list[Diagnostic] = []


class RecordedSearch:
    """What a search learned, as a test writes it down."""

    def __init__(
        self,
        *indexes: str,
        requirements: tuple[str, ...] = (),
        python_version: str = PYTHON,
        platform: str = PLATFORM,
        **options: object,
    ) -> None:
        self.indexes = [
            Index(name=name, url=f"https://{name}.example/simple/") for name in indexes or ("corp",)
        ]
        self.target: TargetEnvironment = make_target_environment(python_version, platform)
        self.request = ResolveRequest(
            requirements=requirements,
            environment=Target(python_version=python_version, platform=platform),
            **options,  # type: ignore[arg-type]
        )
        self.known_versions: dict[str, ProjectVersions] = {}
        self.records = _Records()
        self.pages: dict[tuple[str, str], ProjectPage] = {}
        self.probes: list[tuple[str, str]] = []

    def _index(self, name: str | None) -> Index:
        return next(i for i in self.indexes if i.name == name) if name else self.indexes[0]

    # -- writing the records -------------------------------------------------------------

    def add_project(
        self,
        name: str,
        *versions: str,
        index: str | None = None,
        wheel_tags: Collection[str] = ("py3-none-any",),
    ) -> None:
        """``name`` found on ``index`` (the first by default) with these versions."""
        found = self._index(index)
        entries = []
        for v in sorted(versions, key=Version, reverse=True):
            wheel = _wheel(name, v, wheel_tags)
            choice = FileChoice((wheel,), wheel_tags=tuple(wheel_tags))
            entries.append(VersionEntry(Version(v), found, choice, wheel))
        self.known_versions[name] = ProjectVersions.from_entries(
            NormalizedName(name), entries, [found], []
        )

    def add_missing(self, name: str) -> None:
        """``name`` on no index at all."""
        self.known_versions[name] = ProjectVersions.from_entries(
            NormalizedName(name), [], [], self.indexes
        )

    def reject(
        self,
        name: str,
        version: str,
        reason: Reason,
        *,
        detail: str | None = None,
        status: int | None = None,
    ) -> VersionRejection:
        rejection = VersionRejection(
            version=version, reason=reason, status=status, index=self.indexes[0].name, detail=detail
        )
        self.records.rejections[name][version] = rejection
        return rejection

    def set_aside(self, name: str, *versions: str) -> None:
        """Pre-releases of ``name`` the prerelease mode did not allow."""
        self.records.excluded_prereleases[name].update(Version(v) for v in versions)

    def depend(self, name: str, version: str, *lines: str) -> None:
        """The loaded metadata of ``name==version`` requires ``lines``."""
        self.records.dependencies[(name, version)] = [Requirement(line) for line in lines]

    def publish(self, index: str, name: str, *versions: str) -> None:
        """A page a probe of ``index`` finds for ``name``."""
        stem = name.replace("-", "_")  # a wheel's name part has no dashes
        files = [
            {"filename": f"{stem}-{v}-py3-none-any.whl", "url": f"{stem}-{v}-py3-none-any.whl"}
            for v in versions
        ]
        content = json.dumps({"meta": {"api-version": "1.1"}, "files": files}).encode()
        url = f"https://{index}.example/simple/{name}/"
        listing = parse_page(content, MEDIA_JSON, url=url, project=name)
        self.pages[(index, name)] = ProjectPage(name=name, index=index, listing=listing)

    # -- the Search protocol -------------------------------------------------------------

    def find_page_on(self, index: Index, name: str) -> ProjectPage | None:
        self.probes.append((index.name, name))
        return self.pages.get((index.name, name))

    def applies(self, requirement: Requirement) -> bool:
        marker = requirement.marker
        return marker is None or marker.evaluate({**self.target.markers, "extra": ""})
