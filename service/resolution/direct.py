"""Direct URL requirements: ``name @ https://host/path/file.whl`` (or an sdist), as uv takes them.

``parse_direct_url`` reads what such a requirement names: a wheel or sdist file by URL, its
version from the filename, and the hashes a ``#sha256=…`` fragment gives (checked against the
bytes when the file is fetched). It refuses what resolvd never fetches: VCS URLs (``git+…``),
local paths (``file:``), other schemes, credentials in the URL, and a file of another project.

Where such a file may come from is the server's policy (``direct_url_is_allowed``): under a
prefix of ``policy.allowed_index_urls``, or on the origin of a configured index. The file is
then fetched through the index client like any index file (the outbound guard, TLS and size
caps apply), as the job's index on that origin when there is one (its credentials go to its own
origin only), else anonymously (``make_direct_index``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote, urldefrag, urlsplit

from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from service.index.models import DistFile, Index
from service.index.pages import parse_dist_filename
from service.resolution.indexes import make_configured_index, url_is_allowed
from service.settings import Settings

__all__ = [
    "DirectFile",
    "DirectURLError",
    "direct_url_is_allowed",
    "make_direct_index",
    "parse_direct_url",
]

# Hash fragments pip and uv accept, with their hex digest lengths.
_HASH_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}
_HEX = re.compile(r"^[0-9a-fA-F]+$")


class DirectURLError(ValueError):
    """A direct URL requirement resolvd will not take; ``str()`` says why."""


@dataclass(frozen=True)
class DirectFile:
    """The file a direct URL requirement names: ``file.url`` without its fragment, the
    fragment's hashes in ``file.hashes``."""

    name: NormalizedName
    version: Version
    file: DistFile


def _origin(url: str) -> tuple[str, str | None, int | None]:
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, parts.hostname, port


def _parse_hashes(fragment: str) -> dict[str, str]:
    hashes = {}
    for key, value in parse_qsl(fragment, keep_blank_values=True):
        if key not in _HASH_LENGTHS:
            continue  # egg= and the like: pip ignores them for archives too
        if len(value) != _HASH_LENGTHS[key] or not _HEX.match(value):
            raise DirectURLError(f"#{key}= is not a {key} hex digest")
        hashes[key] = value.lower()
    return hashes


def parse_direct_url(requirement: Requirement) -> DirectFile:
    """What ``requirement`` (which has a URL) names; raise ``DirectURLError`` when refused."""
    assert requirement.url is not None
    try:
        parts = urlsplit(requirement.url)
        parts.port  # noqa: B018 - raises for a port that is not a number in range
    except ValueError as exc:
        raise DirectURLError(f"not a valid URL: {exc}") from exc
    scheme = parts.scheme.lower()
    if "+" in scheme:
        raise DirectURLError(
            f"VCS requirements ({scheme}) are not supported: resolvd resolves published "
            "files; name a wheel or sdist URL, or publish it to an index"
        )
    if scheme == "file" or not scheme:
        raise DirectURLError("local paths are not supported: the server cannot read your files")
    if scheme not in ("http", "https") or not parts.hostname:
        raise DirectURLError(f"only http(s) URLs are supported, not {scheme}:")
    if parts.username is not None or parts.password is not None:
        raise DirectURLError("credentials are not accepted in URLs; configure the index")
    url, fragment = urldefrag(requirement.url)
    filename = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
    named = parse_dist_filename(filename)
    if named is None:
        raise DirectURLError(
            f"{filename or 'the URL'} is not a wheel or sdist (.tar.gz, .zip) filename"
        )
    name = canonicalize_name(requirement.name)
    if named.project != name:
        raise DirectURLError(f"{filename} is a file of {named.project}, not of {name}")
    file = DistFile(
        filename=filename,
        url=url,
        kind=named.kind,
        version=named.version,
        hashes=_parse_hashes(fragment),
        tags=named.tags,
    )
    return DirectFile(name=name, version=Version(named.version), file=file)


def _serves(index: Index, url: str) -> bool:
    """Whether ``url`` is on ``index``'s origin or one of its file origins."""
    origin = _origin(url)
    return origin == _origin(index.url) or any(
        origin == _origin(other) for other in index.file_origins
    )


def direct_url_is_allowed(url: str, settings: Settings) -> bool:
    """Whether a direct URL lies under an allowed prefix, or on a configured index's origin
    (or where that index keeps its files)."""
    if url_is_allowed(url, settings.policy.allowed_index_urls):
        return True
    return any(_serves(make_configured_index(config, {}), url) for config in settings.index)


def make_direct_index(url: str, indexes: Sequence[Index]) -> Index:
    """The index a direct URL's file is fetched as: the job's first index serving its origin,
    else an anonymous one named by the URL's directory (errors then name that)."""
    for index in indexes:
        if _serves(index, url):
            return index
    directory = url.rsplit("/", 1)[0]
    return Index(name=directory, url=directory, named_by_url=True)
