"""``read_build_requires``: an sdist's [build-system] requirements, read without running it."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from service.builds.sdist import DEFAULT_REQUIRES, SdistError, read_build_requires


def tar_sdist(path: Path, members: dict[str, str]) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for name, text in members.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


class TestReadBuildRequires:
    def test_requires_from_pyproject(self, tmp_path: Path) -> None:
        pyproject = '[build-system]\nrequires = ["hatchling>=1.20", "hatch-vcs"]\n'
        sdist = tar_sdist(tmp_path / "demo-1.0.tar.gz", {"demo-1.0/pyproject.toml": pyproject})
        assert read_build_requires(sdist) == ["hatchling>=1.20", "hatch-vcs"]

    def test_the_default_without_pyproject(self, tmp_path: Path) -> None:
        """PEP 517's legacy default: setuptools, as pip and build assume."""
        sdist = tar_sdist(tmp_path / "demo-1.0.tar.gz", {"demo-1.0/setup.py": "import os\n"})
        assert read_build_requires(sdist) == list(DEFAULT_REQUIRES)

    def test_the_default_without_build_system(self, tmp_path: Path) -> None:
        sdist = tar_sdist(tmp_path / "d-1.0.tar.gz", {"d-1.0/pyproject.toml": "[tool.x]\na = 1\n"})
        assert read_build_requires(sdist) == list(DEFAULT_REQUIRES)

    def test_a_nested_pyproject_is_not_the_projects(self, tmp_path: Path) -> None:
        nested = '[build-system]\nrequires = ["evil"]\n'
        sdist = tar_sdist(tmp_path / "d-1.0.tar.gz", {"d-1.0/sub/pyproject.toml": nested})
        assert read_build_requires(sdist) == list(DEFAULT_REQUIRES)

    def test_zip_sdists(self, tmp_path: Path) -> None:
        path = tmp_path / "demo-1.0.zip"
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr(
                "demo-1.0/pyproject.toml", '[build-system]\nrequires = ["flit_core"]\n'
            )
        assert read_build_requires(path) == ["flit_core"]

    @pytest.mark.parametrize(
        "pyproject",
        [
            "[build-system\n",
            '[build-system]\nbuild-backend = "x"\n',
            "[build-system]\nrequires = 3\n",
        ],
    )
    def test_invalid_pyproject(self, tmp_path: Path, pyproject: str) -> None:
        sdist = tar_sdist(tmp_path / "d-1.0.tar.gz", {"d-1.0/pyproject.toml": pyproject})
        with pytest.raises(SdistError):
            read_build_requires(sdist)

    def test_not_an_archive(self, tmp_path: Path) -> None:
        path = tmp_path / "d-1.0.tar.gz"
        path.write_bytes(b"not a tarball")
        with pytest.raises(SdistError, match="cannot be read"):
            read_build_requires(path)
