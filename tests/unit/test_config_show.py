"""`rota check-config`'s TOML: every default written out, and read back to the same Config;
the examples load with no error and no warning."""

from __future__ import annotations

import dataclasses
import json
import tomllib
from pathlib import Path

import pytest

from rota.config import Config, config_warnings, load_config
from rota.config.show import to_toml, value

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((REPO / "examples").glob("*.toml"))


def reread(config: Config, tmp_path: Path) -> Config:
    path = tmp_path / "effective.toml"
    path.write_text(to_toml(config))
    return load_config(path)


def same(a: Config, b: Config) -> bool:
    # The source is the file read; a seed file comes back in the listeners shape.
    return dataclasses.replace(a, source="", seed=False) == dataclasses.replace(
        b, source="", seed=False
    )


def test_at_least_three_examples() -> None:
    names = {p.name for p in EXAMPLES}
    assert {"api-and-site.toml", "canary.toml", "http-and-tcp.toml"} <= names


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_examples_load_without_warnings_and_round_trip(
    path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # custom-policy.toml's class, examples/zone_policy.py, as its docs say to run it.
    monkeypatch.syspath_prepend(str(REPO / "examples"))
    config = load_config(path)
    assert config_warnings(config) == []
    for spec in config.listeners:
        assert spec.host == "127.0.0.1"
    for pool in config.pools:
        assert all(s.host == "127.0.0.1" for s in pool.servers)
    assert same(reread(config, tmp_path), config)


def test_seed_prints_its_listeners_equivalent(tmp_path: Path) -> None:
    path = tmp_path / "server_db.json"
    path.write_text(
        json.dumps(
            {
                "server_list": [
                    {"id": 1, "host": "127.0.0.1", "port": "5001"},
                    {"host": "::1", "port": 5002, "name": "v6", "weight": 3},
                ],
                "mode": "tcp",
                "send_proxy": "v2",
                "listen": {"host": "::1", "port": 6000},
                "health_check": {"interval": 0.5, "status": 204, "type": "tcp"},
                "limits": {"max_body_bytes": 1000},
            }
        )
    )
    config = load_config(path)
    text = to_toml(config)
    data = tomllib.loads(text)
    assert data["listeners"]["default"]["bind"] == "[::1]:6000"
    assert data["listeners"]["default"]["send_proxy"] == "v2"
    assert data["pools"]["default"]["servers"][0] == {
        "id": "1",
        "name": "127.0.0.1:5001",
        "host": "127.0.0.1",
        "port": 5001,
        "weight": 1,
    }
    assert "server_list" not in data and "mode" not in data
    again = reread(config, tmp_path)
    assert same(again, config) and not again.seed


def test_every_default_is_written(tmp_path: Path) -> None:
    path = tmp_path / "server_db.json"
    path.write_text(json.dumps({"server_list": [{"host": "127.0.0.1", "port": 5001}]}))
    text = to_toml(load_config(path))
    data = tomllib.loads(text)
    assert set(data["timeouts"]) == {
        "connect",
        "header",
        "idle",
        "response",
        "body",
        "pool_idle",
        "tunnel",
    }
    assert data["health_check"] == {
        "interval": 5.0,
        "timeout": 2.0,
        "path": "/health",
        "status": "200-399",
        "rise": 2,
        "fall": 3,
        "type": "http",
    }
    assert set(data["listeners"]["default"]["timeouts"]) == {"header", "idle", "body", "tunnel"}
    assert set(data["pools"]["default"]["timeouts"]) == {"connect", "response", "pool_idle"}
    assert data["pools"]["default"]["limits"] == {}  # pool_size: auto, a comment
    assert "# max_body_bytes: none (no limit)" in text  # TOML has no null


ODD = r"""
[listeners.web]
bind = "[::1]:0"
[[listeners.web.routes]]
host = "*.example.com"
methods = ["PATCH"]
headers = { "x.dotted" = "a \"quoted\" value", "x-tab" = "a	b" }
pool = "p-1"
strip_prefix = "/api"
request_headers = { set = { "X-Odd!" = "é" }, remove = ["x-a", "x-b"] }
[[listeners.web.routes]]
path = "/bye"
respond = { status = 410, body = "gone\n\ttab \\ \u0001", content_type = "text/html" }
[[listeners.web.routes]]
redirect = { location = "https://example.com/?a=b&c" }

[pools.p-1]
servers = [{ host = "127.0.0.1", port = 1, id = 10, name = "a\"b" }]
"""


def test_escapes_and_quoted_keys_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "odd.toml"
    path.write_text(ODD)
    config = load_config(path)
    assert same(reread(config, tmp_path), config)
    route = config.listeners[0].routes[1]
    assert route.respond is not None and route.respond.body.startswith("gone\n\ttab \\")


@pytest.mark.parametrize(
    ("v", "text"),
    [
        (True, "true"),
        (3, "3"),
        (0.25, "0.25"),
        (1e-05, "1e-05"),
        ('a"b\\c\n', '"a\\"b\\\\c\\n"'),
        ("\x7f\x00", '"\\u007f\\u0000"'),
    ],
)
def test_values(v: str | int | float | bool, text: str) -> None:
    assert value(v) == text
    assert tomllib.loads(f"x = {text}")["x"] == v
