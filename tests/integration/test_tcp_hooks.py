"""TCP mode in-process, over real loopback sockets: what the health integration relies on."""

from __future__ import annotations

import asyncio
import contextlib
import socket

from rota.config.model import BackendSpec
from rota.pool import Backend, Pool, State
from rota.proxy.tcp import TcpSettings
from rota.proxy.tcp_server import TcpProxy


def dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def echo_server() -> asyncio.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            writer.write(data)
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


async def roundtrip(port: int, message: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(message)
    writer.write_eof()
    reply = await reader.read()
    writer.close()
    return reply


def test_refused_connect_reports_the_backend_and_the_client_is_served() -> None:
    async def run() -> None:
        server = await echo_server()
        live_port = server.sockets[0].getsockname()[1]
        pool = Pool(
            [
                BackendSpec("dead", "127.0.0.1", dead_port()),
                BackendSpec("live", "127.0.0.1", live_port),
            ]
        )
        errors: list[tuple[str, str]] = []

        def on_error(backend: Backend, reason: str) -> None:
            errors.append((backend.name, reason))

        proxy = TcpProxy(pool, TcpSettings(), on_backend_error=on_error)
        port = proxy.listen("127.0.0.1", 0)[0].getsockname()[1]
        try:
            assert await roundtrip(port, b"hello") == b"hello"
            assert errors == [("dead", "connection refused")]
            assert pool.backends[1].active == 0  # counted while connected, then released
        finally:
            proxy.close()
            server.close()

    asyncio.run(run())


def test_no_backend_up_closes_the_client_at_once() -> None:
    async def run() -> None:
        server = await echo_server()
        pool = Pool([BackendSpec("a", "127.0.0.1", server.sockets[0].getsockname()[1])])
        pool.set_state(pool.backends[0], State.DOWN, "test")
        errors: list[str] = []
        proxy = TcpProxy(pool, TcpSettings(), on_backend_error=lambda b, r: errors.append(r))
        port = proxy.listen("127.0.0.1", 0)[0].getsockname()[1]
        try:
            loop = asyncio.get_running_loop()
            start = loop.time()
            async with asyncio.timeout(2):
                # Closed with what it sent still unread, the kernel answers with an RST;
                # either that or a plain EOF is "closed at once".
                try:
                    reply = await roundtrip(port, b"x")
                except ConnectionResetError:
                    reply = b""
                assert reply == b""
            assert loop.time() - start < 0.5
            assert errors == []  # nothing was tried: nothing failed
            pool.set_state(pool.backends[0], State.UP, "test")
            assert await roundtrip(port, b"back") == b"back"
        finally:
            proxy.close()
            server.close()

    asyncio.run(run())


def test_a_full_server_makes_a_connection_wait_in_the_queue_then_it_is_served() -> None:
    async def run() -> None:
        server = await echo_server()
        port_b = server.sockets[0].getsockname()[1]
        pool = Pool([BackendSpec("a", "127.0.0.1", port_b, max_requests=1)])
        pool.queue_timeout = 2.0
        proxy = TcpProxy(pool, TcpSettings())
        port = proxy.listen("127.0.0.1", 0)[0].getsockname()[1]
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"first")
            assert await reader.readexactly(5) == b"first"  # holds the one slot
            waiting = asyncio.ensure_future(roundtrip(port, b"second"))
            await asyncio.sleep(0.3)
            assert not waiting.done()  # queued, not refused
            writer.close()  # the slot frees: the queued connection goes through
            async with asyncio.timeout(2):
                assert await waiting == b"second"
        finally:
            proxy.close()
            server.close()

    asyncio.run(run())


def test_the_queue_timeout_closes_a_connection_that_found_no_room() -> None:
    async def run() -> None:
        server = await echo_server()
        port_b = server.sockets[0].getsockname()[1]
        pool = Pool([BackendSpec("a", "127.0.0.1", port_b, max_requests=1)])
        pool.queue_timeout = 0.3
        proxy = TcpProxy(pool, TcpSettings())
        port = proxy.listen("127.0.0.1", 0)[0].getsockname()[1]
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"x")
            assert await reader.readexactly(1) == b"x"
            loop = asyncio.get_running_loop()
            start = loop.time()
            async with asyncio.timeout(3):
                # Closed with nothing relayed (or reset: its bytes were never read).
                with contextlib.suppress(ConnectionResetError):
                    assert await roundtrip(port, b"late") == b""
            assert loop.time() - start >= 0.25
            writer.close()
        finally:
            proxy.close()
            server.close()

    asyncio.run(run())
