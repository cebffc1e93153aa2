"""The seed's shape (server_list, listen, mode...): one listener named default with one
catch-all route to one pool named default; the seed loader's error messages, word for word."""

import json
from pathlib import Path

import pytest

from rota.config import (
    BackendSpec,
    Config,
    ConfigError,
    ListenerSpec,
    Mode,
    PoolSpec,
    RouteSpec,
    load_config,
)
from rota.config.load import build_config

SEED = {
    "server_list": [
        {"id": 1, "host": "127.0.0.1", "port": 5001},
        {"id": 2, "host": "127.0.0.1", "port": 5002},
        {"id": 3, "host": "127.0.0.1", "port": 5003},
    ]
}


def write(tmp_path: Path, data: object, name: str = "server_db.json") -> Path:
    p = tmp_path / name
    p.write_text(data if isinstance(data, str) else json.dumps(data))
    return p


def servers(cfg: Config) -> tuple[BackendSpec, ...]:
    return cfg.pool("default").servers


def test_seed_file_loads_with_defaults(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, SEED))
    assert [(b.host, b.port, b.name, b.id) for b in servers(cfg)] == [
        ("127.0.0.1", 5001, "127.0.0.1:5001", "1"),
        ("127.0.0.1", 5002, "127.0.0.1:5002", "2"),
        ("127.0.0.1", 5003, "127.0.0.1:5003", "3"),
    ]
    (listener,) = cfg.listeners
    assert (listener.host, listener.port, listener.protocol) == ("127.0.0.1", 5432, Mode.HTTP)
    assert cfg.health.interval == 5.0 and cfg.health.rise == 2 and cfg.health.fall == 3
    assert cfg.seed and cfg.workers == 1


def test_seed_is_one_listener_one_catch_all_route_one_pool(tmp_path: Path) -> None:
    data = {
        **SEED,
        "health_check": {"interval": 1},
        "timeouts": {"connect": 0.5},
        "limits": {"max_headers": 50},
    }
    cfg = load_config(write(tmp_path, data))
    (listener,) = cfg.listeners
    (pool,) = cfg.pools
    assert listener == ListenerSpec(
        name="default",
        host="127.0.0.1",
        port=5432,
        protocol=Mode.HTTP,
        routes=(RouteSpec(pool="default"),),
        timeouts=cfg.timeouts,
        limits=cfg.limits,
    )
    assert pool == PoolSpec(
        name="default",
        servers=servers(cfg),
        algorithm="round_robin",
        health=cfg.health,
        timeouts=cfg.timeouts,
        limits=cfg.limits,
    )
    assert cfg.timeouts.connect == 0.5 and cfg.limits.max_headers == 50
    assert cfg.health.interval == 1.0 and cfg.health.timeout == 1.0


def test_server_id_is_the_id_as_a_string_else_the_name() -> None:
    cfg = build_config(
        {
            "server_list": [
                {"id": 7, "host": "127.0.0.1", "port": 5001},
                {"id": "db-a", "host": "127.0.0.1", "port": 5002, "name": "a"},
                {"host": "127.0.0.1", "port": 5003, "name": "c"},
                {"host": "::1", "port": 5004},
            ]
        },
        "x",
        {},
    )
    assert [(b.id, b.name) for b in servers(cfg)] == [
        ("7", "127.0.0.1:5001"),
        ("db-a", "a"),
        ("c", "c"),
        ("[::1]:5004", "[::1]:5004"),
    ]
    assert [b.key for b in servers(cfg)] == ["7", "db-a", "c", "[::1]:5004"]


def test_build_config_as_bench_and_tests_call_it() -> None:
    cfg = build_config({"server_list": [{"host": "127.0.0.1", "port": 5001}]}, "x", {})
    assert cfg.source == "x" and cfg.pools[0].servers[0].port == 5001


def test_algorithm_roundrobin_is_round_robin(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, SEED)).pools[0].algorithm == "round_robin"
    cfg = load_config(write(tmp_path, {**SEED, "algorithm": "roundrobin"}))
    assert cfg.pools[0].algorithm == "round_robin"


def test_workers_auto_is_at_least_one(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, {**SEED, "workers": "auto"})).workers >= 1


def test_string_ports_as_in_the_seed(tmp_path: Path) -> None:
    data = {"server_list": [{"id": 1, "host": "127.0.0.1", "port": "5001"}]}
    assert servers(load_config(write(tmp_path, data)))[0].port == 5001


def test_bundled_server_db_json_loads() -> None:
    cfg = load_config(Path(__file__).resolve().parents[2] / "server_db.json")
    assert [b.port for b in servers(cfg)] == [5001, 5002, 5003]


def test_toml_with_sections(tmp_path: Path) -> None:
    text = """
mode = "http"
[listen]
host = "127.0.0.1"
port = 8080
[health_check]
interval = 1.5
timeout = 0.5
status = "200-299"
[[backends]]
host = "127.0.0.1"
port = 9001
name = "api-1"
"""
    cfg = load_config(write(tmp_path, text, "rota.toml"))
    assert cfg.listeners[0].port == 8080
    assert servers(cfg)[0].name == "api-1" and servers(cfg)[0].id == "api-1"
    assert (cfg.health.interval, cfg.health.timeout) == (1.5, 0.5)
    assert (cfg.health.status_min, cfg.health.status_max) == (200, 299)


