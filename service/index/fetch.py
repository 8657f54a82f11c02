"""HTTP GETs against an index: auth, origins, bounded redirects, retries, decoding and size caps.

``Fetcher`` sends ``httpx.Request``s straight to its transport (``service.index.outbound``'s,
which adds TLS trust, proxies, HTTP/2 and the address guard) and turns every lower-level failure
into the typed errors of ``service.index.errors``. It does not use ``httpx.AsyncClient``: what
that adds (cookies, netrc and proxy settings from the environment, redirects, auth flows) is
either refused here or done here, and its layers were a tenth of a request's CPU. So no cookie
carries one client's session into another client's job.

Sending is layered as httpx layers it: ``get`` admits the URL, ``_send_handling_redirects``
follows redirects within the allowed origins, ``_send_handling_retries`` retries 5xx, 429 and
network failures with backoff, and ``_send_single_request`` makes one request and hands an
accepted response to the consumer.

Where a request may go depends on what it fetches. A project page stays under the index URL's
path on the index's origin (redirects included) or goes to ``fetch.redirect_origins``. A file
linked from a page (metadata file, range request, download) is fetched only from the index's
origin, the index's ``file_origins`` or ``fetch.redirect_origins``: any other link is refused
before a request is made, so a hostile page cannot use resolvd to probe other hosts or ports.
Credentials and the index's TLS profile (client certificate, extra CA) go only to the index's
own origin. Bodies are read raw and inflated here in bounded steps, so a size cap counts
decoded bytes and a compression bomb stops at the cap instead of in memory.
"""

from __future__ import annotations

import asyncio
import base64
import email.utils
import http
import json
import random
import ssl
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeAlias, TypeVar
from urllib.parse import unquote, urljoin, urlsplit

import httpx

from service.diagnostics.redact import redact_text, redact_url
from service.index.errors import (
    BlockedAddressError,
    FetchTimeoutError,
    FileOriginError,
    HTTPStatusError,
    IndexFetchError,
    IndexUnreachableError,
    InvalidResponseError,
    ResponseTooLargeError,
    TLSError,
    fetch_error,
)
from service.index.inflate import DEFLATE, GZIP, INFLATE_ERRORS, RAW_DEFLATE, Inflater, inflater
from service.index.models import Index
from service.index.outbound import (
    TLS_EXTENSION,
    AddressBlockedError,
    TLSConfigError,
    make_guarded_transport,
)
from service.index.pages import strip_userinfo
from service.index.urls import is_plain_path
from service.settings import FetchLimits

__all__ = ["Body", "EncodedBody", "FetchStats", "Fetcher", "Purpose"]

T = TypeVar("T")
E = TypeVar("E", bound=IndexFetchError)

# What a GET fetches: the project page (under the index URL) or a file linked from a page.
Purpose: TypeAlias = Literal["page", "file"]
Origin: TypeAlias = tuple[str, str, int | None]

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_MAX_REDIRECTS = 5
_MAX_RETRY_AFTER = 10.0
_MAX_BACKOFF = 10.0
_MAX_PROBLEM_BYTES = 64 * 1024
_MAX_REASON_CHARS = 300
# Compressed bodies inflate in steps this large: the cap is checked between steps.
_INFLATE_STEP = 256 * 1024
_PROBLEM_JSON = "application/problem+json"
_USER_AGENT = f"resolvd httpx/{httpx.__version__}"
# What every request sends unless the caller says otherwise. Only the encodings ``_Inflater``
# decodes are offered (httpx's client would offer zstd and br when those packages are present).
_HEADERS = {"User-Agent": _USER_AGENT, "Accept": "*/*", "Accept-Encoding": "gzip, deflate"}
# How long an idle upstream connection is kept for reuse (an HTTP/2 one serves every request
# to its origin, so it is worth keeping between a job's bursts and across jobs).
_KEEPALIVE_SECONDS = 60.0
# Failures worth another attempt: the server may answer next time.
_RETRYABLE_ERRORS = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.ReadTimeout,
    httpx.ReadError,
    httpx.WriteError,
    httpx.RemoteProtocolError,
)
# TLS alerts a server sends about the client's certificate (missing, unknown or refused).
_CLIENT_CERTIFICATE_ALERTS = (
    "CERTIFICATE_REQUIRED",
    "BAD_CERTIFICATE",
    "UNKNOWN_CA",
    "CERTIFICATE_UNKNOWN",
    "CERTIFICATE_EXPIRED",
    "CERTIFICATE_REVOKED",
    "UNSUPPORTED_CERTIFICATE",
    "HANDSHAKE_FAILURE",
)


