"""One metadata build, start to end: fetch, resolve the build requirements, run the sandbox.

``SdistBuilds.build(request)`` never raises for a build that goes wrong: it returns a
``BuildOutcome`` with the failure's stage, message and redacted log tail. In order:

1. the sdist is downloaded through the builder's ``IndexClient`` from the index that listed it
   (its sha256 checked against the request's key);
2. its ``[build-system] requires`` are read from the archive without running anything;
3. those requirements are resolved by resolvd itself (``service.resolution``) from the job's
   indexes under the job's index strategy, **binary-only**, for the builder's own Python and
   platform, and their wheels downloaded through the same client (hashes checked): nothing is
   fetched from anywhere the job could not fetch from;
4. the sandbox (``service.builds.sandbox``) runs ``in_sandbox.py``: offline install, then the
   PEP 517 hooks. Backends that ask for more (``get_requires_for_build_wheel``) get one more
   round: resolve everything again, install, run;
5. the METADATA is checked (it parses and names the sdist's project and version) before it is
   kept for good.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import platform
import shutil
import stat
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path

import msgspec

from service.builds.model import BuildFailure, BuildOutcome, BuildRequest, BuildStage
from service.builds.sandbox import RunResult, Sandbox
from service.builds.sdist import SdistError, read_build_requires
from service.diagnostics.redact import redact_text
from service.index.client import IndexClient
from service.index.errors import IndexFetchError
from service.index.metadata import MetadataError, check_metadata_matches, parse_core_metadata
from service.index.models import DistFile, Index
from service.index.pages import parse_dist_filename
from service.resolution import (
    IndexRefError,
    Progress,
    ResolutionFailed,
    ResolveRequest,
    Target,
    make_indexes,
    resolve_request,
)
from service.settings import Settings

__all__ = ["SdistBuilds", "host_target"]

logger = logging.getLogger(__name__)

_IN_SANDBOX = Path(__file__).with_name("in_sandbox.py")
# Rounds of "the backend asked for more build requirements".
_MAX_ROUNDS = 2
_MAX_RESULT_BYTES = 1024 * 1024
_TAIL_LINES = 40
_TAIL_CHARS = 4000


class _Failed(Exception):
    def __init__(self, stage: BuildStage, message: str, log_tail: str = "") -> None:
        super().__init__(message)
        self.failure = BuildFailure(stage=stage, message=message, log_tail=_tail(log_tail))


class _SandboxResult(msgspec.Struct, frozen=True):
    """What ``in_sandbox.py`` reports: the METADATA's path, or the build requirements missing."""

    metadata: str | None = None
    needs: list[str] = []


def _read_regular(path: Path, cap: int) -> bytes:
    """At most ``cap`` bytes of a regular file the sandbox wrote, never through a symlink."""
    descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(descriptor, "rb") as opened:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise OSError(f"{path.name} is not a regular file")
        return opened.read(cap)


def _tail(text: str) -> str:
    lines = redact_text(text).strip().splitlines()[-_TAIL_LINES:]
    return "\n".join(lines)[-_TAIL_CHARS:]


def host_target() -> Target:
    """This builder's Python and platform, for which build requirements are resolved."""
    info = sys.version_info
    python = f"{info.major}.{info.minor}.{info.micro}"
    machine = platform.machine().lower()
    machine = {"amd64": "x86_64", "arm64": "aarch64"}.get(machine, machine)
    if sys.platform == "darwin":
        return Target(python_version=python, platform=f"{machine}-apple-darwin")
    libc, version = platform.libc_ver()
    if libc == "glibc" and version.count(".") >= 1:
        minor = min(max(int(version.split(".")[1]), 17), 40)
        return Target(python_version=python, platform=f"{machine}-manylinux_2_{minor}")
    return Target(python_version=python, platform=f"{machine}-unknown-linux-musl")


