"""Load a `Config` from a file (TOML for `.toml`, JSON otherwise) plus command-line overrides.

Two shapes (docs/configuration.md): the seed's (`server_list`, `listen`, `mode`...: one
listener, one pool; rota.config.seed) and the one with `listeners` and `pools`
(rota.config.listeners). Overrides are keyed by the seed's dotted names (`listen.port`,
`health_check.interval`); an error in a value that came from a flag names the flag.
With `listeners`, the flags that name one listener are refused: which listener would they
change? The others set the top-level defaults.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from rota.config.admin import admin
from rota.config.errors import ConfigError
from rota.config.listeners import build_site
from rota.config.model import Config
from rota.config.reader import Reader, show
from rota.config.seed import build_seed

# Overrides that name one listener's setting, and where that setting lives instead.
LISTENER_FIELDS = {
    "listen.host": "set bind in [listeners.NAME] instead",
    "listen.port": "set bind in [listeners.NAME] instead",
    "mode": "set protocol in [listeners.NAME] instead",
    "send_proxy": "set send_proxy in a tcp [listeners.NAME] instead",
    "accept_proxy": "set accept_proxy in a tcp [listeners.NAME] instead",
}


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
        raise ConfigError(source, "", f"expected an object at the top level, got {show(data)}")
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
    overrides = overrides or {}
    flags = flags or {}
    if has_listeners(data):
        for name in overrides:
            if name in LISTENER_FIELDS:
                flag = flags.get(name, name)
                raise ConfigError(flag, "", f"{source} defines listeners; {LISTENER_FIELDS[name]}")
    return build_config(_merge(data, overrides), source, flags)


def has_listeners(data: Mapping[str, Any]) -> bool:
    return "listeners" in data or "pools" in data


def build_config(data: Mapping[str, Any], source: str, flags: Mapping[str, str]) -> Config:
    """Validate parsed data (either shape) into a Config; `source` names it in errors."""
    config = (
        build_site(data, source, flags) if has_listeners(data) else build_seed(data, source, flags)
    )
    spec = admin(Reader(source, flags), data.get("admin"), config.listeners)
    return replace(config, admin=spec) if spec is not None else config


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


def config_warnings(config: Config) -> list[str]:
    """What loads but is probably a mistake: a pool no listener or route sends traffic to."""
    used = {spec.pool for spec in config.listeners if spec.pool is not None}
    used.update(route.pool for spec in config.listeners for route in spec.routes if route.pool)
    return [
        f"{config.source}: pools.{pool.name}: not used by any listener"
        for pool in config.pools
        if pool.name not in used
    ]
