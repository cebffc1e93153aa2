"""The listener's `via` switch and the timeouts that fit real traffic (issue 19): their
defaults, where they may be set, and the errors naming the field."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from rota.config import ConfigError, load_config

SITE = """
[listeners.web]
bind = "127.0.0.1:8080"
routes = [{{ pool = "app" }}]
{extra}

[pools.app]
servers = [{{ host = "127.0.0.1", port = 5001 }}]
{pool_extra}
"""


def site(tmp_path: Path, extra: str = "", pool_extra: str = "") -> Path:
    path = tmp_path / "site.toml"
    path.write_text(textwrap.dedent(SITE).format(extra=extra, pool_extra=pool_extra))
    return path


def error(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return str(info.value).replace(str(path.parent) + "/", "")


def test_no_via_and_timeouts_of_60_s_and_an_hour_by_default(tmp_path: Path) -> None:
    config = load_config(site(tmp_path))
    (listener,) = config.listeners
    assert listener.via is False
    assert listener.timeouts.tunnel == 3600
    assert config.pools[0].timeouts.response == 60


def test_via_and_tunnel_per_listener(tmp_path: Path) -> None:
    extra = "via = true\ntimeouts = { tunnel = 7200 }"
    (listener,) = load_config(site(tmp_path, extra)).listeners
    assert listener.via is True
    assert listener.timeouts.tunnel == 7200


def test_via_in_the_seed_shape(tmp_path: Path) -> None:
    path = tmp_path / "server_db.json"
    path.write_text(json.dumps({"server_list": [{"host": "127.0.0.1", "port": 5001}], "via": True}))
    assert load_config(path).listeners[0].via is True


def test_via_must_be_a_boolean(tmp_path: Path) -> None:
    assert error(site(tmp_path, 'via = "yes"')).startswith("site.toml: listeners.web.via: ")


def test_via_on_a_tcp_listener_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "server_db.json"
    data = {"server_list": [{"host": "127.0.0.1", "port": 5001}], "mode": "tcp", "via": True}
    path.write_text(json.dumps(data))
    assert error(path) == 'server_db.json: via: only supported with mode "http" (mode is "tcp")'


def test_tunnel_is_a_listeners_timeout(tmp_path: Path) -> None:
    message = error(site(tmp_path, pool_extra="timeouts = { tunnel = 10 }"))
    assert message.startswith('site.toml: pools.app.timeouts: "tunnel" is a listener\'s timeout')
