"""The one owner of what runs in a process: its pools, listeners and their routes.

`Runtime` builds everything a `Config` describes, in the order that keeps it simple: pools
first (servers, policies, idle-connection stacks), then listeners (HTTP or TCP, each with
its own limits and timeouts, routing to the pools). The same object runs a single-process
rota and each `--workers` worker; the supervisor builds one without listeners, for the
pools' health states. Health does not live here: whoever runs the checks (this process's
`HealthMonitor`, or the supervisor over the control channel) calls `set_health`.

`apply(new_config)` moves a running instance to a new configuration: pools gain, lose or
re-weigh servers by id (exchanges on a removed server finish; its idle connections close),
listeners take new routes, limits and timeouts, and listeners added or removed are started or
drained. A listener whose address or protocol changed is replaced.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import ssl
from collections.abc import Callable, Collection
from dataclasses import dataclass

from rota.balancing import make_policy
from rota.config.model import Config, ListenerSpec, Mode, PoolSpec, hostport
from rota.handover import Held
from rota.health.report import advice, transition_lines
from rota.observe.metrics import Stats
from rota.outcome import Observer
from rota.pool import Backend, CheckKey, Pool, State
from rota.proxy.batching import WriteBatch
from rota.proxy.context import BackendErrorHook, ProxyContext
from rota.proxy.listener import bind
from rota.proxy.server import HttpListener
from rota.proxy.tcp import TcpSettings
from rota.proxy.tcp_server import TcpProxy, drain
from rota.proxy.upstream import UpstreamPool, idle_bound
from rota.tls.certs import CertProblem
from rota.tls.client import client_context
from rota.tls.failures import HandshakeFailures
from rota.tls.passthrough import SniTable
from rota.tls.server import ServerTls, warn_expired

log = logging.getLogger("rota")

ADMIN_REASON = "by the admin API"  # the reason of every change an operator makes there


class ListenError(Exception):
    """A listening socket could not be bound (exit code 1)."""


# Where a listener's sockets come from: bound here (the default), handed over by the
# process before an upgrade, or given by the supervisor to a worker. Raises OSError.
SocketSource = Callable[[ListenerSpec], list[socket.socket]]


@dataclass
class Running:
    """One listener as it runs: its spec and its HTTP or TCP server."""

    spec: ListenerSpec
    http: HttpListener | None = None
    tcp: TcpProxy | None = None

    @property
    def sockets(self) -> list[socket.socket]:
        if self.http is not None:
            return self.http.sockets
        return self.tcp.sockets if self.tcp is not None else []

    @property
    def port(self) -> int:
        """The port as bound: with port 0 the kernel chose it."""
        sockets = self.sockets
        return int(sockets[0].getsockname()[1]) if sockets else self.spec.port

    def tls_failures(self) -> list[HandshakeFailures]:
        """The counts of failed TLS handshakes (and, for SNI passthrough, of ClientHellos
        that could not be routed), for /metrics."""
        found = []
        if self.http is not None and self.http.tls is not None:
            found.append(self.http.tls.failures)
        if self.tcp is not None:
            if self.tcp.tls is not None:
                found.append(self.tcp.tls.failures)
            if self.tcp.sni is not None:
                found.append(self.tcp.sni_failures)
        return found

    def serves(self, spec: ListenerSpec) -> bool:
        """Whether this running listener can take `spec` as it is: same protocol, same
        address (port 0 in `spec`: whatever port it was given)."""
        if spec.protocol is not self.spec.protocol or spec.host != self.spec.host:
            return False
        if (spec.tls is None) != (self.spec.tls is None):
            return False  # plain to TLS or back: a new listener (a new accept path)
        return spec.port == 0 or spec.port == self.port

    def bound(self) -> str:
        """host:port as bound."""
        return hostport(self.spec.host, self.port)


class Runtime:
    def __init__(
        self,
        config: Config,
        loop: asyncio.AbstractEventLoop,
        *,
        reuse_port: bool = False,
        log_transitions: bool = True,
        listen: bool = True,
        sockets: SocketSource | None = None,
    ) -> None:
        self.config = config
        self.sockets_for = sockets or self._bind_new
        # Set by a second stop signal: drains end at once.
        self.cut = asyncio.Event()
        self.draining: set[asyncio.Task[None]] = set()  # listeners removed by apply
        self.loop = loop
        self.reuse_port = reuse_port
        # False for the supervisor of workers: pools and health only, never a listener.
        self.listen = listen
        self.log_transitions = log_transitions
        self.batch = WriteBatch()
        self.pools: dict[str, Pool] = {}
        self.listeners: dict[str, Running] = {}
        self.observers: list[Observer] = []
        # Whether an observer reads each request's facts (the access log does).
        self.describe = False
        # Counters for /metrics and the admin API (rota.observe.metrics); None: off.
        self.stats: Stats | None = None
        # Set by whoever runs the health checks: hears of passive failures.
        self.on_backend_error: BackendErrorHook | None = None
        # Why each server DOWN went down (its health state; admin changes leave it), for
        # the one line of advice when a whole pool fails its check the same way.
        self.down_reasons: dict[Backend, str] = {}
        for spec in config.pools:
            self.pools[spec.name] = self._build_pool(spec)

    def __repr__(self) -> str:
        return f"<Runtime {len(self.listeners)} listeners {len(self.pools)} pools>"

    # pools

    def _build_pool(self, spec: PoolSpec) -> Pool:
        pool = Pool(spec.servers, spec.name, spec.health, make_policy(spec), spec.timeouts)
        _set_tls(pool, spec)
        pool.set_sticky(spec.sticky_cookie)
        pool.queue_timeout = spec.queue_timeout
        for backend in pool.backends:
            self._hang_idle(backend, spec)
        if self.log_transitions:
            pool.subscribe(self._log_change)
        return pool

    def _hang_idle(self, backend: Backend, spec: PoolSpec) -> None:
        limit = idle_bound(spec.limits, backend.max_requests)
        backend.idle = UpstreamPool(backend, limit, spec.timeouts.pool_idle, self.batch)

    def _log_change(self, backend: Backend, reason: str) -> None:
        pool = backend.pool
        name = backend.name if self.config.seed else f"{pool.name}/{backend.name}"
        if backend.state is State.DOWN:
            self.down_reasons.setdefault(backend, reason)
        else:
            self.down_reasons.pop(backend, None)
        up = pool.up_count()
        if reason.endswith(ADMIN_REASON):
            # An operator's change (rota.admin): say what they set, not the health state.
            who = name if name == backend.address else f"{name} {backend.address}"
            what = backend.admin.value.upper()
            log.info("backend %s %s (%s; %d/%d up)", who, what, reason, up, len(pool))
            return
        for line in transition_lines(name, backend.address, backend.state, reason, up, len(pool)):
            log.info(line)
        if backend.state is State.DOWN and up == 0 and reason:
            reasons = [self.down_reasons.get(b, "") for b in pool.backends]
            hint = advice(pool.name, reasons, pool.health, self.config.seed)
            if hint is not None:
                log.warning(hint)

    def checks(self) -> dict[CheckKey, str]:
        """Every distinct health check of every pool, with a name for logs."""
        found: dict[CheckKey, str] = {}
        for pool in self.pools.values():
            for backend in pool.backends:
                found.setdefault(backend.check, backend.address)
        return found

    def set_health(self, key: CheckKey, state: State, reason: str) -> None:
        """A check's verdict, for every server it checks, in every pool."""
        for pool in self.pools.values():
            for backend in pool.backends:
                if backend.check == key:
                    pool.set_state(backend, state, reason)

    def count(self, stats: Stats) -> None:
        """Count traffic from now on (before `start`): every end, refusal and failure."""
        self.stats = stats
        self.observers.append(stats.observe)

    def backend_failed(self, backend: Backend, reason: str) -> None:
        if self.stats is not None:
            self.stats.connect_failed(backend)
        hook = self.on_backend_error
        if hook is not None:
            hook(backend, reason)

    # listeners

    def bind(self) -> None:
        """Bind every listener's socket, or raise ListenError naming the first that fails
        (and bind none)."""
        try:
            for spec in self.config.listeners:
                if spec.name not in self.listeners:
                    self.listeners[spec.name] = self._bind(spec)
        except ListenError:
            for running in self.listeners.values():
                for sock in running.sockets:
                    sock.close()
            self.listeners.clear()
            raise

    def _bind_new(self, spec: ListenerSpec) -> list[socket.socket]:
        return bind(spec.host, spec.port, reuse_port=self.reuse_port)

    def _bind(self, spec: ListenerSpec) -> Running:
        try:
            sockets = self.sockets_for(spec)
        except OSError as exc:
            what = "address already in use" if exc.errno == errno.EADDRINUSE else exc.strerror
            raise ListenError(f"cannot listen on {spec.address}: {what}") from None
        try:
            tls = None
            if spec.tls is not None:
                tls = ServerTls(spec.tls, spec.name, self.loop.time)
                warn_expired(spec.name, tls.certificates.infos)
        except (CertProblem, ssl.SSLError) as exc:
            for sock in sockets:
                sock.close()
            raise ListenError(f"listener {spec.name}: tls: {exc}") from None
        running = Running(spec)
        if spec.protocol is Mode.TCP:
            running.tcp = self._tcp(spec, tls)
            running.tcp.start(sockets)
        else:
            ctx = ProxyContext(spec, self.pools, self.loop, self.batch)
            ctx.observers = self.observers
            ctx.describe = self.describe
            ctx.on_backend_error = self.backend_failed
            running.http = HttpListener(ctx, tls)
            running.http.sockets = sockets
        return running

    def _tcp(self, spec: ListenerSpec, tls: ServerTls | None) -> TcpProxy:
        pool = self.pools[spec.pool] if spec.pool is not None else None
        proxy = TcpProxy(
            pool,
            self._tcp_settings(spec),
            name=spec.name,
            on_backend_error=self.backend_failed,
            loop=self.loop,
            tls=tls,
            sni=self._sni(spec),
        )
        proxy.observers = self.observers
        return proxy

    def _tcp_settings(self, spec: ListenerSpec) -> TcpSettings:
        connect = self.pools[spec.pool].timeouts.connect if spec.pool else spec.timeouts.connect
        return TcpSettings.from_listener(spec, connect)

    def _sni(self, spec: ListenerSpec) -> SniTable[Pool] | None:
        if not spec.sni_routes:
            return None
        default = self.pools[spec.pool] if spec.pool is not None else None
        return SniTable(spec.sni_routes, self.pools, default)

    async def start(self) -> None:
        """Bind (if not yet) and serve every listener."""
        self.bind()
        for running in self.listeners.values():
            if running.http is not None and not running.http.serving:
                await running.http.start(running.http.sockets)

    def ready_lines(self) -> list[str]:
        """What `rota lb` prints once it serves: one line per listener."""
        return [ready_line(self.config, r.spec, r.bound()) for r in self.listeners.values()]

    def held(self) -> list[Held]:
        """Every listening socket this runtime serves, for a binary upgrade."""
        return [
            Held(r.spec.name, r.spec.host, r.port, 0, tuple(r.sockets))
            for r in self.listeners.values()
        ]

    async def adopt(self, name: str, sockets: list[socket.socket]) -> None:
        """Serve more sockets of a running listener (a worker slot whose worker stopped)."""
        running = self.listeners.get(name)
        if running is None:
            for sock in sockets:
                sock.close()
        elif running.http is not None:
            await running.http.start(sockets)
        elif running.tcp is not None and running.tcp.listener is not None:
            running.tcp.listener.add(sockets)

    def hurry(self) -> None:
        """A second stop signal: every drain ends now, cutting what is still open."""
        self.cut.set()

    async def stop(self, grace: float | None = None) -> None:
        """Drain every listener (in parallel) for up to `grace` seconds (the config's
        `drain_timeout`), then close idle backend connections."""
        if grace is None:
            grace = self.config.drain_timeout
        await asyncio.gather(
            *(self._drain(r, grace) for r in self.listeners.values()), *self.draining
        )
        self.listeners.clear()
        for pool in self.pools.values():
            for backend in pool.backends:
                if backend.idle is not None:
                    backend.idle.close_all()

    async def _drain(self, running: Running, grace: float) -> None:
        if running.http is not None:
            if not running.http.serving:
                for sock in running.http.sockets:
                    sock.close()
            await running.http.drain(grace, self.cut)
        elif running.tcp is not None:
            await drain(running.tcp, grace, self.cut)

    # reconfiguration

    async def apply(self, config: Config, start_down: Collection[tuple[str, str]] = ()) -> None:
        """Move to `config` (validated), keeping every connection that can be kept.
        Servers added whose (pool, id) is in `start_down` begin DOWN: they take traffic
        once their health check passes (servers added by the admin API)."""
        before = {spec.name: spec for spec in self.config.pools}
        self.config = config
        for pool_spec in config.pools:
            pool = self.pools.get(pool_spec.name)
            if pool is None:
                self.pools[pool_spec.name] = self._build_pool(pool_spec)
            else:
                self._update_pool(pool, pool_spec, before.get(pool_spec.name), start_down)
        wanted = {spec.name: spec for spec in config.listeners}
        gone = [
            name
            for name, running in self.listeners.items()
            if name not in wanted or not running.serves(wanted[name])
        ]
        # Drains start now (each closes its listening sockets at once, so a replacement
        # can bind the same address) and finish in the background; `stop` waits for them.
        for name in gone:
            task = self.loop.create_task(
                self._drain(self.listeners.pop(name), config.drain_timeout)
            )
            self.draining.add(task)
            task.add_done_callback(self.draining.discard)
        await asyncio.sleep(0)
        for spec in config.listeners:
            running = self.listeners.get(spec.name)
            if running is None:
                continue
            running.spec = spec
            if running.http is not None:
                if running.http.tls is not None and spec.tls is not None:
                    running.http.tls.reload(spec.tls)
                ctx = running.http.ctx
                ctx.listener = spec
                ctx.timeouts = spec.timeouts
                ctx.limits = spec.limits
                ctx.set_routes(spec.routes, self.pools)
            elif running.tcp is not None:
                tcp = running.tcp
                if tcp.tls is not None and spec.tls is not None:
                    tcp.tls.reload(spec.tls)
                tcp.pool = self.pools[spec.pool] if spec.pool is not None else None
                tcp.sni = self._sni(spec)
                tcp.settings = self._tcp_settings(spec)
        if self.listen:
            await self.start()
        for name in [n for n in self.pools if n not in {p.name for p in config.pools}]:
            for backend in self.pools.pop(name).backends:
                _retire_idle(backend)

    def _update_pool(
        self,
        pool: Pool,
        spec: PoolSpec,
        before: PoolSpec | None,
        start_down: Collection[tuple[str, str]] = (),
    ) -> None:
        if before is None or _policy_keys(before) != _policy_keys(spec):
            # A new policy (its state starts afresh); an unchanged one keeps its state.
            pool.policy = make_policy(spec)
            pool.policy.update(pool.backends)
        pool.timeouts = spec.timeouts
        _set_tls(pool, spec)
        pool.set_sticky(spec.sticky_cookie)
        pool.queue_timeout = spec.queue_timeout
        if pool.health != spec.health:
            pool.health = spec.health
            for backend in pool.backends:
                backend.check = (backend.host, backend.port, spec.health)
        wanted = {server.key: server for server in spec.servers}
        for backend in list(pool.backends):
            server = wanted.get(backend.id)
            if server is None or (server.host, server.port) != (backend.host, backend.port):
                pool.remove(backend.id)
                _retire_idle(backend)
        for server in spec.servers:
            existing = pool.get(server.key)
            if existing is None:
                added = pool.add(server)
                self._hang_idle(added, spec)
                if (pool.name, added.id) in start_down:
                    pool.set_state(added, State.DOWN, "new: waiting for its health check")
            else:
                existing.name = server.name
                existing.max_requests = server.max_requests or 0
                pool.refresh()
                if existing.backup != server.backup:
                    existing.backup = server.backup
                    pool.policy.update(pool.backends)
                pool.set_weight(existing, server.weight)
                idle = existing.idle
                if idle is not None:
                    idle.limit = idle_bound(spec.limits, existing.max_requests)
                    idle.max_idle_seconds = spec.timeouts.pool_idle


