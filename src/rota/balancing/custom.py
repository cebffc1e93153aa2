"""Policies written by users: `algorithm = "package.module:ClassName"` (docs/policies.md).

A user's class sees a small, stable interface rather than rota's internals, so a policy
written today keeps working when those change:

    pick(request, servers) -> one of servers, or None   (None: the request gets 503)
    on_start(server, request)                           (optional)
    on_end(server, request, status, latency)            (optional)

`CustomPolicy` adapts it to `rota.balancing.base.Policy`. The views it hands out are cheap:
one `Server` per backend, made when the pool changes (not per request), and one `Request`
per pick whose fields are decoded only when the policy reads them.

A user's policy is code rota does not control: whatever it raises, or a server it returns
that it was not offered, costs only the request at hand (pick returns None: 503), and is
logged once per distinct error, not once per request, so a policy that fails on every
request cannot flood the log.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import time
from collections.abc import Callable, Container, Mapping
from typing import TYPE_CHECKING, Any, Final

from rota.balancing.base import Policy

if TYPE_CHECKING:
    from rota.config.model import PoolSpec
    from rota.http.head import RequestHead
    from rota.outcome import Outcome
    from rota.pool import Backend

log = logging.getLogger("rota.policy")

# Distinct errors remembered per policy, to log each once. Bounded: a policy whose messages
# differ every time (an id in the text) would otherwise grow the set without end.
MAX_DISTINCT_ERRORS: Final = 100


class PolicyLoadError(Exception):
    """A custom policy cannot be used; the text says why (the loader adds the field)."""


def load_class(path: str) -> type:
    """The class `path` ("package.module:ClassName") names, imported from the working
    directory or PYTHONPATH. Raises PolicyLoadError saying what went wrong."""
    module_name, colon, attr = path.partition(":")
    parts = [*module_name.split("."), *attr.split(".")]
    if not colon or not all(p.isidentifier() for p in parts):
        raise PolicyLoadError(f'expected "package.module:ClassName", got "{path}"')
    # `rota` run as an installed script does not put the working directory on sys.path
    # (`python -m` does); the issue promises both. Appended, so it never shadows a package.
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.append(cwd)
    try:
        found: object = importlib.import_module(module_name)
        for name in attr.split("."):
            found = getattr(found, name)
    except ImportError as exc:
        raise PolicyLoadError(f'cannot import "{path}": {exc}') from None
    except AttributeError:
        raise PolicyLoadError(f'cannot import "{path}": no {attr} in {module_name}') from None
    except Exception as exc:  # the module's own code failed: a SyntaxError, a raise
        raise PolicyLoadError(f'cannot import "{path}": {_describe(exc)}') from None
    if not isinstance(found, type):
        raise PolicyLoadError(f'"{path}" is not a class')
    if not callable(getattr(found, "pick", None)):
        raise PolicyLoadError(f'"{path}" has no pick(request, servers) method')
    return found


def instantiate(cls: type, options: Mapping[str, Any]) -> Any:
    """`cls(options)`, with the options as a fresh dict (the policy may keep or change it)."""
    try:
        return cls(dict(options))
    except Exception as exc:
        raise PolicyLoadError(f"{cls.__name__}(options) raised {_describe(exc)}") from None


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class Server:
    """What a custom policy sees of one server: live values, read through to the backend.
    One per backend for as long as it is in the pool, so a policy may key state on it."""

    __slots__ = ("_backend", "backup")

    def __init__(self, backend: Backend) -> None:
        self._backend = backend
        self.backup: bool = backend.spec.backup

    @property
    def name(self) -> str:
        return self._backend.name

    @property
    def id(self) -> str:
        return self._backend.id

    @property
    def address(self) -> str:
        return self._backend.address

    @property
    def weight(self) -> int:
        return self._backend.weight

    @property
    def active(self) -> int:
        """Requests (TCP: connections) in flight on this server."""
        return self._backend.active

    def __repr__(self) -> str:
        return f"<Server {self.name} weight={self.weight} active={self.active}>"


def headers_of(fields: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """A request's fields by lower-case name, values decoded as Latin-1 (RFC 9110 5.5) and
    several lines of one name joined with ", " (RFC 9110 5.3; "; " for cookie, RFC 6265
    5.4). A plain dict: the policy may read it any way, and changing it changes nothing."""
    out: dict[str, str] = {}
    for raw_name, raw_value in fields:
        name = raw_name.decode("latin-1").lower()
        value = raw_value.decode("latin-1").strip(" \t")
        if name in out:
            out[name] = out[name] + ("; " if name == "cookie" else ", ") + value
        else:
            out[name] = value
    return out


class Request:
    """What a custom policy sees of one request: decoded only when read. A TCP connection
    is a request with only `client_ip` (the other fields are empty)."""

    __slots__ = ("_head", "_headers", "_ip")

    def __init__(self, head: RequestHead | None, client_ip: bytes) -> None:
        self._head = head
        self._ip = client_ip
        self._headers: dict[str, str] | None = None

    @property
    def client_ip(self) -> str:
        return self._ip.decode("latin-1")

    @property
    def method(self) -> str:
        return self._head.method.decode("latin-1") if self._head is not None else ""

    @property
    def target(self) -> str:
        """The request target as received: path and query."""
        return self._head.target.decode("latin-1") if self._head is not None else ""

    @property
    def path(self) -> str:
        return self.target.partition("?")[0]

    @property
    def query(self) -> str:
        return self.target.partition("?")[2]

    @property
    def host(self) -> str:
        """The Host field as sent (port included, if any); "" without one."""
        head = self._head
        return head.host.decode("latin-1") if head is not None and head.host else ""

    @property
    def headers(self) -> dict[str, str]:
        """Built on first access: a policy that never reads it never pays for it."""
        if self._headers is None:
            self._headers = headers_of(self._head.fields if self._head is not None else [])
        return self._headers

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.target} from {self.client_ip}>"


class _Flight:
    """One request started on a server, until it ends (kept only if the class has on_end)."""

    __slots__ = ("head", "request", "started")

    def __init__(self, request: Request, started: float) -> None:
        self.request = request
        self.head = request._head
        self.started = started


class CustomPolicy(Policy):
    """A user's class, built from the pool's spec, behind rota's `Policy` interface."""

    __slots__ = (
        "_backups",
        "_clock",
        "_errors",
        "_flights",
        "_on_end",
        "_on_start",
        "_picked",
        "_primaries",
        "_servers",
        "name",
        "user",
    )

    def __init__(self, spec: PoolSpec, clock: Callable[[], float] = time.monotonic) -> None:
        self.name = spec.algorithm
        self._clock = clock  # the latency on_end hears: the loop's time, or simulated time
        self.user: Any = instantiate(load_class(spec.algorithm), spec.options)
        self._on_start = getattr(self.user, "on_start", None)
        self._on_end = getattr(self.user, "on_end", None)
        self._servers: dict[Backend, Server] = {}
        self._primaries: tuple[Server, ...] = ()
        self._backups: tuple[Server, ...] = ()
        # pick -> started: the data path calls them back to back (rota.proxy.exchange,
        # rota.proxy.tcp), so the request of the last pick is the one that starts.
        self._picked: Request | None = None
        self._flights: dict[Backend, list[_Flight]] = {}
        self._errors: set[tuple[str, str, str]] = set()

    def update(self, backends: tuple[Backend, ...]) -> None:
        old = self._servers
        self._servers = {b: old.get(b) or Server(b) for b in backends}
        views = self._servers.values()
        self._primaries = tuple(s for s in views if not s.backup)
        self._backups = tuple(s for s in views if s.backup)

    def pick(
        self, tried: Container[Backend], head: RequestHead | None, client_ip: bytes
    ) -> Backend | None:
        # Backups only when no primary can take it (HAProxy's `backup`).
        servers = [s for s in self._primaries if s._backend.up and s._backend not in tried]
        if not servers:
            servers = [s for s in self._backups if s._backend.up and s._backend not in tried]
            if not servers:
                return None
        request = Request(head, client_ip)
        try:
            chosen = self.user.pick(request, servers)
        except Exception as exc:
            self._report("pick", exc)
            return None
        if chosen is None:
            return None
        for server in servers:
            if chosen is server:  # identity: a policy's own __eq__ must not fool it
                self._picked = request
                return self._backend_of(server)
        self._report("pick", ValueError(f"returned {chosen!r}, not one of the servers given"))
        return None

    @staticmethod
    def _backend_of(server: Server) -> Backend:
        # A function of its own: after `chosen is server`, mypy takes the server as Any.
        return server._backend

    def started(self, backend: Backend) -> None:
        request, self._picked = self._picked, None
        if request is None or (self._on_start is None and self._on_end is None):
            return
        server = self._servers.get(backend)
        if server is None:
            return
        if self._on_end is not None:
            self._flights.setdefault(backend, []).append(_Flight(request, self._clock()))
        if self._on_start is not None:
            try:
                self._on_start(server, request)
            except Exception as exc:
                self._report("on_start", exc)

    def ended(self, backend: Backend, outcome: Outcome) -> None:
        if self._on_end is None:
            return
        flight = self._take(backend, outcome)
        if flight is None:
            return
        server = self._servers.get(backend) or Server(backend)  # it may have left the pool
        latency = self._clock() - flight.started
        try:
            self._on_end(server, flight.request, outcome.status, latency)
        except Exception as exc:
            self._report("on_end", exc)

    def _take(self, backend: Backend, outcome: Outcome) -> _Flight | None:
        """The flight `outcome` ends. `ended` does not carry the request: an HTTP exchange
        is its own outcome and holds its head, which identifies the flight; a TCP
        connection has none, and its flights on one server end first-in, first-out
        (they differ only in client address)."""
        flights = self._flights.get(backend)
        if not flights:
            return None
        head = getattr(outcome, "head", None)
        index = 0
        if head is not None:
            index = next((i for i, f in enumerate(flights) if f.head is head), -1)
            if index < 0:
                return None
        flight = flights.pop(index)
        if not flights:
            del self._flights[backend]
        return flight

    def _report(self, where: str, exc: Exception) -> None:
        """Log an error of the user's policy once per distinct (method, type, message)."""
        key = (where, type(exc).__name__, str(exc))
        errors = self._errors
        if key in errors or len(errors) > MAX_DISTINCT_ERRORS:
            return
        errors.add(key)
        if len(errors) > MAX_DISTINCT_ERRORS:
            log.error(
                "policy %s: over %d distinct errors; no more are logged",
                self.name,
                MAX_DISTINCT_ERRORS,
            )
            return
        log.error(
            "policy %s: %s failed: %s (each distinct error logged once)",
            self.name,
            where,
            _describe(exc),
        )
