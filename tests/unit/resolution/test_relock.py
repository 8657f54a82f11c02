"""Resolving against a previous lock, on a real loopback index: preferences, never constraints.

A locked version is tried first and kept while it fits; one that no longer fits is replaced (and
only it, with what it forces), and ``changes`` says what moved and why.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec
import pytest

from service.diagnostics.model import Code
from service.index import IndexClient
from service.resolution import ResolveRequest, Target
from service.resolution.request import LockedFile, LockedPackage, LockInput
from service.resolution.result import Resolution
from tests.indexserver import IndexServer, IndexSpec, Project, Release
from tests.unit.resolution.test_resolve import client, index, request, resolve, versions

__all__ = ["client"]  # the fixture, shared with test_resolve

pytestmark = pytest.mark.timeout(30)

# a 1.0 needs b>=1 (b 1.0 satisfies it), a 2.0 needs b>=2; b 3.0 exists; c is a's sibling.
WORLD = [
    Project("a", [Release("1.0", requires=["b>=1"]), Release("2.0", requires=["b>=2"])]),
    Project("b", [Release("1.0"), Release("2.0"), Release("3.0")]),
    Project("c", [Release("1.0"), Release("1.1")]),
]


def locked(*pins: str, environments: Sequence[str] = ()) -> LockInput:
    """A lock holding ``name==version`` pins (optionally ``; marker``)."""
    packages = []
    for pin in pins:
        spec, _, marker = pin.partition(";")
        name, _, version = spec.strip().partition("==")
        packages.append(LockedPackage(name=name, version=version, marker=marker.strip() or None))
    return LockInput(
        format="requirements", packages=tuple(packages), environments=tuple(environments)
    )


def lock_of(resolution: Resolution) -> LockInput:
    """The lock a resolution makes: versions, index URLs and chosen files."""
    return LockInput(
        format="job",
        packages=tuple(
            LockedPackage(
                name=p.name,
                version=p.version,
                files=(LockedFile(filename=p.file.filename, hashes=p.file.hashes),),
            )
            for p in resolution.packages
        ),
    )


def changes(resolution: Resolution) -> list[tuple[str, str | None, str | None, str, str | None]]:
    assert resolution.changes is not None
    return [(c.name, c.from_, c.to, c.kind, c.reason) for c in resolution.changes]


@pytest.fixture
def corp(index_server: IndexServer) -> IndexServer:
    index_server.add_index(IndexSpec("corp", WORLD))
    return index_server


class TestKept:
    async def test_a_lock_that_fits_is_kept_pin_for_pin(
        self, corp: IndexServer, client: IndexClient
    ) -> None:
        """Newer versions exist, but every locked version still fits: nothing moves."""
        req = request("a", "c", lock=locked("a==1.0", "b==1.0", "c==1.0"))
        result = await resolve(client, req, [index(corp, "corp")])
        assert versions(result) == {"a": "1.0", "b": "1.0", "c": "1.0"}
        assert result.changes == []
        assert result.warnings == []

    async def test_without_a_lock_there_are_no_changes(
        self, corp: IndexServer, client: IndexClient
    ) -> None:
        """``changes`` is absent (null) when the request gave no lock."""
        result = await resolve(client, request("a"), [index(corp, "corp")])
        assert versions(result) == {"a": "2.0", "b": "3.0"}
        assert result.changes is None

    async def test_new_requirements_are_added_and_unneeded_pins_removed(
        self, corp: IndexServer, client: IndexClient
    ) -> None:
        """A package the lock lacks is resolved afresh (highest); one no longer needed goes."""
        req = request("a", lock=locked("a==1.0", "b==1.0", "c==1.0"))
        result = await resolve(client, req, [index(corp, "corp")])
        assert versions(result) == {"a": "1.0", "b": "1.0"}
        assert changes(result) == [("c", "1.0", None, "removed", None)]
        req = request("a", "c", lock=locked("a==1.0", "b==1.0"))
        result = await resolve(client, req, [index(corp, "corp")])
        assert changes(result) == [("c", None, "1.1", "added", None)]

    async def test_entries_for_other_environments_are_ignored(
        self, corp: IndexServer, client: IndexClient
    ) -> None:
        """A per-marker entry whose marker is false on the target is neither a preference nor
        something removed; the one whose marker holds is kept."""
        lock = locked(
            "a==1.0",
            "b==2.0 ; sys_platform == 'win32'",
            "b==3.0 ; 'dev' in dependency_groups",
            "b==1.0 ; sys_platform == 'linux'",
        )
        result = await resolve(client, request("a", lock=lock), [index(corp, "corp")])
        assert versions(result) == {"a": "1.0", "b": "1.0"}
        assert result.changes == []

    async def test_a_locked_pre_release_stays_unless_pre_releases_are_banned(
        self, index_server: IndexServer, client: IndexClient
    ) -> None:
        """As uv keeps one from an existing output file; ``disallow`` drops it with a reason."""
        index_server.add_index(
            IndexSpec("corp", [Project("p", [Release("1.0"), Release("2.0b1")])])
        )
        lock = locked("p==2.0b1")
        result = await resolve(client, request("p", lock=lock), [index(index_server, "corp")])
        assert versions(result) == {"p": "2.0b1"}
        banned = request("p", lock=lock, prerelease="disallow")
        result = await resolve(client, banned, [index(index_server, "corp")])
        assert changes(result) == [
            (
                "p",
                "2.0b1",
                "1.0",
                "downgraded",
                "p 2.0b1 is a pre-release, and prerelease is 'disallow'",
            )
        ]

    async def test_the_locked_file_is_kept_over_a_better_one(
        self, index_server: IndexServer, client: IndexClient
    ) -> None:
        """A version's locked file is chosen while it is offered, though the target ranks
        another file higher; when it is gone the version stays and the file is ``replaced``."""
        release = Release("1.0", wheel_tags=("py3-none-any", "cp312-cp312-manylinux_2_17_x86_64"))
        index_server.add_index(IndexSpec("corp", [Project("w", [release])]))
        fresh = await resolve(client, request("w"), [index(index_server, "corp")])
        assert fresh.packages[0].file.filename.endswith("manylinux_2_17_x86_64.whl")
        generic = LockedFile(filename="w-1.0-py3-none-any.whl")
        lock = LockInput(
            format="pylock", packages=(LockedPackage(name="w", version="1.0", files=(generic,)),)
        )
        result = await resolve(client, request("w", lock=lock), [index(index_server, "corp")])
        assert result.packages[0].file.filename == "w-1.0-py3-none-any.whl"
        assert result.changes == []
        gone = LockedFile(filename="w-1.0-cp312-cp312-win_amd64.whl")
        lock = msgspec.structs.replace(
            lock, packages=(LockedPackage(name="w", version="1.0", files=(gone,)),)
        )
        result = await resolve(client, request("w", lock=lock), [index(index_server, "corp")])
        assert changes(result) == [
            (
                "w",
                "1.0",
                "1.0",
                "replaced",
                "the locked file w-1.0-cp312-cp312-win_amd64.whl is no longer offered or usable "
                "for this target",
            )
        ]

    async def test_a_lock_for_another_environment_is_used_with_a_warning(
        self, corp: IndexServer, client: IndexClient
    ) -> None:
        """Its pins are only preferences; a warning says whose environment it was."""
        lock = locked("a==1.0", "b==1.0", environments=["sys_platform == 'win32'"])
        result = await resolve(client, request("a", lock=lock), [index(corp, "corp")])
        assert versions(result) == {"a": "1.0", "b": "1.0"}
        (warning,) = result.warnings
        assert warning.code == Code.LOCK_ENVIRONMENT_MISMATCH
        assert "sys_platform == 'win32'" in warning.message


class TestMoved:
    async def test_a_requirement_change_moves_only_the_pin_it_invalidates(
        self, corp: IndexServer, client: IndexClient
    ) -> None:
        """``b>=2`` invalidates b's pin; a and c stay although newer versions exist."""
        req = request("a", "c", "b>=2", lock=locked("a==1.0", "b==1.0", "c==1.0"))
        result = await resolve(client, req, [index(corp, "corp")])
        assert versions(result) == {"a": "1.0", "b": "3.0", "c": "1.0"}
        assert changes(result) == [
            ("b", "1.0", "3.0", "upgraded", "b 1.0 no longer satisfies the requirement b>=2")
        ]

    async def test_a_constraint_moves_a_pin(self, corp: IndexServer, client: IndexClient) -> None:
        req = request("a", constraints=("b>=2,<3",), lock=locked("a==1.0", "b==1.0"))
        result = await resolve(client, req, [index(corp, "corp")])
        assert changes(result) == [
            ("b", "1.0", "2.0", "upgraded", "b 1.0 no longer satisfies the constraint b>=2,<3")
        ]

    async def test_upgrade_packages_lifts_one_pin_and_what_it_forces(
        self, corp: IndexServer, client: IndexClient
    ) -> None:
        """Lifting a's pin moves a to 2.0, which forces b; c keeps its pin."""
        lock = locked("a==1.0", "b==1.0", "c==1.0")
        req = request("a", "c", lock=lock, upgrade_packages=("a",))
        result = await resolve(client, req, [index(corp, "corp")])
        assert versions(result) == {"a": "2.0", "b": "3.0", "c": "1.0"}
        assert changes(result) == [
            ("a", "1.0", "2.0", "upgraded", "upgrade requested"),
            ("b", "1.0", "3.0", "upgraded", "b 1.0 no longer satisfies a 2.0's b>=2"),
        ]

    async def test_an_upgrade_package_specifier_also_constrains(
        self, corp: IndexServer, client: IndexClient
    ) -> None:
        """``b<3`` lifts b's pin and keeps it below 3, as uv's ``-P 'b<3'``."""
        req = request("a", lock=locked("a==1.0", "b==1.0"), upgrade_packages=("b<3",))
        result = await resolve(client, req, [index(corp, "corp")])
        assert versions(result) == {"a": "1.0", "b": "2.0"}

    async def test_upgrade_is_a_fresh_resolution(
        self, corp: IndexServer, client: IndexClient
    ) -> None:
        """``upgrade: true`` ignores every preference; ``changes`` still compares with the lock."""
        fresh = await resolve(client, request("a", "c"), [index(corp, "corp")])
        lock = locked("a==1.0", "b==1.0", "c==1.0", "gone==1.0")
        result = await resolve(
            client, request("a", "c", lock=lock, upgrade=True), [index(corp, "corp")]
        )
        assert result.packages == fresh.packages
        assert changes(result) == [
            ("a", "1.0", "2.0", "upgraded", "upgrade requested"),
            ("b", "1.0", "3.0", "upgraded", "upgrade requested"),
            ("c", "1.0", "1.1", "upgraded", "upgrade requested"),
            ("gone", "1.0", None, "removed", None),
        ]

    async def test_a_pin_whose_dependencies_conflict_moves(
        self, index_server: IndexServer, client: IndexClient
    ) -> None:
        """The locked x 1.0 needs y<2, and the request now needs y>=2."""
        index_server.add_index(
            IndexSpec(
                "corp",
                [
                    Project(
                        "x", [Release("1.0", requires=["y<2"]), Release("1.1", requires=["y"])]
                    ),
                    Project("y", [Release("1.0"), Release("2.0")]),
                ],
            )
        )
        req = request("x", "y>=2", lock=locked("x==1.0", "y==1.0"))
        result = await resolve(client, req, [index(index_server, "corp")])
        assert versions(result) == {"x": "1.1", "y": "2.0"}
        assert changes(result) == [
            ("x", "1.0", "1.1", "upgraded", "x 1.0 requires y<2, but y 2.0 was needed"),
            ("y", "1.0", "2.0", "upgraded", "y 1.0 no longer satisfies the requirement y>=2"),
        ]


