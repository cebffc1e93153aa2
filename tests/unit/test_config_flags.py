"""Command-line flags with either shape: overrides of the seed, refused listener flags with
a listeners file, top-level defaults otherwise, and one field per flag however it is spelled."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rota.cli import build_parser, main
from rota.config import ConfigError, load_config
from rota.lb_flags import LB_FLAGS, lb_overrides

SITE = """
[listeners.web]
bind = "127.0.0.1:8080"
[[listeners.web.routes]]
pool = "api"

[pools.api]
servers = [{ host = "127.0.0.1", port = 5001 }]
timeouts = { connect = 1 }

[pools.b]
servers = [{ host = "127.0.0.1", port = 5002 }]
"""


def site(tmp_path: Path) -> Path:
    path = tmp_path / "site.toml"
    path.write_text(SITE)
    return path


def seed(tmp_path: Path) -> Path:
    path = tmp_path / "server_db.json"
    path.write_text(json.dumps({"server_list": [{"host": "127.0.0.1", "port": 5001}]}))
    return path


def parsed(path: Path, *argv: str) -> tuple[dict[str, object], dict[str, str]]:
    return lb_overrides(build_parser().parse_args(["lb", "--config", str(path), *argv]))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--port", "9000"], "--port: site.toml defines listeners; set bind in [listeners.NAME]"),
        (["--host", "::1"], "--host: site.toml defines listeners; set bind in [listeners.NAME]"),
        (
            ["--mode", "tcp"],
            "--mode: site.toml defines listeners; set protocol in [listeners.NAME] instead",
        ),
        (["--send-proxy", "v1"], "--send-proxy: site.toml defines listeners; set send_proxy in"),
        (["--accept-proxy"], "--accept-proxy: site.toml defines listeners; set accept_proxy in"),
    ],
)
def test_listener_flags_are_refused_with_a_listeners_file(
    tmp_path: Path, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = site(tmp_path)
    overrides, flags = parsed(path, *argv)
    with pytest.raises(ConfigError) as info:
        load_config(path, overrides, flags)
    assert str(info.value).replace(str(tmp_path) + "/", "").startswith(message)
    # Through the command: one line on stderr, exit 2, before anything starts.
    assert main(["lb", "--config", str(path), *argv]) == 2
    err = capsys.readouterr().err.replace(str(tmp_path) + "/", "")
    assert err.startswith(f"rota: {message}")


def test_other_flags_set_the_top_level_defaults(tmp_path: Path) -> None:
    overrides, flags = parsed(
        site(tmp_path),
        "--workers", "2",
        "--timeout-connect", "4",
        "--timeout-idle", "9",
        "--max-connections", "50",
        "--health-check-interval", "0.5",
    )  # fmt: skip
    cfg = load_config(site(tmp_path), overrides, flags)
    assert cfg.workers == 2
    assert (cfg.timeouts.connect, cfg.timeouts.idle) == (4, 9)
    (web,) = cfg.listeners
    assert (web.timeouts.idle, web.limits.max_connections) == (9, 50)
    api, b = cfg.pools
    # A pool's own setting stays; the flag changes the default the others inherit.
    assert (api.timeouts.connect, b.timeouts.connect) == (1, 4)
    assert api.health.interval == b.health.interval == 0.5
    assert api.health.timeout == 0.5  # at most the interval, as in the seed


def test_a_bad_flag_value_names_the_flag_with_a_listeners_file(tmp_path: Path) -> None:
    overrides, flags = parsed(site(tmp_path), "--rise", "0")
    with pytest.raises(ConfigError) as info:
        load_config(site(tmp_path), overrides, flags)
    assert str(info.value) == "--rise: expected an integer 1-100, got 0"


@pytest.mark.parametrize(
    ("typed", "other", "field"),
    [
        ("--timeout-connect", "--connect-timeout", "timeouts.connect"),
        ("--connect-timeout", "--timeout-connect", "timeouts.connect"),
        ("--timeout-idle", "--idle-timeout", "timeouts.idle"),
        ("--idle-timeout", "--timeout-idle", "timeouts.idle"),
    ],
)
def test_aliases_set_one_field_and_errors_name_the_flag_typed(
    tmp_path: Path, typed: str, other: str, field: str, capsys: pytest.CaptureFixture[str]
) -> None:
    overrides, flags = parsed(seed(tmp_path), typed, "2.5")
    assert overrides == {field: 2.5} and flags == {field: typed}
    # Both given: the later wins, as argparse does for one flag given twice.
    overrides, flags = parsed(seed(tmp_path), other, "1", typed, "7")
    assert overrides == {field: 7.0} and flags == {field: typed}
    assert main(["lb", "--config", str(seed(tmp_path)), typed, "-1"]) == 2
    assert capsys.readouterr().err.startswith(f"rota: {typed}: expected a number of seconds")


def test_one_flag_entry_per_field() -> None:
    fields = [f.field for f in LB_FLAGS]
    assert len(fields) == len(set(fields))


def test_seed_overrides_still_reach_the_listener(tmp_path: Path) -> None:
    overrides, flags = parsed(seed(tmp_path), "--port", "6000", "--host", "::1", "--mode", "tcp")
    (listener,) = load_config(seed(tmp_path), overrides, flags).listeners
    assert (listener.address, listener.protocol.value, listener.pool) == (
        "[::1]:6000",
        "tcp",
        "default",
    )
