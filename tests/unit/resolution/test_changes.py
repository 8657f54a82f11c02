"""``diff_packages``: the changes between two package lists, as tables of expected rows."""

from __future__ import annotations

import pytest

from service.resolution.changes import diff_packages, same_file, same_index
from service.resolution.request import LockedFile, LockedPackage

CORP = "https://corp.example/simple"
PYPI = "https://pypi.example/simple"


def entry(
    spec: str,
    *,
    index: str | None = CORP,
    marker: str | None = None,
    sha: str | None = None,
    filename: str | None = None,
) -> LockedPackage:
    name, _, version = spec.partition("==")
    files = ()
    if sha or filename:
        files = (LockedFile(filename=filename, hashes={"sha256": sha} if sha else {}),)
    return LockedPackage(name=name, version=version, index=index, marker=marker, files=files)


def rows(before: list[LockedPackage], after: list[LockedPackage]) -> list[tuple[object, ...]]:
    return [(c.name, c.from_, c.to, c.kind, c.reason) for c in diff_packages(before, after)]


class TestDiffPackages:
    @pytest.mark.parametrize(
        ("before", "after", "expected"),
        [
            pytest.param([], [], [], id="both empty"),
            pytest.param([entry("a==1")], [entry("a==1")], [], id="unchanged"),
            pytest.param(
                [entry("a==1")], [entry("a==1.0")], [], id="equal versions spelled differently"
            ),
            pytest.param(
                [entry("a==1")], [entry("a==2")], [("a", "1", "2", "upgraded", None)], id="upgrade"
            ),
            pytest.param(
                [entry("a==2")],
                [entry("a==1.9")],
                [("a", "2", "1.9", "downgraded", None)],
                id="downgrade",
            ),
            pytest.param(
                [entry("a==1.0rc1")],
                [entry("a==1.0")],
                [("a", "1.0rc1", "1.0", "upgraded", None)],
                id="pre-release to final is an upgrade",
            ),
            pytest.param([], [entry("b==1")], [("b", None, "1", "added", None)], id="added"),
            pytest.param([entry("b==1")], [], [("b", "1", None, "removed", None)], id="removed"),
            pytest.param(
                [entry("a==1"), entry("z==1"), entry("m==1")],
                [entry("z==2"), entry("b==1"), entry("a==1")],
                [
                    ("b", None, "1", "added", None),
                    ("m", "1", None, "removed", None),
                    ("z", "1", "2", "upgraded", None),
                ],
                id="sorted by name",
            ),
        ],
    )
    def test_versions(
        self,
        before: list[LockedPackage],
        after: list[LockedPackage],
        expected: list[tuple[object, ...]],
    ) -> None:
        """Each name is compared by version; only what moved is listed."""
        assert rows(before, after) == expected

    @pytest.mark.parametrize(
        ("before", "after", "expected"),
        [
            pytest.param(
                entry("a==1", index=CORP),
                entry("a==1", index=PYPI),
                ("a", "1", "1", "replaced", f"index {CORP} -> {PYPI}"),
                id="another index",
            ),
            pytest.param(
                entry("a==1", index=CORP + "/"), entry("a==1", index=CORP), None, id="slash"
            ),
            pytest.param(
                entry("a==1", index=None), entry("a==1", index=PYPI), None, id="index unknown"
            ),
            pytest.param(
                entry("a==1", sha="aa", filename="a-1-py3-none-any.whl"),
                entry("a==1", sha="bb", filename="a-1-py3-none-any.whl"),
                (
                    "a",
                    "1",
                    "1",
                    "replaced",
                    "file a-1-py3-none-any.whl -> a-1-py3-none-any.whl",
                ),
                id="same name, another hash",
            ),
            pytest.param(
                entry("a==1", sha="aa"),
                entry("a==1", sha="aa", filename="a-1-py3-none-any.whl"),
                None,
                id="hash only vs hash and name",
            ),
            pytest.param(
                entry("a==1", filename="a-1.tar.gz"),
                entry("a==1", filename="a-1-py3-none-any.whl"),
                ("a", "1", "1", "replaced", "file a-1.tar.gz -> a-1-py3-none-any.whl"),
                id="sdist to wheel, by name",
            ),
            pytest.param(entry("a==1"), entry("a==1", sha="aa"), None, id="file unknown before"),
        ],
    )
    def test_same_version_another_source(
        self, before: LockedPackage, after: LockedPackage, expected: tuple[object, ...] | None
    ) -> None:
        """The same version from another index or file is ``replaced``; unknowns never are."""
        assert rows([before], [after]) == ([expected] if expected else [])

    def test_a_locked_file_among_several_is_kept(self) -> None:
        """A universal lock lists every file of a version; the chosen one is among them."""
        before = LockedPackage(
            name="a",
            version="1",
            files=(LockedFile(hashes={"sha256": "aa"}), LockedFile(hashes={"sha256": "bb"})),
        )
        assert rows([before], [entry("a==1", index=None, sha="bb")]) == []

    @pytest.mark.parametrize(
        ("before", "after", "expected"),
        [
            pytest.param(
                [entry("n==1", marker="python_version < '3.13'")],
                [entry("n==2")],
                [("n", "1", "2", "upgraded", None)],
                id="one entry each side pairs whatever the markers",
            ),
            pytest.param(
                [
                    entry("n==1", marker="python_version < '3.13'"),
                    entry("n==2", marker="python_version >= '3.13'"),
                ],
                [
                    entry("n==2", marker="python_version >= '3.13'"),
                    entry("n==1.5", marker="python_version < '3.13'"),
                ],
                [("n", "1", "1.5", "upgraded", None)],
                id="several entries pair by marker",
            ),
            pytest.param(
                [entry("n==1", marker="sys_platform == 'win32'"), entry("n==2", marker="x")],
                [entry("n==2", marker="x")],
                [("n", "1", None, "removed", None)],
                id="an entry without its marker is removed",
            ),
            pytest.param(
                [entry("n==2")],
                [entry("n==2", marker="a"), entry("n==1", marker="b")],
                [
                    ("n", "2", None, "removed", None),
                    ("n", None, "2", "added", None),
                    ("n", None, "1", "added", None),
                ],
                id="split into markers: the old entry goes, the new ones come",
            ),
        ],
    )
    def test_per_marker_entries(
        self,
        before: list[LockedPackage],
        after: list[LockedPackage],
        expected: list[tuple[object, ...]],
    ) -> None:
        """Names listed more than once (universal locks) are paired by marker."""
        assert rows(before, after) == expected


class TestSameFile:
    @pytest.mark.parametrize(
        ("a", "b", "expected"),
        [
            (LockedFile(hashes={"sha256": "aa"}), LockedFile(hashes={"sha256": "aa"}), True),
            (LockedFile(hashes={"sha256": "aa"}), LockedFile(hashes={"sha256": "bb"}), False),
            (
                LockedFile(filename="x.whl", hashes={"sha512": "aa"}),
                LockedFile(filename="x.whl", hashes={"sha256": "bb"}),
                True,
            ),
            (LockedFile(filename="x.whl"), LockedFile(filename="y.whl"), False),
            (LockedFile(hashes={"md5": "aa"}), LockedFile(filename="y.whl"), None),
        ],
    )
    def test_a_shared_hash_decides_else_the_filename(
        self, a: LockedFile, b: LockedFile, expected: bool | None
    ) -> None:
        assert same_file(a, b) is expected

    @pytest.mark.parametrize(
        ("a", "b", "expected"),
        [(CORP, CORP + "/", True), (CORP, PYPI, False), (None, CORP, None), (CORP, "", None)],
    )
    def test_indexes_compare_without_trailing_slashes(
        self, a: str | None, b: str | None, expected: bool | None
    ) -> None:
        assert same_index(a, b) is expected
