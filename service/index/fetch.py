"""HTTP GETs against an index: auth, bounded redirects, retries, decoding and size caps.

``Fetcher`` owns the one ``httpx.AsyncClient`` (HTTP/1.1 keep-alive pools, no cookies, no
environment-sourced proxies or netrc) and turns every lower-level failure into the typed errors
of ``service.index.errors``. Bodies are read raw and inflated here in bounded steps, so a size
cap counts decoded bytes and a compression bomb stops at the cap instead of in memory.
Credentials go only to the index's own origin, as a header; URLs never carry them. Redirects
stay on the index's origin or go to ``fetch.redirect_origins`` (without credentials). Every
connection goes through ``service.index.outbound``: the address dialled is the address checked
against ``fetch.blocked_networks``.
"""

from __future__ import annotations

import asyncio
import base64
import email.utils
import http
import json
import random
import time
import zlib
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import TypeVar
from urllib.parse import unquote, urljoin, urlsplit

import httpx

from service.diagnostics.redact import redact_text, redact_url
from service.index.errors import (
    BlockedAddressError,
    FetchTimeoutError,
    HTTPStatusError,
    IndexFetchError,
    IndexUnreachableError,
    InvalidResponseError,
    ResponseTooLargeError,
)
from service.index.models import Index
from service.index.outbound import AddressBlockedError, make_guarded_transport
from service.index.pages import strip_userinfo
from service.settings import FetchLimits

__all__ = ["Body", "FetchStats", "Fetcher"]

T = TypeVar("T")

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_MAX_REDIRECTS = 5
_MAX_RETRY_AFTER = 10.0
_MAX_BACKOFF = 10.0
_MAX_PROBLEM_BYTES = 64 * 1024
_MAX_REASON_CHARS = 300
_INFLATE_STEP = 64 * 1024
_PROBLEM_JSON = "application/problem+json"
_USER_AGENT = f"resolvd httpx/{httpx.__version__}"
# How long an idle upstream connection is kept for reuse.
_KEEPALIVE_SECONDS = 5.0
# Failures worth another attempt: the server may answer next time.
_RETRYABLE_ERRORS = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.ReadTimeout,
    httpx.ReadError,
    httpx.WriteError,
    httpx.RemoteProtocolError,
)


