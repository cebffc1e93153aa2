"""The seed's shape: one list of backends behind one address, read as one listener named
`default` with one catch-all route to one pool named `default`.

    {"server_list": [{"id": 1, "host": "127.0.0.1", "port": 5001}, ...],
     "listen": {"host": "127.0.0.1", "port": 5432}, "mode": "http",
     "health_check": {...}, "timeouts": {...}, "limits": {...}}

Its error messages are the seed loader's, word for word.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rota.config import balancing, sections
from rota.config.access_log import access_log
from rota.config.model import (
    Config,
    LimitSpec,
    ListenerSpec,
    Mode,
    PoolSpec,
    RouteSpec,
    TimeoutSpec,
)
from rota.config.reader import Reader

SEED_KEYS = (
    "admin",
    "server_list",
    "backends",
    "mode",
    "algorithm",
    "workers",
    "drain_timeout",
    "send_proxy",
    "accept_proxy",
    "via",
    "listen",
    "health_check",
    "timeouts",
    "limits",
    "access_log",
)
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 5432


def build_seed(data: Mapping[str, Any], source: str, flags: Mapping[str, str]) -> Config:
    r = Reader(source, flags, seed=True)
    r.section("", data, SEED_KEYS)
    listen = r.section("listen", data.get("listen", {}), ("host", "port"))

    if "server_list" in data and "backends" in data:
        raise r.fail("backends", "give either server_list or backends, not both")
    key = "backends" if "backends" in data else "server_list"
    servers = sections.servers(r, key, data.get(key), "backend")
    mode = Mode(r.choice("mode", data.get("mode", "http"), tuple(m.value for m in Mode)))
    algorithm = balancing.seed_algorithm(r, data.get("algorithm", "round_robin"))
    workers = sections.workers(r, data.get("workers", 1))
    drain_timeout = sections.drain_timeout(r, data)
    send_proxy, accept_proxy = sections.proxy_protocol(r, "", data, mode, "mode")
    via = sections.via(r, "", data, mode, "mode")
    health = sections.health(r, "health_check", data.get("health_check", {}))
    timeouts = sections.timeouts(
        r, "timeouts", data.get("timeouts", {}), sections.TIMEOUT_KEYS, TimeoutSpec()
    )
    limits = sections.limits(r, "limits", data.get("limits", {}), sections.LIMIT_KEYS, LimitSpec())
    host = r.text("listen.host", listen.get("host", DEFAULT_HOST))
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    port = r.integer("listen.port", listen.get("port", DEFAULT_PORT), 0, 65535, digits_ok=True)

    listener = ListenerSpec(
        name="default",
        host=host,
        port=port,
        protocol=mode,
        routes=(RouteSpec(pool="default"),) if mode is Mode.HTTP else (),
        pool="default" if mode is Mode.TCP else None,
        timeouts=timeouts,
        limits=limits,
        send_proxy=send_proxy,
        accept_proxy=accept_proxy,
        via=via,
    )
    pool = PoolSpec(
        name="default",
        servers=servers,
        algorithm=algorithm,
        health=health,
        timeouts=timeouts,
        limits=limits,
    )
    return Config(
        listeners=(listener,),
        pools=(pool,),
        workers=workers,
        drain_timeout=drain_timeout,
        health=health,
        timeouts=timeouts,
        limits=limits,
        source=source,
        seed=True,
        access_log=access_log(r, data),
    )
