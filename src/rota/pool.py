"""A pool of servers, one per worker: membership, states, and the policy that picks.

Pure: no I/O, no threads, no event loop. A `Pool` owns its `Backend`s, keyed by a stable id
(the config's `id`, else its name; never a list index), so servers can be added and removed
while running. Each backend has two states that never override each other:

- **health** (`state`, UP or DOWN), set by health checks, active and passive;
- **admin** (ENABLED, DRAINING, DISABLED), set by an operator: a draining server finishes what
  it has but gets no new request; a disabled one gets nothing.

The data path reads one plain attribute, `backend.up` (healthy and enabled), so it takes no
lock. The policy (`rota.balancing`) picks among the pool's backends and hears when an
exchange on a backend starts and ends. Every change happens on the event loop thread.
"""

from __future__ import annotations

import hashlib
import ssl
import time
from collections.abc import Callable, Collection, Iterable
from enum import Enum
from typing import TYPE_CHECKING, Protocol

from rota.config.model import BackendSpec, HealthSpec, TimeoutSpec

if TYPE_CHECKING:
    from rota.balancing.base import Policy
    from rota.http.head import RequestHead
    from rota.outcome import Outcome
    from rota.proxy.upstream import UpstreamPool


class State(Enum):
    UP = "UP"
    DOWN = "DOWN"


class Admin(Enum):
    ENABLED = "enabled"
    DRAINING = "draining"
    DISABLED = "disabled"


# What a health check is keyed by: a server that appears in two pools with the same check
# is probed once and has one health state.
CheckKey = tuple[str, int, HealthSpec]


class Backend:
    """One server of one pool, and what the data path counts for it."""

    __slots__ = (
        "active",
        "address",
        "admin",
        "backup",
        "check",
        "host",
        "id",
        "idle",
        "max_requests",
        "name",
        "pool",
        "port",
        "spec",
        "state",
        "sticky_line",
        "token",
        "up",
        "up_since",
        "weight",
    )

    def __init__(self, spec: BackendSpec, pool: Pool) -> None:
        self.spec = spec
        self.id = spec.key
        self.name = spec.name
        self.host = spec.host
        self.port = spec.port
        self.weight = spec.weight
        self.backup = spec.backup  # used only when no primary server of the pool is up
        self.address = spec.address
        self.pool = pool
        self.check: CheckKey = (spec.host, spec.port, pool.health)
        self.state = State.UP
        self.admin = Admin.ENABLED
        self.up = True  # state is UP and admin is ENABLED; read on every request
        self.active = 0  # requests (HTTP) or connections (TCP) in flight, counted from pick
        # At most this many in flight (0: no limit); more wait in the pool's queue.
        self.max_requests = spec.max_requests or 0
        # Sticky sessions: the cookie value naming this server, opaque (never its address)
        # and the same in every worker and after a restart; the Set-Cookie line that sets it.
        self.token = sticky_token(pool.name, self.id)
        self.sticky_line = b""
        # When `up` last became True, on the pool's clock: slow start ramps from it. A
        # server of the pool as first built counts as up for ever (full weight at start).
        self.up_since = float("-inf")
        # Idle keep-alive connections to this server (rota.proxy.upstream), hung here by
        # the HTTP data plane; None where no HTTP listener uses the pool.
        self.idle: UpstreamPool | None = None

    def __repr__(self) -> str:
        where = f"{self.pool.name}/{self.id}"
        return f"<Backend {where} {self.state.value} {self.admin.value} active={self.active}>"


def sticky_token(pool: str, server_id: str) -> bytes:
    """An opaque, stable name for a server in a sticky-session cookie."""
    return hashlib.blake2b(f"{pool}\0{server_id}".encode(), digest_size=8).hexdigest().encode()


class Waiter(Protocol):
    """A request waiting in a pool's queue for a server below its `max_requests`."""

    def resume(self) -> None: ...


# Called after a health or admin change: (backend, reason).
Listener = Callable[[Backend, str], None]
Clock = Callable[[], float]


