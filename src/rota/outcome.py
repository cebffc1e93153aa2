"""How an exchange ended: the one record every observer reads (policy feedback, counters,
access logs). Pure.

Every HTTP exchange (`rota.proxy.exchange.Exchange`) and every TCP connection
(`rota.proxy.tcp.Tunnel`) is an `Outcome`: when it ends, in exactly one place, it fills in
the fields below and hands itself to the observers of its listener. Times are the event
loop's clock (`loop.time()`, seconds).
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rota.pool import Backend, Pool


class End(Enum):
    OPEN = "open"  # not ended yet
    COMPLETE = "complete"  # the backend's response (or the TCP stream) passed on whole
    LOCAL = "local"  # rota answered itself: an error, a redirect, a respond route, a 404
    CUT_SHORT = "cut_short"  # a response already begun was cut: the client saw it truncated
    CANCELLED = "cancelled"  # the client went away first
    TUNNEL = "tunnel"  # a WebSocket tunnel that ran and closed


class Outcome:
    """What is known about one exchange or TCP connection when it ends."""

    __slots__ = (
        "backend",
        "bytes_in",
        "bytes_out",
        "end",
        "finished",
        "listener",
        "pool",
        "protocol",
        "response_time",
        "retries",
        "started",
        "status",
    )

    def __init__(self, listener: str, started: float) -> None:
        self.listener = listener
        self.pool: Pool | None = None  # the pool it was routed to
        self.backend: Backend | None = None  # the last backend tried
        self.status = 0  # the status sent to the client (HTTP), 0 for none or TCP
        self.bytes_in = 0  # body bytes from the client (TCP: every byte)
        self.bytes_out = 0  # body bytes to the client (TCP: every byte)
        self.started = started
        self.finished = 0.0
        self.end = End.OPEN
        self.protocol = ""  # "HTTP/1.1", "HTTP/1.0"; "" for a TCP connection
        self.response_time = -1.0  # request sent to response head, seconds; -1: none
        self.retries = 0  # backends tried after the first


Observer = Callable[[Outcome], None]
