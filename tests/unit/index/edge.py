"""Loopback stand-ins for a company network: a test CA, a forward proxy, a listener that counts.

``trustme`` makes the CA and its certificates (for ``127.0.0.1``, ``localhost`` and names under
``.invalid`` that only the proxy can resolve). ``ForwardProxy`` is a real HTTP proxy: CONNECT
tunnels for https targets and absolute-form requests for http ones, both piped byte for byte.
``Listener`` accepts connections and counts them, to show that nothing reached it.
``HTTP2Server`` serves static bytes over HTTP/2 (TLS with ALPN ``h2``), counting connections.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ssl
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Self
from urllib.parse import urlsplit

import h2.config
import h2.connection
import h2.events
import trustme

__all__ = ["HOSTS", "ForwardProxy", "HTTP2Server", "Listener", "server_context", "write_ca"]

# The names every test certificate covers.
HOSTS = ("127.0.0.1", "localhost", "index.invalid", "files.invalid")


def server_context(
    ca: trustme.CA, *, client_certificates: ssl.VerifyMode = ssl.CERT_NONE
) -> ssl.SSLContext:
    """A server context with a certificate from ``ca``; it asks for client certificates
    signed by ``ca`` when ``client_certificates`` is ``CERT_OPTIONAL`` or ``CERT_REQUIRED``."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*HOSTS).configure_cert(context)
    if client_certificates != ssl.CERT_NONE:
        ca.configure_trust(context)
        context.verify_mode = client_certificates
    return context


def write_ca(ca: trustme.CA, directory: Path) -> str:
    """The CA's certificate as a PEM file (what SSL_CERT_FILE or ca_file names)."""
    path = directory / "test-ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


class _AsyncServer:
    """An asyncio server on 127.0.0.1 for ``async with``; subclasses define ``_serve``."""

    _ssl: ssl.SSLContext | None = None

    def __init__(self) -> None:
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self._ssl)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        await self._server.wait_closed()

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(64 * 1024):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(ConnectionError, OSError, RuntimeError):
            writer.close()


class ForwardProxy(_AsyncServer):
    """An HTTP forward proxy on 127.0.0.1, started with ``async with``.

    ``hosts`` maps names only the proxy resolves (``index.invalid``) to addresses: a request
    that reaches such a host went through the proxy. ``credentials`` (user, password) makes it
    answer 407 without a matching ``Proxy-Authorization``. ``opened`` logs the first request
    line of each client connection (``CONNECT host:port`` or ``GET http://…``).
    """

    def __init__(
        self,
        hosts: Mapping[str, str] | None = None,
        credentials: tuple[str, str] | None = None,
    ) -> None:
        super().__init__()
        self._hosts = dict(hosts or {})
        self._expected = (
            None
            if credentials is None
            else "Basic " + base64.b64encode(":".join(credentials).encode()).decode()
        )
        self.opened: list[str] = []

    def url(self, credentials: str = "") -> str:
        """``http://[credentials@]127.0.0.1:port``."""
        userinfo = f"{credentials}@" if credentials else ""
        return f"http://{userinfo}127.0.0.1:{self.port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            await self._relay(reader, writer)
        except (ConnectionError, OSError, asyncio.IncompleteReadError):
            pass
        finally:
            self._writers.discard(writer)
            with contextlib.suppress(ConnectionError, OSError, RuntimeError):
                writer.close()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        request_line, *header_lines = head.decode("latin-1").split("\r\n")
        method, target, _version = request_line.split(" ", 2)
        self.opened.append(f"{method} {target}")
        headers = {
            name.strip().lower(): value.strip()
            for name, _, value in (line.partition(":") for line in header_lines if line)
        }
        if self._expected is not None and headers.get("proxy-authorization") != self._expected:
            writer.write(b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
            return
        if method == "CONNECT":
            host, _, port = target.rpartition(":")
            port_number = int(port)
        else:
            parts = urlsplit(target)
            host, port_number = parts.hostname or "", parts.port or 80
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(
                self._hosts.get(host, host), port_number
            )
        except OSError:
            writer.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
            return
        self._writers.add(upstream_writer)
        if method == "CONNECT":
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await writer.drain()
        else:
            upstream_writer.write(head)
        try:
            await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))
        finally:
            self._writers.discard(upstream_writer)


class Listener(_AsyncServer):
    """A TCP listener on 127.0.0.1 that accepts, counts and closes connections."""

    def __init__(self) -> None:
        super().__init__()
        self.connections = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        writer.close()


class HTTP2Server(_AsyncServer):
    """Static resources over HTTP/2 on 127.0.0.1 (TLS, ALPN ``h2`` only), with ``async with``.

    ``resources`` maps a path to (body, content type); ``connections`` counts TCP connections
    and ``requests`` logs each stream's path.
    """

    def __init__(self, ca: trustme.CA, resources: Mapping[str, tuple[bytes, str]]) -> None:
        super().__init__()
        self._ssl = server_context(ca)
        self._ssl.set_alpn_protocols(["h2"])
        self._resources = dict(resources)
        self.connections = 0
        self.requests: list[str] = []

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        connection = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
        )
        connection.initiate_connection()
        writer.write(connection.data_to_send())
        try:
            while data := await reader.read(64 * 1024):
                for event in connection.receive_data(data):
                    if isinstance(event, h2.events.RequestReceived):
                        self._answer(connection, event)
                    elif isinstance(event, h2.events.ConnectionTerminated):
                        return
                writer.write(connection.data_to_send())
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            with contextlib.suppress(ConnectionError, OSError, RuntimeError):
                writer.close()

    def _answer(
        self, connection: h2.connection.H2Connection, event: h2.events.RequestReceived
    ) -> None:
        path = str(dict(event.headers or [])[":path"])
        self.requests.append(path)
        body, media = self._resources.get(path, (b"not found", "text/plain"))
        status = "200" if path in self._resources else "404"
        stream = event.stream_id
        assert stream is not None
        connection.send_headers(
            stream,
            [(":status", status), ("content-type", media), ("content-length", str(len(body)))],
        )
        # Small bodies only: within one flow-control window, in frames of the default size.
        frames = [body[start : start + 16384] for start in range(0, len(body), 16384)] or [b""]
        for number, frame in enumerate(frames):
            connection.send_data(stream, frame, end_stream=number == len(frames) - 1)
