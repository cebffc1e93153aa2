"""Sections both shapes share: servers, health checks, timeouts, limits, PROXY protocol keys.

A listener or pool section overrides the top-level one key by key. Timeouts and limits
have no rule across keys, so the override is a `replace` of the resolved top-level spec;
a health check's default timeout depends on its interval, so its raw keys are merged
first and then read, each value naming the section it came from.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import fields, replace
from typing import Any

from rota.config.model import (
    BackendSpec,
    CheckKind,
    HealthSpec,
    LimitSpec,
    Mode,
    TimeoutSpec,
)
from rota.config.reader import Reader, field_path, show

HEALTH_KEYS = ("interval", "timeout", "path", "status", "rise", "fall", "type")
TIMEOUT_KEYS = tuple(f.name for f in fields(TimeoutSpec))
LIMIT_KEYS = tuple(f.name for f in fields(LimitSpec))
# Which keys a listener and a pool read (the rest of their spec is the top-level value).
LISTENER_TIMEOUTS = ("header", "idle", "body", "tunnel")
POOL_TIMEOUTS = ("connect", "response", "pool_idle")
LISTENER_LIMITS = tuple(k for k in LIMIT_KEYS if k != "pool_size")
POOL_LIMITS = ("pool_size",)
SERVER_KEYS = ("id", "host", "port", "name", "weight", "backup", "max_requests")
MAX_REQUESTS = 1_000_000  # per server; a bound that catches a typo, not a tuning limit
PROXY_VERSIONS = {"v1": 1, "v2": 2}


def _belongs_elsewhere(
    r: Reader, path: str, raw: object, allowed: tuple[str, ...], every: tuple[str, ...], what: str
) -> None:
    """A listener's key in a pool's section (or the reverse) gets an error saying where it
    goes, rather than a "did you mean" to a key of the other kind."""
    if not isinstance(raw, Mapping) or allowed == every:
        return
    section = path.rpartition(".")[2]
    owner = "pool" if allowed in (LISTENER_TIMEOUTS, LISTENER_LIMITS) else "listener"
    for key in raw:
        if key in every and key not in allowed:
            raise r.fail(
                path,
                f"{show(key)} is a {owner}'s {what}: set it in [{owner}s.NAME.{section}] "
                f"or in the top-level [{section}]",
            )


def timeouts(
    r: Reader, path: str, raw: object, allowed: tuple[str, ...], base: TimeoutSpec
) -> TimeoutSpec:
    _belongs_elsewhere(r, path, raw, allowed, TIMEOUT_KEYS, "timeout")
    section = r.section(path, raw, allowed)
    values = {k: r.seconds(field_path(path, k), v) for k, v in section.items()}
    return replace(base, **values)


def limits(
    r: Reader, path: str, raw: object, allowed: tuple[str, ...], base: LimitSpec
) -> LimitSpec:
    _belongs_elsewhere(r, path, raw, allowed, LIMIT_KEYS, "limit")
    section = r.section(path, raw, allowed)
    values: dict[str, Any] = {}
    for key, value in section.items():
        if key in ("max_body_bytes", "pool_size") and value is None:
            # JSON's null: no limit, or the pool's automatic bound (TOML has no null: leave
            # the key out)
            values[key] = None
            continue
        values[key] = r.integer(field_path(path, key), value, 1, 2**62)
    return replace(base, **values)


def health(
    r: Reader, path: str, raw: object, parent: tuple[str, Mapping[str, Any]] | None = None
) -> HealthSpec:
    """A `health_check` section; `parent` is the top-level section (its path and raw keys)
    whose keys this one overrides."""
    own = r.section(path, raw, HEALTH_KEYS)
    values: dict[str, Any] = dict(own)
    where = {k: field_path(path, k) for k in own}
    if parent is not None:
        parent_path, parent_raw = parent
        for key, value in parent_raw.items():
            if key not in values:
                values[key] = value
                where[key] = field_path(parent_path, key)
    for key in HEALTH_KEYS:
        where.setdefault(key, field_path(path, key))

    d = HealthSpec()
    interval = r.seconds(where["interval"], values.get("interval", d.interval))
    timeout = r.seconds(where["timeout"], values.get("timeout", min(d.timeout, interval)))
    if "timeout" not in own and "interval" in own:
        # The top-level timeout is a default, like the built-in 2 s: a pool that checks
        # more often than that gets one that fits its own interval.
        timeout = min(timeout, interval)
    if timeout > interval:
        raise r.fail(
            where["timeout"], f"must not exceed the interval ({interval:g} s), got {timeout:g}"
        )
    check_path = r.text(where["path"], values.get("path", d.path))
    if not check_path.startswith("/") or " " in check_path:
        raise r.fail(
            where["path"], f"expected an absolute path like /health, got {show(check_path)}"
        )
    lo, hi = _status_range(r, where["status"], values.get("status", "200-399"))
    kinds = tuple(k.value for k in CheckKind)
    return HealthSpec(
        interval=interval,
        timeout=timeout,
        path=check_path,
        status_min=lo,
        status_max=hi,
        rise=r.integer(where["rise"], values.get("rise", d.rise), 1, 100),
        fall=r.integer(where["fall"], values.get("fall", d.fall), 1, 100),
        kind=CheckKind(r.choice(where["type"], values.get("type", d.kind.value), kinds)),
    )


def _status_range(r: Reader, path: str, value: object) -> tuple[int, int]:
    expected = f'expected a status or range like "200-399", got {show(value)}'
    if isinstance(value, int) and not isinstance(value, bool):
        lo = hi = value
    elif isinstance(value, str):
        lo_s, dash, hi_s = value.partition("-")
        lo_s, hi_s = lo_s.strip(), hi_s.strip() if dash else lo_s.strip()
        if not (lo_s.isascii() and lo_s.isdigit() and hi_s.isascii() and hi_s.isdigit()):
            raise r.fail(path, expected)
        lo, hi = int(lo_s), int(hi_s)
    else:
        raise r.fail(path, expected)
    if not (100 <= lo <= hi <= 599):
        raise r.fail(path, f"expected statuses within 100-599, low <= high, got {show(value)}")
    return lo, hi


def servers(r: Reader, path: str, items: object, what: str) -> tuple[BackendSpec, ...]:
    """A list of servers (`what`: "backend" in the seed, "server" in a pool). Each one's
    key (its `id`, else its `name`) and its name and address are unique in the list."""
    label = path.rpartition(".")[2]
    if items is None:
        raise r.fail(path, f"missing: list at least one {what}")
    if not isinstance(items, list):
        raise r.fail(path, f"expected a list of {what}s, got {show(items)}")
    if not items:
        raise r.fail(path, f"no {what}s: list at least one")
    specs: list[BackendSpec] = []
    seen_addr: dict[tuple[str, int], int] = {}
    seen_key: dict[str, int] = {}
    seen_name: dict[str, int] = {}
    for i, item in enumerate(items):
        at = f"{path}[{i}]"
        entry = r.section(at, item, SERVER_KEYS)
        for required in ("host", "port"):
            if required not in entry:
                raise r.fail(f"{at}.{required}", "missing")
        host = r.text(f"{at}.host", entry["host"])
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]  # "[::1]": the brackets belong to an address, not the host
        port = r.integer(f"{at}.port", entry["port"], 1, 65535, digits_ok=True)
        if (host, port) in seen_addr:
            also = f"{label}[{seen_addr[(host, port)]}]"
            raise r.fail(
                at, f"duplicate {what} {BackendSpec('', host, port).address} (also {also})"
            )
        seen_addr[(host, port)] = i
        name = r.text(f"{at}.name", entry["name"]) if "name" in entry else ""
        name = name or BackendSpec("", host, port).address
        ident = ""
        if "id" in entry:
            raw_id = entry["id"]
            if isinstance(raw_id, bool) or not isinstance(raw_id, int | str) or raw_id == "":
                raise r.fail(f"{at}.id", f"expected an integer or string, got {show(raw_id)}")
            ident = str(raw_id)
            if not ident.isprintable():
                raise r.fail(f"{at}.id", f"expected printable characters, got {show(raw_id)}")
        key = ident or name
        if key in seen_key:
            also = f"{label}[{seen_key[key]}]"
            if ident:
                raise r.fail(f"{at}.id", f"duplicate id {show(entry['id'])} (also {also})")
            raise r.fail(f"{at}.name", f"duplicate name {show(name)} (also {also})")
        seen_key[key] = i
        if name in seen_name:
            raise r.fail(
                f"{at}.name", f"duplicate name {show(name)} (also {label}[{seen_name[name]}])"
            )
        seen_name[name] = i
        weight = r.integer(f"{at}.weight", entry.get("weight", 1), 1, 1000)
        backup = r.boolean(f"{at}.backup", entry.get("backup", False))
        max_requests: int | None = None
        if entry.get("max_requests") is not None:  # JSON's null: no limit, as when absent
            max_requests = r.integer(f"{at}.max_requests", entry["max_requests"], 1, MAX_REQUESTS)
        specs.append(
            BackendSpec(
                name=name,
                host=host,
                port=port,
                weight=weight,
                id=key,
                backup=backup,
                max_requests=max_requests,
            )
        )
    return tuple(specs)


def workers(r: Reader, value: object) -> int:
    if value == "auto":
        return max(1, len(os.sched_getaffinity(0)))
    return r.integer("workers", value, 1, 256)


def drain_timeout(r: Reader, data: Mapping[str, Any]) -> float:
    """Seconds a stopping process waits for what is in flight (0: cut at once)."""
    return r.seconds("drain_timeout", data.get("drain_timeout", 30.0), zero_ok=True)


def proxy_protocol(
    r: Reader, path: str, section: Mapping[str, Any], protocol: Mode, word: str
) -> tuple[int | None, bool]:
    """`send_proxy`: "v1", "v2" or absent (null); `accept_proxy`: true or false. TCP only:
    the HTTP data plane neither sends nor accepts PROXY headers. `word` is how the file
    names the protocol key ("mode" in the seed, "protocol" in a listener)."""
    send: int | None = None
    raw_send = section.get("send_proxy")
    if raw_send is not None:
        choice = r.choice(field_path(path, "send_proxy"), raw_send, tuple(PROXY_VERSIONS))
        send = PROXY_VERSIONS[choice]
    accept = r.boolean(field_path(path, "accept_proxy"), section.get("accept_proxy", False))
    for key, on in (("send_proxy", send is not None), ("accept_proxy", accept)):
        if on and protocol is not Mode.TCP:
            raise r.fail(
                field_path(path, key),
                f'only supported with {word} "tcp" ({word} is "{protocol.value}")',
            )
    return send, accept


def via(r: Reader, path: str, section: Mapping[str, Any], protocol: Mode, word: str) -> bool:
    """`via`: true adds `Via: 1.1 rota` to every forwarded request (HTTP only)."""
    on = r.boolean(field_path(path, "via"), section.get("via", False))
    if on and protocol is not Mode.HTTP:
        raise r.fail(
            field_path(path, "via"),
            f'only supported with {word} "http" ({word} is "{protocol.value}")',
        )
    return on
