"""The configuration model: frozen dataclasses, validated once at load time.

A configuration is a set of **listeners** (an address and a protocol), each sending traffic
by **routes** to named **pools** of servers (HAProxy's frontends and backends, Envoy's
listeners, routes and clusters). The seed's `server_db.json` is the smallest such set: one
listener, one pool named `default`, one catch-all route.

Every field has a finite, documented default (docs/configuration.md). The top-level
`health_check`, `timeouts` and `limits` are defaults that a listener or a pool overrides
key by key; the specs below hold the resolved values. Nothing here does I/O;
`rota.config.load` turns a file plus command-line overrides into a `Config`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from enum import Enum
from typing import Any, Final

# rota.native compiles this module. mypyc's frozen dataclasses cannot be unpickled (its
# restore assigns fields one by one, which frozen forbids), and `--workers` sends the config
# to each worker pickled: each class rebuilds itself through its constructor instead.
Reduced = tuple[Any, tuple[Any, ...]]


def _reduce(spec: Any) -> Reduced:
    return type(spec), tuple(getattr(spec, f.name) for f in fields(spec))


class Mode(Enum):
    """A listener's protocol."""

    HTTP = "http"
    TCP = "tcp"


class CheckKind(Enum):
    HTTP = "http"
    TCP = "tcp"


# The built-in balancing algorithms a pool may name (each a key of rota.balancing.POLICIES;
# a test holds the two together). The loader stores `round_robin` for `roundrobin`, the
# seed's name for it, still accepted. Any other algorithm is "package.module:ClassName".
ALGORITHMS: Final[tuple[str, ...]] = (
    "round_robin",
    "roundrobin",
    "least_requests",
    "p2c",
    "random",
    "hash",
    "first",
)
ALGORITHM_ALIASES: Final[dict[str, str]] = {"roundrobin": "round_robin"}


def hostport(host: str, port: int) -> str:
    """`127.0.0.1:80`, `[::1]:80`: how rota writes an address everywhere."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass(frozen=True, slots=True)
class BackendSpec:
    """One server of a pool ("server" in HAProxy, "host" in Envoy). `id` is its stable
    identity within the pool: the config's `id`, else its `name` (never a list index)."""

    name: str
    host: str
    port: int
    weight: int = 1
    id: str = ""
    backup: bool = False  # used only when no primary server of the pool is up
    max_requests: int | None = None  # in flight at once; more wait in the pool's queue

    @property
    def address(self) -> str:
        return hostport(self.host, self.port)

    @property
    def key(self) -> str:
        return self.id or self.name

    def __reduce__(self) -> Reduced:
        return _reduce(self)


@dataclass(frozen=True, slots=True)
class BackendTlsSpec:
    """A pool's `tls`: speak TLS to its servers (and to their health checks). `verify`
    checks the chain against `ca` (a PEM file; None: the system's trust store) and the
    name `sni` (None: the server's host), which is also sent as SNI."""

    verify: bool = True
    ca: str | None = None
    sni: str | None = None

    def __reduce__(self) -> Reduced:
        return _reduce(self)


@dataclass(frozen=True, slots=True)
class HealthSpec:
    """Active health checks, HAProxy semantics: `rise` passes bring a backend UP,
    `fall` failures take it DOWN."""

    interval: float = 5.0
    timeout: float = 2.0
    path: str = "/health"
    status_min: int = 200
    status_max: int = 399
    rise: int = 2
    fall: int = 3
    kind: CheckKind = CheckKind.HTTP
    # The pool's `tls`, copied here by the loader: a check speaks TLS as traffic does,
    # and two pools checking one address differently are two checks.
    tls: BackendTlsSpec | None = None

    def __reduce__(self) -> Reduced:
        return _reduce(self)


@dataclass(frozen=True, slots=True)
class TimeoutSpec:
    """Every timeout is finite by default; seconds. A listener reads `header`, `idle`,
    `body` and `tunnel`; a pool reads `connect`, `response` and `pool_idle`."""

    connect: float = 3.0  # TCP connect to a backend; then the next backend
    header: float = 10.0  # the whole request head from a client: 408
    idle: float = 60.0  # between keep-alive requests from a client: silent close
    response: float = 60.0  # the backend's response head: 504 (nginx's proxy_read_timeout)
    body: float = 60.0  # silence in either direction mid-body: close both
    pool_idle: float = 15.0  # an idle pooled backend connection is closed after this
    tunnel: float = 3600.0  # silence both ways in a WebSocket tunnel: close both

    def __reduce__(self) -> Reduced:
        return _reduce(self)