class TestUnavailable:
    """A locked version the index no longer gives is replaced, never a failure."""

    @pytest.mark.parametrize(
        ("release", "reason"),
        [
            (Release("1.0", yanked="broken build"), "b 1.0 is now yanked (broken build)"),
            (Release("1.0", requires_python=">=3.13"), "b 1.0 requires Python >=3.13"),
            (None, "b 1.0 is no longer offered by corp"),
        ],
    )
    async def test_a_pin_the_index_withdrew_is_replaced(
        self,
        index_server: IndexServer,
        client: IndexClient,
        release: Release | None,
        reason: str,
    ) -> None:
        releases = [r for r in (release, Release("2.0")) if r is not None]
        index_server.add_index(IndexSpec("corp", [Project("b", releases)]))
        result = await resolve(
            client, request("b", lock=locked("b==1.0")), [index(index_server, "corp")]
        )
        assert changes(result) == [("b", "1.0", "2.0", "upgraded", reason)]

    async def test_a_pin_refused_under_a_metadata_policy_is_replaced(
        self, corp: IndexServer, client: IndexClient
    ) -> None:
        """The index answers 403 for b 1.0's files and the policy ignores 403."""
        corp.inject("/corp/files/b-1.0-*", status=403)
        req = request("a", lock=locked("a==1.0", "b==1.0"))
        result = await resolve(client, req, [index(corp, "corp", metadata=[403])])
        assert versions(result) == {"a": "1.0", "b": "3.0"}
        assert changes(result) == [
            ("b", "1.0", "3.0", "upgraded", "the index corp answered 403 for b 1.0")
        ]


