"""Backends and the pool that holds them. Pure: no I/O, no threads, no event loop.

The pool is the one place that knows which backends are UP. Health checks (active and
passive) change states through `set_state`; balancers read `backends` and each backend's
`up` flag, a plain attribute, so the hot path takes no lock. Every state change happens on
the event loop thread (checker threads hand theirs over with `call_soon_threadsafe`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from enum import Enum

from rota.config.model import BackendSpec


class State(Enum):
    UP = "UP"
    DOWN = "DOWN"


class Backend:
    """One backend server and what the data path counts for it."""

    __slots__ = ("active", "address", "host", "index", "name", "port", "state", "up", "weight")

    def __init__(self, spec: BackendSpec, index: int) -> None:
        self.name = spec.name
        self.host = spec.host
        self.port = spec.port
        self.weight = spec.weight
        self.address = spec.address
        self.index = index
        self.state = State.UP
        self.up = True  # mirrors state == UP; read on every request
        self.active = 0  # requests or connections in flight

    def __repr__(self) -> str:
        return f"<Backend {self.name} {self.state.value} active={self.active}>"


# Called after a state change: (backend, old state, new state, reason).
Listener = Callable[[Backend, State, State, str], None]


class Pool:
    """The backends in config order, and their states."""

    __slots__ = ("_listeners", "backends")

    def __init__(self, specs: Iterable[BackendSpec]) -> None:
        self.backends: tuple[Backend, ...] = tuple(Backend(spec, i) for i, spec in enumerate(specs))
        self._listeners: list[Listener] = []

    def __len__(self) -> int:
        return len(self.backends)

    def __repr__(self) -> str:
        return f"<Pool [{self.up_count()}/{len(self.backends)} up]>"

    def up_count(self) -> int:
        return sum(1 for b in self.backends if b.up)

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def set_state(self, backend: Backend, state: State, reason: str = "") -> bool:
        """Change a backend's state; returns whether it changed. Listeners hear of changes."""
        old = backend.state
        if old is state:
            return False
        backend.state = state
        backend.up = state is State.UP
        for listener in self._listeners:
            listener(backend, old, state, reason)
        return True
