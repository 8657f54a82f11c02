"""Turn a request's ``indexes[]`` into runtime ``Index`` objects, enforcing server policy.

Requests may name configured indexes, or URLs under ``policy.allowed_index_urls`` (scheme, host
and port equal, path under the prefix's path). Credentials never come from a request.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from urllib.parse import urlsplit

import msgspec

from service.index.models import ErrorPolicy, Index, TLSProfile
from service.index.urls import UnusableURLError, check_url
from service.resolution.request import IndexRef, PolicyOverride
from service.settings import ErrorCodes, IndexSettings, Settings

__all__ = [
    "KNOWN_FILE_ORIGINS",
    "IndexRefError",
    "make_configured_index",
    "make_indexes",
    "make_policy",
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


class IndexRefError(ValueError):
    """An ``indexes[]`` entry the server will not use. ``field`` names where, for a 4xx."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def url_is_allowed(url: str, prefixes: Sequence[str]) -> bool:
    """True when ``url`` has a prefix's scheme, host and port exactly and a path beneath it."""
    target = urlsplit(url)
    for prefix in prefixes:
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
        url=config.url.rstrip("/"),
        policy=make_policy(config.ignore_error_codes),
        auth=auth,
        file_origins=_file_origins(config.url, config.file_origins),
        tls=tls,
    )


def _override(policy: ErrorPolicy, override: PolicyOverride | None) -> ErrorPolicy:
    if override is None:
        return policy
    page = policy.page if override.page is None else frozenset(override.page) | {404}
    metadata = policy.metadata if override.metadata is None else frozenset(override.metadata)
    return ErrorPolicy(page=page, metadata=metadata)


def make_indexes(
    refs: Sequence[IndexRef], settings: Settings, environ: Mapping[str, str]
) -> list[Index]:
    """Resolve ``refs`` (or, when empty, every configured index in order) to ``Index`` objects.

    Raises ``IndexRefError`` naming the offending ``indexes[i]`` field.
    """
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
        if not url_is_allowed(ref.url, settings.policy.allowed_index_urls):
            raise IndexRefError(
                f"{field}.url", "URL is not under any prefix in policy.allowed_index_urls"
            )
        indexes.append(
            Index(
                name=ref.url.rstrip("/"),
                url=ref.url.rstrip("/"),
                policy=_override(ErrorPolicy(), ref.ignore_error_codes),
                named_by_url=True,
                file_origins=_file_origins(ref.url, None),
            )
        )
    names = [index.url for index in indexes]
    if len(set(names)) != len(names):
        raise IndexRefError("indexes", "an index is listed twice")
    return indexes
