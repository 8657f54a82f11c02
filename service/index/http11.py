"""HTTP/1.1 for the pool's direct connections, parsed by httptools (llhttp) instead of h11.

httpcore's ``AsyncHTTP11Connection`` drives h11, a pure-Python state machine, and takes an anyio
lock and a cancel-shielding scope around every request. On a cold job against a loopback index
those were the largest part of the event loop's cost per GET: about 370 µs of CPU per request,
a third of it in h11's event parsing and the connection's locks (py-spy on 6,000 GETs). Here
the response is parsed by httptools, the C parser uvicorn already brings
(``uvicorn[standard]``), and the request line and headers are written in one buffer.

``LeanHTTPConnection`` is httpcore's ``AsyncHTTPConnection`` (connecting, TLS, ALPN) handing a
connection that did not negotiate HTTP/2 to ``LeanHTTP11Connection``; the pool builds it for
direct connections only, so connections through a proxy keep httpcore's own HTTP/1.1.

What it does, as httpcore's HTTP/1.1 connection does:

* one request at a time per connection; a connection is reused only when the response was read
  to its end, both sides allow keep-alive, and nothing arrived after it;
* a response without Content-Length or chunked framing runs until the server closes;
  responses to HEAD, 1xx, 204 and 304 have no body; 1xx responses before the final one are
  skipped;
* the status line and headers may take ``MAX_HEAD_BYTES`` (checked between reads of 64 KiB);
* a malformed response, or one the server cuts short, is ``httpcore.RemoteProtocolError``
  (httpx's ``RemoteProtocolError``); a header that would smuggle a line break is refused
  before anything is sent (``httpcore.LocalProtocolError``); an idle connection whose server
  hung up (or sent anything) has expired;
* an error or a cancellation in the middle of an exchange closes the connection.

Request bodies are sent when their length is declared (``Content-Length``); the fetcher's GETs
have none.
"""

from __future__ import annotations

import contextlib
import enum
import re
import time
from collections.abc import AsyncIterable, AsyncIterator
from typing import Any

import httpcore
import httptools

__all__ = ["LeanHTTP11Connection", "LeanHTTPConnection"]

_READ_BYTES = 64 * 1024
# What httpcore's h11 connection allows for a status line and headers.
MAX_HEAD_BYTES = 100 * 1024
# RFC 9110 token characters: what a header name may hold.
_FIELD_NAME = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_FORBIDDEN_IN_VALUE = re.compile(rb"[\x00\r\n]")
_NO_BODY_STATUSES = frozenset({204, 304})


class _State(enum.IntEnum):
    NEW = 0
    ACTIVE = 1
    IDLE = 2
    CLOSED = 3


