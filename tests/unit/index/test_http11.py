"""HTTP/1.1 as the guarded transport speaks it (``service.index.http11``), byte for byte.

A scripted server on loopback answers each request with bytes a test writes (framings, broken
and cut responses, keep-alive and not) and counts the connections it accepted, so that reuse
is observed from the server's side. Requests go through httpx over ``make_guarded_transport``,
the transport every index fetch uses.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from service.index.http11 import MAX_HEAD_BYTES, LeanHTTP11Connection
from service.index.outbound import make_guarded_transport

Answer = Callable[[bytes], bytes | None]


class ScriptedServer:
    """Reads each request head and writes ``answer(head)``; ``None`` closes the connection
    without a word. ``close_after`` closes once the answer is written."""

    def __init__(self, answer: Answer, *, close_after: bool = False) -> None:
        self.answer = answer
        self.close_after = close_after
        self.connections = 0
        self.requests: list[bytes] = []
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> ScriptedServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    @property
    def url(self) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                self.requests.append(head)
                answer = self.answer(head)
                if answer is None:
                    return
                writer.write(answer)
                await writer.drain()
                if self.close_after:
                    return
        finally:
            writer.close()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = make_guarded_transport([], http2=False)
    async with httpx.AsyncClient(transport=transport, timeout=5.0) as http:
        yield http


def _ok(body: bytes, *extra: bytes) -> bytes:
    head = [b"HTTP/1.1 200 OK", b"Content-Length: %d" % len(body), *extra]
    return b"\r\n".join(head) + b"\r\n\r\n" + body


async def test_keep_alive_reuses_one_connection(client: httpx.AsyncClient) -> None:
    """Three GETs in a row over one connection, each with its own body."""
    async with ScriptedServer(lambda head: _ok(head.split(b" ")[1])) as server:
        bodies = [(await client.get(f"{server.url}/{n}")).content for n in range(3)]
    assert bodies == [b"/0", b"/1", b"/2"]
    assert server.connections == 1


async def test_chunked_body_is_joined_and_the_connection_reused(
    client: httpx.AsyncClient,
) -> None:
    """Chunked framing (with an extension and a trailer) gives the body, then reuse."""
    chunked = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n"
    )
    async with ScriptedServer(lambda _: chunked) as server:
        first = await client.get(f"{server.url}/a")
        second = await client.get(f"{server.url}/b")
    assert (first.content, second.content) == (b"hello world", b"hello world")
    assert server.connections == 1


async def test_a_body_without_framing_runs_to_the_close(client: httpx.AsyncClient) -> None:
    """No Content-Length and no chunks: the body ends when the server closes, and the next
    request dials again."""
    answer = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n" + b"x" * 200_000
    async with ScriptedServer(lambda _: answer, close_after=True) as server:
        first = await client.get(f"{server.url}/a")
        second = await client.get(f"{server.url}/b")
    assert len(first.content) == len(second.content) == 200_000
    assert server.connections == 2


@pytest.mark.parametrize(
    ("method", "answer"),
    [
        ("HEAD", b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n"),
        ("GET", b'HTTP/1.1 304 Not Modified\r\nETag: "e"\r\nContent-Length: 1234\r\n\r\n'),
        ("GET", b"HTTP/1.1 204 No Content\r\n\r\n"),
    ],
    ids=["head", "304", "204"],
)
async def test_responses_without_a_body_leave_the_connection_reusable(
    client: httpx.AsyncClient, method: str, answer: bytes
) -> None:
    """HEAD, 304 and 204 carry no body whatever their headers say; the next request reuses."""
    async with ScriptedServer(lambda _: answer) as server:
        for _ in range(2):
            response = await client.request(method, f"{server.url}/x")
            assert response.content == b""
    assert server.connections == 1


async def test_informational_responses_are_skipped(client: httpx.AsyncClient) -> None:
    """A 100 and a 103 before the final response: the client sees the 200 and its headers."""
    answer = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n" + _ok(
        b"done", b"X-Final: yes"
    )
    async with ScriptedServer(lambda _: answer) as server:
        response = await client.get(f"{server.url}/x")
    assert (response.status_code, response.content) == (200, b"done")
    assert response.headers["x-final"] == "yes"
    assert "link" not in response.headers


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
        b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
        _ok(b"ok") + b"HTTP/1.1 500 Oops\r\nX-Second: 1\r\nContent-Length: 0\r\n\r\n",
        _ok(b"ok") + b"garbage",
    ],
    ids=["connection-close", "http-1.0", "second-response", "garbage-after"],
)
async def test_a_connection_that_cannot_be_reused_is_not(
    client: httpx.AsyncClient, answer: bytes
) -> None:
    """Connection: close, HTTP/1.0 without keep-alive, or bytes after the response: the body
    is served and the next request dials a new connection."""
    async with ScriptedServer(lambda _: answer) as server:
        for _ in range(2):
            response = await client.get(f"{server.url}/x")
            assert (response.status_code, response.content) == (200, b"ok")
            assert "x-second" not in response.headers
    assert server.connections == 2


async def test_reason_headers_and_version_come_through(client: httpx.AsyncClient) -> None:
    """Repeated headers stay separate, in order; the reason phrase and version are kept."""
    answer = (
        b"HTTP/1.1 404 Gone Fishing\r\n"
        b"Set-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: 0\r\n\r\n"
    )
    async with ScriptedServer(lambda _: answer) as server:
        response = await client.get(f"{server.url}/x")
    assert (response.status_code, response.reason_phrase) == (404, "Gone Fishing")
    assert response.http_version == "HTTP/1.1"
    assert response.headers.get_list("set-cookie") == ["a=1", "b=2"]


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (None, "without sending a response"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf", "complete message body"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel", "complete message"),
        (b"HTTP/1.1 2OO OK\r\n\r\n", "malformed HTTP response"),
        (b"NOTHTTP\r\n\r\n", "malformed HTTP response"),
        (
            b"HTTP/1.1 200 OK\r\n" + b"X-Big: " + b"y" * (3 * MAX_HEAD_BYTES) + b"\r\n\r\n",
            f"exceed {MAX_HEAD_BYTES} bytes",
        ),
    ],
    ids=["hang-up", "short-body", "short-chunks", "bad-status", "not-http", "huge-head"],
)
async def test_broken_responses_are_remote_protocol_errors(
    client: httpx.AsyncClient, answer: bytes | None, message: str
) -> None:
    """What the server cut short or garbled is httpx's RemoteProtocolError, and the
    connection is not used again."""
    async with ScriptedServer(lambda _: answer, close_after=True) as server:
        with pytest.raises(httpx.RemoteProtocolError, match=message):
            await client.get(f"{server.url}/x")
        pool = client._transport._routes[(None, None)]._pool  # type: ignore[attr-defined]
        assert all(c.is_closed() for c in pool.connections)


async def test_a_header_that_would_split_the_request_is_refused(
    client: httpx.AsyncClient,
) -> None:
    """A line break in a header value (an ETag echoed from a hostile server, say) never
    reaches the wire."""
    async with ScriptedServer(lambda _: _ok(b"ok")) as server:
        with pytest.raises(httpx.LocalProtocolError, match="illegal header"):
            await client.get(f"{server.url}/x", headers={"If-None-Match": '"a"\rInjected: 1'})
    assert server.requests == []


async def test_a_body_of_undeclared_length_is_refused(client: httpx.AsyncClient) -> None:
    """A streamed upload (chunked) is not something an index fetch sends: refused, not cut."""

    async def stream() -> AsyncIterator[bytes]:
        yield b"data"

    async with ScriptedServer(lambda _: _ok(b"ok")) as server:
        with pytest.raises(httpx.LocalProtocolError, match="declared length"):
            await client.post(f"{server.url}/x", content=stream())
        response = await client.post(f"{server.url}/x", content=b"four")
    assert response.content == b"ok"
    assert server.requests[0].startswith(b"POST /x HTTP/1.1\r\n")


async def test_the_request_is_one_line_and_its_headers(client: httpx.AsyncClient) -> None:
    """What goes out: the request line with the URL's target, Host, and the given headers."""
    async with ScriptedServer(lambda _: _ok(b"")) as server:
        await client.get(f"{server.url}/a%20b?q=1", headers={"Range": "bytes=-10"})
    head = server.requests[0]
    assert head.startswith(b"GET /a%20b?q=1 HTTP/1.1\r\n")
    assert b"\r\nHost: 127.0.0.1:" in head
    assert b"\r\nRange: bytes=-10\r\n" in head


async def test_a_cancelled_read_closes_the_connection(client: httpx.AsyncClient) -> None:
    """A request cancelled while its response trickles leaves no half-read connection in the
    pool: the next request dials anew and gets its own answer."""
    release = asyncio.Event()

    def answer(head: bytes) -> bytes:
        return _ok(b"second") if release.is_set() else b"HTTP/1.1 200 OK\r\nContent-Length: 9"

    async with ScriptedServer(answer) as server:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.3):
                await client.get(f"{server.url}/slow")
        release.set()
        assert (await client.get(f"{server.url}/next")).content == b"second"
    assert server.connections == 2


def test_an_idle_connection_the_server_closed_has_expired() -> None:
    """``has_expired`` asks the stream whether the server hung up (or sent anything) while
    the connection was idle, as httpcore's own connection does."""

    class Stream:
        readable = False

        def get_extra_info(self, info: str) -> object:
            return self.readable if info == "is_readable" else None

    connection = LeanHTTP11Connection(None, Stream(), keepalive_expiry=60)  # type: ignore[arg-type]
    connection._state = type(connection._state).IDLE
    assert not connection.has_expired()
    Stream.readable = True
    assert connection.has_expired()
