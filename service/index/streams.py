"""An httpcore network backend on the running asyncio loop's own transports and protocols.

httpcore's default backend under asyncio is anyio's: every read and write enters a cancel scope
(``fail_after``), asks ``sniffio`` which library runs, and goes through typed-attribute stream
wrappers. On a cold 244-package job against a loopback index that was about a fifth of the
event loop's CPU per request (0.30 of 1.22 ms per GET). This backend reads from a buffer the
loop's transport fills (``asyncio.Protocol``), arms a timer only when a read or a write must
actually wait, and upgrades to TLS with ``loop.start_tls`` (uvloop's loop included), so a
response that has already arrived costs one slice of a ``bytearray``.

Semantics are httpcore's: ``read`` returns at most ``max_bytes`` (``b""`` at end of stream) and
raises ``ReadTimeout``/``ReadError``; ``write`` raises ``WriteTimeout``/``WriteError``;
connecting raises ``ConnectTimeout``/``ConnectError``, chained (``from``) to the ``OSError`` or
``ssl.SSLError`` behind it, which is what ``service.index.fetch`` reads to name a TLS setting.
``get_extra_info("is_readable")`` says whether an idle connection has data or an end of stream
waiting (the server hung up), which httpcore uses to retire kept-alive connections.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Iterable
from typing import Any, cast

import httpcore

__all__ = ["AsyncioBackend", "AsyncioStream"]

# Reading pauses while this much has arrived unread (a slow consumer of a fast server).
_HIGH_WATER = 256 * 1024


class _Signal:
    """One waiter at a time, woken by the protocol (reads and writes each have their own)."""

    def __init__(self) -> None:
        self._waiter: asyncio.Future[None] | None = None

    def set(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def wait(self, seconds: float | None) -> None:
        """Until ``set``, at most ``seconds`` (``TimeoutError``)."""
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            async with asyncio.timeout(seconds):
                await self._waiter
        finally:
            self._waiter = None


class _Connection(asyncio.Protocol):
    """What the loop tells about one connection: bytes received, end of stream, flow control."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.eof = False
        self.error: BaseException | None = None
        self.reading_paused = False
        self.writing_paused = False
        # A reader and a writer may wait at once (HTTP/2 sends while another task reads).
        self.readable = _Signal()
        self.writable = _Signal()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports have asyncio.Transport's methods but not its class.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) > _HIGH_WATER and self.transport is not None:
            self.transport.pause_reading()
            self.reading_paused = True
        self.readable.set()

    def eof_received(self) -> bool:
        self.eof = True
        self.readable.set()
        return False  # close the transport: HTTP does not half-close

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof = True
        self.error = exc
        self.readable.set()
        self.writable.set()

    def pause_writing(self) -> None:
        self.writing_paused = True

    def resume_writing(self) -> None:
        self.writing_paused = False
        self.writable.set()

    def take(self, max_bytes: int) -> bytes:
        if len(self.buffer) <= max_bytes:
            data = bytes(self.buffer)
            self.buffer.clear()
        else:
            data = bytes(self.buffer[:max_bytes])
            del self.buffer[:max_bytes]
        if self.reading_paused and len(self.buffer) <= _HIGH_WATER // 2:
            self.reading_paused = False
            if self.transport is not None and not self.transport.is_closing():
                self.transport.resume_reading()
        return data


class AsyncioStream(httpcore.AsyncNetworkStream):
    """One connection (plain TCP, or TLS after ``start_tls``) as httpcore reads and writes it."""

    def __init__(
        self,
        transport: asyncio.Transport,
        connection: _Connection,
        *,
        raw: asyncio.Transport | None = None,
    ) -> None:
        self._transport = transport
        self._connection = connection
        # Under TLS, the TCP transport the TLS one writes through.
        self._raw = raw

    async def read(
        self,
        max_bytes: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's stream interface
    ) -> bytes:
        connection = self._connection
        if not connection.buffer and not connection.eof:
            try:
                await connection.readable.wait(timeout)
            except TimeoutError as exc:
                raise httpcore.ReadTimeout(f"no data within {timeout} s") from exc
        if connection.buffer:
            return connection.take(max_bytes)
        error = connection.error
        if isinstance(error, ssl.SSLError):
            # As anyio's backend lets it: httpcore's pool re-raises its errors ``from None``,
            # so only the SSLError itself still tells a TLS alert (TLS 1.3 sends "certificate
            # required" after the handshake) from a dropped connection.
            raise error
        if error is not None:
            raise httpcore.ReadError(str(error) or "connection lost") from error
        return b""

    async def write(
        self,
        buffer: bytes,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's stream interface
    ) -> None:
        if not buffer:
            return
        connection = self._connection
        if connection.error is not None or self._transport.is_closing():
            raise httpcore.WriteError("the connection is closed") from connection.error
        self._transport.write(buffer)
        while connection.writing_paused:
            try:
                await connection.writable.wait(timeout)
            except TimeoutError as exc:
                raise httpcore.WriteTimeout(f"could not send within {timeout} s") from exc
            if connection.error is not None or self._transport.is_closing():
                raise httpcore.WriteError("the connection is closed") from connection.error

    async def aclose(self) -> None:
        self._transport.close()
        if self._raw is not None:
            # Closing TLS queues close_notify on the TCP transport, then waits up to 30 s for
            # the server's reply before closing it; HTTP needs no reply, so the TCP transport
            # is closed now (after sending what is queued), not left open past the loop.
            self._raw.close()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's stream interface
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                transport = await loop.start_tls(
                    self._transport,
                    self._connection,
                    ssl_context,
                    server_hostname=server_hostname,
                    ssl_handshake_timeout=timeout,
                )
        except TimeoutError as exc:
            self._transport.close()
            raise httpcore.ConnectTimeout(f"TLS handshake took over {timeout} s") from exc
        except (OSError, ssl.SSLError, ConnectionError) as exc:
            self._transport.close()
            raise httpcore.ConnectError(str(exc) or type(exc).__name__) from exc
        if transport is None:  # the peer went away during the handshake
            raise httpcore.ConnectError("the connection closed during the TLS handshake")
        self._connection.transport = transport
        return AsyncioStream(transport, self._connection, raw=self._raw or self._transport)

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":
            return bool(self._connection.buffer) or self._connection.eof
        if info == "ssl_object":
            return self._transport.get_extra_info("ssl_object")
        if info == "client_addr":
            return self._transport.get_extra_info("sockname")
        if info == "server_addr":
            return self._transport.get_extra_info("peername")
        if info == "socket":
            return self._transport.get_extra_info("socket")
        return None


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    """TCP connections through the running loop (``GuardedBackend`` chooses the address).

    No unix sockets: httpcore's base class refuses them, and no index lives on one.
    """

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's backend interface
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                transport, connection = await loop.create_connection(
                    _Connection,
                    host,
                    port,
                    local_addr=None if local_address is None else (local_address, 0),
                )
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"no connection within {timeout} s") from exc
        except OSError as exc:
            raise httpcore.ConnectError(str(exc) or type(exc).__name__) from exc
        sock: socket.socket | None = transport.get_extra_info("socket")
        if sock is not None:
            for option in socket_options or ():
                sock.setsockopt(*option)
        return AsyncioStream(transport, connection)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