def ready_line(config: Config, spec: ListenerSpec, address: str, workers: int = 1) -> str:
    """`rota listening on http://127.0.0.1:8080 (...)`: the line tests and operators wait
    for, one per listener (the seed's shape keeps the seed's wording)."""
    several = f", {workers} workers" if workers > 1 else ""
    if config.seed:
        what = f"{len(config.pools[0].servers)} backends{several}"
    elif spec.sni_routes:
        what = f"listener {spec.name}, {len(spec.sni_routes)} sni_routes{several}"
    elif spec.protocol is Mode.TCP:
        what = f"listener {spec.name}, pool {spec.pool}{several}"
    else:
        what = f"listener {spec.name}, {len(spec.routes)} routes{several}"
    scheme = spec.protocol.value
    if spec.tls is not None:
        scheme = "https" if spec.protocol is Mode.HTTP else "tls"
    return f"rota listening on {scheme}://{address} ({what})"


def _set_tls(pool: Pool, spec: PoolSpec) -> None:
    """TLS to the pool's servers: a context built afresh (the CA file re-read) on reload."""
    pool.tls = client_context(spec.tls) if spec.tls is not None else None
    pool.tls_name = spec.tls.sni if spec.tls is not None else None


def _retire_idle(backend: Backend) -> None:
    """A server removed: close its idle connections now, and each busy one once its
    exchange ends (a pool of no room closes what is released to it)."""
    if backend.idle is not None:
        backend.idle.close_all()
        backend.idle.limit = 0


def _policy_keys(spec: PoolSpec) -> tuple[object, ...]:
    """What a pool's policy is built from: a change in any of them builds a new one."""
    return (
        spec.algorithm,
        spec.hash_key,
        spec.hash_balance_factor,
        sorted(spec.options.items()),
        spec.slow_start,
    )
