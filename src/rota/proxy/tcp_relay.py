"""TCP mode's relay: the two sides of a tunnel, passing bytes both ways as callbacks.

A `Tunnel` (rota.proxy.tcp) joins two of these protocols, the client's `ClientSide` and
the backend's `Side`; once joined, every byte goes from one's `data_received` to the
other's transport, with no task and no buffer of rota's own. Rules, each one line of code
below:
- Back-pressure: when one side's write buffer passes its high-water mark
  (`pause_writing`), stop reading from the other side until it drains (`resume_writing`).
  Memory per connection is bounded by the two write buffers, whatever the speeds.
- Half-close: EOF from one side becomes `write_eof` on the other; the opposite direction
  stays open (`eof_received` returns True). Both sockets close when both directions ended.
- Reset: a side that dies with an error (RST, EPIPE, ...) resets the other one at once
  (SO_LINGER 0, then abort): the peer learns promptly that its stream was cut short,
  rather than mistaking a truncated stream for a complete one.
- Idle: each side only sets `active` per chunk; the listener's periodic sweep
  (rota.proxy.tcp_server) reads and clears it (no timer per chunk, no clock read per chunk).

Before the join the client's side holds what arrives, and reads a PROXY header or the
ClientHello of SNI passthrough out of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from typing import TYPE_CHECKING, cast

from rota import proxy_protocol
from rota.outcome import CLIENT_CLOSED, SERVER_CLOSED
from rota.tls import clienthello
from rota.tls.failures import Refused

if TYPE_CHECKING:
    from rota.proxy.tcp import Tunnel

_LINGER_RESET = struct.pack("ii", 1, 0)


def reset(transport: asyncio.Transport) -> None:
    """Close with an RST rather than a FIN: tells the peer the stream was cut short."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
    transport.abort()


class Side(asyncio.Protocol):
    """One socket of a tunnel. `peer` is the other socket's side and `out` its transport,
    set before this side can receive anything (see `Tunnel`)."""

    __slots__ = ("active", "full", "open", "out", "peer", "read_done", "transport", "tunnel")

    transport: asyncio.Transport  # set by connection_made; `open` says whether it is live

    def __init__(self, tunnel: Tunnel) -> None:
        self.tunnel = tunnel
        self.out: asyncio.Transport | None = None
        self.peer: Side | None = None
        self.active = False  # a byte arrived since the last idle sweep
        self.read_done = False  # EOF seen from this socket
        self.full = False  # my write buffer is over its high-water mark (pause_writing)
        self.open = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.open = True
        high = self.tunnel.proxy.settings.high_water
        self.transport.set_write_buffer_limits(high=high, low=high // 4)

    def data_received(self, data: bytes) -> None:
        self.active = True
        self.tunnel.outcome.bytes_out += len(data)  # only the backend's side is a plain Side
        # `out` is set before this side is connected (backend) or resumed (client).
        self.out.write(data)  # type: ignore[union-attr]

    # My write buffer is over the mark: stop reading from the other side. The flag keeps a
    # pause that arrives before the sides are joined (a backend that speaks first, a
    # client's early bytes written at the join): `Tunnel._join` applies it.
    def pause_writing(self) -> None:
        self.full = True
        peer = self.peer
        if peer is not None and peer.open and not peer.read_done:
            peer.transport.pause_reading()

    def resume_writing(self) -> None:
        self.full = False
        peer = self.peer
        if peer is not None and peer.open and not peer.read_done:
            peer.transport.resume_reading()

    def eof_received(self) -> bool:
        if self.read_done:  # a transport resumed after EOF reports it again
            return True
        self.read_done = True
        self.active = True
        peer = self.peer
        if peer is not None and peer.open:
            if peer.transport.can_write_eof():
                peer.transport.write_eof()
            if peer.read_done:
                # Both directions have ended: close both (close() flushes what is queued).
                self.transport.close()
                peer.transport.close()
        return True  # keep the other direction open

    def connection_lost(self, exc: Exception | None) -> None:
        self.open = False
        tunnel = self.tunnel
        if exc is not None and not tunnel.why:
            # The first side to die with an error is why the connection ended.
            tunnel.why = CLIENT_CLOSED if self is tunnel.client else SERVER_CLOSED
        peer = self.peer
        if peer is not None and peer.open:
            if exc is None:
                peer.transport.close()
            else:
                reset(peer.transport)
        self.tunnel.side_lost(self)


class ClientSide(Side):
    """The client's socket: before the backend is connected it holds what arrives (and
    reads a PROXY header, or the ClientHello of SNI passthrough, out of it)."""

    __slots__ = ("header", "header_waiter", "pending", "server_name")

    def __init__(self, tunnel: Tunnel) -> None:
        super().__init__(tunnel)
        self.pending = bytearray()
        self.header: proxy_protocol.ProxyHeader | None = None
        self.header_waiter: asyncio.Future[None] | None = None
        self.server_name: str | None = None

    def data_received(self, data: bytes) -> None:
        self.active = True
        self.tunnel.outcome.bytes_in += len(data)
        out = self.out
        if out is not None:
            out.write(data)
            return
        self.pending += data
        waiter = self.header_waiter
        if waiter is None or waiter.done():
            # Nothing more to read until a backend is connected: leave it in the socket
            # buffer. Not in connection_made: neither uvloop nor asyncio (3.11) honours a
            # pause made there (both start reading after it, and asyncio's transport then
            # believes it is paused), so a fast client filled `pending` with everything it
            # sent while rota connected.
            self.transport.pause_reading()
            return
        if self.tunnel.proxy.sni is not None:
            self._hello(waiter)
            return
        try:
            result = proxy_protocol.parse_header(self.pending)
        except proxy_protocol.ProxyProtocolError as exc:
            waiter.set_exception(exc)
            return
        if result is not None:
            self.header, used = result
            del self.pending[:used]
            self.transport.pause_reading()
            waiter.set_result(None)

    def _hello(self, waiter: asyncio.Future[None]) -> None:
        """SNI passthrough: wait for the whole ClientHello, then for the backend."""
        verdict, name = clienthello.server_name(self.pending)
        if verdict is clienthello.Verdict.MORE:
            return
        self.transport.pause_reading()
        if verdict is clienthello.Verdict.NAME:
            self.server_name = name
            waiter.set_result(None)
        else:
            waiter.set_exception(Refused(verdict.value))

    def eof_received(self) -> bool:
        if self.peer is None:
            self.read_done = True  # passed on to the backend once it is connected
            waiter = self.header_waiter
            if waiter is not None and not waiter.done():
                waiter.set_exception(ConnectionResetError("EOF before the PROXY header"))
            return True
        return super().eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        waiter = self.header_waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(ConnectionResetError("client closed"))
        super().connection_lost(exc)


def peer_name(side: Side) -> str:
    return str(side.transport.get_extra_info("peername"))