class TestIndexes:
    async def test_the_locked_index_is_kept_where_several_offer_the_version(
        self, index_server: IndexServer, client: IndexClient
    ) -> None:
        """With ``unsafe-best-match`` both indexes offer q 1.0; the lock took it from the
        second, so it still comes from there."""
        for name in ("one", "two"):
            index_server.add_index(IndexSpec(name, [Project("q", [Release("1.0")])]))
        indexes = [index(index_server, "one"), index(index_server, "two")]
        lock = LockInput(
            format="pylock",
            packages=(LockedPackage(name="q", version="1.0", index=index_server.url("two")),),
        )
        req = request("q", lock=lock, index_strategy="unsafe-best-match")
        result = await resolve(client, req, indexes)
        assert result.packages[0].index == "two"
        assert result.changes == []
        unlocked = await resolve(client, request("q", index_strategy="unsafe-best-match"), indexes)
        assert unlocked.packages[0].index == "one"


def test_request_echo_round_trips() -> None:
    """The request (with its lock) is stored in the job document and read back unchanged."""
    req = ResolveRequest(
        requirements=("a",),
        environment=Target(python_version="3.12", platform="linux"),
        lock=locked("a==1.0 ; sys_platform == 'linux'"),
        upgrade_packages=("b<3",),
    )
    assert msgspec.json.decode(msgspec.json.encode(req), type=ResolveRequest) == req
