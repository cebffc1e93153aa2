"""A `Config` written back as TOML in the listeners/pools shape, every default filled in.

`rota check-config` prints this: what rota would run, and for a seed file its equivalent
in the new shape. The output reads back through the loader to an equal Config (the test
suite checks it). TOML has no null: a value that is "none" (no body limit, no PROXY
header) is written as a comment, which the loader reads as the default it is.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterable

from rota.config.model import (
    AccessLogSpec,
    BackendTlsSpec,
    Config,
    HeaderEdits,
    HealthSpec,
    LimitSpec,
    ListenerSpec,
    ListenerTlsSpec,
    Mode,
    PoolSpec,
    RouteSpec,
    TimeoutSpec,
)
from rota.config.sections import (
    LIMIT_KEYS,
    LISTENER_LIMITS,
    LISTENER_TIMEOUTS,
    POOL_LIMITS,
    POOL_TIMEOUTS,
    TIMEOUT_KEYS,
)

Scalar = str | int | float | bool
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def to_toml(config: Config) -> str:
    out = [
        f"# The effective configuration of {config.source}, every default filled in",
        "# (rota check-config; docs/configuration.md).",
        f"workers = {config.workers}",
        f"drain_timeout = {value(config.drain_timeout)}",
        "",
        "[health_check]",
        *_health(config.health),
        "",
        "[timeouts]",
        *_timeouts(config.timeouts, TIMEOUT_KEYS),
        "",
        "[limits]",
        *_limits(config.limits, LIMIT_KEYS),
        "",
        "[access_log]",
        *_access_log(config.access_log),
    ]
    if config.admin is not None:
        out += ["", "[admin]", f"bind = {value(config.admin.address)}"]
        if config.admin.token_file is not None:
            out.append(f"token_file = {value(config.admin.token_file)}")
    for listener in config.listeners:
        out += _listener(listener)
    for pool in config.pools:
        out += _pool(pool)
    return "\n".join(out) + "\n"


def value(v: Scalar) -> str:
    """One TOML value: a basic string with escapes, an integer, a float, a boolean."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v)  # finite (the loader bounds every number); repr reads back equal
    escaped = "".join(
        _ESCAPES.get(c, f"\\u{ord(c):04x}" if ord(c) < 0x20 or ord(c) == 0x7F else c) for c in v
    )
    return f'"{escaped}"'


def any_value(v: object) -> str:
    """A custom policy's option: a scalar, or (nested) arrays and inline tables of them."""
    if isinstance(v, dict):
        return inline((str(k), any_value(item)) for k, item in v.items())
    if isinstance(v, list):
        return array(any_value(item) for item in v)
    if isinstance(v, datetime.date | datetime.time):  # TOML's dates and times: RFC 3339
        return v.isoformat()
    if isinstance(v, str | int | float | bool):
        return value(v)
    raise TypeError(f"not a TOML value: {type(v).__name__}")  # the loader admits no other


def key(k: str) -> str:
    return k if _BARE_KEY.fullmatch(k) else value(k)


def inline(pairs: Iterable[tuple[str, str]]) -> str:
    """An inline table of already-formatted values."""
    body = ", ".join(f"{key(k)} = {v}" for k, v in pairs)
    return f"{{ {body} }}" if body else "{}"


def array(items: Iterable[str]) -> str:
    return "[" + ", ".join(items) + "]"


def _health(h: HealthSpec) -> list[str]:
    return [
        f"interval = {value(h.interval)}",
        f"timeout = {value(h.timeout)}",
        f"path = {value(h.path)}",
        f'status = "{h.status_min}-{h.status_max}"',
        f"rise = {h.rise}",
        f"fall = {h.fall}",
        f"type = {value(h.kind.value)}",
    ]


def _timeouts(t: TimeoutSpec, keys: tuple[str, ...]) -> list[str]:
    return [f"{k} = {value(getattr(t, k))}" for k in keys]


def _limits(spec: LimitSpec, keys: tuple[str, ...]) -> list[str]:
    lines = []
    for k in keys:
        v = getattr(spec, k)
        if v is not None:
            lines.append(f"{k} = {v}")
        elif k == "pool_size":
            lines.append(f"# {k}: auto (each server's max_requests, else max_connections)")
        else:
            lines.append(f"# {k}: none (no limit)")
    return lines


def _access_log(spec: AccessLogSpec) -> list[str]:
    path = "# path: none (no access log)" if spec.path is None else f"path = {value(spec.path)}"
    return [path, f"format = {value(spec.format)}"]