class SdistBuilds:
    """Builds sdists' metadata for one builder process (see the module docstring)."""

    def __init__(
        self,
        settings: Settings,
        client: IndexClient,
        sandbox: Sandbox,
        *,
        environ: Mapping[str, str],
    ) -> None:
        self._settings = settings
        self._client = client
        self._sandbox = sandbox
        self._environ = environ
        self._target = host_target()

    async def build(self, request: BuildRequest) -> BuildOutcome:
        started = time.monotonic()
        deadline = started + self._settings.builds.timeout_seconds
        work = Path(tempfile.mkdtemp(prefix="resolvd-build-", dir=self._settings.builds.work_dir))
        # Traversable, not listable: a sandbox user other than ours reaches its own run
        # directory inside, and nothing else of it (the sandbox itself never sees it).
        os.chmod(work, 0o711)
        try:
            metadata = await self._build(request, work, deadline)
        except _Failed as failed:
            logger.info(
                "build of %s failed (%s): %s",
                request.file.filename,
                failed.failure.stage,
                failed.failure.message,
            )
            return BuildOutcome(
                failure=failed.failure,
                duration_seconds=time.monotonic() - started,
                finished_at=time.time(),
            )
        finally:
            await asyncio.to_thread(shutil.rmtree, work, ignore_errors=True)
        duration = time.monotonic() - started
        logger.info("built the metadata of %s in %.1f s", request.file.filename, duration)
        return BuildOutcome(metadata=metadata, duration_seconds=duration, finished_at=time.time())

    async def _build(self, request: BuildRequest, work: Path, deadline: float) -> bytes:
        try:
            [index] = make_indexes([request.index], self._settings, self._environ)
            indexes = make_indexes(request.indexes, self._settings, self._environ)
        except IndexRefError as exc:
            raise _Failed("download", f"{exc.field}: {exc.message}") from exc
        sdist = work / Path(request.file.filename).name
        await self._download(index, request.file, sdist, expect_sha256=request.sha256)
        try:
            requires = await asyncio.to_thread(read_build_requires, sdist)
        except SdistError as exc:
            raise _Failed("backend", str(exc)) from exc
        for number in range(_MAX_ROUNDS):
            # Each round gets a fresh directory, the only one the sandbox may write: nothing a
            # build left behind (a symlink where an input goes) is ever written through, and
            # the sdist it runs is the one checked above.
            run = work / f"run-{number}"
            run.mkdir()
            shutil.copyfile(sdist, run / sdist.name)
            await self._install_inputs(request, indexes, requires, run, deadline)
            result = await self._run(run, deadline)
            try:
                said = msgspec.json.decode(
                    _read_regular(run / "result.json", _MAX_RESULT_BYTES), type=_SandboxResult
                )
            except (OSError, msgspec.DecodeError) as exc:
                raise _Failed("backend", f"the build left no readable result: {exc}") from exc
            if said.metadata is None:
                needs = said.needs
                requires = sorted({*requires, *needs})
                continue
            return self._read_metadata(request, run / "out" / "METADATA", result)
        raise _Failed(
            "build_requirements",
            f"the backend still asks for build requirements after {_MAX_ROUNDS} rounds: "
            f"{', '.join(needs)}",
        )

    async def _download(
        self, index: Index, file: DistFile, path: Path, *, expect_sha256: str | None = None
    ) -> None:
        try:
            spooled = await self._client.download_file(index, file)
        except IndexFetchError as exc:
            raise _Failed("download", f"{file.filename} could not be fetched: {exc}") from exc

        def save() -> str:
            digest = hashlib.sha256()
            with spooled, path.open("wb") as out:
                while chunk := spooled.read(1024 * 1024):
                    digest.update(chunk)
                    out.write(chunk)
            return digest.hexdigest()

        actual = await asyncio.to_thread(save)
        if expect_sha256 is not None and actual != expect_sha256:
            raise _Failed("download", f"{file.filename} has sha256 {actual}, not {expect_sha256}")

    async def _install_inputs(
        self,
        request: BuildRequest,
        indexes: list[Index],
        requires: list[str],
        work: Path,
        deadline: float,
    ) -> None:
        """Resolve ``requires`` binary-only and download the wheels into ``work/wheels``."""
        wheels = work / "wheels"
        wheels.mkdir()
        shutil.copyfile(_IN_SANDBOX, work / "in_sandbox.py")
        (work / "job.json").write_bytes(
            msgspec.json.encode({"sdist": Path(request.file.filename).name})
        )
        if requires:
            resolve = ResolveRequest(
                requirements=tuple(requires),
                environment=self._target,
                only_binary=(":all:",),
                index_strategy=request.index_strategy,
                deadline_seconds=max(deadline - time.monotonic(), 1.0),
            )
            try:
                resolution = await resolve_request(
                    resolve,
                    indexes=indexes,
                    client=self._client,
                    progress=Progress(),
                    stop=threading.Event(),
                )
            except ResolutionFailed as failed:
                raise _Failed(
                    "build_requirements",
                    f"the build requirements ({', '.join(requires)}) cannot be met with wheels "
                    "from the job's indexes",
                    failed.failure.message,
                ) from failed
            by_name = {i.display_name: i for i in indexes}
            for package in resolution.packages:
                ref = package.file
                assert ref is not None  # a single-target resolution picks a file per package
                file = DistFile(
                    filename=ref.filename,
                    url=ref.url,
                    kind="wheel",
                    version=package.version,
                    hashes=ref.hashes,
                    size=ref.size,
                )
                await self._download(by_name[package.index], file, wheels / ref.filename)
        self._sandbox.prepare(work)

    async def _run(self, work: Path, deadline: float) -> RunResult:
        seconds = deadline - time.monotonic()
        if seconds <= 0:
            raise _Failed("timeout", "the build ran out of time before its backend started")
        limits = self._settings.builds
        command = [sys.executable, "-I", str(work / "in_sandbox.py"), str(work)]
        result = await self._sandbox.run(command, work, seconds=seconds)
        log = result.output_tail
        if result.ending == "timeout":
            raise _Failed(
                "timeout", f"the build ran past its {limits.timeout_seconds:g} s limit", log
            )
        if result.ending == "output":
            raise _Failed(
                "output", f"the build printed more than {limits.max_output_bytes} bytes", log
            )
        if "MemoryError" in log or result.ending == "signal":
            raise _Failed(
                "memory",
                f"the build ran out of memory (limit {limits.memory_mb} MB)"
                if "MemoryError" in log
                else f"the build was killed by signal {-(result.returncode or 0)}",
                log,
            )
        if result.returncode != 0:
            last = log.strip().splitlines()[-1] if log.strip() else "no output"
            raise _Failed("backend", f"the build failed (exit {result.returncode}): {last}", log)
        return result

    def _read_metadata(self, request: BuildRequest, path: Path, result: RunResult) -> bytes:
        cap = self._settings.fetch.max_metadata_bytes
        try:
            raw = _read_regular(path, cap + 1)
        except OSError as exc:
            raise _Failed(
                "backend", f"the build wrote no METADATA: {exc}", result.output_tail
            ) from exc
        if len(raw) > cap:
            raise _Failed("output", f"the built METADATA is larger than {cap} bytes")
        expected = parse_dist_filename(request.file.filename)
        try:
            metadata = parse_core_metadata(raw)
            if expected is not None:
                check_metadata_matches(metadata, expected)
        except MetadataError as exc:
            raise _Failed("backend", f"the built METADATA is unusable: {exc}") from exc
        return raw