@dataclass(frozen=True, slots=True)
class LimitSpec:
    """A listener reads every limit but `pool_size`; a pool reads `pool_size` (and, for the
    bound of its idle connections, the top-level `max_connections`)."""

    max_request_line: int = 8 * 1024  # 414 over it
    max_header_bytes: int = 32 * 1024  # the whole head; 431 over it
    max_headers: int = 100  # 431 over it
    max_body_bytes: int | None = None  # 413 over it; None: unlimited
    max_connections: int = 10_000  # concurrent client connections per worker
    # Idle keep-alive connections kept per backend. None: as many as can be busy at once,
    # the server's max_requests, else max_connections (rota.proxy.upstream.idle_bound).
    pool_size: int | None = None

    def __reduce__(self) -> Reduced:
        return _reduce(self)


@dataclass(frozen=True, slots=True)
class HeaderEdits:
    """Header fields a route sets (replacing any of the same name) and removes."""

    set: tuple[tuple[str, str], ...] = ()
    remove: tuple[str, ...] = ()  # lower-case names

    def __bool__(self) -> bool:
        return bool(self.set or self.remove)

    def __reduce__(self) -> Reduced:
        return _reduce(self)


@dataclass(frozen=True, slots=True)
class Redirect:
    location: str
    status: int = 302  # 301, 302, 303, 307 or 308

    def __reduce__(self) -> Reduced:
        return _reduce(self)


@dataclass(frozen=True, slots=True)
class Respond:
    status: int = 200
    body: str = ""
    content_type: str = "text/plain; charset=utf-8"

    def __reduce__(self) -> Reduced:
        return _reduce(self)


@dataclass(frozen=True, slots=True)
class RouteSpec:
    """One route of an HTTP listener: match keys (all optional; none matches everything)
    and one action: `pool` (with optional rewrites), `redirect` or `respond`."""

    pool: str | None = None
    host: str | None = None  # lower-case; exact, or "*.example.com"
    path: str | None = None  # exact path (the query is not part of it)
    path_prefix: str | None = None
    methods: tuple[str, ...] = ()  # upper-case
    headers: tuple[tuple[str, str], ...] = ()  # (lower-case name, exact value)
    strip_prefix: str | None = None
    request_headers: HeaderEdits = field(default_factory=HeaderEdits)
    response_headers: HeaderEdits = field(default_factory=HeaderEdits)
    redirect: Redirect | None = None
    respond: Respond | None = None

    @property
    def matches_all(self) -> bool:
        return (
            self.host is None
            and self.path is None
            and self.path_prefix is None
            and not self.methods
            and not self.headers
        )

    def __reduce__(self) -> Reduced:
        return _reduce(self)


@dataclass(frozen=True, slots=True)
class CertificateSpec:
    """One certificate of a TLS listener: PEM files, paths resolved from the config's
    directory. The names it serves come from its subjectAltName entries."""

    cert: str
    key: str

    def __reduce__(self) -> Reduced:
        return _reduce(self)


@dataclass(frozen=True, slots=True)
class ListenerTlsSpec:
    """A listener's `tls`: terminate TLS with these certificates (docs/tls.md)."""

    certificates: tuple[CertificateSpec, ...]
    min_version: str = "1.2"  # "1.2" or "1.3"
    alpn: tuple[str, ...] = ()
    strict_sni: bool = False  # refuse a handshake whose SNI matches no certificate

    def __reduce__(self) -> Reduced:
        return _reduce(self)


@dataclass(frozen=True, slots=True)
class SniRoute:
    """A TCP listener's passthrough route: a ClientHello for `sni` (exact, or
    "*.example.com") goes to `pool`, still encrypted."""

    sni: str
    pool: str

    def __reduce__(self) -> Reduced:
        return _reduce(self)


