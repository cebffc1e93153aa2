"""Load a `Config` from the seed's `server_db.json` (or TOML) plus command-line overrides.

The file holds the seed's `server_list` and, optionally, sections for everything else:

    {"server_list": [{"id": 1, "host": "127.0.0.1", "port": 5001}, ...],
     "listen": {"host": "127.0.0.1", "port": 5432},
     "health_check": {"interval": 5, "rise": 2, ...}, "timeouts": {...}, "limits": {...}}

Overrides are keyed by the same dotted names (`listen.port`, `health_check.interval`); an
error in a value that came from a flag names the flag instead of the file.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any, TypeVar

from rota.config.errors import ConfigError
from rota.config.model import (
    BackendSpec,
    CheckKind,
    Config,
    HealthSpec,
    LimitSpec,
    Mode,
    TimeoutSpec,
)

T = TypeVar("T")

ALGORITHMS = ("roundrobin", "round_robin")
SECTIONS = ("listen", "health_check", "timeouts", "limits")
TOP_LEVEL = (
    "server_list",
    "backends",
    "mode",
    "algorithm",
    "workers",
    "send_proxy",
    "accept_proxy",
    *SECTIONS,
)
PROXY_VERSIONS = {"v1": 1, "v2": 2}


class _Reader:
    """Reads typed values out of the raw mapping, naming the field in every error."""

    def __init__(self, source: str, flags: Mapping[str, str]) -> None:
        self.source = source
        self.flags = flags

    def fail(self, path: str, problem: str) -> ConfigError:
        flag = self.flags.get(path)
        if flag is not None:
            return ConfigError(flag, "", problem)
        return ConfigError(self.source, path, problem)

    def integer(
        self, path: str, value: object, lo: int, hi: int, *, digits_ok: bool = False
    ) -> int:
        number: int | None = None
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif digits_ok and isinstance(value, str) and value.isascii() and value.isdigit():
            number = int(value)
        if number is None or not lo <= number <= hi:
            raise self.fail(path, f"expected an integer {lo}-{hi}, got {_show(value)}")
        return number

    def seconds(self, path: str, value: object) -> float:
        if isinstance(value, int | float) and not isinstance(value, bool) and 0 < value <= 86400:
            return float(value)
        raise self.fail(path, f"expected a number of seconds > 0 and <= 86400, got {_show(value)}")

    def text(self, path: str, value: object) -> str:
        if isinstance(value, str) and value and value.isprintable():
            return value
        raise self.fail(path, f"expected a non-empty string, got {_show(value)}")

    def choice(self, path: str, value: object, options: tuple[str, ...]) -> str:
        if isinstance(value, str) and value in options:
            return value
        raise self.fail(path, f"expected one of {', '.join(options)}, got {_show(value)}")

    def section(self, path: str, value: object, allowed: tuple[str, ...]) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise self.fail(path, f"expected an object, got {_show(value)}")
        for key in value:
            if key not in allowed:
                raise self.fail(
                    f"{path}.{key}" if path else str(key),
                    f"unknown field (expected one of: {', '.join(allowed)})",
                )
        return value


def _show(value: object) -> str:
    if isinstance(value, str):
        return json.dumps(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return type(value).__name__


def read_file(path: Path) -> dict[str, Any]:
    """Parse the file as TOML (`.toml`) or JSON (anything else)."""
    source = str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(source, "", "file not found") from None
    except OSError as exc:
        raise ConfigError(source, "", f"cannot read: {exc.strerror}") from None
    try:
        if path.suffix == ".toml":
            data: object = tomllib.loads(raw.decode("utf-8"))
        else:
            data = json.loads(raw)
    except UnicodeDecodeError:
        raise ConfigError(source, "", "not valid UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, "", f"invalid TOML: {exc}") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(
            source, "", f"invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(source, "", f"expected an object at the top level, got {_show(data)}")
    return data


def load_config(
    path: str | Path | None,
    overrides: Mapping[str, object] | None = None,
    flags: Mapping[str, str] | None = None,
) -> Config:
    """Load and validate. `overrides` maps dotted field names to values from the command
    line; `flags` maps the same names to the flag that set them, for error messages."""
    data: dict[str, Any] = {}
    source = "<command line>"
    if path is not None:
        data = read_file(Path(path))
        source = str(path)
    merged = _merge(data, overrides or {})
    return build_config(merged, source, flags or {})


def _merge(data: Mapping[str, Any], overrides: Mapping[str, object]) -> dict[str, Any]:
    merged: dict[str, Any] = {k: dict(v) if isinstance(v, Mapping) else v for k, v in data.items()}
    for dotted, value in overrides.items():
        section, _, key = dotted.rpartition(".")
        if not section:
            merged[key] = value
            continue
        target = merged.setdefault(section, {})
        if isinstance(target, dict):
            target[key] = value
    return merged


def build_config(data: Mapping[str, Any], source: str, flags: Mapping[str, str]) -> Config:
    r = _Reader(source, flags)
    r.section("", data, TOP_LEVEL)
    listen = r.section("listen", data.get("listen", {}), ("host", "port"))

    backends = _backends(r, data)
    mode = Mode(r.choice("mode", data.get("mode", "http"), tuple(m.value for m in Mode)))
    algorithm = r.choice("algorithm", data.get("algorithm", "roundrobin"), ALGORITHMS)
    workers = _workers(r, data.get("workers", 1))
    send_proxy, accept_proxy = _proxy_protocol(r, data, mode)
    # TEMPORARY shim (lead): the seed shape as one listener and one pool.
    from rota.config.model import ListenerSpec, PoolSpec, RouteSpec

    health = _health(r, data.get("health_check", {}))
    timeouts = _section_of_numbers(r, "timeouts", data.get("timeouts", {}), TimeoutSpec)
    limits = _limits(r, data.get("limits", {}))
    listener = ListenerSpec(
        name="default",
        host=r.text("listen.host", listen.get("host", "127.0.0.1")),
        port=r.integer("listen.port", listen.get("port", 5432), 0, 65535, digits_ok=True),
        protocol=mode,
        routes=(RouteSpec(pool="default"),) if mode is Mode.HTTP else (),
        pool="default" if mode is Mode.TCP else None,
        timeouts=timeouts,
        limits=limits,
        send_proxy=send_proxy,
        accept_proxy=accept_proxy,
    )
    pool = PoolSpec("default", backends, algorithm, health, timeouts, limits)
    return Config(
        listeners=(listener,),
        pools=(pool,),
        workers=workers,
        health=health,
        timeouts=timeouts,
        limits=limits,
        source=source,
        seed=True,
    )


def _proxy_protocol(r: _Reader, data: Mapping[str, Any], mode: Mode) -> tuple[int | None, bool]:
    """`send_proxy`: "v1", "v2" or null; `accept_proxy`: true or false. TCP mode only: the
    HTTP data plane neither sends nor accepts PROXY headers."""
    send: int | None = None
    raw_send = data.get("send_proxy")
    if raw_send is not None:
        send = PROXY_VERSIONS[r.choice("send_proxy", raw_send, tuple(PROXY_VERSIONS))]
    raw_accept = data.get("accept_proxy", False)
    if not isinstance(raw_accept, bool):
        raise r.fail("accept_proxy", f"expected true or false, got {_show(raw_accept)}")
    for key, on in (("send_proxy", send is not None), ("accept_proxy", raw_accept)):
        if on and mode is not Mode.TCP:
            raise r.fail(key, f'only supported with mode "tcp" (mode is "{mode.value}")')
    return send, raw_accept


def _workers(r: _Reader, value: object) -> int:
    if value == "auto":
        import os

        return max(1, len(os.sched_getaffinity(0)))
    return r.integer("workers", value, 1, 256)


def _backends(r: _Reader, data: Mapping[str, Any]) -> tuple[BackendSpec, ...]:
    key = "server_list" if "server_list" in data or "backends" not in data else "backends"
    if "server_list" in data and "backends" in data:
        raise r.fail("backends", "give either server_list or backends, not both")
    items = data.get(key)
    if items is None:
        raise r.fail(key, "missing: list at least one backend")
    if not isinstance(items, list):
        raise r.fail(key, f"expected a list of backends, got {_show(items)}")
    if not items:
        raise r.fail(key, "no backends: list at least one")
    specs: list[BackendSpec] = []
    seen_addr: dict[tuple[str, int], int] = {}
    seen_id: dict[object, int] = {}
    for i, item in enumerate(items):
        path = f"{key}[{i}]"
        entry = r.section(path, item, ("id", "host", "port", "name", "weight"))
        if "host" not in entry:
            raise r.fail(f"{path}.host", "missing")
        if "port" not in entry:
            raise r.fail(f"{path}.port", "missing")
        host = r.text(f"{path}.host", entry["host"])
        port = r.integer(f"{path}.port", entry["port"], 1, 65535, digits_ok=True)
        if "id" in entry:
            ident = entry["id"]
            if not isinstance(ident, int | str) or isinstance(ident, bool):
                raise r.fail(f"{path}.id", f"expected an integer or string, got {_show(ident)}")
            if ident in seen_id:
                raise r.fail(
                    f"{path}.id", f"duplicate id {_show(ident)} (also {key}[{seen_id[ident]}])"
                )
            seen_id[ident] = i
        if (host, port) in seen_addr:
            raise r.fail(
                path, f"duplicate backend {host}:{port} (also {key}[{seen_addr[(host, port)]}])"
            )
        seen_addr[(host, port)] = i
        spec = BackendSpec(name="", host=host, port=port)
        name = r.text(f"{path}.name", entry["name"]) if "name" in entry else spec.address
        weight = r.integer(f"{path}.weight", entry.get("weight", 1), 1, 1000)
        specs.append(
            BackendSpec(
                name=name, host=host, port=port, weight=weight, id=str(entry.get("id", name))
            )
        )
    return tuple(specs)


def _status_range(r: _Reader, path: str, value: object) -> tuple[int, int]:
    if isinstance(value, int) and not isinstance(value, bool):
        lo = hi = value
    elif isinstance(value, str):
        lo_s, dash, hi_s = value.partition("-")
        lo_s, hi_s = lo_s.strip(), hi_s.strip() if dash else lo_s.strip()
        if not (lo_s.isdigit() and hi_s.isdigit()):
            raise r.fail(path, f'expected a status or range like "200-399", got {_show(value)}')
        lo, hi = int(lo_s), int(hi_s)
    else:
        raise r.fail(path, f'expected a status or range like "200-399", got {_show(value)}')
    if not (100 <= lo <= hi <= 599):
        raise r.fail(path, f"expected statuses within 100-599, low <= high, got {_show(value)}")
    return lo, hi


def _health(r: _Reader, raw: object) -> HealthSpec:
    names = ("interval", "timeout", "path", "status", "rise", "fall", "type")
    section = r.section("health_check", raw, names)
    d = HealthSpec()
    interval = r.seconds("health_check.interval", section.get("interval", d.interval))
    timeout = r.seconds("health_check.timeout", section.get("timeout", min(d.timeout, interval)))
    if timeout > interval:
        raise r.fail(
            "health_check.timeout",
            f"must not exceed the interval ({interval:g} s), got {timeout:g}",
        )
    path = r.text("health_check.path", section.get("path", d.path))
    if not path.startswith("/") or " " in path:
        raise r.fail(
            "health_check.path", f"expected an absolute path like /health, got {_show(path)}"
        )
    lo, hi = _status_range(r, "health_check.status", section.get("status", "200-399"))
    kinds = tuple(k.value for k in CheckKind)
    return HealthSpec(
        interval=interval,
        timeout=timeout,
        path=path,
        status_min=lo,
        status_max=hi,
        rise=r.integer("health_check.rise", section.get("rise", d.rise), 1, 100),
        fall=r.integer("health_check.fall", section.get("fall", d.fall), 1, 100),
        kind=CheckKind(r.choice("health_check.type", section.get("type", d.kind.value), kinds)),
    )


def _section_of_numbers(r: _Reader, name: str, raw: object, cls: Callable[..., T]) -> T:
    names = tuple(f.name for f in fields(cls))  # type: ignore[arg-type]
    section = r.section(name, raw, names)
    return cls(**{k: r.seconds(f"{name}.{k}", v) for k, v in section.items()})


def _limits(r: _Reader, raw: object) -> LimitSpec:
    names = tuple(f.name for f in fields(LimitSpec))
    section = r.section("limits", raw, names)
    values: dict[str, int | None] = {}
    for key, value in section.items():
        path = f"limits.{key}"
        if key == "max_body_bytes" and value is None:
            values[key] = None
            continue
        values[key] = r.integer(path, value, 1, 2**62)
    return LimitSpec(**values)  # type: ignore[arg-type]