def _listener(spec: ListenerSpec) -> list[str]:
    name = key(spec.name)
    out = ["", f"[listeners.{name}]", f"bind = {value(spec.address)}"]
    out.append(f"protocol = {value(spec.protocol.value)}")
    if spec.protocol is Mode.TCP:
        if spec.pool is not None:
            out.append(f"pool = {value(spec.pool)}")
        elif spec.sni_routes:
            out.append("# pool: none (a connection no sni_route matches is closed)")
        if spec.sni_routes:
            routes = (
                inline([("sni", value(r.sni)), ("pool", value(r.pool))]) for r in spec.sni_routes
            )
            out.append(f"sni_routes = {array(routes)}")
        if spec.send_proxy is None:
            out.append("# send_proxy: none (no PROXY header to the servers)")
        else:
            out.append(f'send_proxy = "v{spec.send_proxy}"')
        out.append(f"accept_proxy = {value(spec.accept_proxy)}")
    else:
        out.append(f"via = {value(spec.via)}")
    if spec.tls is not None:
        out += ["", f"[listeners.{name}.tls]", *_listener_tls(spec.tls)]
    out += ["", f"[listeners.{name}.timeouts]", *_timeouts(spec.timeouts, LISTENER_TIMEOUTS)]
    out += ["", f"[listeners.{name}.limits]", *_limits(spec.limits, LISTENER_LIMITS)]
    for route in spec.routes:
        out += ["", f"[[listeners.{name}.routes]]", *_route(route)]
    return out


def _listener_tls(tls: ListenerTlsSpec) -> list[str]:
    out = ["certificates = ["]
    for c in tls.certificates:
        out.append(f"  {inline([('cert', value(c.cert)), ('key', value(c.key))])},")
    out += [
        "]",
        f"min_version = {value(tls.min_version)}",
        f"alpn = {array(value(a) for a in tls.alpn)}",
        f"strict_sni = {value(tls.strict_sni)}",
    ]
    return out


def _backend_tls(tls: BackendTlsSpec) -> str:
    fields = [("verify", value(tls.verify))]
    if tls.ca is not None:
        fields.append(("ca", value(tls.ca)))
    if tls.sni is not None:
        fields.append(("sni", value(tls.sni)))
    return inline(fields)


def _route(route: RouteSpec) -> list[str]:
    out = []
    for k in ("host", "path", "path_prefix"):
        v = getattr(route, k)
        if v is not None:
            out.append(f"{k} = {value(v)}")
    if route.methods:
        out.append(f"methods = {array(value(m) for m in route.methods)}")
    if route.headers:
        out.append(f"headers = {inline((n, value(v)) for n, v in route.headers)}")
    if route.pool is not None:
        out.append(f"pool = {value(route.pool)}")
    if route.strip_prefix is not None:
        out.append(f"strip_prefix = {value(route.strip_prefix)}")
    if route.request_headers:
        out.append(f"request_headers = {_edits(route.request_headers)}")
    if route.response_headers:
        out.append(f"response_headers = {_edits(route.response_headers)}")
    if route.redirect is not None:
        r = route.redirect
        out.append(
            f"redirect = {inline([('location', value(r.location)), ('status', str(r.status))])}"
        )
    if route.respond is not None:
        p = route.respond
        fields = [
            ("status", str(p.status)),
            ("body", value(p.body)),
            ("content_type", value(p.content_type)),
        ]
        out.append(f"respond = {inline(fields)}")
    return out


def _edits(edits: HeaderEdits) -> str:
    parts = []
    if edits.set:
        parts.append(("set", inline((n, value(v)) for n, v in edits.set)))
    if edits.remove:
        parts.append(("remove", array(value(n) for n in edits.remove)))
    return inline(parts)


def _pool(spec: PoolSpec) -> list[str]:
    name = key(spec.name)
    out = ["", f"[pools.{name}]", f"algorithm = {value(spec.algorithm)}"]
    if spec.algorithm == "hash":
        out.append(f"key = {value(spec.hash_key)}")
        out.append(f"hash_balance_factor = {value(spec.hash_balance_factor)}")
    if spec.options:
        out.append(f"options = {any_value(spec.options)}")
    out.append(f"slow_start = {value(spec.slow_start)}")
    if spec.sticky_cookie is None:
        out.append("# sticky: none (no sticky sessions)")
    else:
        out.append(f"sticky = {inline([('cookie', value(spec.sticky_cookie))])}")
    out.append(f"queue_timeout = {value(spec.queue_timeout)}")
    if spec.tls is None:
        out.append("# tls: none (plain TCP to the servers)")
    else:
        out.append(f"tls = {_backend_tls(spec.tls)}")
    out.append("servers = [")
    for s in spec.servers:
        fields = [("id", value(s.id))] if s.id != s.name else []
        fields += [
            ("name", value(s.name)),
            ("host", value(s.host)),
            ("port", str(s.port)),
            ("weight", str(s.weight)),
        ]
        # Only when set: a line per server stays short for the usual pool.
        if s.backup:
            fields.append(("backup", "true"))
        if s.max_requests is not None:
            fields.append(("max_requests", str(s.max_requests)))
        out.append(f"  {inline(fields)},")
    out.append("]")
    out += ["", f"[pools.{name}.health_check]", *_health(spec.health)]
    out += ["", f"[pools.{name}.timeouts]", *_timeouts(spec.timeouts, POOL_TIMEOUTS)]
    out += ["", f"[pools.{name}.limits]", *_limits(spec.limits, POOL_LIMITS)]
    return out