class _Message:
    """httptools' callbacks for one response: what it has parsed so far."""

    def __init__(self) -> None:
        self.reason = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.status = 0
        self.head_done = False
        self.body: list[bytes] = []
        self.complete = False
        self.keep_alive = False
        # Bytes after the response (a second message): the connection cannot be reused.
        self.trailing = False
        self.parser = httptools.HttpResponseParser(self)

    def on_message_begin(self) -> None:
        if self.complete:
            self.trailing = True

    # What follows a complete response is not parsed into it (``trailing`` says it came).

    def on_status(self, reason: bytes) -> None:
        if not self.trailing:
            self.reason += reason

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self.trailing:
            self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        if self.trailing:
            return
        status = self.parser.get_status_code()
        if 100 <= status < 200:  # informational: the final response follows
            self.reason, self.headers = b"", []
            return
        self.status = status
        self.head_done = True
        # For a response whose body is not read (HEAD): on_message_complete may never come.
        self.keep_alive = self.parser.should_keep_alive()

    def on_body(self, data: bytes) -> None:
        if not self.trailing:
            self.body.append(data)

    def on_message_complete(self) -> None:
        if self.head_done and not self.complete and not self.trailing:
            self.complete = True
            # Asked now: once a message is complete, llhttp answers for the next one.
            self.keep_alive = self.parser.should_keep_alive()

    def feed(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            if self.complete:  # garbage after a whole response: only the reuse is lost
                self.trailing = True
                return
            raise httpcore.RemoteProtocolError(f"malformed HTTP response: {exc}") from exc

    def header(self, name: bytes) -> bytes | None:
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return None


def _encode_head(request: httpcore.Request) -> tuple[bytes, bool]:
    """The request line and headers, checked in one pass, and whether a body length was
    declared."""
    lines = [request.method, b" ", request.url.target, b" HTTP/1.1\r\n"]
    declared = False
    for name, value in request.headers:
        if _FIELD_NAME.fullmatch(name) is None or _FORBIDDEN_IN_VALUE.search(value):
            raise httpcore.LocalProtocolError(f"illegal header {name!r}")
        lowered = name.lower()
        if lowered == b"transfer-encoding":
            raise httpcore.LocalProtocolError("a request body without a declared length")
        declared = declared or lowered == b"content-length"
        lines += (name, b": ", value, b"\r\n")
    lines.append(b"\r\n")
    return b"".join(lines), declared


class LeanHTTP11Connection(httpcore.AsyncConnectionInterface):
    """One HTTP/1.1 connection over ``stream`` (see the module docstring)."""

    def __init__(
        self,
        origin: httpcore.Origin,
        stream: httpcore.AsyncNetworkStream,
        keepalive_expiry: float | None = None,
    ) -> None:
        self._origin = origin
        self._stream = stream
        self._keepalive_expiry = keepalive_expiry
        self._expire_at: float | None = None
        self._state = _State.NEW
        self._requests = 0

    async def handle_async_request(self, request: httpcore.Request) -> httpcore.Response:
        if not self.can_handle_request(request.url.origin):
            raise RuntimeError(f"{request.url.origin} asked of a connection to {self._origin}")
        if self._state not in (_State.NEW, _State.IDLE):
            raise httpcore.ConnectionNotAvailable()
        self._state, self._expire_at = _State.ACTIVE, None
        self._requests += 1
        timeouts = request.extensions.get("timeout", {})
        try:
            # The server may have answered before it stopped reading: that answer is read.
            with contextlib.suppress(httpcore.WriteError):
                await self._send(request, timeouts.get("write"))
            message = await self._receive_head(timeouts.get("read"))
        except BaseException:
            await self._close()
            raise
        body = _Body(self, message, request.method == b"HEAD", timeouts.get("read"))
        return httpcore.Response(
            status=message.status,
            headers=message.headers,
            content=body,
            extensions={
                "http_version": b"HTTP/" + message.parser.get_http_version().encode("ascii"),
                "reason_phrase": message.reason,
                "network_stream": self._stream,
            },
        )

    async def _send(self, request: httpcore.Request, seconds: float | None) -> None:
        head, declared = _encode_head(request)
        await self._stream.write(head, timeout=seconds)
        if not declared:
            return
        assert isinstance(request.stream, AsyncIterable)
        async for chunk in request.stream:
            await self._stream.write(chunk, timeout=seconds)

    async def _receive_head(self, seconds: float | None) -> _Message:
        message = _Message()
        received = 0
        while not message.head_done:
            data = await self._stream.read(_READ_BYTES, timeout=seconds)
            if not data:
                raise httpcore.RemoteProtocolError(
                    "Server disconnected without sending a response."
                )
            received += len(data)
            message.feed(data)
            if not message.head_done and received > MAX_HEAD_BYTES:
                raise httpcore.RemoteProtocolError(
                    f"the response's headers exceed {MAX_HEAD_BYTES} bytes"
                )
        return message

    async def _read_into(self, message: _Message, seconds: float | None) -> bool:
        """More of the body into ``message``; False at the end of the stream."""
        data = await self._stream.read(_READ_BYTES, timeout=seconds)
        if not data:
            return False
        message.feed(data)
        return True

    async def _done(self, message: _Message | None) -> None:
        """The exchange is over: idle for the next request, or closed when it cannot be."""
        if (
            self._state is _State.ACTIVE
            and message is not None
            and message.complete
            and not message.trailing
            and message.keep_alive
        ):
            self._state = _State.IDLE
            if self._keepalive_expiry is not None:
                self._expire_at = time.monotonic() + self._keepalive_expiry
            return
        await self._close()

    async def _close(self) -> None:
        if self._state is not _State.CLOSED:
            self._state = _State.CLOSED
            await self._stream.aclose()

    async def aclose(self) -> None:
        await self._close()

    def can_handle_request(self, origin: httpcore.Origin) -> bool:
        return origin == self._origin

    def is_available(self) -> bool:
        return self._state is _State.IDLE

    def has_expired(self) -> bool:
        if self._expire_at is not None and time.monotonic() > self._expire_at:
            return True
        return self._state is _State.IDLE and bool(self._stream.get_extra_info("is_readable"))

    def is_idle(self) -> bool:
        return self._state is _State.IDLE

    def is_closed(self) -> bool:
        return self._state is _State.CLOSED

    def info(self) -> str:
        state = self._state.name
        return f"{str(self._origin)!r}, HTTP/1.1, {state}, Request Count: {self._requests}"

    def __repr__(self) -> str:
        return f"<LeanHTTP11Connection [{self.info()}]>"


class _Body:
    """A response body as httpcore streams it: chunks, then ``aclose`` (always called)."""

    def __init__(
        self,
        connection: LeanHTTP11Connection,
        message: _Message,
        head: bool,
        timeout: float | None,
    ) -> None:
        self._connection = connection
        self._message = message
        self._timeout = timeout
        self._closed = False
        if head or message.status in _NO_BODY_STATUSES:
            message.body.clear()
            message.complete = True

    def _runs_until_close(self) -> bool:
        """Neither a length nor chunks: the body ends when the server closes the connection."""
        message = self._message
        return (
            message.header(b"content-length") is None
            and b"chunked" not in (message.header(b"transfer-encoding") or b"").lower()
        )

    async def __aiter__(self) -> AsyncIterator[bytes]:
        message = self._message
        try:
            while True:
                if message.body:
                    chunks, message.body = message.body, []
                    for chunk in chunks:
                        yield chunk
                if message.complete:
                    return
                if not await self._connection._read_into(message, self._timeout):
                    if self._runs_until_close():
                        message.complete, message.trailing = True, True  # not reusable
                        return
                    raise httpcore.RemoteProtocolError(
                        "peer closed connection without sending complete message body"
                    )
        except BaseException:
            await self.aclose()
            raise

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            await self._connection._done(self._message)


class LeanHTTPConnection(httpcore.AsyncHTTPConnection):
    """httpcore's connection (connect, TLS, ALPN), with HTTP/1.1 spoken by
    ``LeanHTTP11Connection``; once connected, a request takes no lock here."""

    _connection: httpcore.AsyncConnectionInterface | None
    _request_lock: Any

    async def handle_async_request(self, request: httpcore.Request) -> httpcore.Response:
        if not self.can_handle_request(request.url.origin):
            raise RuntimeError(f"{request.url.origin} asked of a connection to {self._origin}")
        if self._connection is None:
            try:
                async with self._request_lock:
                    if self._connection is None:
                        self._connection = await self._open(request)
            except BaseException:
                self._connect_failed = True
                raise
        return await self._connection.handle_async_request(request)

    async def _open(self, request: httpcore.Request) -> httpcore.AsyncConnectionInterface:
        stream = await self._connect(request)
        ssl_object = stream.get_extra_info("ssl_object")
        negotiated = ssl_object is not None and ssl_object.selected_alpn_protocol() == "h2"
        if negotiated or (self._http2 and not self._http1):
            return httpcore.AsyncHTTP2Connection(
                origin=self._origin, stream=stream, keepalive_expiry=self._keepalive_expiry
            )
        return LeanHTTP11Connection(self._origin, stream, self._keepalive_expiry)
