"""Value types of the network edge: indexes, project pages, files and core metadata.

These are msgspec structs so the cache can store them compactly; none of them holds a secret
except ``Index.auth``, which is excluded from encoding and from ``repr``.
"""

from __future__ import annotations

import functools
import hashlib
from typing import TYPE_CHECKING, Literal

import msgspec

from service.diagnostics.redact import redact_url

if TYPE_CHECKING:
    from packaging.version import Version

    from service.index.pages import PageListing

__all__ = ["CoreMetadata", "DistFile", "ErrorPolicy", "Index", "ProjectPage", "TLSProfile"]


class ErrorPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """Which client-error statuses mean "unavailable here, try something else".

    ``page``: statuses on the project page meaning "not on this index, try the next" (404
    always does). ``metadata``: statuses on one version's metadata or file fetch that mark that
    version unavailable so the resolver backtracks.
    """

    page: frozenset[int] = frozenset({404, 410})
    metadata: frozenset[int] = frozenset()


class TLSProfile(msgspec.Struct, frozen=True, kw_only=True):
    """How connections to one index's origin do TLS beyond the default trust.

    ``ca_file``: PEM certificates trusted in addition to the system store (and
    ``SSL_CERT_FILE``/``SSL_CERT_DIR``). ``client_cert``/``client_key``: the certificate (and
    its key, when not in the same file) presented for mutual TLS. Paths on the server, never
    secrets themselves; a client certificate is only ever presented to the index's own origin.
    """

    ca_file: str | None = None
    client_cert: str | None = None
    client_key: str | None = None


class Index(msgspec.Struct, frozen=True, kw_only=True):
    """A PyPI-style simple index as one job sees it: name, base URL, credentials, policy.

    ``url`` never carries credentials; ``auth`` is a (username, password) pair or a bearer
    token, resolved server-side from the environment and never serialized. ``file_origins``:
    origins (``scheme://host[:port]``) besides the index's own that its pages may link files
    on (PyPI's file host for PyPI); ``tls``: its TLS profile, for connections to its origin.
    ``format``: ``simple`` (a page per project under ``url``) or ``flat`` (``url`` is one page of
    file links, as ``--find-links``). ``explicit``: used only for the packages a job pins to it.
    """

    name: str
    url: str
    policy: ErrorPolicy = ErrorPolicy()
    auth: tuple[str, str] | str | None = None
    named_by_url: bool = False
    file_origins: tuple[str, ...] = ()
    tls: TLSProfile | None = None
    format: Literal["simple", "flat"] = "simple"
    explicit: bool = False

    def __repr__(self) -> str:
        return f"Index(name={self.name!r}, url={redact_url(self.url)!r})"

    @property
    def display_name(self) -> str:
        """The name users see: configured name, or the redacted URL for request-named ones."""
        return redact_url(self.url) if self.named_by_url else self.name

    @property
    def identity(self) -> str:
        """Cache-key scope: the index URL plus a digest of the credentials used for it.

        Two jobs share cached pages only when they read the same index with the same
        credentials (a client certificate is one), so a client never sees what another
        client's credentials fetched.
        """
        certificate = None if self.tls is None else self.tls.client_cert
        secret = self.auth if certificate is None else (self.auth, certificate)
        # A flat page and a simple index under one URL list different things.
        url = self.url if self.format == "simple" else f"{self.url} (flat)"
        return _identity(url, repr(secret) if secret else None)


@functools.lru_cache(maxsize=1024)
def _identity(url: str, secret: str | None) -> str:
    # Asked for every cache key (a warm 244-package job: ~1,000 times, 0.13 s of sha256).
    scope = hashlib.sha256(secret.encode()).hexdigest()[:16] if secret else "anon"
    url_digest = hashlib.sha256(url.rstrip("/").encode()).hexdigest()[:16]
    return f"{url_digest}:{scope}"


class DistFile(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """One distribution file listed on a project page (PEP 503/691/592/658/700/714).

    Pages, files and metadata hold only strings, so they cannot form reference cycles:
    ``gc=False`` keeps the thousands a worker caches out of the cycle collector's walks (a full
    collection over them took about 100 ms, in the middle of whatever request came next).
    """

    filename: str
    url: str
    kind: Literal["wheel", "sdist"]
    version: str
    hashes: dict[str, str] = {}
    requires_python: str | None = None
    yanked: bool = False
    yanked_reason: str | None = None
    size: int | None = None
    upload_time: str | None = None
    # PEP 658/714: None = not advertised; {} = advertised without hashes; else its hashes.
    core_metadata: dict[str, str] | None = None
    # Wheel tags as "py3-none-any" strings, expanded from compressed tag sets.
    tags: tuple[str, ...] = ()


class ProjectPage:
    """A project's file listing on one index, as one job's index sees it.

    The files are parsed lazily (``service.index.pages.PageListing``): ``versions`` is known at
    once, newest first, and ``files_of(version)`` makes one version's records when asked. The
    listing is shared by every job that reads the same page; ``index`` is the display name.
    """

    __slots__ = ("etag", "index", "last_modified", "listing", "name")

    def __init__(
        self,
        *,
        name: str,
        index: str,
        listing: PageListing,
        etag: str | None = None,
        last_modified: str | None = None,
    ) -> None:
        self.name = name
        self.index = index
        self.listing = listing
        self.etag = etag
        self.last_modified = last_modified

    def __repr__(self) -> str:
        return f"ProjectPage(name={self.name!r}, index={self.index!r}, {self.listing!r})"

    def _identity(self) -> tuple[str | None, ...]:
        return (self.name, self.index, self.etag, self.last_modified, self.listing.digest)

    def __eq__(self, other: object) -> bool:
        """Pages are equal when they hold the same body under the same names and validators."""
        if not isinstance(other, ProjectPage):
            return NotImplemented
        return self._identity() == other._identity()

    def __hash__(self) -> int:
        return hash(self._identity())

    @property
    def versions(self) -> tuple[Version, ...]:
        """Every version a file of the project names, newest first."""
        return self.listing.versions

    def files_of(self, version: Version) -> tuple[DistFile, ...]:
        """The files of ``version``, made on first use and shared after."""
        return self.listing.files_of(version)

    @property
    def files(self) -> tuple[DistFile, ...]:
        """Every file, in page order (makes them all: for tests and failure explanations)."""
        return self.listing.files

    def seen_by(self, index: str) -> ProjectPage:
        """This page under another index display name (the cache is shared across names)."""
        if index == self.index:
            return self
        return ProjectPage(
            name=self.name,
            index=index,
            listing=self.listing,
            etag=self.etag,
            last_modified=self.last_modified,
        )


class CoreMetadata(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """The parts of a distribution's core metadata the resolver needs."""

    name: str
    version: str
    metadata_version: str = "2.1"
    requires_dist: tuple[str, ...] = ()
    requires_python: str | None = None
    provides_extra: tuple[str, ...] = ()
    dynamic: tuple[str, ...] = ()
