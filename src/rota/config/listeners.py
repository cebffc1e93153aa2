"""The shape with `listeners` and `pools` (docs/configuration.md):

    [listeners.web]                       [pools.api]
    bind = "127.0.0.1:8080"               servers = [{ host = "127.0.0.1", port = 5001 }]
    [[listeners.web.routes]]
    pool = "api"

Top-level `health_check`, `timeouts` and `limits` are defaults each listener and pool
overrides key by key; the specs built here hold the resolved values.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from rota.config import balancing, routes, sections, tls
from rota.config.access_log import access_log
from rota.config.model import (
    Config,
    LimitSpec,
    ListenerSpec,
    Mode,
    PoolSpec,
    RouteSpec,
    SniRoute,
    TimeoutSpec,
)
from rota.config.reader import Reader, show
from rota.http.routing import shadowed

TOP_KEYS = (
    "listeners",
    "pools",
    "workers",
    "drain_timeout",
    "admin",
    "health_check",
    "timeouts",
    "limits",
    "access_log",
)
LISTENER_KEYS = (
    "bind",
    "protocol",
    "routes",
    "pool",
    "timeouts",
    "limits",
    "send_proxy",
    "accept_proxy",
    "via",
    "tls",
    "sni_routes",
)
POOL_KEYS = (
    "servers",
    *balancing.POOL_BALANCING_KEYS,
    "health_check",
    "timeouts",
    "limits",
    "tls",
)
# The seed's keys have a place in this shape; an error says where.
SEED_ONLY = {
    "server_list": "list servers in [pools.NAME]",
    "backends": "list servers in [pools.NAME]",
    "listen": "set bind in [listeners.NAME]",
    "mode": "set protocol in [listeners.NAME]",
    "algorithm": "set algorithm in [pools.NAME]",
    "send_proxy": "set send_proxy in a tcp [listeners.NAME]",
    "accept_proxy": "set accept_proxy in a tcp [listeners.NAME]",
}
# Names appear in logs, metrics and TOML table headers: keep them bare-key safe.
NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
WILDCARDS = frozenset({"0.0.0.0", "::", ""})


def build_site(data: Mapping[str, Any], source: str, flags: Mapping[str, str]) -> Config:
    r = Reader(source, flags)
    for key in data:
        if key in SEED_ONLY:
            raise r.fail(key, f"not allowed with listeners and pools: {SEED_ONLY[key]}")
    r.section("", data, TOP_KEYS)
    health_raw = r.table("health_check", data.get("health_check", {}))
    health = sections.health(r, "health_check", health_raw)
    timeouts = sections.timeouts(
        r, "timeouts", data.get("timeouts", {}), sections.TIMEOUT_KEYS, TimeoutSpec()
    )
    limits = sections.limits(r, "limits", data.get("limits", {}), sections.LIMIT_KEYS, LimitSpec())
    workers = sections.workers(r, data.get("workers", 1))
    drain_timeout = sections.drain_timeout(r, data)

    root = tls.base_dir(source)
    pool_tables = _named(r, "pools", data.get("pools"), "pool")
    pools = tuple(
        _pool(r, f"pools.{name}", name, raw, health_raw, timeouts, limits, root)
        for name, raw in pool_tables.items()
    )
    listener_tables = _named(r, "listeners", data.get("listeners"), "listener")
    listeners = tuple(
        _listener(r, f"listeners.{name}", name, raw, pool_tables, timeouts, limits, root)
        for name, raw in listener_tables.items()
    )
    _check_binds(r, listeners)
    return Config(
        listeners=listeners,
        pools=pools,
        workers=workers,
        drain_timeout=drain_timeout,
        health=health,
        timeouts=timeouts,
        limits=limits,
        source=source,
        access_log=access_log(r, data),
    )


def _named(r: Reader, path: str, value: object, what: str) -> Mapping[str, Any]:
    if value is None:
        raise r.fail(path, f"missing: define at least one {what} ([{path}.NAME])")
    table = r.table(path, value)
    if not table:
        raise r.fail(path, f"no {what}s: define at least one ([{path}.NAME])")
    for name in table:
        if not NAME.fullmatch(name):
            raise r.fail(path, f"{show(name)}: a {what} name is 1-64 letters, digits, _ and -")
    return table


def _pool(
    r: Reader,
    path: str,
    name: str,
    raw: object,
    health_raw: Mapping[str, Any],
    timeouts: TimeoutSpec,
    limits: LimitSpec,
    root: str,
) -> PoolSpec:
    section = r.section(path, raw, POOL_KEYS)
    backend_tls = tls.pool_tls(r, f"{path}.tls", section["tls"], root) if "tls" in section else None
    health = sections.health(
        r, f"{path}.health_check", section.get("health_check", {}), ("health_check", health_raw)
    )
    return PoolSpec(
        name=name,
        servers=sections.servers(r, f"{path}.servers", section.get("servers"), "server"),
        **balancing.pool_keys(r, path, section),
        health=replace(health, tls=backend_tls),
        tls=backend_tls,
        timeouts=sections.timeouts(
            r, f"{path}.timeouts", section.get("timeouts", {}), sections.POOL_TIMEOUTS, timeouts
        ),
        limits=sections.limits(
            r, f"{path}.limits", section.get("limits", {}), sections.POOL_LIMITS, limits
        ),
    )


def _listener(
    r: Reader,
    path: str,
    name: str,
    raw: object,
    pools: Mapping[str, Any],
    timeouts: TimeoutSpec,
    limits: LimitSpec,
    root: str,
) -> ListenerSpec:
    section = r.section(path, raw, LISTENER_KEYS)
    if "bind" not in section:
        raise r.fail(f"{path}.bind", 'missing: the address to listen on, like "127.0.0.1:8080"')
    host, port = parse_bind(r, f"{path}.bind", section["bind"])
    protocol = Mode(
        r.choice(f"{path}.protocol", section.get("protocol", "http"), tuple(m.value for m in Mode))
    )
    send_proxy, accept_proxy = sections.proxy_protocol(r, path, section, protocol, "protocol")
    via = sections.via(r, path, section, protocol, "protocol")
    pool: str | None = None
    route_specs: tuple[RouteSpec, ...] = ()
    listener_tls = None
    if "tls" in section:
        listener_tls = tls.listener_tls(r, f"{path}.tls", section["tls"], protocol, root)
        if accept_proxy:
            raise r.fail(f"{path}.accept_proxy", "not supported with tls on the same listener")
    sni_routes: tuple[SniRoute, ...] = ()
    if "sni_routes" in section:
        if protocol is not Mode.TCP:
            raise r.fail(
                f"{path}.sni_routes", 'only for protocol "tcp"; an http listener has routes'
            )
        if listener_tls is not None:
            raise r.fail(
                f"{path}.sni_routes",
                "passes TLS on undecrypted: not with tls (which decrypts) on the same listener",
            )
        if accept_proxy:
            raise r.fail(f"{path}.accept_proxy", "not supported with sni_routes")
        sni_routes = tls.sni_routes(r, f"{path}.sni_routes", section["sni_routes"], pools)
    if protocol is Mode.TCP:
        if "routes" in section:
            raise r.fail(f"{path}.routes", 'only for protocol "http"; a tcp listener has one pool')
        if "pool" not in section and not sni_routes:
            raise r.fail(f"{path}.pool", "missing: the pool a tcp listener sends connections to")
        if "pool" in section:
            pool = r.text(f"{path}.pool", section["pool"])
            if pool not in pools:
                raise r.fail(f"{path}.pool", routes.missing_pool(pool, pools))
    else:
        if "pool" in section:
            raise r.fail(
                f"{path}.pool",
                'only for protocol "tcp"; an http listener sends requests by routes '
                "(a route with pool alone matches every request)",
            )
        route_specs = _routes(r, f"{path}.routes", section.get("routes"), pools)
    return ListenerSpec(
        name=name,
        host=host,
        port=port,
        protocol=protocol,
        routes=route_specs,
        pool=pool,
        timeouts=sections.timeouts(
            r,
            f"{path}.timeouts",
            section.get("timeouts", {}),
            sections.LISTENER_TIMEOUTS,
            timeouts,
        ),
        limits=sections.limits(
            r, f"{path}.limits", section.get("limits", {}), sections.LISTENER_LIMITS, limits
        ),
        send_proxy=send_proxy,
        accept_proxy=accept_proxy,
        via=via,
        tls=listener_tls,
        sni_routes=sni_routes,
    )


def _routes(r: Reader, path: str, value: object, pools: Mapping[str, Any]) -> tuple[RouteSpec, ...]:
    if value is None:
        raise r.fail(path, "missing: an http listener needs at least one route")
    items = r.items(path, value, "routes")
    if not items:
        raise r.fail(path, "no routes: list at least one")
    specs: list[RouteSpec] = []
    catch_all: int | None = None
    for i, item in enumerate(items):
        spec = routes.route(r, f"{path}[{i}]", item, pools)
        if catch_all is not None:
            raise r.fail(
                f"{path}[{i}]", f"can never match: routes[{catch_all}] matches every request"
            )
        if spec.matches_all:
            catch_all = i
        specs.append(spec)
    # Beyond a catch-all: an earlier route as wide on every key (rota.http.routing).
    for later, earlier in sorted(shadowed(specs).items()):
        raise r.fail(
            f"{path}[{later}]",
            f"can never match: routes[{earlier}] matches every request it matches",
        )
    return tuple(specs)


def parse_bind(r: Reader, path: str, value: object) -> tuple[str, int]:
    """`host:port` or `[v6]:port` -> (host, port). Port 0 asks the system for a free port."""
    text = r.text(path, value)
    expected = f'expected "host:port" or "[IPv6]:port", got {show(text)}'
    host, colon, port_text = text.rpartition(":")
    if not colon or not host:
        raise r.fail(path, expected)
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise r.fail(path, expected) from None
    elif ":" in host:
        raise r.fail(path, f"{expected} (an IPv6 address goes in brackets)")
    elif " " in host:
        raise r.fail(path, expected)
    if not (port_text.isascii() and port_text.isdigit() and int(port_text) <= 65535):
        raise r.fail(path, f"expected a port 0-65535 after the colon, got {show(text)}")
    return host, int(port_text)


def _check_binds(r: Reader, listeners: tuple[ListenerSpec, ...]) -> None:
    # Port 0 is a fresh port for each listener: never a clash. A wildcard address takes
    # the port on every address, so it clashes with any other listener on that port.
    seen: list[ListenerSpec] = []
    for spec in listeners:
        for other in seen:
            if spec.port == 0 or spec.port != other.port:
                continue
            if spec.host == other.host or WILDCARDS & {spec.host, other.host}:
                raise r.fail(
                    f"listeners.{spec.name}.bind",
                    f"{spec.address} is also bound by listeners.{other.name} ({other.address})",
                )
        seen.append(spec)
