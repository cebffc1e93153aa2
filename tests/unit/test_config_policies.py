"""A pool's balancing keys in the config: what loads, what each key becomes, and the errors,
each naming the field (rota.config.balancing)."""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from rota.balancing import POLICIES
from rota.config.errors import ConfigError
from rota.config.load import build_config, load_config
from rota.config.model import ALGORITHMS, PoolSpec
from rota.config.show import to_toml

TINY = "tests.unit.test_custom_policy:Tiny"
SERVER = '{ host = "127.0.0.1", port = 5001 }'


def site(pool: str, servers: str = f"[{SERVER}]") -> str:
    return (
        '[listeners.web]\nbind = "127.0.0.1:0"\n[[listeners.web.routes]]\npool = "api"\n'
        f"[pools.api]\nservers = {servers}\n{pool}\n"
    )


def load(pool: str, servers: str = f"[{SERVER}]") -> PoolSpec:
    return build_config(tomllib.loads(site(pool, servers)), "site.toml", {}).pools[0]


def error(pool: str, servers: str = f"[{SERVER}]") -> str:
    with pytest.raises(ConfigError) as info:
        load(pool, servers)
    return str(info.value)


def test_every_built_in_name_has_a_policy() -> None:
    # Holds once the built-in policies' branch is merged (ALGORITHMS lists them all).
    for name in ALGORITHMS:
        assert name in POLICIES, name


def test_defaults() -> None:
    spec = load("")
    assert (spec.algorithm, spec.hash_key, spec.hash_balance_factor) == ("round_robin", "", 0.0)
    assert (spec.slow_start, spec.sticky_cookie, spec.queue_timeout) == (0.0, None, 0.0)
    assert spec.options == {}
    assert (spec.servers[0].backup, spec.servers[0].max_requests) == (False, None)


@pytest.mark.parametrize("name", [n for n in ALGORITHMS if n != "hash"])
def test_built_in_names(name: str) -> None:
    assert load(f'algorithm = "{name}"').algorithm == (
        "round_robin" if name == "roundrobin" else name
    )


def test_every_key() -> None:
    spec = load(
        'algorithm = "hash"\nkey = "header:X-User"\nhash_balance_factor = 1.25\n'
        'slow_start = 30\nsticky = { cookie = "rota_srv" }\nqueue_timeout = 2.5',
        '[{ host = "a", port = 1, max_requests = 100 }, { host = "b", port = 1, backup = true }]',
    )
    assert (spec.algorithm, spec.hash_key, spec.hash_balance_factor) == (
        "hash",
        "header:x-user",
        1.25,
    )
    assert (spec.slow_start, spec.sticky_cookie, spec.queue_timeout) == (30.0, "rota_srv", 2.5)
    assert [(s.backup, s.max_requests) for s in spec.servers] == [(False, 100), (True, None)]


@pytest.mark.parametrize(
    ("key", "stored"),
    [
        ("client_ip", "client_ip"),
        ("path", "path"),
        ("header:X-Zone", "header:x-zone"),
        ("cookie:Session", "cookie:Session"),
        ("query:user_id", "query:user_id"),
    ],
)
def test_hash_keys(key: str, stored: str) -> None:
    assert load(f'algorithm = "hash"\nkey = "{key}"').hash_key == stored


def test_a_custom_class_with_options() -> None:
    spec = load(f'algorithm = "{TINY}"\noptions = {{ zones = {{ a = "eu" }}, n = [1, 2] }}')
    assert spec.algorithm == TINY
    assert spec.options == {"zones": {"a": "eu"}, "n": [1, 2]}


F = "site.toml: pools.api"