@dataclass(frozen=True, slots=True)
class ListenerSpec:
    """An address rota accepts connections on. HTTP listeners route each request by
    `routes`; a TCP listener sends every connection to `pool`."""

    name: str
    host: str
    port: int
    protocol: Mode = Mode.HTTP
    routes: tuple[RouteSpec, ...] = ()
    pool: str | None = None  # TCP listeners only
    timeouts: TimeoutSpec = field(default_factory=TimeoutSpec)
    limits: LimitSpec = field(default_factory=LimitSpec)
    # TCP listeners only. PROXY protocol version sent to backends (1, 2) or None: see
    # docs/tcp-mode.md. accept_proxy: every client must open with a PROXY header.
    send_proxy: int | None = None
    accept_proxy: bool = False
    # HTTP listeners only: add `Via: 1.1 rota` to forwarded requests (docs/configuration.md
    # says why it is off by default: nginx does not compress responses to a request with Via).
    via: bool = False
    tls: ListenerTlsSpec | None = None  # terminate TLS (HTTP and TCP listeners)
    # TCP listeners only: route by the ClientHello's SNI without decrypting; `pool`, if
    # set, takes what matches none (else such a connection is closed).
    sni_routes: tuple[SniRoute, ...] = ()

    @property
    def address(self) -> str:
        return hostport(self.host, self.port)

    def __reduce__(self) -> Reduced:
        return _reduce(self)


@dataclass(frozen=True, slots=True)
class PoolSpec:
    """A named set of servers behind one balancing policy and one health check."""

    name: str
    servers: tuple[BackendSpec, ...]
    algorithm: str = "round_robin"  # a built-in's name, or "package.module:ClassName"
    health: HealthSpec = field(default_factory=HealthSpec)
    timeouts: TimeoutSpec = field(default_factory=TimeoutSpec)
    limits: LimitSpec = field(default_factory=LimitSpec)

    # Balancing (issue 14): a server coming back UP ramps up over `slow_start` seconds
    # (0: at once); `hash_key` ("client_ip", "header:NAME", "cookie:NAME", "path",
    # "query:NAME") and `hash_balance_factor` (0: unbounded) for `hash`; `options` for a
    # policy of the user's own; `sticky_cookie` names the cookie of sticky sessions;
    # `queue_timeout` is how long a request may wait for a server below `max_requests`.
    slow_start: float = 0.0
    hash_key: str = ""
    hash_balance_factor: float = 0.0
    options: dict[str, Any] = field(default_factory=dict)
    sticky_cookie: str | None = None
    queue_timeout: float = 0.0
    tls: BackendTlsSpec | None = None  # speak TLS to the servers

    def __reduce__(self) -> Reduced:
        return _reduce(self)


ACCESS_LOG_FORMATS: Final[tuple[str, ...]] = ("json", "combined")


@dataclass(frozen=True, slots=True)
class AccessLogSpec:
    """`[access_log]`: one line per request (per connection for TCP listeners), written
    off the event loop (rota.observe.access_log). `path` None: off; "-": stdout."""

    path: str | None = None
    format: str = "json"  # one of ACCESS_LOG_FORMATS

    def __reduce__(self) -> Reduced:
        return _reduce(self)


@dataclass(frozen=True, slots=True)
class AdminSpec:
    """The admin listener: metrics, the JSON API and the dashboard (rota.admin)."""

    host: str
    port: int
    token_file: str | None = None  # None: no token, and a loopback address only

    @property
    def address(self) -> str:
        return hostport(self.host, self.port)

    def __reduce__(self) -> Reduced:
        return _reduce(self)


@dataclass(frozen=True, slots=True)
class Config:
    """The whole configuration. `health`, `timeouts` and `limits` are the top-level
    defaults, already folded into every listener and pool."""

    listeners: tuple[ListenerSpec, ...]
    pools: tuple[PoolSpec, ...]
    workers: int = 1
    # Seconds a stopping or upgraded-away process gives what is in flight (requests,
    # WebSocket and TCP tunnels) before it cuts them (`drain_timeout`, `--drain-timeout`).
    drain_timeout: float = 30.0
    health: HealthSpec = field(default_factory=HealthSpec)
    timeouts: TimeoutSpec = field(default_factory=TimeoutSpec)
    limits: LimitSpec = field(default_factory=LimitSpec)
    source: str = "<defaults>"
    # Read from the seed's shape (server_list, listen, mode): one listener, one pool.
    seed: bool = False
    admin: AdminSpec | None = None
    access_log: AccessLogSpec = field(default_factory=AccessLogSpec)

    def pool(self, name: str) -> PoolSpec:
        for spec in self.pools:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def __reduce__(self) -> Reduced:
        return _reduce(self)
