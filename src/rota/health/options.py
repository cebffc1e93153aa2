"""The health-check flags of `rota lb`, and the config overrides they become.

Each flag overrides the config key of the same meaning (`health_check.*`); the loader
validates the values and, on error, names the flag (so `--rise 0` reports `--rise`).
"""

from __future__ import annotations

import argparse

# (flag, config key, argparse type, metavar, help)
_FLAGS: tuple[tuple[str, str, type, str, str], ...] = (
    (
        "--health-check-interval",
        "health_check.interval",
        float,
        "SECONDS",
        "seconds between probes of each backend (default 5)",
    ),
    (
        "--health-check-timeout",
        "health_check.timeout",
        float,
        "SECONDS",
        "one deadline for connect and response of a probe; at most the interval (default 2)",
    ),
    (
        "--health-check-path",
        "health_check.path",
        str,
        "PATH",
        "path the probe requests with GET (default /health)",
    ),
    (
        "--health-check-status",
        "health_check.status",
        str,
        "RANGE",
        "statuses that pass, e.g. 200-399 or 204 (default 200-399)",
    ),
    (
        "--rise",
        "health_check.rise",
        int,
        "N",
        "consecutive passed probes that bring a DOWN backend back (default 2)",
    ),
    (
        "--fall",
        "health_check.fall",
        int,
        "N",
        "consecutive failed probes that take an UP backend out (default 3)",
    ),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("health checks")
    for flag, key, kind, metavar, text in _FLAGS:
        group.add_argument(flag, dest=_dest(key), type=kind, metavar=metavar, help=text)


def overrides(args: argparse.Namespace) -> tuple[dict[str, object], dict[str, str]]:
    """The flags that were given: (config key -> value, config key -> flag)."""
    values: dict[str, object] = {}
    flags: dict[str, str] = {}
    for flag, key, _kind, _metavar, _text in _FLAGS:
        value = getattr(args, _dest(key), None)
        if value is not None:
            values[key] = value
            flags[key] = flag
    return values, flags


def _dest(key: str) -> str:
    return key.replace(".", "_")
