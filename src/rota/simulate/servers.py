"""What the simulator models of a server and of a request. Pure.

A `SimServer` has `slots` parallel service slots and one FIFO queue in front of them (slots
= 1: one request at a time). A request's service time is drawn when its service starts,
from the server's model, times the server's current `factor` (a `slow` event). A server
that is not `alive` refuses connections.

The policy hears of a request's end through an `Outcome` with the fields an `Exchange`
has in the proxy (`started`, `finished`, `end`, `status`, `backend`), at simulated times.
"""

from __future__ import annotations

from collections import deque

from rota.pool import Backend
from rota.simulate.dists import Sampler


class SimRequest:
    """One simulated request (a bodiless, idempotent GET), from arrival to its end. Not an
    `Outcome` itself, as an Exchange is: rota.outcome is compiled with mypyc, and an
    interpreted class cannot subclass a compiled one (engine.py fills one in for `ended`)."""

    __slots__ = (
        "attempt",
        "client",
        "client_ip",
        "held",
        "lost",
        "service",
        "started",
        "ticket",
        "tried",
    )

    def __init__(self, started: float, client_ip: bytes, client: int, service: float) -> None:
        self.started = started
        self.attempt: Backend | None = None  # the backend counting it in flight
        self.tried: tuple[Backend, ...] = ()
        self.client_ip = client_ip
        self.client = client  # closed loop: the client that waits for it; else -1
        self.service = service  # a replay's recorded service time; else 0
        self.ticket = 0  # the seq of its pending completion event; -1: none
        self.held: object = None  # its place in the pool's queue, once it waited there
        self.lost = False  # lost with a server that died: 502, not 503, if none is left


class SimServer:
    """One server: slots, a FIFO queue, a service model, and its fault state."""

    __slots__ = (
        "alive",
        "backend",
        "draw",
        "factor",
        "free",
        "index",
        "name",
        "queue",
        "serving",
        "slots",
    )

    def __init__(self, index: int, name: str, slots: int, draw: Sampler | None) -> None:
        self.index = index
        self.name = name
        self.slots = slots
        self.free = slots
        self.draw = draw  # None: each request's recorded time
        self.factor = 1.0
        self.alive = True
        self.queue: deque[SimRequest] = deque()
        self.serving: set[SimRequest] = set()
        self.backend: Backend | None = None

    def __repr__(self) -> str:
        return f"<SimServer {self.name} {self.slots - self.free}/{self.slots} q={len(self.queue)}>"
