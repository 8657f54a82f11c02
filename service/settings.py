"""Server configuration: one frozen ``Settings`` built from a TOML file and the environment.

Nothing is read at import time. ``load_settings()`` reads ``RESOLVD_CONFIG`` (or an explicit
path), then applies environment overrides (``RESOLVD_REDIS_URL``, ``RESOLVD_CACHE_URL``,
``RESOLVD_ALLOWED_INDEX_URLS`` and ``RESOLVD_<SECTION>_<KEY>`` for every scalar in ``limits``,
``fetch``, ``cache``, ``server``, ``jobs`` and ``builds``). Index credentials are read from the
environment variables each index names when a job's indexes are made
(``service.resolution.indexes``), never stored in Settings. This module imports nothing else
from ``service``.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import msgspec

__all__ = [
    "AuthSettings",
    "BuildSettings",
    "CacheSettings",
    "FetchLimits",
    "IndexSettings",
    "JobSettings",
    "Limits",
    "RedisSettings",
    "Settings",
    "SettingsError",
    "load_settings",
]


class SettingsError(ValueError):
    """The configuration file or environment is invalid; the message names the key."""


class _Config(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class ErrorCodes(_Config, frozen=True, kw_only=True, forbid_unknown_fields=True):
    page: tuple[int, ...] = (404, 410)
    metadata: tuple[int, ...] = ()


class IndexSettings(_Config, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: str
    url: str
    username_env: str | None = None
    password_env: str | None = None
    token_env: str | None = None
    ignore_error_codes: ErrorCodes = ErrorCodes()
    # Origins (scheme://host[:port]) besides the index's own that its pages may link files on;
    # unset: PyPI's file host for PyPI, none for other indexes.
    file_origins: tuple[str, ...] | None = None
    # TLS for connections to the index's origin: CA certificates trusted in addition to the
    # system store, and a client certificate (with its key, unless in the same file).
    ca_file: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    # "flat": one page (or directory listing) of file links, as pip and uv's --find-links.
    format: Literal["simple", "flat"] = "simple"
    # Used only for the packages a request's ``sources`` pins to it.
    explicit: bool = False


class RedisSettings(_Config, frozen=True, kw_only=True, forbid_unknown_fields=True):
    url: str = "redis://127.0.0.1:6379/0"
    cache_url: str | None = None


class PolicySettings(_Config, frozen=True, kw_only=True, forbid_unknown_fields=True):
    allowed_index_urls: tuple[str, ...] = ()


class AuthSettings(_Config, frozen=True, kw_only=True, forbid_unknown_fields=True):
    tokens_env: str | None = None


class Limits(_Config, frozen=True, kw_only=True, forbid_unknown_fields=True):
    max_body_bytes: int = 256 * 1024
    max_requirements: int = 500
    # Entries in a request's indexes[] (each requirement is looked up on each of them).
    max_indexes: Annotated[int, msgspec.Meta(ge=1)] = 10
    jobs_per_client_per_minute: int = 120
    default_deadline_seconds: float = 120.0
    max_deadline_seconds: float = 600.0
    max_rounds: int = 20_000
    # Long-polls (?wait=) and event streams one client may hold open at once, per API process;
    # past it, 429 with Retry-After.
    max_watches_per_client: Annotated[int, msgspec.Meta(ge=1)] = 50
    # The mirror block catalogue (GET /indexes/{name}/blocked): versions kept per index, and days.
    blocked_versions_per_index: Annotated[int, msgspec.Meta(ge=1)] = 1000
    blocked_retention_days: Annotated[int, msgspec.Meta(ge=1)] = 30


# Networks no index lives on and an attacker would aim a URL at (service.index.outbound).
DEFAULT_BLOCKED_NETWORKS = (
    "0.0.0.0/8",  # "this host"
    "169.254.0.0/16",  # link-local, cloud metadata (169.254.169.254)
    "224.0.0.0/4",  # multicast
    "240.0.0.0/4",  # reserved, broadcast
    "::/128",  # unspecified
    "fe80::/10",  # link-local
    "fd00:ec2::/32",  # AWS IPv6 metadata
    "ff00::/8",  # multicast
)


class FetchLimits(_Config, frozen=True, kw_only=True, forbid_unknown_fields=True):
    connect_timeout: float = 5.0
    read_timeout: float = 15.0
    fetch_deadline: float = 60.0
    retries: int = 3
    backoff_base: float = 0.25
    max_page_bytes: int = 64 * 1024 * 1024
    # Files (JSON entries, HTML links) one project page may list; the largest real pages list
    # about 15,000 (pydantic-core) to 40,000, so a page past this is a hostile one.
    max_page_files: int = 100_000
    max_metadata_bytes: int = 8 * 1024 * 1024
    max_artifact_bytes: int = 512 * 1024 * 1024
    page_ttl_seconds: int = 600
    max_connections_per_index: int = 32
    # Addresses never connected to, checked on the address actually dialled.
    blocked_networks: tuple[str, ...] = DEFAULT_BLOCKED_NETWORKS
    # Origins (scheme://host[:port]) a redirect may lead to besides the index's own; the
    # index's credentials are never sent to them.
    redirect_origins: tuple[str, ...] = ()
    # Outbound proxy (http:// or https://, credentials allowed and redacted everywhere); unset,
    # HTTPS_PROXY / HTTP_PROXY / ALL_PROXY are used. no_proxy: hosts, domains, addresses or
    # networks reached directly (unset: NO_PROXY).
    proxy: str | None = None
    no_proxy: tuple[str, ...] = ()
    # How long a host's DNS answers are reused (every connection still checks them against
    # blocked_networks); 0 looks up every new connection.
    dns_ttl_seconds: float = 60.0


class CacheSettings(_Config, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What the page and metadata cache may cost its Redis (``service.index.cache``)."""

    # Bytes of unexpired values the cache may have written (0: no budget, for a cache Redis of
    # its own with an eviction policy). Past it, nothing new is stored until entries expire.
    max_bytes: int = 256 * 1024 * 1024
    # The largest value stored (a page is stored compressed; a bigger one is fetched again).
    max_value_bytes: int = 8 * 1024 * 1024
    # Metadata of a file never changes, but every key expires so that the budget frees up.
    metadata_ttl_seconds: int = 7 * 24 * 3600


