"""`[access_log]` in either shape, its flags, and `rota check-config` showing it: off unless
a path is given, errors naming the field (or the flag that set it)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rota.cli import build_parser
from rota.config import ConfigError, load_config
from rota.config.load import build_config
from rota.config.model import AccessLogSpec
from rota.config.show import to_toml
from rota.lb_flags import lb_overrides

SITE = """
[listeners.web]
bind = "127.0.0.1:8080"
[[listeners.web.routes]]
pool = "api"

[pools.api]
servers = [{ host = "127.0.0.1", port = 5001 }]
"""
SEED = {"server_list": [{"host": "127.0.0.1", "port": 5001}]}


def test_off_by_default_in_both_shapes(tmp_path: Path) -> None:
    site = tmp_path / "site.toml"
    site.write_text(SITE)
    assert load_config(site).access_log == AccessLogSpec(None, "json")
    assert build_config(SEED, "seed.json", {}).access_log == AccessLogSpec(None, "json")


def test_a_path_and_a_format_in_either_shape(tmp_path: Path) -> None:
    site = tmp_path / "site.toml"
    site.write_text('[access_log]\npath = "-"\nformat = "combined"\n' + SITE)
    assert load_config(site).access_log == AccessLogSpec("-", "combined")
    seed = {**SEED, "access_log": {"path": str(tmp_path / "a.log")}}
    assert build_config(seed, "seed.json", {}).access_log == AccessLogSpec(
        str(tmp_path / "a.log"), "json"
    )


def test_the_flags_set_it_and_an_error_names_the_flag(tmp_path: Path) -> None:
    path = tmp_path / "seed.json"
    path.write_text(json.dumps(SEED))
    args = build_parser().parse_args(
        ["lb", "--access-log", str(tmp_path / "x.log"), "--access-log-format", "combined"]
    )
    overrides, flags = lb_overrides(args)
    assert load_config(path, overrides, flags).access_log == AccessLogSpec(
        str(tmp_path / "x.log"), "combined"
    )
    args = build_parser().parse_args(["lb", "--access-log", str(tmp_path / "no" / "x.log")])
    overrides, flags = lb_overrides(args)
    with pytest.raises(ConfigError, match=r"^--access-log: .*does not exist"):
        load_config(path, overrides, flags)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["lb", "--access-log-format", "xml"])


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"format": "xml"}, 'access_log.format: expected one of json, combined, got "xml"'),
        ({"path": 3}, "access_log.path: expected a non-empty string, got 3"),
        ({"path": ""}, 'access_log.path: expected a non-empty string, got ""'),
        ({"paht": "a.log"}, 'access_log: unknown field "paht" (did you mean "path"?)'),
        ("a.log", 'access_log: expected a table (an object in JSON), got "a.log"'),
    ],
)
def test_errors_name_the_field(section: object, message: str) -> None:
    data: dict[str, object] = {
        "listeners": {"web": {"bind": "127.0.0.1:0", "routes": [{"pool": "p"}]}},
        "pools": {"p": {"servers": [{"host": "127.0.0.1", "port": 1}]}},
        "access_log": section,
    }
    with pytest.raises(ConfigError) as caught:
        build_config(data, "site.json", {})
    assert str(caught.value) == f"site.json: {message}"


def test_a_directory_is_not_a_log_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a directory"):
        build_config({**SEED, "access_log": {"path": str(tmp_path)}}, "s.json", {})


@pytest.mark.parametrize(
    ("section", "spec"),
    [("", AccessLogSpec()), ('[access_log]\npath = "-"\nformat = "combined"\n', None)],
)
def test_check_config_shows_it_and_reads_back_the_same(
    tmp_path: Path, section: str, spec: AccessLogSpec | None
) -> None:
    site = tmp_path / "site.toml"
    site.write_text(section + SITE)
    config = load_config(site)
    assert config.access_log == (spec or AccessLogSpec("-", "combined"))
    shown = to_toml(config)
    assert "[access_log]" in shown
    again = tmp_path / "again.toml"
    again.write_text(shown)
    assert load_config(again).access_log == config.access_log
