"""One HTTP listener's data plane in one worker: serve, sweep deadlines, drain on stop."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable
from functools import partial
from typing import cast

from rota.proxy.client import ClientConnection, Phase
from rota.proxy.context import ProxyContext
from rota.tls.accept import TlsAcceptor
from rota.tls.server import ServerTls

# On a drain, an idle client connection is closed once it has been quiet this long: one
# that was just accepted, or just answered, is likely sending its request already, and
# closing it under that request would fail it (HTTP/1.1 cannot announce a close).
DRAIN_QUIET_SECONDS = 1.0


class HttpListener:
    """Accepts HTTP clients on bound sockets and serves them through `ctx`; with `tls`,
    each client's TLS handshake comes first (rota.tls.accept)."""

    def __init__(self, ctx: ProxyContext, tls: ServerTls | None = None) -> None:
        self.ctx = ctx
        self.tls = tls
        self.servers: list[asyncio.Server] = []
        self.sockets: list[socket.socket] = []
        self.acceptors: list[TlsAcceptor] = []
        self._sweeper: asyncio.Task[None] | None = None

    @property
    def serving(self) -> bool:
        return bool(self.servers) or bool(self.acceptors)

    def __repr__(self) -> str:
        return f"<HttpListener {self.ctx.name} [{len(self.ctx.clients)} clients]>"

    async def start(self, sockets: list[socket.socket]) -> None:
        """Serve on already-bound, listening sockets (`rota.proxy.listener.bind`)."""
        loop = self.ctx.loop
        # One call per accepted connection, straight to the class: ClientConnection is a
        # duck-typed protocol (see rota.proxy.batching.as_protocol), hence the cast.
        factory = cast("Callable[[], asyncio.Protocol]", partial(ClientConnection, self.ctx))
        new = [s for s in sockets if s not in self.sockets]
        self.sockets = self.sockets + new
        if self.tls is not None:
            # One acceptor per call: a worker may adopt the sockets of one that stopped.
            ctx = self.ctx
            acceptor = TlsAcceptor(
                loop, self.tls, factory, lambda: ctx.timeouts.header, ctx.limits.max_connections
            )
            acceptor.start(sockets)
            self.acceptors.append(acceptor)
        else:
            for sock in sockets:
                self.servers.append(await loop.create_server(factory, sock=sock, backlog=1024))
        if self._sweeper is None:
            self._sweeper = loop.create_task(_sweep_forever(self.ctx))

    async def drain(self, grace: float, now: asyncio.Event | None = None) -> None:
        """Stop accepting; close idle client connections now and let in-flight ones
        finish (answered with `Connection: close`), up to `grace` seconds or until `now`
        is set (a second stop signal)."""
        for server in self.servers:
            server.close()
        self.servers = []
        for acceptor in self.acceptors:
            acceptor.close()
        self.acceptors = []
        ctx = self.ctx
        deadline = ctx.loop.time() + grace
        while ctx.clients and ctx.loop.time() < deadline and not (now and now.is_set()):
            # An idle connection active this recently may have a request on its way (a new
            # connection's first, a keep-alive client's next): it is let in and answered.
            # Deadlines were set from the coarse clock (`ctx.now`), up to a sweep behind.
            quiet = DRAIN_QUIET_SECONDS + ctx.sweep_interval()
            recent = ctx.loop.time() - quiet + ctx.timeouts.idle
            for client in list(ctx.clients):
                client.last_request = True  # what comes is answered with `Connection: close`
                if client.queue:
                    client.closing = True
                elif client.phase is Phase.LINGER or (
                    client.phase is Phase.IDLE and client.deadline <= recent
                ):
                    client.close()
            await asyncio.sleep(0.05)
        for client in list(ctx.clients):
            if client.transport is not None:
                client.transport.abort()
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper


async def _sweep_forever(ctx: ProxyContext) -> None:
    while True:
        await asyncio.sleep(ctx.sweep_interval())
        ctx.sweep()
