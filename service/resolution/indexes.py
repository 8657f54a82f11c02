"""Turn a request's ``indexes[]`` into runtime ``Index`` objects, enforcing server policy.

Requests may name configured indexes, or URLs under ``policy.allowed_index_urls`` (scheme, host
and port equal, path under the prefix's path), either as a simple index or a flat page of file
links. The check compares normalized URLs (``service.index.urls``: ``/d/../a/`` and
``/d/%2e%2e/a/`` are ``/a/``, and an encoded slash, backslash or percent sign is refused), and
the index then fetches exactly the URL that was checked. Credentials never come from a request.
A request's ``sources`` pin packages to one index by name: one of the job's indexes, or a
configured one that then joins the job as an explicit index (used for its pinned packages only).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from urllib.parse import urlsplit

import msgspec

from service.index.models import ErrorPolicy, Index, TLSProfile
from service.index.urls import AmbiguousURLError, UnusableURLError, check_url, normalize_url
from service.resolution.request import IndexFormat, IndexRef, PolicyOverride
from service.settings import ErrorCodes, IndexSettings, Settings

__all__ = [
    "KNOWN_FILE_ORIGINS",
    "IndexRefError",
    "make_configured_index",
    "make_indexes",
    "make_policy",
    "url_index_location",
    "url_index_name",
    "url_is_allowed",
]


# Where well-known indexes keep their files, for indexes that do not configure file_origins.
KNOWN_FILE_ORIGINS: dict[str, tuple[str, ...]] = {
    "https://pypi.org": ("https://files.pythonhosted.org",),
    "https://test.pypi.org": ("https://test-files.pythonhosted.org",),
}


def _file_origins(url: str, configured: tuple[str, ...] | None) -> tuple[str, ...]:
    if configured is not None:
        return tuple(origin.rstrip("/") for origin in configured)
    parts = urlsplit(url)
    return KNOWN_FILE_ORIGINS.get(f"{parts.scheme}://{parts.netloc}".lower(), ())


def _index_url(url: str, index_format: IndexFormat) -> str:
    # A flat page's links resolve against its URL as given: "…/wheels/" is not "…/wheels".
    return url if index_format == "flat" else url.rstrip("/")


class IndexRefError(ValueError):
    """An ``indexes[]`` entry the server will not use. ``field`` names where, for a 4xx."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def _normalized(url: str) -> str | None:
    try:
        return normalize_url(url)
    except AmbiguousURLError:
        return None


def url_index_name(url: str) -> str:
    """The name and URL of the index a request names by ``url``: normalized, no trailing slash.

    Raises ``AmbiguousURLError`` for a URL with no one meaning (``service.index.urls``).
    """
    return url_index_location(url)


def url_index_location(url: str, index_format: IndexFormat = "simple") -> str:
    """Where the index a request names by ``url`` is read (what its packages' ``index`` says):
    the normalized URL, a simple index's without its trailing slash, a flat page's as given.

    Raises ``AmbiguousURLError`` like ``url_index_name``.
    """
    return _index_url(normalize_url(url), index_format)


def url_is_allowed(url: str, prefixes: Sequence[str]) -> bool:
    """True when ``url`` has a prefix's scheme, host and port exactly and a path beneath it.

    Both sides are compared normalized; a URL (or prefix) that cannot be normalized matches
    nothing.
    """
    normalized = _normalized(url)
    if normalized is None:
        return False
    target = urlsplit(normalized)
    for prefix in filter(None, map(_normalized, prefixes)):
        allowed = urlsplit(prefix)
        if (target.scheme, target.hostname, target.port) != (
            allowed.scheme,
            allowed.hostname,
            allowed.port,
        ):
            continue
        base = allowed.path.rstrip("/")
        if target.path == base or target.path.startswith(base + "/"):
            return True
    return False


def make_policy(codes: ErrorCodes) -> ErrorPolicy:
    """The runtime policy for configured codes; a page 404 always means "not on this index"."""
    return ErrorPolicy(page=frozenset(codes.page) | {404}, metadata=frozenset(codes.metadata))