def test_overrides_win_over_file(tmp_path: Path) -> None:
    cfg = load_config(
        write(tmp_path, SEED), {"listen.port": 6000, "health_check.interval": 15.0}, {}
    )
    assert cfg.listeners[0].port == 6000 and cfg.health.interval == 15.0
    assert cfg.pools[0].health.interval == 15.0


def test_timeout_defaults_to_at_most_the_interval(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, SEED), {"health_check.interval": 0.5}, {})
    assert cfg.health.timeout == 0.5


BAD = [
    ("{not json", "server_db.json: invalid JSON: Expecting property name"),
    ("[]", "server_db.json: expected an object at the top level, got list"),
    ({}, "server_db.json: server_list: missing: list at least one backend"),
    ({"server_list": []}, "server_db.json: server_list: no backends: list at least one"),
    ({"server_list": {}}, "server_db.json: server_list: expected a list of backends, got dict"),
    (
        {
            "server_list": [
                {"id": 1, "host": "127.0.0.1", "port": 5001},
                {"id": 2, "host": "h", "port": "abc"},
            ]
        },
        'server_db.json: server_list[1].port: expected an integer 1-65535, got "abc"',
    ),
    (
        {"server_list": [{"host": "127.0.0.1", "port": 70000}]},
        "server_db.json: server_list[0].port: expected an integer 1-65535, got 70000",
    ),
    (
        {"server_list": [{"host": "127.0.0.1", "port": True}]},
        "server_db.json: server_list[0].port: expected an integer 1-65535, got true",
    ),
    (
        {"server_list": [{"host": "127.0.0.1"}]},
        "server_db.json: server_list[0].port: missing",
    ),
    (
        {"server_list": [{"port": 1}]},
        "server_db.json: server_list[0].host: missing",
    ),
    (
        {"server_list": [{"host": "", "port": 1}]},
        'server_db.json: server_list[0].host: expected a non-empty string, got ""',
    ),
    (
        {"server_list": [{"host": "a", "port": 1}, {"host": "a", "port": 1}]},
        "server_db.json: server_list[1]: duplicate backend a:1 (also server_list[0])",
    ),
    (
        {"server_list": [{"id": 7, "host": "a", "port": 1}, {"id": 7, "host": "b", "port": 1}]},
        "server_db.json: server_list[1].id: duplicate id 7 (also server_list[0])",
    ),
    (
        {"server_list": [{"host": "a", "port": 1, "wieght": 2}]},
        'server_db.json: server_list[0].wieght: unknown field (did you mean "weight"?)',
    ),
    (
        {
            "server_list": [
                {"host": "a", "port": 1, "name": "x"},
                {"host": "b", "port": 1, "name": "x"},
            ]
        },
        'server_db.json: server_list[1].name: duplicate name "x" (also server_list[0])',
    ),
    (
        {"server_list": [{"host": "a", "port": 1, "id": True}]},
        "server_db.json: server_list[0].id: expected an integer or string, got true",
    ),
    (
        {**SEED, "backends": SEED["server_list"]},
        "server_db.json: backends: give either server_list or backends, not both",
    ),
    ({**SEED, "algorithm": "fastest"}, "server_db.json: algorithm: expected one of round_robin"),
    ({**SEED, "workers": 0}, "server_db.json: workers: expected an integer 1-256, got 0"),
    ({**SEED, "colour": "red"}, "server_db.json: colour: unknown field (expected one of:"),
    ({**SEED, "listne": {}}, 'server_db.json: listne: unknown field (did you mean "listen"?)'),
    ({**SEED, "mode": "udp"}, 'server_db.json: mode: expected one of http, tcp, got "udp"'),
    (
        {**SEED, "health_check": {"interval": 1, "timeout": 2}},
        "server_db.json: health_check.timeout: must not exceed the interval (1 s), got 2",
    ),
    (
        {**SEED, "health_check": {"interval": -1}},
        "server_db.json: health_check.interval: expected a number of seconds > 0",
    ),
    (
        {**SEED, "health_check": {"status": "abc"}},
        'server_db.json: health_check.status: expected a status or range like "200-399"',
    ),
    (
        {**SEED, "health_check": {"rise": 0}},
        "server_db.json: health_check.rise: expected an integer 1-100, got 0",
    ),
    (
        {**SEED, "timeouts": {"connect": "3s"}},
        "server_db.json: timeouts.connect: expected a number",
    ),
    (
        {**SEED, "limits": {"max_headers": 0}},
        "server_db.json: limits.max_headers: expected an integer",
    ),
    (
        {**SEED, "listen": {"port": 99999}},
        "server_db.json: listen.port: expected an integer 0-65535",
    ),
]


@pytest.mark.parametrize(("data", "message"), BAD, ids=[m.split(": ", 2)[1] for _, m in BAD])
def test_bad_configs_name_the_field(tmp_path: Path, data: object, message: str) -> None:
    path = write(tmp_path, data)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    text = str(info.value).replace(str(tmp_path) + "/", "")
    assert text.startswith(message), text


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.json: file not found"):
        load_config(tmp_path / "nope.json")


def test_bad_flag_value_names_the_flag(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(
            write(tmp_path, SEED),
            {"health_check.interval": -3.0},
            {"health_check.interval": "--health-check-interval"},
        )
    assert str(info.value).startswith("--health-check-interval: expected a number of seconds")
