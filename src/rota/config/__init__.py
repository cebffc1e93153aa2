"""Configuration: the model, and loading it from JSON or TOML plus CLI flags."""

from rota.config.errors import ConfigError
from rota.config.load import config_warnings, load_config
from rota.config.model import (
    ALGORITHMS,
    BackendSpec,
    CheckKind,
    Config,
    HeaderEdits,
    HealthSpec,
    LimitSpec,
    ListenerSpec,
    Mode,
    PoolSpec,
    Redirect,
    Respond,
    RouteSpec,
    TimeoutSpec,
)

__all__ = [
    "ALGORITHMS",
    "BackendSpec",
    "CheckKind",
    "Config",
    "ConfigError",
    "HeaderEdits",
    "HealthSpec",
    "LimitSpec",
    "ListenerSpec",
    "Mode",
    "PoolSpec",
    "Redirect",
    "Respond",
    "RouteSpec",
    "TimeoutSpec",
    "config_warnings",
    "load_config",
]
