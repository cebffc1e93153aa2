"""The health-check flags of `rota lb` reach the config; bad values name the flag, exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rota.cli import build_parser, main
from rota.config.load import load_config
from rota.config.model import HealthSpec
from rota.lb_flags import LB_FLAGS


def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "db.json"
    path.write_text(json.dumps({"server_list": [{"host": "127.0.0.1", "port": 5001}]}))
    return path


def health_from(argv: list[str], tmp_path: Path) -> HealthSpec:
    # The same mapping `rota lb` makes: each flag given overrides its config field.
    args = build_parser().parse_args(["lb", "--config", str(config_file(tmp_path)), *argv])
    overrides = {
        f.field: getattr(args, f.field) for f in LB_FLAGS if getattr(args, f.field) is not None
    }
    flags = {f.field: f.flag for f in LB_FLAGS}
    config = load_config(args.config, overrides, flags)
    # The seed's one pool checks its servers with the top-level section, resolved.
    assert config.pools[0].health == config.health
    return config.pools[0].health


def test_every_health_flag_reaches_the_config(tmp_path: Path) -> None:
    argv = [
        "--health-check-interval", "0.5",
        "--health-check-timeout", "0.25",
        "--health-check-path", "/healthz",
        "--health-check-status", "200-204",
        "--rise", "4",
        "--fall", "5",
    ]  # fmt: skip
    h = health_from(argv, tmp_path)
    assert (h.interval, h.timeout, h.path, h.status_min, h.status_max, h.rise, h.fall) == (
        0.5, 0.25, "/healthz", 200, 204, 4, 5,
    )  # fmt: skip


def test_defaults_are_haproxy_like(tmp_path: Path) -> None:
    h = health_from([], tmp_path)
    assert (h.interval, h.timeout, h.path, h.rise, h.fall) == (5.0, 2.0, "/health", 2, 3)
    assert (h.status_min, h.status_max) == (200, 399)


def test_timeout_defaults_to_at_most_the_interval(tmp_path: Path) -> None:
    assert health_from(["--health-check-interval", "0.5"], tmp_path).timeout == 0.5


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
def test_bad_values_name_the_flag_and_exit_2(
    argv: list[str], flag: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["lb", "--config", str(config_file(tmp_path)), *argv]) == 2
    assert capsys.readouterr().err.startswith(f"rota: {flag}: ")
