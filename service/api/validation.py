"""Turn a ``ResolveBody`` into the domain ``ResolveRequest``, or say precisely what is wrong.

Everything a job could fail on before it reaches the resolver is checked here, so nothing is
queued for a request that cannot run: PEP 508 syntax of every requirement, constraint and
override; the target environment; ``exclude_newer``; binary-policy names; the indexes (through
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
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import InvalidName, canonicalize_name

from service.api.problems import InvalidRequest
from service.api.schemas import ErrorCodesBody, FieldError, IndexRefBody, LockBody, ResolveBody
from service.export import ExportError
from service.export.reader import UnreadableLockError, read_job_lock, read_lock
from service.jobs.model import JobDocument
from service.resolution import IndexRefError, make_indexes
from service.resolution.environment import UnsupportedTargetError, make_target_environment
from service.resolution.markers import InvalidMarker, parse_marker, python_range_marker
from service.resolution.request import IndexRef, LockInput, PolicyOverride, ResolveRequest, Target
from service.settings import Settings

__all__ = ["to_resolve_request"]

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
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


def _check_requirements(errors: _Errors, field: str, values: Sequence[str], limit: int) -> None:
    if len(values) > limit:
        errors.add(
            "too-many-requirements", field, f"{len(values)} entries; this server allows {limit}"
        )
        return
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
        if requirement.url is not None:
            errors.add(
                "invalid-requirement",
                f"{field}[{position}]",
                "direct URL requirements are not supported; name a package on an index",
            )


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


def _normalize_exclude_newer(value: str) -> str:
    """RFC 3339 timestamp (normalized to UTC) or a plain date; raise ValueError otherwise."""
    if _DATE.match(value):
        return date.fromisoformat(value).isoformat()
    if "T" not in value.upper() and " " not in value:
        raise ValueError("expected an RFC 3339 timestamp or a date (YYYY-MM-DD)")
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError("an RFC 3339 timestamp needs a UTC offset, e.g. 'Z' or '+02:00'")
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


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


def _slug_for_index_error(exc: IndexRefError) -> str:
    if exc.field.endswith(".name"):
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
) -> ResolveRequest:
    """The validated domain request, with server defaults applied; raise ``InvalidRequest``.

    ``lock_job`` is the client's job that ``lock.job`` names, looked up by the caller.
    """
    errors = _Errors()
    limit = settings.limits.max_requirements
    if not body.requirements:
        errors.add("invalid-requirement", "requirements", "at least one requirement is needed")
    for field, values in (
        ("requirements", body.requirements),
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

    exclude_newer = None
    if body.exclude_newer is not None:
        try:
            exclude_newer = _normalize_exclude_newer(body.exclude_newer)
        except ValueError as exc:
            errors.add("invalid-request", "exclude_newer", str(exc))

    _check_universal(errors, body)

    deadline = settings.limits.default_deadline_seconds
    if body.deadline_seconds is not None:
        if body.deadline_seconds <= 0:
            errors.add("invalid-request", "deadline_seconds", "must be greater than 0")
        deadline = min(body.deadline_seconds, settings.limits.max_deadline_seconds)

    refs = _make_refs(errors, body.indexes)
    if len(refs) > settings.limits.max_indexes:
        errors.add(
            "too-many-indexes",
            "indexes",
            f"{len(refs)} entries; this server allows {settings.limits.max_indexes}",
        )
    else:
        try:
            make_indexes(refs, settings, environ)
        except IndexRefError as exc:
            errors.add(_slug_for_index_error(exc), exc.field, exc.message)

    lock = _read_lock(errors, body.lock, lock_job, settings)

    errors.raise_if_any()
    return ResolveRequest(
        requirements=tuple(body.requirements),
        constraints=tuple(body.constraints),
        overrides=tuple(body.overrides),
        environment=target,
        universal=body.universal,
        requires_python=body.requires_python,
        environments=tuple(body.environments),
        required_environments=tuple(body.required_environments),
        prerelease=body.prerelease,
        resolution=body.resolution,
        exclude_newer=exclude_newer,
        no_binary=tuple(body.no_binary),
        only_binary=tuple(body.only_binary),
        indexes=refs,
        index_strategy=body.index_strategy,
        deadline_seconds=deadline,
        lock=lock,
        upgrade=body.upgrade,
        upgrade_packages=tuple(body.upgrade_packages),
    )
