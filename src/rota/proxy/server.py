"""One HTTP listener's data plane in one worker: accept, serve, sweep deadlines, drain.

Accepting is rota's own (`rota.proxy.listener.Listener`, for plain HTTP and TLS alike),
not `loop.create_server`, whose accept loop cannot stop while keeping the listening socket.
At `limits.max_connections` the listener first asks `ProxyContext.make_room` to close the
oldest connection still sending a head or idle in keep-alive, so a new client is served
now; when every connection is busy it stops accepting, and new clients wait in the listen
backlog (as HAProxy's do at `maxconn`) until a connection ends or goes idle.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket

from rota.proxy.accepted import connect
from rota.proxy.batching import as_protocol
from rota.proxy.client import ClientConnection, Phase
from rota.proxy.context import ProxyContext
from rota.proxy.listener import Listener
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
        self.sockets: list[socket.socket] = []
        self.listener: Listener | None = None
        self.acceptor: TlsAcceptor | None = None
        self._sweeper: asyncio.Task[None] | None = None

    @property
    def serving(self) -> bool:
        return self.listener is not None

    def __repr__(self) -> str:
        return f"<HttpListener {self.ctx.name} [{len(self.ctx.clients)} clients]>"

    async def start(self, sockets: list[socket.socket]) -> None:
        """Serve on already-bound, listening sockets (`rota.proxy.listener.bind`); called
        again, serve more (a worker slot's sockets adopted from a worker that stopped)."""
        ctx = self.ctx
        loop = ctx.loop
        self.sockets = self.sockets + [s for s in sockets if s not in self.sockets]
        listener = self.listener
        if listener is not None:
            listener.add([s for s in sockets if s not in listener.sockets])
            return
        on_accept = self._accepted
        if self.tls is not None:
            self.acceptor = acceptor = TlsAcceptor(
                loop, self.tls, self._protocol, lambda: ctx.timeouts.header, self._release
            )
            on_accept = acceptor.accepted
        listener = Listener(
            loop, list(sockets), on_accept, ctx.limits.max_connections, ctx.make_room
        )
        self.listener = listener
        ctx.release = listener.release
        ctx.resume = listener.start
        listener.start()
        if self._sweeper is None:
            self._sweeper = loop.create_task(_sweep_forever(ctx))

    def _protocol(self, peer: object) -> asyncio.Protocol:
        # ClientConnection is a duck-typed protocol (rota.proxy.batching.as_protocol).
        return as_protocol(ClientConnection(self.ctx, peer))

    def _accepted(self, sock: socket.socket, peer: object) -> None:
        ctx = self.ctx
        connect(ctx.loop, as_protocol(ClientConnection(ctx, peer)), sock, self._release)

    def _release(self) -> None:
        """An accepted connection that never became a client (a failed handshake)."""
        listener = self.listener
        if listener is not None:
            listener.release()

    async def drain(self, grace: float, now: asyncio.Event | None = None) -> None:
        """Stop accepting; close idle client connections now and let in-flight ones
        finish (answered with `Connection: close`), up to `grace` seconds or until `now`
        is set (a second stop signal)."""
        if self.listener is not None:
            self.listener.close()
            self.listener = None
        if self.acceptor is not None:
            self.acceptor.close()
            self.acceptor = None
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
