"""Turn a ``ResolveBody`` into the domain ``ResolveRequest``, or say precisely what is wrong.

Everything a job could fail on before it reaches the resolver is checked here, so nothing is
queued for a request that cannot run: PEP 508 syntax of every requirement, constraint and
override; the target environment; ``exclude_newer`` and ``exclude_newer_package`` (a duration
becomes the time it reaches back to from now, the moment the job is accepted, so every attempt of
the job uses one cutoff); binary-policy names; the indexes and ``sources`` (through
``make_indexes``, the same function the worker uses); the request-size limits; a ``lock``, read
here (``service.export.reader``) so the job carries its entries and an unreadable one queues
nothing. All problems are collected, each naming its field (``requirements[2]``,
``indexes[0].url``, ``lock.content``).

Every value that reaches a URL is bounded too: a requirement's length and its package name's
(a name goes into a page URL), ``limits.max_indexes``, and each index URL as the HTTP library
would take it (``make_indexes`` through ``service.index.urls``: length, control characters,
IDNA, port).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import TypeVar

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import InvalidName, canonicalize_name
from packaging.version import InvalidVersion, Version

from service.api.problems import InvalidRequest
from service.api.schemas import (
    DependencyMetadataBody,
    ErrorCodesBody,
    FieldError,
    IndexRefBody,
    LockBody,
    PyprojectBody,
    ResolveBody,
)
from service.export import ExportError
from service.export.reader import UnreadableLockError, read_job_lock, read_lock
from service.jobs.model import JobDocument
from service.resolution import IndexRefError, make_indexes
from service.resolution.direct import DirectURLError, direct_url_is_allowed, parse_direct_url
from service.resolution.environment import UnsupportedTargetError, make_target_environment
from service.resolution.markers import InvalidMarker, parse_marker, python_range_marker
from service.resolution.pyproject import ProjectInputs, PyprojectError, read_pyproject
from service.resolution.request import (
    IndexRef,
    LockInput,
    PolicyOverride,
    ResolveRequest,
    StaticMetadata,
    Target,
)
from service.settings import Settings

__all__ = ["to_resolve_request"]

T = TypeVar("T")

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# Durations as uv takes them: "friendly" ("7 days", "24 hours", "1 week 2 days", "36h") or ISO
# 8601 ("P7D", "PT24H", "P1W"). A day is 24 hours; months and years are not fixed spans.
_FRIENDLY_PART = re.compile(r"\s*(\d+)\s*([a-z]+)\s*,?", re.IGNORECASE)
_FRIENDLY_UNITS = {
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), 1),
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), 60),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), 3600),
    **dict.fromkeys(("d", "day", "days"), 86400),
    **dict.fromkeys(("w", "wk", "wks", "week", "weeks"), 7 * 86400),
}
_CALENDAR_UNITS = frozenset({"mo", "month", "months", "y", "yr", "yrs", "year", "years"})
_ISO_DURATION = re.compile(
    r"^P(?:(?P<w>\d+)W)?(?:(?P<d>\d+)D)?"
    r"(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$",
    re.IGNORECASE,
)
_ISO_SECONDS = {"w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1}
_BINARY_WILDCARDS = frozenset({":all:", ":none:"})
# A project name goes into a page URL, and a requirement is parsed before anything else: PEP 508
# sets no length, so these are far above any real name or requirement line, and far below what
# would make a URL the HTTP library refuses.
_MAX_NAME_LENGTH = 256
_MAX_REQUIREMENT_LENGTH = 4096


class _Errors:
    """Collects field errors, each tagged with the problem slug it belongs to."""

    def __init__(self) -> None:
        self.items: list[tuple[str, FieldError]] = []

    def add(self, slug: str, field: str, message: str) -> None:
        self.items.append((slug, FieldError(field=field, message=message)))

    def raise_if_any(self) -> None:
        if not self.items:
            return
        slugs = {slug for slug, _ in self.items}
        slug = slugs.pop() if len(slugs) == 1 else "invalid-request"
        errors = [error for _, error in self.items]
        first = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise InvalidRequest(f"{first.field}: {first.message}{more}", slug=slug, errors=errors)


def _check_requirements(
    errors: _Errors,
    field: str,
    values: Sequence[str],
    limit: int,
    *,
    settings: Settings | None = None,
    direct: dict[str, str] | None = None,
) -> None:
    """PEP 508 lines; direct URLs only where ``settings`` is given (the lines to install),
    one URL per name (``direct``: the URLs met so far, by canonical name)."""
    if len(values) > limit:
        errors.add(
            "too-many-requirements", field, f"{len(values)} entries; this server allows {limit}"
        )
        return
    direct = {} if direct is None else direct
    for position, value in enumerate(values):
        if len(value) > _MAX_REQUIREMENT_LENGTH:
            errors.add(
                "invalid-requirement",
                f"{field}[{position}]",
                f"{len(value)} characters long; at most {_MAX_REQUIREMENT_LENGTH} are accepted",
            )
            continue
        try:
            requirement = Requirement(value)
        except InvalidRequirement as exc:
            errors.add("invalid-requirement", f"{field}[{position}]", str(exc))
            continue
        if len(requirement.name) > _MAX_NAME_LENGTH:
            errors.add(
                "invalid-requirement", f"{field}[{position}]", _name_too_long(requirement.name)
            )
            continue
        if requirement.url is None:
            continue
        problem = _direct_url_problem(requirement, settings)
        name = canonicalize_name(requirement.name)
        if problem is None and direct.setdefault(name, requirement.url) != requirement.url:
            problem = f"{name} is already required from another URL"
        if problem is not None:
            errors.add("invalid-requirement", f"{field}[{position}]", f"{value!r}: {problem}")


def _direct_url_problem(requirement: Requirement, settings: Settings | None) -> str | None:
    """Why a direct URL requirement is refused, or None (``settings``: None where no URL may be)."""
    if settings is None:
        return "direct URL requirements are accepted only among the requirements to resolve"
    try:
        direct = parse_direct_url(requirement)
    except DirectURLError as exc:
        return str(exc)
    if not direct_url_is_allowed(direct.file.url, settings):
        return (
            "the URL is neither under a prefix of policy.allowed_index_urls nor on a "
            "configured index's origin"
        )
    return None


def _name_too_long(name: str) -> str:
    return (
        f"the package name is {len(name)} characters long; at most {_MAX_NAME_LENGTH} are accepted"
    )


def _check_binary_names(errors: _Errors, field: str, values: Sequence[str]) -> None:
    for position, value in enumerate(values):
        if value in _BINARY_WILDCARDS:
            continue
        if len(value) > _MAX_NAME_LENGTH:
            errors.add("invalid-request", f"{field}[{position}]", _name_too_long(value))
            continue
        try:
            canonicalize_name(value, validate=True)
        except InvalidName:
            errors.add(
                "invalid-request",
                f"{field}[{position}]",
                f"{value!r} is not a package name (or ':all:' / ':none:')",
            )


def _parse_duration(value: str) -> timedelta | None:
    """A uv duration ("7 days", "P7D"); ``None`` when ``value`` is no duration at all.

    Raises ValueError for one that uses months or years.
    """
    text = value.strip()
    if text[:1] in ("P", "p"):
        iso = _ISO_DURATION.match(text)
        if iso is None or not any(iso.groupdict().values()) or text.upper().endswith("T"):
            if re.search(r"\d[YM]", text.upper().partition("T")[0]):
                raise ValueError("months and years are not allowed in a duration: use days")
            return None
        seconds = sum(float(n) * _ISO_SECONDS[unit] for unit, n in iso.groupdict().items() if n)
        return timedelta(seconds=seconds)
    parts = _FRIENDLY_PART.findall(text)
    if not parts or _FRIENDLY_PART.sub("", text):
        return None
    seconds = 0
    for amount, unit in parts:
        if unit.lower() in _CALENDAR_UNITS:
            raise ValueError("months and years are not allowed in a duration: use days")
        if unit.lower() not in _FRIENDLY_UNITS:
            return None
        seconds += int(amount) * _FRIENDLY_UNITS[unit.lower()]
    return timedelta(seconds=seconds)


def _normalize_exclude_newer(value: str, now: datetime) -> tuple[str, str | None]:
    """The cutoff as an RFC 3339 timestamp (UTC) or a plain date, and the duration it was
    computed from (``None`` for a time); raise ValueError for anything else."""
    duration = _parse_duration(value)
    if duration is not None:
        moment = (now - duration).replace(microsecond=0)
        return moment.astimezone(UTC).isoformat().replace("+00:00", "Z"), value.strip()
    if _DATE.match(value):
        return date.fromisoformat(value).isoformat(), None
    forms = "expected an RFC 3339 timestamp, a date (YYYY-MM-DD) or a duration ('7 days', 'P7D')"
    if "T" not in value.upper() and " " not in value:
        raise ValueError(forms)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(forms) from exc
    if moment.tzinfo is None:
        raise ValueError("an RFC 3339 timestamp needs a UTC offset, e.g. 'Z' or '+02:00'")
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z"), None


def _check_cutoffs(
    errors: _Errors, body: ResolveBody, now: datetime
) -> tuple[str | None, str | None, dict[str, str | bool]]:
    """``exclude_newer`` (with the duration it came from) and ``exclude_newer_package``, each
    value a time, a date or a duration resolved against ``now`` (``false``: no cutoff)."""
    cutoff = span = None
    if body.exclude_newer is not None:
        try:
            cutoff, span = _normalize_exclude_newer(body.exclude_newer, now)
        except ValueError as exc:
            errors.add("invalid-request", "exclude_newer", str(exc))
    packages: dict[str, str | bool] = {}
    for name, value in _canonical_keys(errors, "exclude_newer_package", body.exclude_newer_package):
        field = f"exclude_newer_package.{name}"
        if value is False:
            packages[canonicalize_name(name)] = False
            continue
        if not isinstance(value, str):
            errors.add("invalid-request", field, "true is no cutoff: give a time, or false")
            continue
        try:
            packages[canonicalize_name(name)] = _normalize_exclude_newer(value, now)[0]
        except ValueError as exc:
            errors.add("invalid-request", field, str(exc))
    return cutoff, span, packages


def _canonical_keys(
    errors: _Errors, field: str, mapping: Mapping[str, T]
) -> Iterator[tuple[str, T]]:
    """``mapping``'s entries whose key is a package name (the others, and a name given twice
    in two spellings, are errors)."""
    seen: set[str] = set()
    for key, value in mapping.items():
        try:
            name = canonicalize_name(key, validate=True)
        except InvalidName:
            errors.add("invalid-request", f"{field}.{key}", f"{key!r} is not a package name")
            continue
        if name in seen:
            errors.add("invalid-request", f"{field}.{key}", f"{name} is named twice")
            continue
        seen.add(name)
        yield key, value


def _check_universal(errors: _Errors, body: ResolveBody) -> None:
    """The universal fields: a Python range, and environment markers with a non-empty union."""
    fields = [
        *(("environments", position, text) for position, text in enumerate(body.environments)),
        *(
            ("required_environments", position, text)
            for position, text in enumerate(body.required_environments)
        ),
    ]
    for field, position, text in fields:
        try:
            parse_marker(text)
        except InvalidMarker as exc:
            errors.add("invalid-request", f"{field}[{position}]", f"not a PEP 508 marker: {exc}")
    if body.requires_python is not None:
        try:
            SpecifierSet(body.requires_python)
            python = python_range_marker(body.requires_python)
        except (InvalidSpecifier, InvalidMarker) as exc:
            errors.add("invalid-request", "requires_python", f"not a version specifier: {exc}")
        else:
            if python.is_empty():
                errors.add("invalid-request", "requires_python", "admits no Python version")
    if not body.universal:
        for field in ("requires_python", "environments", "required_environments"):
            if getattr(body, field):
                errors.add("invalid-request", field, "only meaningful with universal: true")


def _check_status_codes(
    errors: _Errors, field: str, codes: ErrorCodesBody | None
) -> PolicyOverride | None:
    if codes is None:
        return None
    for half, values in (("page", codes.page), ("metadata", codes.metadata)):
        for position, status in enumerate(values or ()):
            if not 400 <= status <= 499:
                errors.add(
                    "invalid-request",
                    f"{field}.{half}[{position}]",
                    f"{status} is not a client-error status (400-499)",
                )
    return PolicyOverride(
        page=None if codes.page is None else tuple(codes.page),
        metadata=None if codes.metadata is None else tuple(codes.metadata),
    )


def _make_refs(errors: _Errors, indexes: Sequence[IndexRefBody]) -> tuple[IndexRef, ...]:
    return tuple(
        IndexRef(
            name=ref.name,
            url=ref.url,
            ignore_error_codes=_check_status_codes(
                errors, f"indexes[{position}].ignore_error_codes", ref.ignore_error_codes
            ),
            format=ref.format,
        )
        for position, ref in enumerate(indexes)
    )


def _read_lock(
    errors: _Errors, lock: LockBody | None, lock_job: JobDocument | None, settings: Settings
) -> LockInput | None:
    """``lock`` read into its entries (``lock_job``: the document ``lock.job`` names)."""
    if lock is None:
        return None
    if lock.job is not None:
        if lock.format is not None or lock.content is not None:
            errors.add("invalid-lock", "lock", "give either job, or format and content")
        elif lock_job is None:  # the caller looks the job up; without it, fail closed
            errors.add("invalid-lock", "lock.job", f"no job {lock.job!r} was found")
        else:
            try:
                return read_job_lock(lock_job, {index.name: index.url for index in settings.index})
            except ExportError as exc:
                errors.add("invalid-lock", "lock.job", str(exc))
        return None
    if lock.content is None or lock.format is None:
        missing = "content" if lock.format is not None else "format"
        errors.add("invalid-lock", f"lock.{missing}", "required (or name a job with lock.job)")
        return None
    try:
        return read_lock(lock.format, lock.content)
    except UnreadableLockError as exc:
        errors.add("invalid-lock", "lock.content", f"unreadable {lock.format} lock: {exc}")
    return None


def _read_pyproject(errors: _Errors, pyproject: PyprojectBody | None) -> ProjectInputs | None:
    """The requirement lines and Requires-Python the ``pyproject`` selects."""
    if pyproject is None:
        return None
    try:
        return read_pyproject(pyproject.content, extras=pyproject.extras, groups=pyproject.groups)
    except PyprojectError as exc:
        for problem in exc.problems:
            errors.add("invalid-pyproject", f"pyproject.{problem.field}", problem.message)
    return None


def _check_dependency_metadata(
    errors: _Errors, entries: Sequence[DependencyMetadataBody], limit: int
) -> tuple[StaticMetadata, ...]:
    """``dependency_metadata`` with canonical names, one entry per name and version."""
    seen: set[tuple[str, Version | None]] = set()
    out = []
    for position, entry in enumerate(entries):
        field = f"dependency_metadata[{position}]"
        try:
            name = canonicalize_name(entry.name, validate=True)
        except InvalidName:
            errors.add("invalid-request", f"{field}.name", f"{entry.name!r} is not a package name")
            continue
        version = None
        if entry.version is not None:
            try:
                version = Version(entry.version)
            except InvalidVersion:
                errors.add(
                    "invalid-request", f"{field}.version", f"{entry.version!r} is not a version"
                )
        if (name, version) in seen:
            errors.add("invalid-request", field, f"a second entry for {name} {version or ''}")
        seen.add((name, version))
        _check_requirements(errors, f"{field}.requires_dist", entry.requires_dist, limit)
        if entry.requires_python is not None:
            try:
                SpecifierSet(entry.requires_python)
            except InvalidSpecifier as exc:
                errors.add("invalid-request", f"{field}.requires_python", str(exc))
        out.append(
            StaticMetadata(
                name=name,
                version=None if version is None else str(version),
                requires_dist=tuple(entry.requires_dist),
                requires_python=entry.requires_python,
            )
        )
    return tuple(out)


def _slug_for_index_error(exc: IndexRefError) -> str:
    if exc.field.endswith(".name") or exc.field.startswith("sources."):
        return "unknown-index"
    if exc.field.endswith(".url"):
        return "index-url-not-allowed"
    return "invalid-index"


def to_resolve_request(
    body: ResolveBody,
    settings: Settings,
    environ: Mapping[str, str],
    *,
    lock_job: JobDocument | None = None,
    now: datetime | None = None,
) -> ResolveRequest:
    """The validated domain request, with server defaults applied; raise ``InvalidRequest``.

    ``lock_job`` is the client's job that ``lock.job`` names, looked up by the caller; ``now``
    (the current time when absent) is what durations in ``exclude_newer`` reach back from.
    """
    errors = _Errors()
    limit = settings.limits.max_requirements
    project = _read_pyproject(errors, body.pyproject)
    if not body.requirements and body.pyproject is None:
        errors.add("invalid-requirement", "requirements", "at least one requirement is needed")
    elif project is not None and not body.requirements and not project.requirements:
        errors.add("invalid-pyproject", "pyproject", "selects no requirements")
    # Direct URLs by name, across both lists of lines to install: one URL per name.
    direct: dict[str, str] = {}
    _check_requirements(
        errors, "requirements", body.requirements, limit, settings=settings, direct=direct
    )
    if project is not None:
        remaining = max(limit - len(body.requirements), 0)
        _check_requirements(
            errors, "pyproject", project.requirements, remaining, settings=settings, direct=direct
        )
    for field, values in (
        ("constraints", body.constraints),
        ("overrides", body.overrides),
        ("upgrade_packages", body.upgrade_packages),
    ):
        _check_requirements(errors, field, values, limit)
    _check_binary_names(errors, "no_binary", body.no_binary)
    _check_binary_names(errors, "only_binary", body.only_binary)

    defaults = settings.environment
    environment = body.environment
    target = Target(
        python_version=(environment and environment.python_version) or defaults.python_version,
        platform=(environment and environment.platform) or defaults.platform,
    )
    try:
        make_target_environment(target.python_version, target.platform)
    except UnsupportedTargetError as exc:
        errors.add("unsupported-environment", exc.field, exc.message)

    exclude_newer, exclude_newer_span, exclude_newer_package = _check_cutoffs(
        errors, body, now or datetime.now(UTC)
    )

    _check_universal(errors, body)

    deadline = settings.limits.default_deadline_seconds
    if body.deadline_seconds is not None:
        if body.deadline_seconds <= 0:
            errors.add("invalid-request", "deadline_seconds", "must be greater than 0")
        deadline = min(body.deadline_seconds, settings.limits.max_deadline_seconds)

    refs = _make_refs(errors, body.indexes)
    given: dict[str, str] = {
        canonicalize_name(key): key for key, _ in _canonical_keys(errors, "sources", body.sources)
    }
    sources = {name: body.sources[key] for name, key in given.items()}
    if len(refs) > settings.limits.max_indexes:
        errors.add(
            "too-many-indexes",
            "indexes",
            f"{len(refs)} entries; this server allows {settings.limits.max_indexes}",
        )
    else:
        try:
            make_indexes(refs, settings, environ, sources=sources)
        except IndexRefError as exc:
            field = exc.field
            if field.startswith("sources."):
                field = f"sources.{given[field.removeprefix('sources.')]}"
            errors.add(_slug_for_index_error(exc), field, exc.message)

    lock = _read_lock(errors, body.lock, lock_job, settings)
    dependency_metadata = _check_dependency_metadata(errors, body.dependency_metadata, limit)

    errors.raise_if_any()
    return ResolveRequest(
        requirements=(*body.requirements, *(project.requirements if project else ())),
        constraints=tuple(body.constraints),
        overrides=tuple(body.overrides),
        environment=target,
        universal=body.universal,
        requires_python=body.requires_python
        or (project.requires_python if project and body.universal else None),
        environments=tuple(body.environments),
        required_environments=tuple(body.required_environments),
        prerelease=body.prerelease,
        resolution=body.resolution,
        exclude_newer=exclude_newer,
        exclude_newer_span=exclude_newer_span,
        exclude_newer_package=exclude_newer_package,
        sources=sources,
        no_binary=tuple(body.no_binary),
        only_binary=tuple(body.only_binary),
        indexes=refs,
        index_strategy=body.index_strategy,
        deadline_seconds=deadline,
        lock=lock,
        upgrade=body.upgrade,
        upgrade_packages=tuple(body.upgrade_packages),
        no_deps=body.no_deps,
        dependency_metadata=dependency_metadata,
    )