@pytest.mark.parametrize(
    ("pool", "message"),
    [
        (
            'algorithm = "least_request"',
            f'{F}.algorithm: unknown algorithm "least_request" (did you mean "least_requests"?)',
        ),
        ("algorithm = 3", f"{F}.algorithm: unknown algorithm 3: expected one of round_robin"),
        (
            'algorithm = "hash"',
            f'{F}.key: missing: algorithm "hash" needs a key: "client_ip", "header:NAME", '
            '"cookie:NAME", "path" or "query:NAME"',
        ),
        (
            'algorithm = "p2c"\nkey = "path"',
            f'{F}.key: only with algorithm "hash"; algorithm is "p2c"',
        ),
        (
            "hash_balance_factor = 2",
            f'{F}.hash_balance_factor: only with algorithm "hash"; algorithm is "round_robin"',
        ),
        ('algorithm = "hash"\nkey = "ip"', f'{F}.key: expected "client_ip", "header:NAME"'),
        ('algorithm = "hash"\nkey = "header:"', f"{F}.key: expected a header name (a token)"),
        ('algorithm = "hash"\nkey = "cookie:a b"', f"{F}.key: expected a cookie name (a token)"),
        ('algorithm = "hash"\nkey = "query:a=b"', f"{F}.key: expected a query parameter name"),
        (
            'algorithm = "hash"\nkey = "path"\nhash_balance_factor = 1',
            f"{F}.hash_balance_factor: expected a number > 1 and <= 100",
        ),
        ("slow_start = -1", f"{F}.slow_start: expected a number of seconds >= 0 and <= 86400"),
        ('queue_timeout = "5s"', f"{F}.queue_timeout: expected a number of seconds >= 0"),
        ("sticky = { cookie = 'a;b' }", f"{F}.sticky.cookie: expected a cookie name (a token"),
        ("sticky = {}", f"{F}.sticky.cookie: missing: the name of the cookie to set"),
        ('sticky = { name = "x" }', f'{F}.sticky: unknown field "name"'),
        (
            "options = { a = 1 }",
            f'{F}.options: only with an algorithm of your own ("package.module:ClassName"); '
            'algorithm is "round_robin"',
        ),
        (
            'algorithm = "mypol:Zone"',
            f"{F}.algorithm: cannot import \"mypol:Zone\": No module named 'mypol'",
        ),
        (
            'algorithm = "tests.unit.test_custom_policy:NoPick"',
            f'{F}.algorithm: "tests.unit.test_custom_policy:NoPick" has no pick(request, servers)',
        ),
        (
            'algorithm = "tests.unit.test_custom_policy:Refuses"\noptions = { a = 1 }',
            f"{F}.options: Refuses(options) raised ValueError: zones must be a table",
        ),
        ('algorithm = "a:b:c"', f'{F}.algorithm: expected "package.module:ClassName", got "a:b:c"'),
        ("slwo_start = 1", f'{F}: unknown field "slwo_start" (did you mean "slow_start"?)'),
    ],
)
def test_errors_name_the_field(pool: str, message: str) -> None:
    assert error(pool).startswith(message)


@pytest.mark.parametrize(
    ("server", "message"),
    [
        ("backup = 1", f"{F}.servers[0].backup: expected true or false, got 1"),
        ("max_requests = 0", f"{F}.servers[0].max_requests: expected an integer 1-1000000, got 0"),
        ("max_request = 5", f'{F}.servers[0]: unknown field "max_request" (did you mean'),
    ],
)
def test_server_errors(server: str, message: str) -> None:
    assert error("", f'[{{ host = "a", port = 1, {server} }}]').startswith(message)


def test_options_in_json_may_not_be_null(tmp_path: Path) -> None:
    data: dict[str, Any] = tomllib.loads(site(f'algorithm = "{TINY}"'))
    data["pools"]["api"]["options"] = {"zones": {"a": None}}
    with pytest.raises(ConfigError) as info:
        build_config(data, "site.json", {})
    assert str(info.value).startswith("site.json: pools.api.options.zones.a: expected a string")


def test_the_seed_takes_any_algorithm_but_hash(tmp_path: Path) -> None:
    path = tmp_path / "server_db.json"
    path.write_text('{"server_list": [{"host": "a", "port": 1}], "algorithm": "p2c"}')
    assert load_config(path).pools[0].algorithm == "p2c"
    path.write_text('{"server_list": [{"host": "a", "port": 1}], "algorithm": "hash"}')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert 'algorithm: "hash" needs a key' in str(info.value)


def test_the_working_directory_is_importable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "cwd_policy_for_test.py").write_text(
        "class First:\n"
        "    def __init__(self, options):\n        pass\n"
        "    def pick(self, request, servers):\n        return servers[0]\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    assert load('algorithm = "cwd_policy_for_test:First"').algorithm == "cwd_policy_for_test:First"


def test_printed_and_read_back() -> None:
    config = build_config(
        tomllib.loads(
            site(
                'algorithm = "hash"\nkey = "cookie:sid"\nsticky = { cookie = "srv" }',
                '[{ host = "a", port = 1, backup = true, max_requests = 7 }]',
            )
        ),
        "site.toml",
        {},
    )
    text = to_toml(config)
    assert 'key = "cookie:sid"' in text and 'sticky = { cookie = "srv" }' in text
    assert "backup = true, max_requests = 7 }" in text
    assert build_config(tomllib.loads(text), "site.toml", {}) == config
    plain = to_toml(build_config(tomllib.loads(site("")), "site.toml", {}))
    assert "key =" not in plain and "# sticky: none" in plain and "backup" not in plain
