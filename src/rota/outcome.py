"""How an exchange ended: the one record every observer reads (policy feedback, counters,
access logs). Pure.

Every HTTP exchange (`rota.proxy.exchange.Exchange`) and every TCP connection
(`rota.proxy.tcp.Tunnel`) is an `Outcome`: when it ends, in exactly one place, it fills in
the fields below and hands itself to the observers of its listener. Times are the event
loop's clock (`loop.time()`, seconds).

The facts an access log or a metric needs beyond the counts (`client`, `method`, `target`,
`protocol`, `retries`, `reason`) are filled in at that one end, and only when the listener
has observers: with none, they keep the defaults below and nothing is formatted.
`connect_time` and `response_time` are measured on the way (they need the moment itself).

`reason` says why it ended, in the words of an access log's `end` field. It follows from
`End` and, for rota's own answers, the status (`reason_for`):

- COMPLETE, TUNNEL: `completed`.
- CANCELLED (the client went away first): `client_closed`.
- CUT_SHORT (a begun response was cut): `server_closed` (the backend died or broke its
  framing); `timeout` when the body stalled past `timeouts.body`.
- LOCAL and REFUSED (rota's own answer; REFUSED: without an exchange), by status:
  - 408, 504: `timeout`.
  - 502: `server_closed` (the backend closed without an answer, or answered garbage).
  - 503: `refused` (no server up, every one refused); `timeout`
    when the request waited in the pool's queue past `queue_timeout`.
  - any other status (404, a redirect or respond route, 400, 413, 414, 431...):
    `completed`, rota's own answer went out whole.

A TCP connection: `completed` once it ran and both sides closed; `client_closed` when the
client reset it or left before a backend was joined; `server_closed` when the backend
reset it; `timeout` for `timeouts.idle` of silence or a PROXY header that did not arrive;
`refused` when no backend accepted it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from enum import Enum
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from rota.pool import Backend, Pool


class End(Enum):
    OPEN = "open"  # not ended yet
    COMPLETE = "complete"  # the backend's response (or the TCP stream) passed on whole
    LOCAL = "local"  # rota answered itself: an error, a redirect, a respond route, a 404
    CUT_SHORT = "cut_short"  # a response already begun was cut: the client saw it truncated
    CANCELLED = "cancelled"  # the client went away first
    TUNNEL = "tunnel"  # a WebSocket tunnel that ran and closed
    # rota answered before any exchange began: an error in a request head (400, 414,
    # 431...), a head that never completed (408). Such an outcome is not an Exchange.
    REFUSED = "refused"


# The values of `Outcome.reason` (an access log's `end`).
COMPLETED: Final = "completed"
CLIENT_CLOSED: Final = "client_closed"
SERVER_CLOSED: Final = "server_closed"
TIMEOUT: Final = "timeout"
REFUSED: Final = "refused"
REASONS: Final = (COMPLETED, CLIENT_CLOSED, SERVER_CLOSED, TIMEOUT, REFUSED)


def reason_for(end: End, status: int) -> str:
    """Why an exchange ended, from how (`end`) and, for rota's own answers, the status.
    The two cases the status cannot tell (a 503 after waiting in the queue, a body that
    stalled) are named by the exchange itself."""
    if end is End.COMPLETE or end is End.TUNNEL:
        return COMPLETED
    if end is End.CANCELLED:
        return CLIENT_CLOSED
    if end is End.CUT_SHORT:
        return SERVER_CLOSED
    # LOCAL or REFUSED: rota's own answer.
    if status == 408 or status == 504:
        return TIMEOUT
    if status == 502:
        return SERVER_CLOSED
    if status == 503:
        return REFUSED
    return COMPLETED


def protocol_name(version: tuple[int, int]) -> str:
    """`HTTP/1.1` for (1, 1)."""
    if version == (1, 1):
        return "HTTP/1.1"
    if version == (1, 0):
        return "HTTP/1.0"
    return f"HTTP/{version[0]}.{version[1]}"


class Outcome:
    """What is known about one exchange or TCP connection when it ends."""

    __slots__ = (
        "backend",
        "bytes_in",
        "bytes_out",
        "client",
        "connect_time",
        "end",
        "fields",
        "finished",
        "listener",
        "method",
        "pool",
        "protocol",
        "reason",
        "response_time",
        "retries",
        "started",
        "status",
        "target",
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
        # Seconds connecting to the backend that answered: 0.0 on a reused pooled
        # connection, -1.0 when no backend connection was used.
        self.connect_time = -1.0
        # Seconds from the request head sent to the backend to its response head; -1.0
        # when there was none (always for TCP).
        self.response_time = -1.0
        self.retries = 0  # backends (or fresh connections) tried after the first
        # Filled in at the end, when someone observes (see the module docstring).
        self.client = ""  # "address:port" (TCP: the PROXY header's source, if accepted)
        self.method = ""  # "" for TCP, or a request rota refused before reading its line
        self.target = ""
        self.protocol = ""  # "HTTP/1.1", "HTTP/1.0"; "" for TCP
        self.reason = ""  # one of REASONS
        # The request's header fields as received (HTTP), read by whoever needs one of
        # them (a combined access log's Referer and User-Agent); nothing is copied.
        self.fields: Sequence[tuple[bytes, bytes]] = ()


Observer = Callable[[Outcome], None]