@dataclass
class FetchStats:
    """Per-job counters, updated in place by the client from the event loop and the resolver
    thread alike (so only through ``count`` and ``count_response``, under a lock).

    ``requests``: HTTP requests sent (retries and redirects included). ``cache_hits``: answers
    served from the cache without a request. ``revalidated``: stale pages confirmed by a 304.
    ``shared``: answers taken from another caller's in-flight fetch. ``responses``: count by
    (index display name, HTTP status).
    """

    requests: int = 0
    cache_hits: int = 0
    revalidated: int = 0
    shared: int = 0
    responses: Counter[tuple[str, int]] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def count(
        self, *, requests: int = 0, cache_hits: int = 0, revalidated: int = 0, shared: int = 0
    ) -> None:
        """Add to the counters, atomically with respect to other threads."""
        with self._lock:
            self.requests += requests
            self.cache_hits += cache_hits
            self.revalidated += revalidated
            self.shared += shared

    def count_response(self, index: str, status: int) -> None:
        with self._lock:
            self.responses[(index, status)] += 1


def _origin(url: str) -> Origin:
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or ""), port


def _show_origin(origin: Origin) -> str:
    scheme, host, port = origin
    host = f"[{host}]" if ":" in host else host
    return f"{scheme}://{host}:{port}" if port else f"{scheme}://{host}"


def _within(url: str, base: str) -> bool:
    """True when ``url``'s path is ``base``'s path or beneath it, spelled plainly."""
    path = urlsplit(url).path
    if not is_plain_path(path):
        return False
    prefix = urlsplit(base).path.rstrip("/")
    return path == prefix or path.startswith(prefix + "/")


def _authorization(index: Index) -> str | None:
    """The ``Authorization`` value for ``index``: its configured auth, else URL userinfo."""
    if isinstance(index.auth, str):
        return f"Bearer {index.auth}"
    if isinstance(index.auth, tuple):
        user, password = index.auth
    else:
        parts = urlsplit(index.url)
        if parts.username is None:
            return None
        user, password = unquote(parts.username), unquote(parts.password or "")
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return f"Basic {token}"


def _error(cls: type[E], index: Index, url: str, detail: str, **fields: Any) -> E:
    return fetch_error(cls, index.display_name, url, detail, **fields)


