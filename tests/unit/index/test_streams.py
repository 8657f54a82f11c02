"""The asyncio network backend under httpcore: reads, writes, timeouts, hang-ups and TLS.

Every peer is a real loopback server (``asyncio.start_server``, with a ``trustme`` certificate
for TLS); each behaviour is checked on the standard loop and on uvloop, which ``resolvd serve``
runs on.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import httpcore
import pytest
import trustme
import uvloop

from service.index.streams import AsyncioBackend

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


Run = Callable[[Callable[[], Awaitable[None]]], None]


@pytest.fixture(params=["asyncio", "uvloop"])
def run(request: pytest.FixtureRequest) -> Run:
    """Runs a test's body on a new loop of the kind the parameter names."""
    factory = uvloop.new_event_loop if request.param == "uvloop" else asyncio.new_event_loop

    def run_body(body: Callable[[], Awaitable[None]]) -> None:
        async def main() -> None:
            await body()

        with asyncio.Runner(loop_factory=factory) as runner:
            runner.run(main())

    return run_body


@asynccontextmanager
async def serving(handler: Handler, *, tls: ssl.SSLContext | None = None) -> AsyncIterator[int]:
    """A loopback server running ``handler`` per connection; yields its port."""
    tasks: set[asyncio.Task[None]] = set()

    async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        try:
            await handler(reader, writer)
        finally:
            writer.close()

    server = await asyncio.start_server(run, "127.0.0.1", 0, ssl=tls)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for task in tasks:
            task.cancel()
        await server.wait_closed()


async def _echo_line_then_hang_up(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    line = await reader.readline()
    writer.write(b"got " + line)
    await writer.drain()


async def _silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await asyncio.sleep(30)


class TestReading:
    def test_a_read_returns_what_arrived_then_an_empty_read_at_the_end(self, run: Run) -> None:
        """Bytes come back at most ``max_bytes`` at a time, and ``b""`` once the server hangs up."""

        async def body() -> None:
            async with serving(_echo_line_then_hang_up) as port:
                stream = await AsyncioBackend().connect_tcp("127.0.0.1", port, timeout=5)
                await stream.write(b"hello\n", timeout=5)
                received = b""
                while chunk := await stream.read(3, timeout=5):
                    assert len(chunk) <= 3
                    received += chunk
                await stream.aclose()
            assert received == b"got hello\n"

        run(body)

    def test_a_read_with_nothing_to_read_times_out(self, run: Run) -> None:
        """A server that says nothing gives ``ReadTimeout`` after the read's timeout."""

        async def body() -> None:
            async with serving(_silent) as port:
                stream = await AsyncioBackend().connect_tcp("127.0.0.1", port, timeout=5)
                with pytest.raises(httpcore.ReadTimeout):
                    await stream.read(1024, timeout=0.05)
                await stream.aclose()

        run(body)

    def test_a_slow_reader_gets_every_byte_of_a_large_body(self, run: Run) -> None:
        """Reading pauses while much is buffered and resumes as it drains: nothing is lost."""

        async def body() -> None:
            body = bytes(range(256)) * (8 * 1024)  # 2 MiB, eight times the buffer's high water

            async def send_body(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                writer.write(body)
                await writer.drain()

            async with serving(send_body) as port:
                stream = await AsyncioBackend().connect_tcp("127.0.0.1", port, timeout=5)
                await asyncio.sleep(0.1)  # let the server fill the buffer before reading starts
                parts = []
                while chunk := await stream.read(64 * 1024, timeout=5):
                    parts.append(chunk)
                    await asyncio.sleep(0)
                await stream.aclose()
            assert b"".join(parts) == body

        run(body)


class TestIdleConnections:
    def test_an_open_idle_connection_is_not_readable(self, run: Run) -> None:
        async def body() -> None:
            async with serving(_silent) as port:
                stream = await AsyncioBackend().connect_tcp("127.0.0.1", port, timeout=5)
                await asyncio.sleep(0.05)
                assert stream.get_extra_info("is_readable") is False
                await stream.aclose()

        run(body)

    def test_a_connection_the_server_closed_is_readable(self, run: Run) -> None:
        """httpcore retires a kept-alive connection that reads as readable while idle."""

        async def body() -> None:

            async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                return

            async with serving(hang_up) as port:
                stream = await AsyncioBackend().connect_tcp("127.0.0.1", port, timeout=5)
                for _ in range(100):
                    if stream.get_extra_info("is_readable"):
                        break
                    await asyncio.sleep(0.01)
                assert stream.get_extra_info("is_readable") is True
                assert await stream.read(10, timeout=1) == b""
                await stream.aclose()

        run(body)

    def test_writing_to_a_closed_connection_fails(self, run: Run) -> None:
        async def body() -> None:
            async with serving(_silent) as port:
                stream = await AsyncioBackend().connect_tcp("127.0.0.1", port, timeout=5)
                await stream.aclose()
                with pytest.raises(httpcore.WriteError):
                    await stream.write(b"GET / HTTP/1.1\r\n\r\n", timeout=1)

        run(body)

    def test_the_addresses_are_those_of_the_connection(self, run: Run) -> None:
        async def body() -> None:
            async with serving(_silent) as port:
                stream = await AsyncioBackend().connect_tcp("127.0.0.1", port, timeout=5)
                assert stream.get_extra_info("server_addr") == ("127.0.0.1", port)
                assert stream.get_extra_info("client_addr")[0] == "127.0.0.1"
                assert stream.get_extra_info("ssl_object") is None
                await stream.aclose()

        run(body)


class TestConnecting:
    def test_a_refused_connection_is_a_connect_error(self, run: Run) -> None:
        async def body() -> None:
            async with serving(_silent) as port:
                pass  # the port is closed again
            with pytest.raises(httpcore.ConnectError) as caught:
                await AsyncioBackend().connect_tcp("127.0.0.1", port, timeout=5)
            assert isinstance(caught.value.__cause__, OSError)

        run(body)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def _server_tls(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(context)
    context.set_alpn_protocols(["h2", "http/1.1"])
    return context


class TestTLS:
    async def test_tls_carries_bytes_and_reports_the_negotiated_protocol(
        self, ca: trustme.CA
    ) -> None:
        """After ``start_tls`` the stream reads and writes through TLS; ALPN is readable."""
        client = ssl.create_default_context()
        ca.configure_trust(client)
        client.set_alpn_protocols(["h2", "http/1.1"])
        async with serving(_echo_line_then_hang_up, tls=_server_tls(ca)) as port:
            plain = await AsyncioBackend().connect_tcp("127.0.0.1", port, timeout=5)
            stream = await plain.start_tls(client, server_hostname="localhost", timeout=5)
            assert stream.get_extra_info("ssl_object").selected_alpn_protocol() == "h2"
            await stream.write(b"secret\n", timeout=5)
            received = b""
            while chunk := await stream.read(1024, timeout=5):
                received += chunk
            await stream.aclose()
        assert received == b"got secret\n"

    async def test_an_untrusted_certificate_fails_the_handshake_with_its_cause(
        self, ca: trustme.CA
    ) -> None:
        """The ``ConnectError`` is chained to the verification error (which names the fix)."""
        async with serving(_silent, tls=_server_tls(ca)) as port:
            plain = await AsyncioBackend().connect_tcp("127.0.0.1", port, timeout=5)
            with pytest.raises(httpcore.ConnectError) as caught:
                await plain.start_tls(
                    ssl.create_default_context(), server_hostname="localhost", timeout=5
                )
        assert isinstance(caught.value.__cause__, ssl.SSLCertVerificationError)
