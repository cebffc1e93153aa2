"""Accepting TLS connections: the handshake first, then the listener's protocol.

Why not `loop.create_server(ssl=...)`: a handshake that fails there never reaches rota
(asyncio and uvloop log it at debug level and drop it), so it could not be counted per
reason, and the server's context is fixed for its lifetime, so a reload could not give
new handshakes new certificates. Here the accept loop is rota's own
(`rota.proxy.listener.Listener`) and each accepted socket becomes a
`rota.tls.transport.TlsTransport` with the context of the moment: it runs the handshake
from the loop's reader callback (no Task, no coroutine per connection), reports its end
here (failures are counted per reason), then carries the records for the protocol.

Handshakes in progress count against `max_connections`, so a flood of clients that
open TCP and never finish a handshake holds at most that many sockets, each for at most
the handshake timeout (the listener's `timeouts.header`).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

from rota.proxy.listener import Listener
from rota.tls.server import ServerTls
from rota.tls.transport import TlsTransport


class TlsAcceptor:
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        tls: ServerTls,
        factory: Callable[[], asyncio.Protocol],
        handshake_timeout: Callable[[], float],
        max_handshakes: int,
    ) -> None:
        self.loop = loop
        self.tls = tls
        self.factory = factory
        self.handshake_timeout = handshake_timeout
        self.max_handshakes = max_handshakes
        self.listener: Listener | None = None
        self.handshakes: set[TlsTransport] = set()

    def __repr__(self) -> str:
        return f"<TlsAcceptor {self.tls.listener} [{len(self.handshakes)} handshakes]>"

    def start(self, sockets: list[socket.socket]) -> None:
        self.listener = Listener(self.loop, sockets, self._accepted, self.max_handshakes)
        self.listener.start()

    def close(self) -> None:
        """Stop accepting; handshakes in progress are cut (their clients have nothing yet)."""
        if self.listener is not None:
            self.listener.close()
        for transport in list(self.handshakes):
            transport.abort()

    def _accepted(self, sock: socket.socket) -> None:
        # As asyncio and uvloop do for every TCP transport: a response is sent at once,
        # not held back by Nagle's algorithm waiting for the client's ACK.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        transport = TlsTransport(
            self.loop,
            sock,
            self.tls.context(),
            self.factory,
            self._handshake_done,
            self.handshake_timeout(),
        )
        self.handshakes.add(transport)

    def _handshake_done(self, transport: TlsTransport, error: BaseException | None) -> None:
        self.handshakes.discard(transport)
        if error is not None:
            self.tls.failures.failed(error)
        if self.listener is not None:
            self.listener.release()