@dataclass
class FetchStats:
    """Per-job counters, updated in place by the client.

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


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or ""), port


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


class _Inflater:
    """Content-Encoding decoder that yields at most ``_INFLATE_STEP`` bytes at a time."""

    def __init__(self, encoding: str) -> None:
        encoding = encoding.strip().lower()
        self._raw_deflate_fallback = encoding == "deflate"
        self._decompressor: zlib._Decompress | None
        if encoding in ("", "identity"):
            self._decompressor = None
        elif encoding in ("gzip", "x-gzip"):
            self._decompressor = zlib.decompressobj(zlib.MAX_WBITS | 16)
        elif encoding == "deflate":
            self._decompressor = zlib.decompressobj()
        else:
            raise ValueError(f"unsupported Content-Encoding {encoding!r}")

    def feed(self, data: bytes) -> Iterator[bytes]:
        if self._decompressor is None:
            yield data
            return
        while True:
            try:
                out = self._decompressor.decompress(data, _INFLATE_STEP)
            except zlib.error:
                # "deflate" is sometimes sent without the zlib wrapper (as httpx also allows).
                if not self._raw_deflate_fallback:
                    raise
                self._raw_deflate_fallback = False
                self._decompressor = zlib.decompressobj(-zlib.MAX_WBITS)
                continue
            self._raw_deflate_fallback = False
            data = self._decompressor.unconsumed_tail
            if not out:
                return
            yield out


class Body:
    """A response handed to a consumer: status, headers and a capped, decoded body reader."""

    def __init__(self, response: httpx.Response, index: Index, url: str) -> None:
        self.response = response
        self.status = response.status_code
        self.headers = response.headers
        self.url = url
        self._index = index

    def _too_large(self, cap: int) -> ResponseTooLargeError:
        return ResponseTooLargeError(
            f"{self._index.display_name}: GET {redact_url(self.url)}: the response exceeds "
            f"the {cap}-byte limit",
            index=self._index.display_name,
            url=redact_url(self.url),
        )

    async def read_into(self, cap: int, write: Callable[[bytes], object]) -> int:
        """Stream the decoded body into ``write``; ``ResponseTooLargeError`` past ``cap`` bytes."""
        encoding = self.headers.get("content-encoding", "")
        try:
            inflater = _Inflater(encoding)
        except ValueError as exc:
            raise InvalidResponseError(
                f"{self._index.display_name}: GET {redact_url(self.url)}: {exc}",
                index=self._index.display_name,
                url=redact_url(self.url),
            ) from exc
        declared = self.headers.get("content-length", "")
        if (
            encoding.strip().lower() in ("", "identity")
            and declared.isdigit()
            and int(declared) > cap
        ):
            raise self._too_large(cap)  # refused before a byte is read
        total = 0
        try:
            async for raw in self.response.aiter_raw():
                for chunk in inflater.feed(raw):
                    total += len(chunk)
                    if total > cap:
                        raise self._too_large(cap)
                    write(chunk)
        except zlib.error as exc:
            raise InvalidResponseError(
                f"{self._index.display_name}: GET {redact_url(self.url)}: corrupt compressed "
                f"body: {exc}",
                index=self._index.display_name,
                url=redact_url(self.url),
            ) from exc
        return total

    async def read(self, cap: int) -> bytes:
        """The whole decoded body, at most ``cap`` bytes."""
        buffer = bytearray()
        await self.read_into(cap, buffer.extend)
        return bytes(buffer)


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


class Fetcher:
    """GETs with the policy of ``FetchLimits``: timeouts, retries, per-origin connection caps."""

    def __init__(
        self, limits: FetchLimits, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self._limits = limits
        # No cookie may carry one client's session into another client's job.
        no_cookies = CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))
        self._redirect_origins = frozenset(_origin(origin) for origin in limits.redirect_origins)
        if transport is None:
            transport = make_guarded_transport(
                limits.blocked_networks, keepalive_expiry=_KEEPALIVE_SECONDS
            )
        self._client = httpx.AsyncClient(
            transport=transport,
            http1=True,
            http2=False,
            timeout=httpx.Timeout(
                connect=limits.connect_timeout,
                read=limits.read_timeout,
                write=limits.read_timeout,
                pool=limits.fetch_deadline,
            ),
            follow_redirects=False,
            headers={"User-Agent": _USER_AGENT},
            # Proxies and .netrc credentials from the environment are not this service's config.
            trust_env=False,
            cookies=no_cookies,
        )
        self._slots: dict[tuple[str, str, int | None], asyncio.Semaphore] = {}

    async def aclose(self) -> None:
        await self._client.aclose()

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
    ) -> T:
        """GET ``url`` and hand a response whose status is in ``ok`` to ``consume``.

        Redirects within the allowed origins are followed; 5xx, 429 and network failures are
        retried with
        backoff (the consumer's body read included); any other status is an HTTPStatusError.
        """
        current = strip_userinfo(url)
        authorization = _authorization(index)
        index_origin = _origin(index.url)
        attempt = redirects = 0
        while True:
            request_headers = dict(headers)
            if authorization and _origin(current) == index_origin:
                request_headers["Authorization"] = authorization
            delay: float
            try:
                async with self._slot(current):
                    stats.requests += 1
                    response = await self._client.send(
                        self._client.build_request("GET", current, headers=request_headers),
                        stream=True,
                    )
                    try:
                        status = response.status_code
                        stats.responses[(index.display_name, status)] += 1
                        if status in _REDIRECTS and "location" in response.headers:
                            redirects += 1
                            current = self._redirect(index, current, response, redirects)
                            continue
                        if status in ok:
                            return await consume(Body(response, index, current))
                        if status < 400:
                            raise InvalidResponseError(
                                f"{index.display_name}: GET {redact_url(current)}: "
                                f"unexpected status {status}",
                                index=index.display_name,
                                url=redact_url(current),
                            )
                        retryable = status >= 500 or status == 429
                        if not retryable or attempt >= self._limits.retries:
                            raise await self._status_error(index, current, response)
                        retry_after = _retry_after(response.headers.get("retry-after"))
                        delay = (
                            self._backoff(attempt)
                            if retry_after is None
                            else min(retry_after, _MAX_RETRY_AFTER)
                        )
                    finally:
                        await response.aclose()
            except _RETRYABLE_ERRORS as exc:
                if attempt >= self._limits.retries:
                    raise self._transport_error(index, current, exc) from exc
                delay = self._backoff(attempt)
            except httpx.TransportError as exc:
                raise self._transport_error(index, current, exc) from exc
            except AddressBlockedError as exc:
                raise BlockedAddressError(
                    f"{index.display_name}: GET {redact_url(current)} refused: {exc}",
                    index=index.display_name,
                    url=redact_url(current),
                ) from exc
            attempt += 1
            await asyncio.sleep(delay)

    def _redirect(self, index: Index, current: str, response: httpx.Response, count: int) -> str:
        target = strip_userinfo(urljoin(current, response.headers["location"]))
        if count > _MAX_REDIRECTS:
            message = f"more than {_MAX_REDIRECTS} redirects"
        elif urlsplit(target).scheme not in ("http", "https"):
            message = f"redirect to a non-HTTP URL ({redact_url(target)}) refused"
        elif _origin(target) not in {_origin(current), _origin(index.url), *self._redirect_origins}:
            message = (
                f"redirect to another origin ({redact_url(target)}) refused; "
                "fetch.redirect_origins lists the origins redirects may go to"
            )
        else:
            return target
        raise InvalidResponseError(
            f"{index.display_name}: GET {redact_url(current)}: {message}",
            index=index.display_name,
            url=redact_url(current),
        )

    async def _status_error(
        self, index: Index, url: str, response: httpx.Response
    ) -> HTTPStatusError:
        status = response.status_code
        reason = await self._problem_reason(index, url, response)
        if reason is None:
            reason = _reason_phrase(status, response.reason_phrase)
        return HTTPStatusError(
            f"{index.display_name}: GET {redact_url(url)} returned {status} {reason}",
            index=index.display_name,
            url=redact_url(url),
            status=status,
            reason=reason,
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

    def _transport_error(
        self, index: Index, url: str, exc: httpx.TransportError
    ) -> IndexFetchError:
        detail = redact_text(str(exc)) or type(exc).__name__
        message = f"{index.display_name}: GET {redact_url(url)} failed: {detail}"
        if isinstance(exc, httpx.TimeoutException) and not isinstance(exc, httpx.ConnectTimeout):
            return FetchTimeoutError(message, index=index.display_name, url=redact_url(url))
        return IndexUnreachableError(message, index=index.display_name, url=redact_url(url))
