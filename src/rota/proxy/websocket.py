"""A WebSocket connection after the backend's 101: raw bytes both ways, no more HTTP.

Until the 101 the handshake is an ordinary exchange: rota forwards `Upgrade: websocket`, holds
any client bytes that follow the request head unparsed (`RequestParser.held`) and stops
reading the client. A 101 turns the exchange into a `Tunnel`: the held bytes go to the
backend first, then both connections relay raw. The exchange stays the client's front
exchange with its backend connection attached, so the existing hooks keep working:
back-pressure (`pause_writing` on one side pauses reading on the other), the deadline (each
chunk moves it by `timeouts.tunnel`, an hour by default as HAProxy's `timeout tunnel` is
set, so a tunnel silent both ways for that long is closed), a
reset or close of either side closing the other (`Exchange.cancel`, `on_upstream_lost`).

What the tunnel adds is the half-close (RFC 9293 3.6, as a TCP relay does): an EOF from one
side becomes a `write_eof` towards the other, and both connections close once both ended.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rota.proxy.batching import BatchedWriter
    from rota.proxy.client import ClientConnection
    from rota.proxy.exchange import Exchange
    from rota.proxy.upstream import UpstreamConnection


class Tunnel:
    __slots__ = ("client", "client_ended", "exchange", "upstream", "upstream_ended")

    def __init__(
        self, exchange: Exchange, client: ClientConnection, upstream: UpstreamConnection
    ) -> None:
        self.exchange = exchange
        self.client = client
        self.upstream = upstream
        self.client_ended = False
        self.upstream_ended = False

    def __repr__(self) -> str:
        return f"<Tunnel {self.client.peer_ip.decode()} <-> {self.upstream.backend.name}>"

    def from_client(self, data: bytes) -> None:
        self.upstream.write(data)
        self.client.touch_tunnel()

    def from_upstream(self, data: bytes) -> None:
        self.client.write(data)
        self.client.touch_tunnel()

    def client_eof(self) -> bool:
        """The client half-closed; the return value is for `eof_received` (True: keep the
        transport open, the tunnel closes it)."""
        self.client_ended = True
        if self.upstream_ended or not _write_eof(self.upstream):
            self.end()
        return True

    def upstream_eof(self) -> bool:
        self.upstream_ended = True
        if self.client_ended or not _write_eof(self.client):
            self.end()
        return True

    def end(self) -> None:
        """Both sides ended (or one cannot be half-closed): close both, gracefully."""
        self.exchange.tunnel_closed()


def _write_eof(conn: BatchedWriter) -> bool:
    """Send FIN after what is buffered; False if this transport cannot half-close."""
    transport = conn.transport
    if transport is None or transport.is_closing() or not transport.can_write_eof():
        return False
    conn.flush()  # a batched write must go before the FIN
    transport.write_eof()
    return True