class JobSettings(_Config, frozen=True, kw_only=True, forbid_unknown_fields=True):
    result_ttl_seconds: int = 24 * 3600
    max_tries: int = 3
    heartbeat_seconds: int = 10
    worker_concurrency: int = 4


class BuildSettings(_Config, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``[builds]``: opt-in metadata builds of sdists whose metadata is dynamic (service.builds).

    ``sandbox`` is ``"bwrap"`` (bubblewrap; builds refuse to start without it) or ``"none"``,
    which runs ``setup.py`` code unconfined and must be chosen explicitly. The limits apply to
    each build: wall-clock and CPU seconds, address space, and the bytes of output kept.
    """

    enabled: bool = False
    sandbox: Literal["bwrap", "none"] = "bwrap"
    timeout_seconds: float = 300.0
    memory_mb: int = 1024
    max_output_bytes: int = 4 * 1024 * 1024
    # Builds one builder process runs at once (``resolvd builder --concurrency``).
    concurrency: int = 2
    # A failed build is remembered this long (with its log tail) instead of rebuilt per job.
    failure_ttl_seconds: int = 3600
    # Where build directories are made (default: the system temporary directory).
    work_dir: str | None = None
    # When the builder runs as root, the sandbox runs as this unprivileged uid/gid.
    sandbox_uid: int = 65534


class EnvironmentDefaults(_Config, frozen=True, kw_only=True, forbid_unknown_fields=True):
    python_version: str = "3.12"
    platform: str = "x86_64-manylinux_2_28"


class ServerSettings(_Config, frozen=True, kw_only=True, forbid_unknown_fields=True):
    host: str = "127.0.0.1"
    port: int = 8000


def _default_indexes() -> tuple[IndexSettings, ...]:
    return (IndexSettings(name="pypi", url="https://pypi.org/simple"),)


class Settings(_Config, frozen=True, kw_only=True, forbid_unknown_fields=True):
    redis: RedisSettings = RedisSettings()
    index: tuple[IndexSettings, ...] = msgspec.field(default_factory=_default_indexes)
    policy: PolicySettings = PolicySettings()
    auth: AuthSettings = AuthSettings()
    limits: Limits = Limits()
    fetch: FetchLimits = FetchLimits()
    cache: CacheSettings = CacheSettings()
    jobs: JobSettings = JobSettings()
    environment: EnvironmentDefaults = EnvironmentDefaults()
    server: ServerSettings = ServerSettings()
    builds: BuildSettings = BuildSettings()

    @property
    def cache_url(self) -> str:
        return self.redis.cache_url or self.redis.url

    def find_index(self, name: str) -> IndexSettings | None:
        return next((index for index in self.index if index.name == name), None)


_SCALAR_SECTIONS: dict[str, type[_Config]] = {
    "limits": Limits,
    "fetch": FetchLimits,
    "cache": CacheSettings,
    "jobs": JobSettings,
    "server": ServerSettings,
    "environment": EnvironmentDefaults,
    "builds": BuildSettings,
}


def _split_list(value: str) -> list[str]:
    """A comma-separated environment value as a list (blank items dropped)."""
    return [part.strip() for part in value.split(",") if part.strip()]


def _apply_environment(raw: dict[str, Any], environ: Mapping[str, str]) -> None:
    redis = raw.setdefault("redis", {})
    if url := environ.get("RESOLVD_REDIS_URL"):
        redis["url"] = url
    if url := environ.get("RESOLVD_CACHE_URL"):
        redis["cache_url"] = url
    if prefixes := environ.get("RESOLVD_ALLOWED_INDEX_URLS"):
        raw.setdefault("policy", {})["allowed_index_urls"] = _split_list(prefixes)
    if tokens_env := environ.get("RESOLVD_AUTH_TOKENS_ENV"):
        raw.setdefault("auth", {})["tokens_env"] = tokens_env
    for section, section_type in _SCALAR_SECTIONS.items():
        prefix = f"RESOLVD_{section.upper()}_"
        fields = {f.name: f for f in msgspec.structs.fields(section_type)}
        for key, value in environ.items():
            # RESOLVD_CACHE_URL is redis.cache_url (above), not a key of [cache].
            if key.startswith(prefix) and key != "RESOLVD_CACHE_URL":
                name = key.removeprefix(prefix).lower()
                field = fields.get(name)
                # List-valued keys take comma-separated values, like RESOLVD_ALLOWED_INDEX_URLS.
                listed = field is not None and isinstance(field.default, tuple)
                raw.setdefault(section, {})[name] = _split_list(value) if listed else value


def load_settings(
    path: str | Path | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Read the TOML file (``path`` or ``$RESOLVD_CONFIG``) and apply environment overrides."""
    environ = os.environ if environ is None else environ
    path = path or environ.get("RESOLVD_CONFIG")
    raw: dict[str, Any] = {}
    if path:
        try:
            raw = tomllib.loads(Path(path).read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise SettingsError(f"cannot read config {path}: {exc}") from exc
    _apply_environment(raw, environ)
    try:
        settings = msgspec.convert(raw, Settings, strict=False)
    except msgspec.ValidationError as exc:
        raise SettingsError(f"invalid configuration: {exc}") from exc
    names = [index.name for index in settings.index]
    if len(set(names)) != len(names):
        raise SettingsError("invalid configuration: index names must be unique")
    for network in settings.fetch.blocked_networks:
        try:
            ipaddress.ip_network(network, strict=False)
        except ValueError as exc:
            raise SettingsError(f"fetch.blocked_networks: {exc}") from exc
    builds = settings.builds
    if builds.timeout_seconds <= 0 or builds.memory_mb < 64 or builds.concurrency < 1:
        raise SettingsError(
            "builds: timeout_seconds must be positive, memory_mb at least 64 and "
            "concurrency at least 1"
        )
    _check_origins("fetch.redirect_origins", settings.fetch.redirect_origins)
    _check_proxy(settings.fetch)
    for index in settings.index:
        _check_index(index)
    return settings


def _check_origins(key: str, origins: tuple[str, ...]) -> None:
    for origin in origins:
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in "/":
            raise SettingsError(f"{key}: {origin!r} is not an origin (scheme://host[:port])")


def _check_proxy(fetch: FetchLimits) -> None:
    if not fetch.proxy:
        return
    # The URL itself is never repeated: it may carry a password.
    try:
        parts = urlsplit(fetch.proxy)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError as exc:
        raise SettingsError("fetch.proxy: not a URL") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SettingsError("fetch.proxy: must be an http:// or https:// URL with a host")


def _check_index(index: IndexSettings) -> None:
    where = f"index {index.name!r}"
    _check_origins(f"{where} file_origins", index.file_origins or ())
    if index.client_key and not index.client_cert:
        raise SettingsError(f"{where}: client_key needs client_cert")
    for key in ("ca_file", "client_cert", "client_key"):
        path = getattr(index, key)
        if path is not None and not Path(path).is_file():
            raise SettingsError(f"{where} {key}: {path} is not a readable file")
