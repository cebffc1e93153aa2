"""Accepting TLS connections: the handshake first, then the listener's protocol.

Why not `loop.create_server(ssl=...)`: a handshake that fails there never reaches rota
(asyncio and uvloop log it at debug level and drop it), so it could not be counted per
reason, and the server's context is fixed for its lifetime, so a reload could not give
new handshakes new certificates. Here the accept loop is rota's own
(`rota.proxy.listener.Listener`), each accepted socket is handed to
`loop.connect_accepted_socket(ssl=..., ssl_handshake_timeout=...)` with the context of
the moment, and its failure is counted. The TLS record layer afterwards is the loop's
(uvloop's, in C, when it runs): the same transport `create_server` would have made.

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
        self.handshakes: set[asyncio.Task[None]] = set()

    def __repr__(self) -> str:
        return f"<TlsAcceptor {self.tls.listener} [{len(self.handshakes)} handshakes]>"

    def start(self, sockets: list[socket.socket]) -> None:
        self.listener = Listener(self.loop, sockets, self._accepted, self.max_handshakes)
        self.listener.start()

    def close(self) -> None:
        """Stop accepting; handshakes in progress are cut (their clients have nothing yet)."""
        if self.listener is not None:
            self.listener.close()
        for task in list(self.handshakes):
            task.cancel()

    def _accepted(self, sock: socket.socket) -> None:
        task = self.loop.create_task(self._handshake(sock))
        self.handshakes.add(task)
        task.add_done_callback(self.handshakes.discard)

    async def _handshake(self, sock: socket.socket) -> None:
        try:
            # On failure the transport closes the socket itself.
            await self.loop.connect_accepted_socket(
                self.factory,
                sock,
                ssl=self.tls.context(),
                ssl_handshake_timeout=self.handshake_timeout(),
            )
        except Exception as exc:  # whatever a client sends, never more than a count
            self.tls.failures.failed(exc)
        finally:
            if self.listener is not None:
                self.listener.release()