def _ssl_cause(exc: BaseException) -> ssl.SSLError | None:
    """The ``ssl.SSLError`` behind a transport error, if one caused it."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ssl.SSLError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _tls_error(index: Index, url: str, exc: BaseException) -> TLSError | None:
    """A ``TLSError`` saying which setting fixes ``exc``, when a certificate caused it."""
    own_origin = _origin(url) == _origin(index.url)
    name = index.display_name
    if isinstance(exc, TLSConfigError):
        setting = "client_cert" if str(exc).startswith("client_cert") else "ca_file"
        return _error(TLSError, index, url, f"[[index]] {exc}", setting=setting)
    cause = _ssl_cause(exc)
    if isinstance(cause, ssl.SSLCertVerificationError):
        where = "SSL_CERT_FILE (or SSL_CERT_DIR) to a bundle holding that CA" + (
            f", or [[index]] ca_file for index '{name}'" if own_origin else ""
        )
        return _error(
            TLSError,
            index,
            url,
            f"the server's certificate is not trusted ({cause.verify_message}). If a "
            f"TLS-inspecting proxy or a private CA signs it, set {where}.",
            setting="SSL_CERT_FILE",
        )
    reason = (getattr(cause, "reason", None) or "") if cause is not None else ""
    if reason.endswith(_CLIENT_CERTIFICATE_ALERTS) and "ALERT" in reason:
        given = own_origin and index.tls is not None and index.tls.client_cert
        advice = (
            f"the server refused the client certificate of index '{name}' ({reason}); check "
            "its [[index]] client_cert and client_key"
            if given
            else f"the server asks for a client certificate ({reason}); set [[index]] "
            f"client_cert and client_key for index '{name}'"
        )
        return _error(TLSError, index, url, advice, setting="client_cert")
    return None


_GZIP_ENCODINGS = frozenset({"gzip", "x-gzip"})


class _Inflater:
    """Content-Encoding decoder: ``feed`` yields at most ``_INFLATE_STEP`` bytes at a time,
    ``step`` with a larger limit inflates a whole body at once."""

    def __init__(self, encoding: str) -> None:
        encoding = encoding.strip().lower()
        self._raw_deflate_fallback = encoding == "deflate"
        self._fed = False
        self._decompressor: Inflater | None
        if encoding in ("", "identity"):
            self._decompressor = None
        elif encoding in _GZIP_ENCODINGS:
            self._decompressor = inflater(GZIP)
        elif encoding == "deflate":
            self._decompressor = inflater(DEFLATE)
        else:
            raise ValueError(f"unsupported Content-Encoding {encoding!r}")

    @property
    def identity(self) -> bool:
        return self._decompressor is None

    def step(self, data: bytes, limit: int) -> bytes:
        """Up to ``limit`` more bytes of output (the rest of ``data`` waits in the tail); for a
        body with an encoding (``identity`` is False)."""
        assert self._decompressor is not None
        self._fed = self._fed or bool(data)
        while True:
            try:
                out = self._decompressor.decompress(data, limit)
            except INFLATE_ERRORS:
                # "deflate" is sometimes sent without the zlib wrapper (as httpx also allows).
                if not self._raw_deflate_fallback:
                    raise
                self._raw_deflate_fallback = False
                self._decompressor = inflater(RAW_DEFLATE)
                continue
            self._raw_deflate_fallback = False
            return out

    def feed(self, data: bytes) -> Iterator[bytes]:
        if self._decompressor is None:
            yield data
            return
        while out := self.step(data, _INFLATE_STEP):
            data = self._decompressor.unconsumed_tail
            yield out

    @property
    def ended(self) -> bool:
        """Whether the compressed stream was complete (its end marker and trailer seen), or
        there was none: no encoding, or not a byte of body."""
        return self._decompressor is None or self._decompressor.eof or not self._fed


def _too_large(index: Index, url: str, cap: int) -> ResponseTooLargeError:
    return _error(ResponseTooLargeError, index, url, f"the response exceeds the {cap}-byte limit")


class _Decoder:
    """A body's Content-Encoding undone with a fetch's cap and typed errors: ``feed`` yields
    decoded chunks, ``ResponseTooLargeError`` once they pass ``cap`` bytes,
    ``InvalidResponseError`` for an unknown encoding or a corrupt stream."""

    def __init__(self, encoding: str, cap: int, index: Index, url: str) -> None:
        self._cap, self._index, self._url = cap, index, url
        try:
            self._inflater = _Inflater(encoding)
        except ValueError as exc:
            raise _error(InvalidResponseError, index, url, str(exc)) from exc
        self.total = 0

    @property
    def identity(self) -> bool:
        return self._inflater.identity

    def feed(self, raw: bytes) -> Iterator[bytes]:
        try:
            for chunk in self._inflater.feed(raw):
                self.total += len(chunk)
                if self.total > self._cap:
                    raise _too_large(self._index, self._url, self._cap)
                yield chunk
        except INFLATE_ERRORS as exc:
            raise self._corrupt(exc) from exc

    def whole(self, raw: bytes) -> bytes:
        """All of ``raw`` decoded at once: one output buffer, no per-step copy of the input."""
        try:
            content = self._inflater.step(raw, self._cap + 1)
        except INFLATE_ERRORS as exc:
            raise self._corrupt(exc) from exc
        self.total = len(content)
        if self.total > self._cap:
            raise _too_large(self._index, self._url, self._cap)
        self.finish()
        return content

    def finish(self) -> None:
        """``InvalidResponseError`` when the body ended inside its compressed stream (a cut
        page would otherwise parse as one with fewer files)."""
        if not self._inflater.ended:
            raise _error(
                InvalidResponseError,
                self._index,
                self._url,
                "corrupt compressed body: it ends before its compressed stream does",
            )

    def _corrupt(self, exc: Exception) -> InvalidResponseError:
        return _error(
            InvalidResponseError, self._index, self._url, f"corrupt compressed body: {exc}"
        )


class Body:
    """A response handed to a consumer: status, headers and a capped, decoded body reader."""

    def __init__(self, response: httpx.Response, index: Index, url: str) -> None:
        self.response = response
        self.status = response.status_code
        self.headers = response.headers
        self.url = url
        self._index = index

    def _refuse_declared(self, cap: int) -> None:
        """``ResponseTooLargeError`` before a byte is read when Content-Length says too much."""
        declared = self.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > cap:
            raise _too_large(self._index, self.url, cap)

    async def read_into(self, cap: int, write: Callable[[bytes], object]) -> int:
        """Stream the decoded body into ``write``; ``ResponseTooLargeError`` past ``cap`` bytes."""
        decoder = _Decoder(self.headers.get("content-encoding", ""), cap, self._index, self.url)
        if decoder.identity:
            self._refuse_declared(cap)
        async for raw in self.response.aiter_raw():
            for chunk in decoder.feed(raw):
                write(chunk)
        decoder.finish()
        return decoder.total

    async def read_encoded(self, cap: int) -> EncodedBody:
        """The body as it came off the wire, at most ``cap`` bytes, to decode later.

        For a big page: reading it raw costs the event loop a join, and ``EncodedBody.decode``
        then inflates it in the worker thread that parses it (the inflater lets go of the GIL
        while it inflates, so that runs beside the loop instead of on it).
        """
        self._refuse_declared(cap)  # the sent bytes count here, compressed or not
        chunks: list[bytes] = []
        total = 0
        async for raw in self.response.aiter_raw():
            total += len(raw)
            if total > cap:
                raise _too_large(self._index, self.url, cap)
            chunks.append(raw)
        encoding = self.headers.get("content-encoding", "")
        return EncodedBody(b"".join(chunks), encoding, cap, self._index, self.url)

    async def read(self, cap: int) -> bytes:
        """The whole decoded body, at most ``cap`` bytes, copied once into a buffer of its size.

        (The chunks are kept as they arrive and joined at the end: one allocation of exactly
        the body's size, where a growing buffer reallocated and was then copied to bytes.)
        """
        chunks: list[bytes] = []
        await self.read_into(cap, chunks.append)
        return b"".join(chunks)


@dataclass(frozen=True, slots=True)
class EncodedBody:
    """A body still in its Content-Encoding (``Body.read_encoded``); ``decode`` may run in any
    thread and raises the same typed errors as ``Body.read``."""

    data: bytes
    encoding: str
    cap: int
    index: Index
    url: str

    @property
    def gzipped(self) -> bytes | None:
        """The body as sent when that is gzip (a compressed copy worth keeping), else None."""
        return self.data if self.encoding.strip().lower() in _GZIP_ENCODINGS else None

    def decode(self) -> bytes:
        decoder = _Decoder(self.encoding, self.cap, self.index, self.url)
        if decoder.identity:
            return self.data  # already held to the cap as it was read
        return decoder.whole(self.data)

    def __len__(self) -> int:
        return len(self.data)


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - time.time())


def _reason_phrase(status: int, fallback: str) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return fallback or "Unknown Status"


@dataclass(frozen=True, slots=True)
class _Call(Generic[T]):
    """One ``Fetcher.get``: what every layer of sending needs to know about it."""

    index: Index
    headers: Mapping[str, str]
    ok: frozenset[int]
    consume: Callable[[Body], Awaitable[T]]
    stats: FetchStats
    purpose: Purpose
    # Origins this fetch may reach (redirects included).
    origins: frozenset[Origin]


@dataclass(frozen=True, slots=True)
class _Redirect:
    location: str


class _RetryableError(Exception):
    """A failure the retry layer may try again: ``error`` if it may not, after ``delay``."""

    def __init__(self, error: IndexFetchError, delay: float | None = None) -> None:
        super().__init__(error.message)
        self.error = error
        self.delay = delay


class Fetcher:
    """GETs with the policy of ``FetchLimits``: timeouts, retries, per-origin connection caps."""

    def __init__(
        self, limits: FetchLimits, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self._limits = limits
        self._redirect_origins = frozenset(_origin(origin) for origin in limits.redirect_origins)
        if transport is None:
            transport = make_guarded_transport(
                limits.blocked_networks,
                keepalive_expiry=_KEEPALIVE_SECONDS,
                dns_ttl=limits.dns_ttl_seconds,
                proxy=limits.proxy,
                no_proxy=limits.no_proxy,
            )
        self.transport = transport
        self._timeouts = {
            "connect": limits.connect_timeout,
            "read": limits.read_timeout,
            "write": limits.read_timeout,
            "pool": limits.fetch_deadline,
        }
        self._slots: dict[Origin, asyncio.Semaphore] = {}

    async def aclose(self) -> None:
        await self.transport.aclose()

    def _slot(self, url: str) -> asyncio.Semaphore:
        origin = _origin(url)
        slot = self._slots.get(origin)
        if slot is None:
            slot = self._slots[origin] = asyncio.Semaphore(self._limits.max_connections_per_index)
        return slot

    def _backoff(self, attempt: int) -> float:
        ceiling = min(_MAX_BACKOFF, self._limits.backoff_base * 2**attempt)
        return random.uniform(ceiling / 2, ceiling)

    async def get(
        self,
        index: Index,
        url: str,
        *,
        headers: Mapping[str, str],
        ok: frozenset[int],
        consume: Callable[[Body], Awaitable[T]],
        stats: FetchStats,
        purpose: Purpose = "page",
    ) -> T:
        """GET ``url`` for ``purpose`` and hand a response whose status is in ``ok`` to ``consume``.

        A ``page`` lies under the index URL; a ``file`` on the index's origin, its
        ``file_origins`` or ``fetch.redirect_origins`` (else ``FileOriginError``, and no
        request is made). Redirects within the same bounds are followed; 5xx, 429 and network
        failures are retried with backoff (the consumer's body read included); any other
        status is an ``HTTPStatusError``.
        """
        url = strip_userinfo(url)
        origins = {_origin(index.url), *self._redirect_origins}
        if purpose == "file":
            origins.update(_origin(origin) for origin in index.file_origins)
        call = _Call(index, headers, ok, consume, stats, purpose, frozenset(origins))
        self._admit(call, url)
        return await self._send_handling_redirects(call, url)

    def _admit(self, call: _Call[Any], url: str) -> None:
        """Refuse, before any request, a URL this fetch may not reach."""
        index = call.index
        origin = _origin(url)
        if call.purpose == "file":
            if origin[0] in ("http", "https") and origin in call.origins:
                return
            raise _error(
                FileOriginError,
                index,
                url,
                f"the page links a file on {_show_origin(origin)}, which is neither the index's "
                "origin nor one of its [[index]] file_origins or fetch.redirect_origins; "
                "nothing was requested from it",
            )
        if origin != _origin(index.url) or not _within(url, index.url):
            raise _error(IndexFetchError, index, url, "the URL is not under the index URL")

    async def _send_handling_redirects(self, call: _Call[T], url: str) -> T:
        redirects = 0
        while True:
            outcome = await self._send_handling_retries(call, url)
            if not isinstance(outcome, _Redirect):
                return outcome
            redirects += 1
            url = self._follow(call, url, outcome.location, redirects)

    def _follow(self, call: _Call[Any], url: str, location: str, redirects: int) -> str:
        """Where a redirect from ``url`` leads, when it may be followed."""
        target = strip_userinfo(urljoin(url, location))
        index = call.index
        if redirects > _MAX_REDIRECTS:
            message = f"more than {_MAX_REDIRECTS} redirects"
        elif urlsplit(target).scheme not in ("http", "https"):
            message = f"redirect to a non-HTTP URL ({redact_url(target)}) refused"
        elif _origin(target) not in call.origins:
            message = (
                f"redirect to another origin ({redact_url(target)}) refused; "
                "fetch.redirect_origins lists the origins redirects may go to"
            )
        elif (
            call.purpose == "page"
            and _origin(target) == _origin(index.url)
            and not _within(target, index.url)
        ):
            message = (
                f"redirect outside the index URL ({redact_url(target)}) refused: a project "
                "page stays under its index"
            )
        else:
            return target
        raise _error(InvalidResponseError, index, url, message)

    async def _send_handling_retries(self, call: _Call[T], url: str) -> T | _Redirect:
        attempt = 0
        while True:
            try:
                return await self._send_single_request(call, url)
            except _RetryableError as retry:
                if attempt >= self._limits.retries:
                    raise retry.error from retry.__cause__
                delay = (
                    self._backoff(attempt)
                    if retry.delay is None
                    else min(retry.delay, _MAX_RETRY_AFTER)
                )
            attempt += 1
            await asyncio.sleep(delay)

    async def _send_single_request(self, call: _Call[T], url: str) -> T | _Redirect:
        """One request; ``_RetryableError`` for what the retry layer may try again."""
        index = call.index
        headers = {**_HEADERS, **call.headers}
        extensions: dict[str, Any] = {"timeout": self._timeouts}
        if _origin(url) == _origin(index.url):  # credentials and TLS profile: own origin only
            authorization = _authorization(index)
            if authorization:
                headers["Authorization"] = authorization
            if index.tls is not None:
                extensions[TLS_EXTENSION] = index.tls
        request = httpx.Request("GET", url, headers=headers, extensions=extensions)
        try:
            async with self._slot(url):
                call.stats.count(requests=1)
                response = await self.transport.handle_async_request(request)
                response.request = request
                try:
                    return await self._answer(call, url, response)
                finally:
                    await response.aclose()
        # httpcore lets an alert that arrives after the handshake (TLS 1.3 sends "certificate
        # required" so) escape as a bare ssl.SSLError.
        except (AddressBlockedError, TLSConfigError, httpx.TransportError, ssl.SSLError) as exc:
            error = self._transport_error(index, url, exc)
            if isinstance(exc, _RETRYABLE_ERRORS) and not isinstance(error, TLSError):
                raise _RetryableError(error) from exc
            raise error from exc

    async def _answer(self, call: _Call[T], url: str, response: httpx.Response) -> T | _Redirect:
        index, status = call.index, response.status_code
        call.stats.count_response(index.display_name, status)
        if status in _REDIRECTS and "location" in response.headers:
            return _Redirect(response.headers["location"])
        if status in call.ok:
            return await call.consume(Body(response, index, url))
        if status < 400:
            raise _error(InvalidResponseError, index, url, f"unexpected status {status}")
        error = await self._status_error(index, url, response)
        if status >= 500 or status == 429:
            raise _RetryableError(error, _retry_after(response.headers.get("retry-after")))
        raise error

    async def _status_error(
        self, index: Index, url: str, response: httpx.Response
    ) -> HTTPStatusError:
        status = response.status_code
        reason = await self._problem_reason(index, url, response)
        if reason is None:
            reason = _reason_phrase(status, response.reason_phrase)
        return _error(
            HTTPStatusError, index, url, f"returned {status} {reason}", status=status, reason=reason
        )

    async def _problem_reason(self, index: Index, url: str, response: httpx.Response) -> str | None:
        """``title: detail`` from an RFC 9457 body, if the server sent a readable one."""
        media = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media != _PROBLEM_JSON:
            return None
        try:
            document = json.loads(await Body(response, index, url).read(_MAX_PROBLEM_BYTES))
        except (IndexFetchError, httpx.TransportError, ValueError):
            return None
        if not isinstance(document, dict):
            return None
        parts = [
            document[key].strip()
            for key in ("title", "detail")
            if isinstance(document.get(key), str) and document[key].strip()
        ]
        if not parts:
            return None
        return redact_text(": ".join(parts))[:_MAX_REASON_CHARS]

    @staticmethod
    def _transport_error(index: Index, url: str, exc: Exception) -> IndexFetchError:
        """The typed error for a request that got no HTTP answer."""
        if isinstance(exc, AddressBlockedError):
            return _error(BlockedAddressError, index, url, f"refused: {exc}")
        tls = _tls_error(index, url, exc)
        if tls is not None:
            return tls
        detail = f"failed: {exc or type(exc).__name__}"
        if isinstance(exc, httpx.TimeoutException) and not isinstance(exc, httpx.ConnectTimeout):
            return _error(FetchTimeoutError, index, url, detail)
        return _error(IndexUnreachableError, index, url, detail)
