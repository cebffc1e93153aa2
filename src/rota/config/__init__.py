"""Configuration: the model, and loading it from the seed's JSON or TOML plus CLI flags."""

from rota.config.errors import ConfigError
from rota.config.load import load_config
from rota.config.model import (
    BackendSpec,
    CheckKind,
    Config,
    HealthSpec,
    LimitSpec,
    Mode,
    TimeoutSpec,
)

__all__ = [
    "BackendSpec",
    "CheckKind",
    "Config",
    "ConfigError",
    "HealthSpec",
    "LimitSpec",
    "Mode",
    "TimeoutSpec",
    "load_config",
]
