"""Several indexes, end to end, with ``uv pip compile`` on the same loopback indexes as the oracle.

Two simple indexes publish ``flask`` differently: ``e`` an older release, ``f`` two newer ones
(each with the ``click`` its releases need), and ``variant`` 1.0 is on both, usable only on
``f``. Each index strategy must pick what uv picks there: ``first-index`` takes a package only
from the first index that has it, ``unsafe-first-match`` exhausts ``e``'s versions before
``f``'s (and does not look for a version ``e`` lists unusably elsewhere), ``unsafe-best-match``
takes the highest usable anywhere. A flat index (a
directory listing of files, uv's ``--find-links``) resolves like uv's; ``sources`` takes a
package only from the explicit index it is pinned to; a ``"7 days"`` cooldown skips a release
uploaded yesterday, as uv's ``--exclude-newer "7 days"`` does.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement

from tests.indexserver import IndexServer, IndexSpec, Project, Release
from tests.support.cluster import Cluster, assert_not_internal
from tests.support.installers import VENV_BIN, installed, run_tool, tool_env
from tests.support.processes import make_service_env

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

PYTHON_VERSION = "3.12"
PLATFORM = "x86_64-manylinux_2_28"
STRATEGIES = ("first-index", "unsafe-first-match", "unsafe-best-match")

E = IndexSpec(
    "e",
    [
        Project("flask", [Release("2.3.3", requires=["click>=7"])]),
        Project("click", [Release("7.0")]),
        Project("tool", [Release("1.0")]),
        # Its 1.0 has no file for the target here, but has one on f.
        Project("variant", [Release("1.0", wheel_tags=("cp312-cp312-win_amd64",)), Release("0.9")]),
    ],
)
F = IndexSpec(
    "f",
    [
        Project(
            "flask",
            [Release("3.0.3", requires=["click>=8"]), Release("3.1.0", requires=["click>=8"])],
        ),
        Project("click", [Release("7.0"), Release("8.1.7")]),
        Project("variant", [Release("1.0"), Release("0.8")]),
    ],
)
# An explicit index: only packages pinned to it by ``sources`` are taken from it.
PINNED = IndexSpec(
    "pinned",
    [Project("tool", [Release("9.0")]), Project("flask", [Release("9.9", requires=["click"])])],
)
NOW = datetime.now(UTC).replace(microsecond=0)


def _ago(days: int) -> str:
    return (NOW - timedelta(days=days)).isoformat().replace("+00:00", "Z")


FRESH = IndexSpec(
    "fresh",
    [
        Project(
            "cool",
            [Release("1.0", upload_time=_ago(30)), Release("2.0", upload_time=_ago(1))],
        )
    ],
)
# The same releases on an HTML-only index: its pages carry no upload times.
UNDATED = IndexSpec("undated", FRESH.projects, formats=("html",))

# (strategy, requirement) -> the pins uv and resolvd agree on (None: no resolution).
EXPECTED: dict[tuple[str, str], dict[str, str] | None] = {
    ("first-index", "flask"): {"flask": "2.3.3", "click": "7.0"},
    ("first-index", "flask>=3"): None,
    ("unsafe-first-match", "flask"): {"flask": "2.3.3", "click": "7.0"},
    ("unsafe-first-match", "flask>=3"): {"flask": "3.1.0", "click": "8.1.7"},
    ("unsafe-best-match", "flask"): {"flask": "3.1.0", "click": "8.1.7"},
    ("unsafe-best-match", "flask>=3"): {"flask": "3.1.0", "click": "8.1.7"},
    # A version the first index lists unusably: first-match does not look for it further.
    ("first-index", "variant"): {"variant": "0.9"},
    ("unsafe-first-match", "variant"): {"variant": "0.9"},
    ("unsafe-best-match", "variant"): {"variant": "1.0"},
}


@pytest.fixture
def urls(index_server: IndexServer) -> dict[str, str]:
    """Every index of the module on the loopback server, by name (``flat``: ``f``'s files)."""
    found = {spec.name: index_server.add_index(spec) for spec in (E, F, PINNED, FRESH, UNDATED)}
    found["flat"] = f"{index_server.base_url}/f/files/"
    return found


@pytest.fixture
def cluster(
    tmp_path: Path, clean_redis: str, index_server: IndexServer, urls: dict[str, str]
) -> Iterator[Cluster]:
    """The API (with its worker) configured with ``e``, ``f``, the flat index and the explicit
    ``pinned`` index; requests may name any URL on the index server."""
    config = tmp_path / "resolvd.toml"
    config.write_text(
        f'[[index]]\nname = "e"\nurl = "{urls["e"]}"\n'
        f'[[index]]\nname = "f"\nurl = "{urls["f"]}"\n'
        f'[[index]]\nname = "flat"\nurl = "{urls["flat"]}"\nformat = "flat"\n'
        f'[[index]]\nname = "pinned"\nurl = "{urls["pinned"]}"\nexplicit = true\n'
    )
    env = make_service_env(
        {
            "RESOLVD_CONFIG": str(config),
            "RESOLVD_REDIS_URL": clean_redis,
            "RESOLVD_ALLOWED_INDEX_URLS": index_server.base_url + "/",
        }
    )
    cluster = Cluster(tmp_path, env)
    try:
        cluster.serve()
        cluster.wait_ready()
        yield cluster
    finally:
        cluster.close()


def resolvd(cluster: Cluster, requirements: list[str], **fields: Any) -> dict[str, Any]:
    """The finished job document of a request for the target."""
    body = {
        "requirements": requirements,
        "environment": {"python_version": PYTHON_VERSION, "platform": PLATFORM},
        **fields,
    }
    response = cluster.submit(body)
    assert response.status_code in (200, 202), response.text
    document = cluster.wait_job(response.json()["id"])
    assert_not_internal(document)
    return document


def pins(document: dict[str, Any]) -> dict[str, str] | None:
    if document["status"] != "succeeded":
        return None
    return {p["name"]: p["version"] for p in document["result"]["packages"]}


def uv(tmp_path: Path, requirements: list[str], *options: str) -> dict[str, str] | None:
    """The pins ``uv pip compile`` writes for ``requirements`` (None: it found no resolution)."""
    (tmp_path / "requirements.in").write_text("\n".join(requirements) + "\n")
    completed = subprocess.run(
        [
            str(VENV_BIN / "uv"),
            "pip",
            "compile",
            "requirements.in",
            "--python-version",
            PYTHON_VERSION,
            "--python-platform",
            PLATFORM,
            "--no-header",
            "--no-annotate",
            *options,
        ],
        env=tool_env(tmp_path),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if completed.returncode != 0:
        assert "No solution found" in completed.stderr, completed.stderr
        return None
    found = {}
    for line in completed.stdout.splitlines():
        if line and not line.startswith((" ", "#", "-")):
            requirement = Requirement(line)
            found[requirement.name] = str(next(iter(requirement.specifier)).version)
    return found


class TestIndexStrategies:
    @pytest.mark.parametrize("strategy", STRATEGIES)
    def test_each_strategy_picks_what_uv_picks(
        self, cluster: Cluster, urls: dict[str, str], tmp_path: Path, strategy: str
    ) -> None:
        """Over ``e`` then ``f``, ``flask``, ``flask>=3`` and ``variant`` resolve as uv resolves
        them with the same ``--index-strategy`` (``--index e --default-index f``: e is searched
        first)."""
        for requirement in ("flask", "flask>=3", "variant"):
            document = resolvd(
                cluster,
                [requirement],
                indexes=[{"name": "e"}, {"name": "f"}],
                index_strategy=strategy,
            )
            oracle = uv(
                tmp_path,
                [requirement],
                "--index",
                urls["e"],
                "--default-index",
                urls["f"],
                "--index-strategy",
                strategy,
            )
            assert pins(document) == oracle == EXPECTED[(strategy, requirement)], requirement

    def test_first_match_takes_a_later_index_only_for_what_the_first_lacks(
        self, cluster: Cluster
    ) -> None:
        """Under unsafe-first-match each package comes from the first index with a version that
        fits: flask>=3 from f, and click>=8 (which e lacks) from f too."""
        document = resolvd(
            cluster,
            ["flask>=3"],
            indexes=[{"name": "e"}, {"name": "f"}],
            index_strategy="unsafe-first-match",
        )
        assert {p["name"]: p["index"] for p in document["result"]["packages"]} == {
            "flask": "f",
            "click": "f",
        }


class TestFlatIndex:
    def test_a_flat_url_resolves_as_uv_find_links(
        self, cluster: Cluster, urls: dict[str, str], tmp_path: Path
    ) -> None:
        """A directory listing named by URL with ``format: flat`` gives uv's pins with
        ``--no-index --find-links``, and its files are the listing's."""
        document = resolvd(cluster, ["flask"], indexes=[{"url": urls["flat"], "format": "flat"}])
        oracle = uv(tmp_path, ["flask"], "--no-index", "--find-links", urls["flat"])
        assert pins(document) == oracle == {"flask": "3.1.0", "click": "8.1.7"}
        flask = next(p for p in document["result"]["packages"] if p["name"] == "flask")
        assert flask["file"]["url"] == urls["flat"] + "flask-3.1.0-py3-none-any.whl"
        assert len(flask["file"]["hashes"]["sha256"]) == 64  # from the link's fragment

    def test_the_requirements_export_finds_links_and_pip_installs_it(
        self, cluster: Cluster, urls: dict[str, str], tmp_path: Path
    ) -> None:
        """The export names a flat index with ``--find-links`` (not as an index), so pip, given
        no index at all, installs exactly the locked files from it."""
        document = resolvd(cluster, ["flask"], indexes=[{"url": urls["flat"], "format": "flat"}])
        response = cluster.http.get(
            f"/jobs/{document['id']}/lock", params={"format": "requirements"}
        )
        assert response.status_code == 200, response.text
        assert f"--find-links {urls['flat']}" in response.text.splitlines()
        assert "--index-url" not in response.text
        lock = tmp_path / "requirements.txt"
        lock.write_text(response.text)
        report = tmp_path / "report.json"
        run_tool(
            [
                str(VENV_BIN / "pip"),
                "install",
                "--dry-run",
                "--ignore-installed",
                "--no-index",
                "--report",
                str(report),
                "-r",
                str(lock),
            ],
            tmp_path,
        )
        assert installed(json.loads(report.read_text())) == pins(document)

    def test_a_configured_flat_index_by_name(self, cluster: Cluster) -> None:
        """A configured ``format = "flat"`` index resolves by name, and a project it does not
        list is not found there (it is no error of the page)."""
        document = resolvd(cluster, ["click<8"], indexes=[{"name": "flat"}])
        assert pins(document) == {"click": "7.0"}
        missing = resolvd(cluster, ["tool"], indexes=[{"name": "flat"}])
        assert missing["status"] == "failed"
        assert missing["failure"]["kind"] == "unsatisfiable", missing["failure"]


class TestSources:
    def test_a_pinned_package_comes_only_from_its_index(self, cluster: Cluster) -> None:
        """``tool`` pinned to the explicit ``pinned`` index is taken from there (9.0, not e's
        1.0); flask, not pinned, never comes from the explicit index (it has 9.9 there)."""
        document = resolvd(cluster, ["flask", "tool"], sources={"tool": "pinned"})
        packages = {p["name"]: (p["version"], p["index"]) for p in document["result"]["packages"]}
        assert packages == {
            "flask": ("2.3.3", "e"),
            "click": ("7.0", "e"),
            "tool": ("9.0", "pinned"),
        }

    def test_a_pin_to_an_index_the_request_did_not_list(self, cluster: Cluster) -> None:
        """A request listing only ``e`` may still pin a package to a configured index."""
        document = resolvd(cluster, ["tool"], indexes=[{"name": "e"}], sources={"Tool": "pinned"})
        assert pins(document) == {"tool": "9.0"}

    def test_a_pinned_package_is_looked_up_nowhere_else(self, cluster: Cluster) -> None:
        """A package pinned to an index that lacks it is not found, though e has it."""
        document = resolvd(cluster, ["tool"], sources={"tool": "f"})
        assert document["status"] == "failed"
        hint = next(h for h in document["failure"]["hints"] if h["code"] == "package_not_found")
        assert hint["package"] == "tool"
        assert hint["message"] == "tool was not found on 'f'. sources pins it to that index alone."
        assert hint["data"] == {"indexes": ["f"], "setting": "sources"}


class TestCooldown:
    @pytest.mark.parametrize("span", ["7 days", "P7D"])
    def test_a_cooldown_skips_a_fresh_upload_as_uv_does(
        self, cluster: Cluster, urls: dict[str, str], tmp_path: Path, span: str
    ) -> None:
        """cool 2.0, uploaded a day ago, is skipped under a 7-day cooldown (uv agrees); the
        result echoes the cutoff the duration reached, seven days before the job was accepted."""
        before = datetime.now(UTC).replace(microsecond=0)
        document = resolvd(cluster, ["cool"], indexes=[{"url": urls["fresh"]}], exclude_newer=span)
        after = datetime.now(UTC)
        oracle = uv(tmp_path, ["cool"], "--index-url", urls["fresh"], "--exclude-newer", span)
        assert pins(document) == oracle == {"cool": "1.0"}
        applied = datetime.fromisoformat(document["result"]["exclude_newer"])
        assert before - timedelta(days=7) <= applied <= after - timedelta(days=7)
        assert document["request"]["exclude_newer"] == document["result"]["exclude_newer"]

    def test_a_package_can_be_let_out_of_the_cooldown(
        self, cluster: Cluster, urls: dict[str, str], tmp_path: Path
    ) -> None:
        """``exclude_newer_package: {cool: false}`` lifts the cutoff for cool (uv's
        ``--exclude-newer-package cool=false``)."""
        document = resolvd(
            cluster,
            ["cool"],
            indexes=[{"url": urls["fresh"]}],
            exclude_newer="7 days",
            exclude_newer_package={"cool": False},
        )
        assert pins(document) == {"cool": "2.0"}

    def test_a_cooldown_failure_explains_the_cutoff(
        self, cluster: Cluster, urls: dict[str, str]
    ) -> None:
        """Asking for the fresh release under a cooldown fails with a hint naming the upload
        time, the cutoff applied and the duration it came from."""
        document = resolvd(
            cluster, ["cool>=2"], indexes=[{"url": urls["fresh"]}], exclude_newer="7 days"
        )
        assert document["status"] == "failed"
        hint = next(h for h in document["failure"]["hints"] if h["code"] == "exclude_newer")
        assert hint["version"] == "2.0"
        assert hint["data"]["span"] == "7 days"
        assert hint["data"]["cutoff"] == document["request"]["exclude_newer"]
        assert hint["data"]["upload_time"] == _ago(1)

    def test_files_without_upload_time_are_excluded_under_a_cutoff(
        self, cluster: Cluster, urls: dict[str, str]
    ) -> None:
        """An HTML-only index gives no upload times: under a cutoff no file qualifies, as in
        uv, and the hint says why; without one, the newest resolves."""
        document = resolvd(
            cluster, ["cool"], indexes=[{"url": urls["undated"]}], exclude_newer="7 days"
        )
        assert document["status"] == "failed"
        hint = next(h for h in document["failure"]["hints"] if h["code"] == "exclude_newer")
        assert hint["data"]["upload_time"] is None
        assert "has no upload time" in hint["message"]
        plain = resolvd(cluster, ["cool"], indexes=[{"url": urls["undated"]}])
        assert pins(plain) == {"cool": "2.0"}
