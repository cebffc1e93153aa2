"""The health-check flags of `rota lb` become config overrides; errors name the flag."""

from __future__ import annotations

import argparse

import pytest

from rota.config.errors import ConfigError
from rota.config.load import load_config
from rota.health.options import add_arguments, overrides

BACKENDS = {"server_list": [{"host": "127.0.0.1", "port": 5001}]}


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(argv)


def load(argv: list[str]) -> object:
    values, flags = overrides(parse(argv))
    return load_config(None, {**values, "server_list": BACKENDS["server_list"]}, flags)


def test_no_flags_no_overrides() -> None:
    assert overrides(parse([])) == ({}, {})


def test_every_flag_reaches_the_config() -> None:
    argv = [
        "--health-check-interval", "0.5",
        "--health-check-timeout", "0.25",
        "--health-check-path", "/healthz",
        "--health-check-status", "200-204",
        "--rise", "4",
        "--fall", "5",
    ]  # fmt: skip
    config = load(argv)
    health = config.health  # type: ignore[attr-defined]
    assert (health.interval, health.timeout, health.path) == (0.5, 0.25, "/healthz")
    assert (health.status_min, health.status_max, health.rise, health.fall) == (200, 204, 4, 5)


def test_timeout_defaults_to_at_most_the_interval() -> None:
    health = load(["--health-check-interval", "0.5"]).health  # type: ignore[attr-defined]
    assert health.timeout == 0.5


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["--health-check-interval", "1", "--health-check-timeout", "2"], "--health-check-timeout"),
        (["--health-check-interval", "0"], "--health-check-interval"),
        (["--health-check-path", "health"], "--health-check-path"),
        (["--health-check-status", "200-99"], "--health-check-status"),
        (["--rise", "0"], "--rise"),
        (["--fall", "1000"], "--fall"),
    ],
)
def test_bad_values_name_the_flag(argv: list[str], flag: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(argv)
    assert str(info.value).startswith(f"{flag}: ")
