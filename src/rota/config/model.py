"""The configuration model: frozen dataclasses, validated once at load time.

Every field has a finite, documented default (docs/configuration.md). Nothing here does I/O;
`rota.config.load` turns a file plus command-line overrides into a `Config`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from enum import Enum
from typing import Any

# rota.native compiles this module. mypyc's frozen dataclasses cannot be unpickled (its
# restore assigns fields one by one, which frozen forbids), and `--workers` sends the config
# to each worker pickled: each class rebuilds itself through its constructor instead.
Reduced = tuple[Any, tuple[Any, ...]]


def _reduce(spec: Any) -> Reduced:
    return type(spec), tuple(getattr(spec, f.name) for f in fields(spec))


class Mode(Enum):
    HTTP = "http"
    TCP = "tcp"


class CheckKind(Enum):
    HTTP = "http"
    TCP = "tcp"


@dataclass(frozen=True, slots=True)
class BackendSpec:
    """One backend server ("server" in HAProxy, "host" in Envoy)."""

    name: str
    host: str
    port: int
    weight: int = 1

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

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

    def __reduce__(self) -> Reduced:
        return _reduce(self)


@dataclass(frozen=True, slots=True)
class TimeoutSpec:
    """Every timeout is finite by default; seconds."""

    connect: float = 3.0  # TCP connect to a backend; then the next backend
    header: float = 10.0  # the whole request head from a client: 408
    idle: float = 60.0  # between keep-alive requests from a client: silent close
    response: float = 30.0  # the backend's response head: 504
    body: float = 60.0  # silence in either direction mid-body: close both
    pool_idle: float = 15.0  # an idle pooled backend connection is closed after this

    def __reduce__(self) -> Reduced:
        return _reduce(self)


@dataclass(frozen=True, slots=True)
class LimitSpec:
    max_request_line: int = 8 * 1024  # 414 over it
    max_header_bytes: int = 32 * 1024  # the whole head; 431 over it
    max_headers: int = 100  # 431 over it
    max_body_bytes: int | None = None  # 413 over it; None: unlimited
    max_connections: int = 10_000  # concurrent client connections per worker
    pool_size: int = 128  # idle keep-alive connections kept per backend

    def __reduce__(self) -> Reduced:
        return _reduce(self)


@dataclass(frozen=True, slots=True)
class Config:
    backends: tuple[BackendSpec, ...]
    host: str = "127.0.0.1"
    port: int = 5432
    mode: Mode = Mode.HTTP
    algorithm: str = "roundrobin"
    workers: int = 1
    health: HealthSpec = field(default_factory=HealthSpec)
    timeouts: TimeoutSpec = field(default_factory=TimeoutSpec)
    limits: LimitSpec = field(default_factory=LimitSpec)
    # TCP mode only. PROXY protocol version sent to backends (1, 2) or None: see
    # docs/tcp-mode.md. accept_proxy: every client must open with a PROXY header.
    send_proxy: int | None = None
    accept_proxy: bool = False
    source: str = "<defaults>"

    def __reduce__(self) -> Reduced:
        return _reduce(self)