class Pool:
    """The servers of one pool in config order, their states and the policy."""

    __slots__ = (
        "_by_id",
        "_listeners",
        "backends",
        "clock",
        "health",
        "name",
        "plain",
        "policy",
        "queue_timeout",
        "sticky",
        "timeouts",
        "tls",
        "tls_name",
        "tokens",
        "waiting",
    )

    def __init__(
        self,
        specs: Iterable[BackendSpec],
        name: str = "default",
        health: HealthSpec | None = None,
        policy: Policy | None = None,
        timeouts: TimeoutSpec | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        self.name = name
        # Stamps `Backend.up_since`; a policy with slow start must read the same clock.
        self.clock = clock
        self.health = health if health is not None else HealthSpec()
        # connect, response and pool_idle are the pool's (the others are a listener's)
        self.timeouts = timeouts if timeouts is not None else TimeoutSpec()
        self.backends: tuple[Backend, ...] = tuple()
        self._by_id: dict[str, Backend] = {}
        # Sticky sessions (`set_sticky`): the cookie's name, and servers by their token.
        self.sticky: bytes | None = None
        self.tokens: dict[bytes, Backend] = {}
        # No sticky sessions and no server limits: the data path asks the policy and
        # nothing else (one test per request).
        self.plain = True
        # Requests waiting for a server below its max_requests, for up to queue_timeout.
        self.queue_timeout = 0.0
        self.waiting: list[Waiter] = []
        self._listeners: list[Listener] = []
        # TLS to the servers (rota.tls.client): the context, and the name to verify and
        # send as SNI (None: each server's host).
        self.tls: ssl.SSLContext | None = None
        self.tls_name: str | None = None
        if policy is None:
            from rota.balancing.round_robin import RoundRobin

            policy = RoundRobin()
        self.policy: Policy = policy
        for spec in specs:
            self._insert(Backend(spec, self))
        self.policy.update(self.backends)

    def __len__(self) -> int:
        return len(self.backends)

    def __repr__(self) -> str:
        return f"<Pool {self.name} [{self.up_count()}/{len(self.backends)} up]>"

    def get(self, backend_id: str) -> Backend | None:
        return self._by_id.get(backend_id)

    def up_count(self) -> int:
        return sum(1 for b in self.backends if b.up)

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    # membership

    def _insert(self, backend: Backend) -> None:
        if backend.id in self._by_id:
            raise ValueError(f"pool {self.name}: duplicate server id {backend.id!r}")
        self._by_id[backend.id] = backend
        self.backends = tuple([*self.backends, backend])
        self.tokens[backend.token] = backend
        if self.sticky is not None:
            backend.sticky_line = _cookie_line(self.sticky, backend.token)
        self.refresh()

    def add(self, spec: BackendSpec) -> Backend:
        """A new server, UP and enabled (health checks take it out if it is not); with slow
        start it ramps up from now."""
        backend = Backend(spec, self)
        backend.up_since = self.clock()
        self._insert(backend)
        self.policy.update(self.backends)
        return backend

    def remove(self, backend_id: str) -> Backend | None:
        """Take a server out: it gets no new request; exchanges on it finish."""
        backend = self._by_id.pop(backend_id, None)
        if backend is None:
            return None
        self.backends = tuple(b for b in self.backends if b is not backend)
        self.tokens.pop(backend.token, None)
        self.refresh()
        backend.up = False
        self.policy.update(self.backends)
        return backend

    def set_sticky(self, cookie: str | None) -> None:
        """Sticky sessions by this cookie (None: off)."""
        self.sticky = cookie.encode() if cookie else None
        for backend in self.backends:
            backend.sticky_line = _cookie_line(self.sticky, backend.token) if self.sticky else b""
        self.refresh()

    def refresh(self) -> None:
        """Work out `plain` again: after a change of sticky sessions or server limits."""
        self.plain = self.sticky is None and not any(b.max_requests for b in self.backends)

    def sticky_pick(self, value: bytes) -> Backend | None:
        """The server a sticky cookie names, if it is still usable."""
        backend = self.tokens.get(value)
        if backend is None or not backend.up:
            return None
        if backend.max_requests and backend.active >= backend.max_requests:
            return None
        return backend

    def pick(
        self, tried: Collection[Backend], head: RequestHead | None, client_ip: bytes
    ) -> Backend | None:
        """The policy's pick among the servers below their max_requests."""
        backend = self.policy.pick(tried, head, client_ip)
        if backend is None or not backend.max_requests or backend.active < backend.max_requests:
            return backend
        full = [b for b in self.backends if b.max_requests and b.active >= b.max_requests]
        return self.policy.pick([*tried, *full], head, client_ip)

    def anyone_full(self, tried: Collection[Backend]) -> bool:
        """Some usable server (not in `tried`) is only at its max_requests: worth a wait."""
        return any(
            b.up and b.max_requests and b.active >= b.max_requests and b not in tried
            for b in self.backends
        )

    def ended(self, backend: Backend, outcome: Outcome) -> None:
        """An exchange (or TCP connection) on `backend` is over: its in-flight count goes
        down, the policy hears of it, and a request waiting for room tries again."""
        backend.active -= 1
        self.policy.ended(backend, outcome)
        if backend.max_requests and self.waiting:
            self.wake()

    def wake(self) -> None:
        """A server's in-flight count went down: the first waiting request tries again."""
        if self.waiting:
            self.waiting.pop(0).resume()

    def set_weight(self, backend: Backend, weight: int) -> None:
        if backend.weight != weight:
            backend.weight = weight
            self.policy.update(self.backends)

    # states

    def set_state(self, backend: Backend, state: State, reason: str = "") -> bool:
        """Change a backend's health; returns whether it changed. Listeners hear of it."""
        if backend.state is state:
            return False
        backend.state = state
        self._changed(backend, reason)
        return True

    def set_admin(self, backend: Backend, admin: Admin, reason: str = "") -> bool:
        """Change a backend's operator state; health checks never undo it."""
        if backend.admin is admin:
            return False
        backend.admin = admin
        self._changed(backend, reason or f"set {admin.value}")
        return True

    def _changed(self, backend: Backend, reason: str) -> None:
        was = backend.up
        backend.up = backend.state is State.UP and backend.admin is Admin.ENABLED
        if backend.up != was:
            if backend.up:
                backend.up_since = self.clock()
            # The policy hears of it: slow start begins, backups take over or step back.
            self.policy.update(self.backends)
        for listener in self._listeners:
            listener(backend, reason)


def _cookie_line(name: bytes, token: bytes) -> bytes:
    # HttpOnly: scripts never need it; SameSite=Lax: sent on top-level navigation only.
    return b"Set-Cookie: %s=%s; Path=/; HttpOnly; SameSite=Lax\r\n" % (name, token)
