"""Accepting TLS connections: the handshake first, then the listener's protocol.

Why not `loop.create_server(ssl=...)`: a handshake that fails there never reaches rota
(asyncio and uvloop log it at debug level and drop it), so it could not be counted per
reason, and the server's context is fixed for its lifetime, so a reload could not give
new handshakes new certificates. Here the accept loop is rota's own (the HTTP listener's
`rota.proxy.listener.Listener`, the same one plain HTTP accepts with) and each accepted
socket becomes a `rota.tls.transport.TlsTransport` with the context of the moment: it
runs the handshake from the loop's reader callback (no Task, no coroutine per
connection), reports its end here (failures are counted per reason), then carries the
records for the protocol.

A handshake in progress counts against the listener's `max_connections` like any
connection, so a flood of clients that open TCP and never finish a handshake holds at
most that many sockets, each for at most the handshake timeout (the listener's
`timeouts.header`). A handshake that fails hands its place back (`release`); one that
succeeds passes it to the client connection, which hands it back when it ends.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

from rota.tls.server import ServerTls
from rota.tls.transport import TlsTransport


class TlsAcceptor:
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        tls: ServerTls,
        factory: Callable[[object], asyncio.Protocol],
        handshake_timeout: Callable[[], float],
        release: Callable[[], None],
    ) -> None:
        self.loop = loop
        self.tls = tls
        self.factory = factory  # called with the peer's address
        self.handshake_timeout = handshake_timeout
        self.release = release
        self.handshakes: set[TlsTransport] = set()
        self.closing = False

    def __repr__(self) -> str:
        return f"<TlsAcceptor {self.tls.listener} [{len(self.handshakes)} handshakes]>"

    def close(self) -> None:
        """Handshakes in progress are cut (their clients have nothing yet): not counted as
        failures, their places handed back."""
        self.closing = True
        for transport in list(self.handshakes):
            transport.abort()

    def accepted(self, sock: socket.socket, peer: object) -> None:
        """An accepted socket (rota.proxy.listener.OnAccept): its handshake starts."""
        # As asyncio and uvloop do for every TCP transport: a response is sent at once,
        # not held back by Nagle's algorithm waiting for the client's ACK.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        factory = self.factory
        transport = TlsTransport(
            self.loop,
            sock,
            self.tls.context(),
            lambda: factory(peer),
            self._handshake_done,
            self.handshake_timeout(),
        )
        self.handshakes.add(transport)

    def _handshake_done(self, transport: TlsTransport, error: BaseException | None) -> None:
        """A handshake ended: one that failed is counted and hands its place back; one that
        succeeded passes it to the client connection, which hands it back when it ends."""
        self.handshakes.discard(transport)
        if error is not None:
            if not self.closing:
                self.tls.failures.failed(error)
            self.release()
