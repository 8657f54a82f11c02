"""The network edge: reading PyPI-style simple indexes for the resolver.

``IndexClient`` fetches project pages (PEP 503 HTML or PEP 691 JSON, negotiated) and the core
metadata of distribution files (a PEP 658 metadata file, HTTP range requests into a wheel, or
the whole file), with retries, deadlines, size caps, single-flight sharing of concurrent fetches
and a cache (``PageCache``: Redis, or process memory when Redis is absent). It makes no policy
decisions: every failure is a typed error from ``service.index.errors`` that carries the
index's display name and a redacted URL, and the resolver decides what a 404 or 403 means.
For an sdist whose metadata is dynamic it calls the ``MetadataBuilder`` it was given, if any
(``service.index.builder``; ``service.builds`` implements it and is never imported here).
Parsing lives in pure modules (``pages``, ``metadata``, ``archives``). This package depends on
nothing above it: it never imports ``service.resolution``, ``service.jobs``, ``service.api`` or
Litestar, only ``service.settings`` and ``service.diagnostics``.
"""

from service.index.builder import BuildScope, MetadataBuilder, build_scope
from service.index.cache import MemoryPageCache, PageCache, RedisPageCache
from service.index.client import IndexClient, make_index_client
from service.index.errors import (
    FetchTimeoutError,
    HashMismatchError,
    HTTPStatusError,
    InconsistentMetadataError,
    IndexFetchError,
    IndexUnreachableError,
    InvalidResponseError,
    MetadataBuildError,
    ResponseTooLargeError,
    UnusableMetadataError,
)
from service.index.fetch import FetchStats
from service.index.models import CoreMetadata, DistFile, ErrorPolicy, Index, ProjectPage

__all__ = [
    "BuildScope",
    "CoreMetadata",
    "DistFile",
    "ErrorPolicy",
    "FetchStats",
    "FetchTimeoutError",
    "HTTPStatusError",
    "HashMismatchError",
    "InconsistentMetadataError",
    "Index",
    "IndexClient",
    "IndexFetchError",
    "IndexUnreachableError",
    "InvalidResponseError",
    "MemoryPageCache",
    "MetadataBuildError",
    "MetadataBuilder",
    "PageCache",
    "ProjectPage",
    "RedisPageCache",
    "ResponseTooLargeError",
    "UnusableMetadataError",
    "build_scope",
    "make_index_client",
]
