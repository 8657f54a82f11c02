"""The inputs repositories hold, end to end: a pyproject.toml with extras and PEP 735 groups.

``uv pip compile pyproject.toml --extra … --group …`` is the oracle: on the same loopback index
and target, a job given the same pyproject with the same extras and groups must pin the same
versions. The index is shaped so that each selected part moves a pin (the ``full`` extra pulls
``fast``, which holds ``util`` below 2.5; the ``test`` group pulls ``checker``, which holds
``web`` below 2, and includes ``lint``, which bounds ``linter``). A direct URL requirement on
the same index is pinned as uv pins it, and its exports install with pip, hash-checked.
"""

from __future__ import annotations

import hashlib
import platform
import sys
from pathlib import Path

import httpx
import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement

from tests.e2e.test_submit import run_submit, write
from tests.indexserver import IndexServer, IndexSpec, Project, Release
from tests.support.cluster import Cluster, assert_not_internal
from tests.support.installers import (
    VENV_BIN,
    installed,
    pins_of,
    pip_install_dry_run,
    run_tool,
    uv_compile_pins,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

PYTHON_VERSION = "3.12"
PLATFORM = "x86_64-manylinux_2_28"
SPEC = IndexSpec(
    "inputs",
    [
        Project("web", [Release("1.0", requires=["util"]), Release("2.0", requires=["util>=2"])]),
        Project("util", [Release("1.0"), Release("2.0"), Release("2.5"), Release("3.0")]),
        Project("sockslib", [Release("1.0")]),
        Project("fast", [Release("1.0", requires=["util<2.5"])]),
        Project("checker", [Release("1.0", requires=["web<2"])]),
        Project("linter", [Release("1.0"), Release("1.5"), Release("2.0")]),
    ],
)
PYPROJECT = """\
[project]
name = "app"
version = "0.1"
requires-python = ">=3.10"
dependencies = ["web>=1", "util<3"]

[project.optional-dependencies]
socks = ["sockslib"]
full = ["app[socks]", "fast"]

[dependency-groups]
test = ["checker", {include-group = "lint"}]
lint = ["linter>=1,<2"]
"""
# (extras, groups) and the pins they give; every case is checked against uv as well.
CASES = {
    ((), ()): {"web": "2.0", "util": "2.5"},
    (("full",), ("test",)): {
        "web": "1.0",
        "util": "2.0",
        "sockslib": "1.0",
        "fast": "1.0",
        "checker": "1.0",
        "linter": "1.5",
    },
    (("socks",), ("lint",)): {"web": "2.0", "util": "2.5", "sockslib": "1.0", "linter": "1.5"},
}


@pytest.fixture
def served(cluster: Cluster) -> Cluster:
    cluster.serve()
    cluster.wait_ready()
    return cluster


class TestPyproject:
    @pytest.mark.parametrize(("extras", "groups"), list(CASES), ids=str)
    def test_pins_equal_uv_pip_compile(
        self,
        served: Cluster,
        index_server: IndexServer,
        tmp_path: Path,
        extras: tuple[str, ...],
        groups: tuple[str, ...],
    ) -> None:
        """A job given the pyproject, extras and groups pins what ``uv pip compile
        pyproject.toml --extra … --group …`` pins on the same index and target."""
        url = index_server.add_index(SPEC)
        response = served.submit(
            {
                "pyproject": {"content": PYPROJECT, "extras": extras, "groups": groups},
                "indexes": [{"url": url}],
                "environment": {"python_version": PYTHON_VERSION, "platform": PLATFORM},
            }
        )
        assert response.status_code == 202, response.text
        document = served.wait_job(response.json()["id"])
        assert_not_internal(document)
        assert document["status"] == "succeeded", document["failure"]
        pins = {p["name"]: p["version"] for p in document["result"]["packages"]}
        assert pins == CASES[extras, groups]
        write(tmp_path / "pyproject.toml", PYPROJECT)
        options = [*(f"--extra={e}" for e in extras), *(f"--group={g}" for g in groups)]
        target = (PYTHON_VERSION, PLATFORM)
        assert uv_compile_pins(tmp_path, "pyproject.toml", url, target, *options) == pins

    def test_requires_python_is_the_universal_default_as_in_uv(
        self, served: Cluster, index_server: IndexServer, tmp_path: Path
    ) -> None:
        """A universal job takes the pyproject's ``requires-python`` as its domain: for
        ``>=3.10``, ``modern`` forks (2.0 needs Python 3.11) exactly as ``uv pip compile
        --universal --python-version 3.10`` forks it; from the target's 3.12 it would not."""
        modern = Project("modern", [Release("1.0"), Release("2.0", requires_python=">=3.11")])
        url = index_server.add_index(IndexSpec("modern", [modern]))
        content = (
            '[project]\nname = "app"\nversion = "0.1"\nrequires-python = ">=3.10"\n'
            'dependencies = ["modern"]\n'
        )
        response = served.submit(
            {"pyproject": {"content": content}, "indexes": [{"url": url}], "universal": True}
        )
        assert response.status_code == 202, response.text
        document = served.wait_job(response.json()["id"])
        assert document["status"] == "succeeded", document["failure"]
        assert document["result"]["requires_python"] == ">=3.10"
        forks = {
            (p["name"], p["version"], str(Marker(p["markers"])) if p["markers"] else None)
            for p in document["result"]["packages"]
        }
        assert forks == {
            ("modern", "1.0", 'python_full_version < "3.11"'),
            ("modern", "2.0", 'python_full_version >= "3.11"'),
        }
        write(tmp_path / "pyproject.toml", content)
        command = ["pip", "compile", "pyproject.toml", "--universal", "--index-url", url]
        options = ["--python-version", "3.10", "--no-header", "--no-annotate"]
        output = run_tool([str(VENV_BIN / "uv"), *command, *options], tmp_path).stdout
        uv_forks = {
            (r.name, str(next(iter(r.specifier)).version), str(r.marker) if r.marker else None)
            for r in map(Requirement, output.splitlines())
        }
        assert uv_forks == forks

    def test_submit_reads_a_pyproject_with_extra_and_group(
        self, served: Cluster, tmp_path: Path
    ) -> None:
        """``resolvd submit pyproject.toml --extra X --group Y`` locks what they select."""
        pyproject = write(
            tmp_path / "pyproject.toml",
            '[project]\nname = "svc"\ndependencies = ["flask<3"]\n'
            '[project.optional-dependencies]\nsignals = ["blinker"]\n'
            '[dependency-groups]\ndev = ["itsdangerous"]\n',
        )
        output = tmp_path / "requirements.txt"
        args = [str(pyproject), "--url", served.base_url, "-o", str(output)]
        result = run_submit(*args, "--extra", "all", "--group", "dev", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        pins = pins_of(output.read_text())
        assert pins == {
            "flask": "2.3.3",
            "click": "8.1.7",
            "blinker": "1.8.2",
            "itsdangerous": "2.2.0",
        }
        refused = run_submit(*args, "--group", "nope", cwd=tmp_path)
        assert refused.returncode == 2
        assert "pyproject.groups[0]" in refused.stderr
        requirements_in = write(tmp_path / "requirements.in", "flask\n")
        misused = run_submit(str(requirements_in), "--extra", "x", cwd=tmp_path)
        assert misused.returncode == 2
        assert "--extra and --group select from a pyproject.toml" in misused.stderr


class TestDirectURLs:
    def test_a_wheel_url_resolves_as_uv_pins_it_and_its_exports_install(
        self, served: Cluster, index_server: IndexServer, tmp_path: Path
    ) -> None:
        """``util @ URL#sha256=…`` beside ``web``: util is the URL's 1.0, so web falls back to
        1.0 (2.0 needs util>=2), as ``uv pip compile`` pins it; the requirements export
        (``util @ URL`` with its hash) and the pylock install with pip, hash-checked."""
        url = index_server.add_index(SPEC)
        wheel = f"{index_server.base_url}/inputs/files/util-1.0-py3-none-any.whl"
        sha256 = hashlib.sha256(httpx.get(wheel).content).hexdigest()
        requirements = ["web", f"util @ {wheel}#sha256={sha256}"]
        # pip installs a pylock only where it was made for: lock for this interpreter.
        if sys.platform != "linux" or platform.machine() != "x86_64":
            pytest.skip("pip installs the x86_64-manylinux_2_28 pylock on Linux x86_64 only")
        python = f"{sys.version_info.major}.{sys.version_info.minor}"
        response = served.submit(
            {
                "requirements": requirements,
                "indexes": [{"url": url}],
                "environment": {"python_version": python, "platform": PLATFORM},
            }
        )
        assert response.status_code == 202, response.text
        document = served.wait_job(response.json()["id"])
        assert document["status"] == "succeeded", document["failure"]
        packages = {p["name"]: p for p in document["result"]["packages"]}
        assert {name: p["version"] for name, p in packages.items()} == {"web": "1.0", "util": "1.0"}
        assert packages["util"]["direct"] and not packages["web"]["direct"]
        assert packages["util"]["file"]["hashes"] == {"sha256": sha256}
        write(tmp_path / "requirements.in", "\n".join(requirements) + "\n")
        assert uv_compile_pins(tmp_path, "requirements.in", url, (python, PLATFORM)) == {
            "web": "1.0",
            "util": f"{wheel}#sha256={sha256}",  # uv writes the URL as given
        }
        job = document["id"]
        for lock_format, filename in (
            ("requirements", "requirements.txt"),
            ("pylock", "pylock.toml"),
        ):
            text = served.http.get(f"/jobs/{job}/lock", params={"format": lock_format}).text
            if lock_format == "requirements":
                assert f"util @ {wheel} \\\n    --hash=sha256:{sha256}\n" in text
            lock = write(tmp_path / filename, text)
            report = pip_install_dry_run(tmp_path, lock, [url])
            assert installed(report) == {"web": "1.0", "util": "1.0"}, lock_format
            util = next(i for i in report["install"] if i["metadata"]["name"] == "util")
            assert util["download_info"]["url"] == wheel, lock_format
