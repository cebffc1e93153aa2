"""TCP mode's back-pressure at the moments the relay is not yet joined, in one process.

A flaky run of the 1 GiB echo test (test_tcp_mode.py) saw rota's RSS grow by 230 MiB: a
pause was lost around `Tunnel._join`. These tests force each ordering with real sockets on
127.0.0.1, on both event loops, and count the bytes rota holds.

- Before the backend is connected, a client that sends at full speed must be read no
  further than one read: neither loop honours a `pause_reading` made in `connection_made`.
- Bytes written to the backend at the join can fill its write buffer: the client must stay
  paused until that buffer drains.
- A backend that speaks first can fill the client's write buffer before the join: the
  backend must be paused from the join on.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Iterator

import pytest
import uvloop

from rota.config.model import BackendSpec
from rota.pool import Pool
from rota.proxy.tcp import TcpSettings, Tunnel
from rota.proxy.tcp_relay import Side
from rota.proxy.tcp_server import TcpProxy

HIGH = 64 * 1024
BLOCK = bytes(64 * 1024)
ONE_READ = 256 * 1024  # uvloop reads up to 256 KiB at once, asyncio 64 KiB
LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "uvloop": uvloop.new_event_loop,
    "asyncio": asyncio.new_event_loop,
}


@pytest.fixture(params=sorted(LOOPS))
def loop(request: pytest.FixtureRequest) -> Iterator[asyncio.AbstractEventLoop]:
    new_loop = LOOPS[request.param]()
    yield new_loop
    new_loop.close()


def small_buffers(sock: socket.socket) -> socket.socket:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    return sock


def pair(small: bool = False) -> tuple[socket.socket, socket.socket]:
    """Two connected TCP sockets on 127.0.0.1: (ours, rota's). `small` for a peer that
    never reads: small kernel buffers, so that what rota writes to it backs up in rota."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        ours = socket.socket()
        if small:
            small_buffers(ours)
        ours.connect(listener.getsockname())
        theirs, _ = listener.accept()
    if small:
        small_buffers(theirs)
    ours.setblocking(False)
    theirs.setblocking(False)
    return ours, theirs


async def push(sock: socket.socket, total: int, rounds: int = 2000) -> int:
    """Send up to `total` bytes without blocking, letting the loop run between tries;
    returns how many the kernel took (bounded in tries, not in time)."""
    sent = 0
    for _ in range(rounds):
        if sent >= total:
            break
        try:
            sent += sock.send(BLOCK)
        except BlockingIOError:
            await asyncio.sleep(0)
    return sent


async def settle(rounds: int = 200) -> None:
    """Let the loop relay what is in flight on loopback (a few iterations are enough)."""
    for _ in range(rounds):
        await asyncio.sleep(0)


def tunnel_on(loop: asyncio.AbstractEventLoop) -> Tunnel:
    pool = Pool([BackendSpec("a", "127.0.0.1", 9)])
    settings = TcpSettings(high_water=HIGH)
    return Tunnel(TcpProxy(pool, settings, loop=loop))


async def client_side(tunnel: Tunnel, sock: socket.socket) -> None:
    loop = asyncio.get_running_loop()
    await loop.connect_accepted_socket(lambda: tunnel.client, sock)


async def backend_side(tunnel: Tunnel, sock: socket.socket) -> Side:
    """A backend connection joined as `Tunnel._connect` joins it: to the client first."""
    upstream = Side(tunnel)
    upstream.peer, upstream.out = tunnel.client, tunnel.client.transport
    await asyncio.get_running_loop().create_connection(lambda: upstream, sock=sock)
    return upstream


def test_a_client_is_not_read_ahead_while_the_backend_connects(
    loop: asyncio.AbstractEventLoop,
) -> None:
    async def run() -> tuple[int, int]:
        tunnel = tunnel_on(loop)
        ours, theirs = pair()
        await client_side(tunnel, theirs)
        sent = await push(ours, 16 << 20)
        pending = len(tunnel.client.pending)
        tunnel.abort()
        ours.close()
        await asyncio.sleep(0)
        return sent, pending

    sent, pending = loop.run_until_complete(run())
    assert pending <= ONE_READ  # was every byte sent (16 MiB): held in memory, unbounded
    assert sent < 16 << 20


def test_the_client_stays_paused_when_its_early_bytes_fill_the_backend(
    loop: asyncio.AbstractEventLoop,
) -> None:
    async def run() -> tuple[bool, int]:
        tunnel = tunnel_on(loop)
        client_ours, client_theirs = pair()
        backend_ours, backend_theirs = pair(small=True)  # the backend never reads
        await client_side(tunnel, client_theirs)
        await push(client_ours, ONE_READ)
        # Early bytes beyond what the backend's socket takes (forced: one read is less).
        tunnel.client.pending += bytes(4 * HIGH)
        upstream = await backend_side(tunnel, backend_theirs)
        tunnel._join(tunnel.attempt or tunnel.proxy.pool.backends[0], upstream)
        reading = tunnel.client.transport.is_reading()
        await push(client_ours, 16 << 20)
        held = upstream.transport.get_write_buffer_size()
        tunnel.abort()
        for s in (client_ours, backend_ours):
            s.close()
        await asyncio.sleep(0)
        return reading, held

    reading, held = loop.run_until_complete(run())
    assert not reading  # resumed by the join although the backend's buffer was full
    assert held <= 4 * HIGH + 2 * ONE_READ


def test_a_backend_that_speaks_first_is_paused_at_the_join(
    loop: asyncio.AbstractEventLoop,
) -> None:
    async def run() -> tuple[bool, int]:
        tunnel = tunnel_on(loop)
        client_ours, client_theirs = pair(small=True)  # the client never reads
        backend_ours, backend_theirs = pair()
        await client_side(tunnel, client_theirs)
        upstream = await backend_side(tunnel, backend_theirs)
        # The backend greets with more than the client's buffer holds, before the join.
        await push(backend_ours, 8 * HIGH)
        await settle()
        tunnel._join(tunnel.proxy.pool.backends[0], upstream)
        reading = upstream.transport.is_reading()
        await push(backend_ours, 16 << 20)
        held = tunnel.client.transport.get_write_buffer_size()
        tunnel.abort()
        for s in (client_ours, backend_ours):
            s.close()
        await asyncio.sleep(0)
        return reading, held

    reading, held = loop.run_until_complete(run())
    assert not reading  # the pause came before the join and was lost
    assert held <= 8 * HIGH + 2 * ONE_READ
