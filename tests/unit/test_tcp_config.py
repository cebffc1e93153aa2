"""TCP-mode configuration in the seed's shape: mode, PROXY protocol keys, limits, and the
TCP listener they give (one pool named default, no routes)."""

import json
from pathlib import Path

import pytest

from rota.cli import build_parser
from rota.config import ConfigError, LimitSpec, ListenerSpec, Mode, TimeoutSpec, load_config
from rota.lb_flags import lb_overrides

SEED = {"server_list": [{"id": 1, "host": "127.0.0.1", "port": 5001}]}


def write(tmp_path: Path, data: object) -> Path:
    p = tmp_path / "server_db.json"
    p.write_text(json.dumps(data))
    return p


def test_tcp_defaults(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, {**SEED, "mode": "tcp"}))
    assert cfg.listeners == (
        ListenerSpec(
            name="default",
            host="127.0.0.1",
            port=5432,
            protocol=Mode.TCP,
            routes=(),
            pool="default",
            timeouts=TimeoutSpec(),
            limits=LimitSpec(),
            send_proxy=None,
            accept_proxy=False,
        ),
    )
    pool = cfg.pool("default")
    assert (pool.timeouts.connect, cfg.listeners[0].timeouts.idle) == (3.0, 60.0)
    assert cfg.listeners[0].limits.max_connections == 10_000
    assert cfg.listeners[0].timeouts.header == 10.0  # the PROXY header's deadline


def test_tcp_keys_from_the_file(tmp_path: Path) -> None:
    data = {
        **SEED,
        "mode": "tcp",
        "send_proxy": "v2",
        "accept_proxy": True,
        "timeouts": {"connect": 0.5, "idle": 7},
        "limits": {"max_connections": 100},
    }
    cfg = load_config(write(tmp_path, data))
    (listener,) = cfg.listeners
    assert listener.send_proxy == 2 and listener.accept_proxy
    assert (cfg.pools[0].timeouts.connect, listener.timeouts.idle) == (0.5, 7.0)
    assert listener.limits.max_connections == 100


def test_flags_override_the_file(tmp_path: Path) -> None:
    args = build_parser().parse_args(
        ["lb", "--mode", "tcp", "--send-proxy", "v1", "--accept-proxy", "--max-connections", "9"]
    )
    overrides, flags = lb_overrides(args)
    (listener,) = load_config(write(tmp_path, SEED), overrides, flags).listeners
    assert listener.protocol is Mode.TCP and listener.send_proxy == 1 and listener.accept_proxy
    assert listener.limits.max_connections == 9 and listener.pool == "default"


def test_no_tcp_flags_leave_the_file_alone(tmp_path: Path) -> None:
    overrides, _ = lb_overrides(build_parser().parse_args(["lb"]))
    assert overrides == {}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"mode": "tcp", "send_proxy": "v3"}, "send_proxy: expected one of v1, v2, got"),
        ({"mode": "tcp", "send_proxy": 2}, "send_proxy: expected one of v1, v2, got 2"),
        ({"mode": "tcp", "accept_proxy": "yes"}, 'accept_proxy: expected true or false, got "yes"'),
        ({"send_proxy": "v1"}, 'send_proxy: only supported with mode "tcp" (mode is "http")'),
        ({"accept_proxy": True}, 'accept_proxy: only supported with mode "tcp"'),
        ({"mode": "tcp", "limits": {"max_connections": 0}}, "limits.max_connections: expected"),
    ],
)
def test_bad_tcp_keys_name_the_field(tmp_path: Path, data: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, {**SEED, **data}))
    text = str(info.value).replace(str(tmp_path) + "/", "")
    assert text.startswith(f"server_db.json: {message}"), text


def test_send_proxy_flag_error_names_the_flag(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, SEED), {"send_proxy": "v1"}, {"send_proxy": "--send-proxy"})
    assert str(info.value).startswith('--send-proxy: only supported with mode "tcp"')


def test_accept_proxy_false_is_fine_in_http_mode(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, {**SEED, "accept_proxy": False}))
    assert cfg.listeners[0].accept_proxy is False