def make_configured_index(config: IndexSettings, environ: Mapping[str, str]) -> Index:
    """The runtime ``Index`` for a configured one, with credentials read from ``environ`` now."""
    auth: tuple[str, str] | str | None = None
    if config.token_env and environ.get(config.token_env):
        auth = environ[config.token_env]
    elif config.username_env and environ.get(config.username_env):
        auth = (environ[config.username_env], environ.get(config.password_env or "", ""))
    tls = (
        TLSProfile(
            ca_file=config.ca_file, client_cert=config.client_cert, client_key=config.client_key
        )
        if config.ca_file or config.client_cert
        else None
    )
    return Index(
        name=config.name,
        url=_index_url(config.url, config.format),
        policy=make_policy(config.ignore_error_codes),
        auth=auth,
        file_origins=_file_origins(config.url, config.file_origins),
        tls=tls,
        format=config.format,
        explicit=config.explicit,
    )


def _override(policy: ErrorPolicy, override: PolicyOverride | None) -> ErrorPolicy:
    if override is None:
        return policy
    page = policy.page if override.page is None else frozenset(override.page) | {404}
    metadata = policy.metadata if override.metadata is None else frozenset(override.metadata)
    return ErrorPolicy(page=page, metadata=metadata)


def make_indexes(
    refs: Sequence[IndexRef],
    settings: Settings,
    environ: Mapping[str, str],
    *,
    sources: Mapping[str, str] | None = None,
) -> list[Index]:
    """Resolve ``refs`` (or, when empty, every configured index in order) to ``Index`` objects,
    followed by the configured indexes ``sources`` pins packages to that ``refs`` left out.

    Raises ``IndexRefError`` naming the offending ``indexes[i]`` or ``sources.<name>`` field.
    """
    indexes = _make_listed(refs, settings, environ)
    for package, name in (sources or {}).items():
        if any(index.name == name.rstrip("/") for index in indexes):
            continue
        config = settings.find_index(name)
        if config is None:
            listed = ", ".join(repr(index.name) for index in indexes) or "none"
            raise IndexRefError(
                f"sources.{package}",
                f"unknown index {name!r} (the job's indexes: {listed}; or name a configured one)",
            )
        index = make_configured_index(config, environ)
        indexes.append(msgspec.structs.replace(index, explicit=True))
    return indexes


def _make_listed(
    refs: Sequence[IndexRef], settings: Settings, environ: Mapping[str, str]
) -> list[Index]:
    if not refs:
        return [make_configured_index(config, environ) for config in settings.index]
    indexes: list[Index] = []
    for position, ref in enumerate(refs):
        field = f"indexes[{position}]"
        if (ref.name is None) == (ref.url is None):
            raise IndexRefError(field, "give exactly one of 'name' or 'url'")
        if ref.name is not None:
            config = settings.find_index(ref.name)
            if config is None:
                known = ", ".join(index.name for index in settings.index) or "none"
                raise IndexRefError(
                    f"{field}.name", f"unknown index {ref.name!r} (configured: {known})"
                )
            if ref.format is not None and ref.format != config.format:
                raise IndexRefError(
                    f"{field}.format", f"index {ref.name!r} is configured as {config.format!r}"
                )
            index = make_configured_index(config, environ)
            indexes.append(
                msgspec.structs.replace(
                    index, policy=_override(index.policy, ref.ignore_error_codes)
                )
            )
            continue
        assert ref.url is not None
        try:
            check_url(ref.url)
        except UnusableURLError as exc:
            raise IndexRefError(f"{field}.url", str(exc)) from exc
        parts = urlsplit(ref.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise IndexRefError(f"{field}.url", "must be an absolute http(s) URL")
        if parts.username is not None or parts.password is not None:
            raise IndexRefError(
                f"{field}.url", "credentials are not accepted in URLs; configure the index"
            )
        try:
            normalized = normalize_url(ref.url)
        except AmbiguousURLError as exc:
            raise IndexRefError(f"{field}.url", str(exc)) from exc
        url = normalized.rstrip("/")  # the index's name: url_index_name, normalized once
        if not url_is_allowed(url, settings.policy.allowed_index_urls):
            raise IndexRefError(
                f"{field}.url", "URL is not under any prefix in policy.allowed_index_urls"
            )
        indexes.append(
            Index(
                name=url,
                url=_index_url(normalized, ref.format or "simple"),
                policy=_override(ErrorPolicy(), ref.ignore_error_codes),
                named_by_url=True,
                file_origins=_file_origins(url, None),
                format=ref.format or "simple",
            )
        )
    names = [index.url for index in indexes]
    if len(set(names)) != len(names):
        raise IndexRefError("indexes", "an index is listed twice")
    return indexes
