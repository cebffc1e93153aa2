"""The listener's two accept paths (rota.proxy.listener): far below the cap uvloop's own
server accepts (libuv's accept loop, the cheaper one); within `headroom` of the cap rota's
own loop takes over, which stops at the cap exactly; well below it again the server comes
back. Real sockets on 127.0.0.1, uvloop, a listener with a small cap and headroom."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import Any

import pytest

from rota.proxy.accepted import connect
from rota.proxy.listener import Listener, bind

uvloop = pytest.importorskip("uvloop")

CAP = 30
HEADROOM = 10  # the fast path while fewer than 20 are open; back to it below 10


class Held(asyncio.Protocol):
    """A server-side connection that stays open until the test closes it."""

    def __init__(self, opened: list[Held], release: Callable[[], None]) -> None:
        self.opened = opened
        self.release = release
        self.transport: Any = None  # uvloop's transports are not asyncio.Transport's

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.opened.append(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.opened.remove(self)
        self.release()


async def settle(opened: list[Held], count: int) -> None:
    """Let the loop run until `count` connections are open (bounded: 5 s)."""
    for _ in range(500):
        if len(opened) >= count:
            break
        await asyncio.sleep(0.01)
    for _ in range(5):  # and a little more, for anything the listener would still take
        await asyncio.sleep(0.01)


async def paths() -> None:
    loop = asyncio.get_running_loop()
    sockets = bind("127.0.0.1", 0, backlog=64)
    port = sockets[0].getsockname()[1]
    opened: list[Held] = []
    listener: Listener

    def release() -> None:
        listener.release()

    def fast() -> asyncio.BaseProtocol:
        return Held(opened, release)

    def accepted(sock: socket.socket, peer: object) -> None:
        connect(loop, Held(opened, release), sock, release)

    listener = Listener(loop, sockets, accepted, CAP, fast=fast, headroom=HEADROOM)
    listener.start()
    clients: list[socket.socket] = []
    try:
        assert listener.fast
        seen: list[tuple[int, bool]] = []
        for _ in range(CAP + 8):
            clients.append(socket.create_connection(("127.0.0.1", port), timeout=5))
            await settle(opened, min(len(clients), CAP))
            seen.append((len(opened), listener.fast))
        # Served by the server below 20 open, by rota's loop from there, never past the cap.
        assert [n for n, _ in seen] == [min(i, CAP) for i in range(1, CAP + 9)]
        assert all(is_fast for n, is_fast in seen if n < CAP - HEADROOM)
        assert not any(is_fast for n, is_fast in seen if n >= CAP - HEADROOM)
        assert listener.active == CAP and not listener.accepting
        # Close 25: the 8 waiting in the backlog come in, and below 10 open the server
        # is back.
        for held in opened[:25]:
            assert held.transport is not None
            held.transport.close()
        await settle(opened, CAP - 25 + 8)
        assert len(opened) == CAP - 25 + 8 == listener.active
        assert listener.fast
        # And it still serves.
        clients.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        await settle(opened, CAP - 25 + 9)
        assert len(opened) == CAP - 25 + 9
    finally:
        listener.close()
        for client in clients:
            client.close()
        for held in list(opened):
            assert held.transport is not None
            held.transport.abort()
        await asyncio.sleep(0.01)


def test_the_server_accepts_far_below_the_cap_and_rotas_loop_near_it() -> None:
    runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    with runner:
        runner.run(paths())


def test_without_a_factory_only_rotas_loop_accepts() -> None:
    async def plain() -> None:
        loop = asyncio.get_running_loop()
        sockets = bind("127.0.0.1", 0)
        listener = Listener(loop, sockets, lambda s, p: s.close(), CAP)
        listener.start()
        try:
            assert listener.accepting and not listener.fast
        finally:
            listener.close()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(plain())
