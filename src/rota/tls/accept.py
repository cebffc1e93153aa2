"""Accepting TLS connections: the handshake first, then the listener's protocol.

Why not `loop.create_server(ssl=...)`: a handshake that fails there never reaches rota
(asyncio and uvloop log it at debug level and drop it), so it could not be counted per
reason, and the server's context is fixed for its lifetime, so a reload could not give
new handshakes new certificates. Here the accept loop is rota's own (the HTTP listener's
`rota.proxy.listener.Listener`, the same one plain HTTP accepts with), each accepted
socket is handed to `loop.connect_accepted_socket(ssl=..., ssl_handshake_timeout=...)`
with the context of the moment, and its failure is counted. The TLS record layer
afterwards is the loop's (uvloop's, in C, when it runs): the same transport
`create_server` would have made.

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
        self.handshakes: set[asyncio.Task[None]] = set()

    def __repr__(self) -> str:
        return f"<TlsAcceptor {self.tls.listener} [{len(self.handshakes)} handshakes]>"

    def close(self) -> None:
        """Handshakes in progress are cut (their clients have nothing yet)."""
        for task in list(self.handshakes):
            task.cancel()

    def accepted(self, sock: socket.socket, peer: object) -> None:
        """An accepted socket (rota.proxy.listener.OnAccept): its handshake starts."""
        task = self.loop.create_task(self._handshake(sock, peer))
        self.handshakes.add(task)
        task.add_done_callback(self.handshakes.discard)

    async def _handshake(self, sock: socket.socket, peer: object) -> None:
        factory = self.factory
        try:
            # On failure the transport closes the socket itself.
            await self.loop.connect_accepted_socket(
                lambda: factory(peer),
                sock,
                ssl=self.tls.context(),
                ssl_handshake_timeout=self.handshake_timeout(),
            )
        except asyncio.CancelledError:
            self.release()
            raise
        except Exception as exc:  # whatever a client sends, never more than a count
            self.tls.failures.failed(exc)
            self.release()
