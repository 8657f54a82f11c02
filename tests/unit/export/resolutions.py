"""Small resolutions built by hand, as a worker would have stored them, for the export tables.

``CORP`` holds a credential in its configured URL: no export may ever show it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from service.diagnostics.model import Code, Diagnostic, Severity
from service.export import LockSource, make_lock_source
from service.jobs.model import JobDocument, JobStatus, utcnow
from service.resolution.request import IndexRef, ResolveRequest, Target
from service.resolution.result import (
    Failure,
    FileRef,
    Resolution,
    ResolutionStats,
    ResolvedPackage,
)

SECRET = "s3cret-canary"
CORP = f"https://ci:{SECRET}@corp.example/simple"
CORP_REDACTED = "https://ci:****@corp.example/simple"
MIRROR = "https://mirror.example/simple"
INDEX_URLS = {"corp": CORP, "pypi": "https://pypi.example/simple"}
HASH = "ab" * 32
JOB_ID = "job-1"


def package(
    name: str,
    version: str,
    *,
    index: str = "corp",
    requested: bool = False,
    dependencies: Sequence[str] = (),
    required_by: Sequence[str] = (),
    extras: Sequence[str] = (),
    requires_python: str | None = None,
    filename: str | None = None,
    hashes: Mapping[str, str] | None = None,
    upload_time: str | None = "2024-05-01T12:00:00.000000Z",
    direct: bool = False,
) -> ResolvedPackage:
    """A resolved package whose file lives under a credentialed files host (``direct``: as
    the request named it by URL)."""
    filename = filename or f"{name}-{version}-py3-none-any.whl"
    return ResolvedPackage(
        name=name,
        version=version,
        index=index,
        requested=requested,
        direct=direct,
        extras=list(extras),
        markers=None,
        requires_python=requires_python,
        dependencies=list(dependencies),
        required_by=list(required_by),
        file=FileRef(
            filename=filename,
            url=f"https://ci:{SECRET}@files.example/{filename}",
            hashes=dict({"sha256": HASH} if hashes is None else hashes),
            size=1234,
            upload_time=upload_time,
        ),
    )


def document(
    packages: Sequence[ResolvedPackage],
    *,
    requirements: Sequence[str] = (),
    constraints: Sequence[str] = (),
    indexes: Sequence[IndexRef] = (),
    python_version: str = "3.12",
    platform: str = "x86_64-manylinux_2_28",
    warnings: Sequence[Diagnostic] = (),
    status: JobStatus = "succeeded",
    failure: Failure | None = None,
) -> JobDocument:
    request = ResolveRequest(
        requirements=tuple(requirements) or tuple(p.name for p in packages if p.requested),
        constraints=tuple(constraints),
        indexes=tuple(indexes),
        environment=Target(python_version=python_version, platform=platform),
    )
    result = Resolution(packages=list(packages), warnings=list(warnings), stats=ResolutionStats())
    return JobDocument(
        id=JOB_ID,
        status=status,
        created_at=utcnow(),
        request=request,
        result=result if status == "succeeded" else None,
        failure=failure,
    )


def source(packages: Sequence[ResolvedPackage], **options: object) -> LockSource:
    return make_lock_source(document(packages, **options), INDEX_URLS)  # type: ignore[arg-type]


def yanked(name: str, version: str) -> Diagnostic:
    """The warning a resolution carries when it used a yanked version pinned with ``==``."""
    return Diagnostic(
        code=Code.YANKED,
        severity=Severity.WARNING,
        message=f"{name}=={version} is yanked; it was used because the requirements pin it",
        package=name,
        version=version,
    )


# flask from corp (asked for with an extra), its dependencies, one of them also constrained and
# needed by two parents; toolbelt from a second index the request named by URL.
TWO_INDEXES = [
    package("click", "8.1.7", required_by=["flask", "toolbelt"]),
    package(
        "flask",
        "3.0.0",
        requested=True,
        extras=["async"],
        dependencies=["asgiref", "click"],
        requires_python=">=3.8",
    ),
    package(
        "asgiref",
        "3.8.1",
        required_by=["flask"],
        filename="asgiref-3.8.1.tar.gz",
        upload_time=None,
    ),
    package("toolbelt", "1.2.0", index=MIRROR, requested=True, dependencies=["click"]),
]
TWO_INDEXES_OPTIONS: dict[str, object] = {
    "requirements": ["flask[async]>=3", "toolbelt"],
    "constraints": ["click<9"],
    "indexes": [IndexRef(name="corp"), IndexRef(url=MIRROR + "/")],
}
