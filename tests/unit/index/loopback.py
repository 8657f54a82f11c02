"""A purpose-built loopback HTTP server for edge cases the index fixture does not produce.

``tests.indexserver`` serves well-formed indexes built from specs. Some client behaviours need
bytes no well-behaved index would send: hand-made wheels (huge central directories, members
past the tail, broken archives), servers that ignore ``Range``, gzip bombs, bodies that trickle.
``StaticServer`` serves exactly the bytes and headers a test registers, over real HTTP/1.1
(or HTTPS, given a server ``ssl.SSLContext``).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import NamedTuple
from urllib.parse import urlsplit

__all__ = ["Served", "StaticServer", "wait_until"]


class Served(NamedTuple):
    """One request the server answered: path, status and the request's (lower-cased) headers."""

    path: str
    status: int
    headers: Mapping[str, str]


@dataclass(frozen=True)
class _Resource:
    body: bytes
    status: int
    headers: Mapping[str, str]
    ranges: bool
    trickle: float
    chunk: int


@dataclass
class _State:
    resources: dict[str, _Resource] = field(default_factory=dict)
    served: list[Served] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # TLS only: each connection's client certificate subject (None: none presented), and
    # the handshakes that failed.
    client_certificates: list[str | None] = field(default_factory=list)
    handshake_failures: list[str] = field(default_factory=list)


def _linger(connection: socket.socket) -> None:
    """Close as web servers do after a failed handshake: the alert already written is sent,
    then what the client sent meanwhile is read, so that closing sends no reset (which would
    make the client lose the alert)."""
    try:
        connection.shutdown(socket.SHUT_WR)
        connection.settimeout(1.0)
        while connection.recv(65536):
            pass
    except OSError:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: _State
    tls: ssl.SSLContext | None = None

    def finish_request(self, request: socket.socket, client_address: object) -> None:  # type: ignore[override]
        if self.tls is None:
            super().finish_request(request, client_address)
            return
        wrapped = self.tls.wrap_socket(request, server_side=True, do_handshake_on_connect=False)
        try:
            wrapped.do_handshake()
        except (ssl.SSLError, OSError) as exc:
            with self.state.lock:
                self.state.handshake_failures.append(str(exc))
            _linger(wrapped)
            wrapped.close()
            return
        with wrapped:
            certificate = wrapped.getpeercert()
            subject = str(certificate) if certificate else None
            with self.state.lock:
                self.state.client_certificates.append(subject)
            super().finish_request(wrapped, client_address)


def _byte_range(header: str, size: int) -> tuple[int, int] | None:
    unit, _, spec = header.partition("=")
    first, _, last = spec.partition("-")
    if unit.strip() != "bytes" or "," in spec:
        return None
    if not first:
        return max(0, size - int(last)), size - 1
    return int(first), min(int(last) if last else size - 1, size - 1)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the log is ``StaticServer.served``."""

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        headers = {key.lower(): value for key, value in self.headers.items()}
        with self.server.state.lock:
            resource = self.server.state.resources.get(path)
        status, body, extra = 404, b"not found", {"Content-Type": "text/plain"}
        if resource is not None:
            status, body, extra = resource.status, resource.body, dict(resource.headers)
            span = _byte_range(headers.get("range", ""), len(body)) if resource.ranges else None
            if span is not None and status == 200:
                first, last = span
                extra["Content-Range"] = f"bytes {first}-{last}/{len(body)}"
                status, body = 206, body[first : last + 1]
        with self.server.state.lock:
            self.server.state.served.append(Served(path, status, headers))
        try:
            self.send_response(status)
            for key, value in extra.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if resource is not None and resource.trickle:
                for start in range(0, len(body), resource.chunk):
                    self.wfile.write(body[start : start + resource.chunk])
                    self.wfile.flush()
                    time.sleep(resource.trickle)
            else:
                self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


class StaticServer:
    """Serves registered bytes at registered paths on 127.0.0.1; a context manager."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.state = _State()
        self._httpd.tls = tls
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def __enter__(self) -> StaticServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        scheme = "http" if self._httpd.tls is None else "https"
        return f"{scheme}://127.0.0.1:{self.port}"

    def add(
        self,
        path: str,
        body: bytes,
        *,
        content_type: str = "application/octet-stream",
        headers: Mapping[str, str] | None = None,
        status: int = 200,
        ranges: bool = True,
        trickle: float = 0.0,
        chunk: int = 1024,
    ) -> str:
        """Serve ``body`` at ``path``; returns its URL.

        ``ranges=False`` ignores ``Range`` (answers 200 with everything). ``trickle`` sleeps
        that long after each ``chunk`` bytes of the body.
        """
        resource = _Resource(
            body, status, {"Content-Type": content_type, **(headers or {})}, ranges, trickle, chunk
        )
        with self._httpd.state.lock:
            self._httpd.state.resources[path] = resource
        return self.base_url + path

    @property
    def served(self) -> list[Served]:
        with self._httpd.state.lock:
            return list(self._httpd.state.served)

    @property
    def client_certificates(self) -> list[str | None]:
        """Per TLS connection: the client certificate's subject, or None when none was shown."""
        with self._httpd.state.lock:
            return list(self._httpd.state.client_certificates)

    @property
    def handshake_failures(self) -> list[str]:
        with self._httpd.state.lock:
            return list(self._httpd.state.handshake_failures)


async def wait_until(condition: Callable[[], bool], within: float = 3.0) -> None:
    """Wait for ``condition``: servers log a request only after sending the response."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)
