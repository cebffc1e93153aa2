"""The shape with listeners, routes and pools: resolution of defaults, every error naming
the field, did-you-mean, warnings."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from rota.config import (
    BackendSpec,
    ConfigError,
    HeaderEdits,
    HealthSpec,
    Mode,
    Redirect,
    Respond,
    RouteSpec,
    config_warnings,
    load_config,
)
from rota.config.load import build_config

POOLS = """
[pools.api]
servers = [{ host = "127.0.0.1", port = 5001, name = "api-1" }]

[pools.default]
servers = [{ host = "127.0.0.1", port = 5002 }]
"""


def error(tmp_path: Path, text: str) -> str:
    path = tmp_path / "site.toml"
    path.write_text(textwrap.dedent(text))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return str(info.value).replace(str(tmp_path) + "/", "")


ISSUE_EXAMPLE = """
[listeners.web]
bind = "127.0.0.1:8080"
protocol = "http"

[[listeners.web.routes]]
host = "API.example.com."
path_prefix = "/v1/"
methods = ["get", "POST"]
headers = { "X-Canary" = "1" }
pool = "api"
strip_prefix = "/v1"
request_headers = { set = { "x-env" = "prod" }, remove = ["X-Debug"] }
response_headers = { set = { "strict-transport-security" = "max-age=63072000" } }

[[listeners.web.routes]]
path = "/old"
redirect = { location = "https://example.com/new", status = 301 }

[[listeners.web.routes]]
path = "/robots.txt"
respond = { status = 200, body = "User-agent: *\\nDisallow: /\\n" }

[[listeners.web.routes]]
pool = "default"

[listeners.db]
bind = "127.0.0.1:6000"
protocol = "tcp"
pool = "db"

[pools.api]
algorithm = "round_robin"
servers = [
  { host = "127.0.0.1", port = 5001, name = "api-1", weight = 1 },
  { host = "127.0.0.1", port = 5002, name = "api-2" },
]
health_check = { path = "/healthz", interval = 2, rise = 2, fall = 3 }
timeouts = { connect = 1, response = 10 }

[pools.default]
servers = [{ host = "127.0.0.1", port = 5003 }]

[pools.db]
servers = [{ host = "127.0.0.1", port = 5432, id = 1 }]
"""


def test_the_issue_example_loads(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, ISSUE_EXAMPLE))
    assert not cfg.seed
    web, db = cfg.listeners
    assert (web.name, web.host, web.port, web.protocol) == ("web", "127.0.0.1", 8080, Mode.HTTP)
    assert (db.name, db.protocol, db.pool, db.routes) == ("db", Mode.TCP, "db", ())
    first, old, robots, rest = web.routes
    assert first == RouteSpec(
        pool="api",
        host="api.example.com",
        path_prefix="/v1/",
        methods=("GET", "POST"),
        headers=(("x-canary", "1"),),
        strip_prefix="/v1",
        request_headers=HeaderEdits(set=(("x-env", "prod"),), remove=("x-debug",)),
        response_headers=HeaderEdits(set=(("strict-transport-security", "max-age=63072000"),)),
    )
    assert old == RouteSpec(path="/old", redirect=Redirect("https://example.com/new", 301))
    assert robots == RouteSpec(
        path="/robots.txt", respond=Respond(200, "User-agent: *\nDisallow: /\n")
    )
    assert rest == RouteSpec(pool="default") and rest.matches_all
    api = cfg.pool("api")
    assert [s.key for s in api.servers] == ["api-1", "api-2"]
    assert (api.health.path, api.health.interval, api.health.timeout) == ("/healthz", 2.0, 2.0)
    assert (api.timeouts.connect, api.timeouts.response, api.timeouts.pool_idle) == (1, 10, 15)
    assert cfg.pool("db").servers == (
        BackendSpec(name="127.0.0.1:5432", host="127.0.0.1", port=5432, id="1"),
    )
    assert config_warnings(cfg) == []


def write(tmp_path: Path, text: str, name: str = "site.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_sections_override_the_top_level_key_by_key(tmp_path: Path) -> None:
    text = """
    workers = 3
    [health_check]
    interval = 10
    path = "/ping"
    [timeouts]
    connect = 2
    idle = 30
    [limits]
    max_headers = 50
    pool_size = 8
    [listeners.web]
    bind = "127.0.0.1:0"
    timeouts = { idle = 5 }
    limits = { max_connections = 7 }
    [[listeners.web.routes]]
    pool = "a"
    [listeners.other]
    bind = "127.0.0.1:0"
    [[listeners.other.routes]]
    pool = "b"
    [pools.a]
    servers = [{ host = "127.0.0.1", port = 5001 }]
    health_check = { interval = 1 }
    timeouts = { connect = 0.5 }
    limits = { pool_size = 2 }
    [pools.b]
    servers = [{ host = "127.0.0.1", port = 5001 }]
    """
    cfg = load_config(write(tmp_path, text))
    assert cfg.workers == 3
    web, other = cfg.listeners
    assert (web.timeouts.idle, web.timeouts.header, web.timeouts.connect) == (5, 10, 2)
    assert (web.limits.max_connections, web.limits.max_headers) == (7, 50)
    assert (other.timeouts.idle, other.limits.max_connections) == (30, 10_000)
    a, b = cfg.pools
    # The pool's interval is its own; its timeout defaults to at most that interval.
    assert a.health == HealthSpec(interval=1, timeout=1, path="/ping")
    assert b.health == cfg.health == HealthSpec(interval=10, timeout=2, path="/ping")
    assert (a.timeouts.connect, a.limits.pool_size) == (0.5, 2)
    assert (b.timeouts.connect, b.limits.pool_size) == (2, 8)


def test_an_inherited_health_timeout_fits_the_pools_own_interval() -> None:
    data = {
        "health_check": {"interval": 10, "timeout": 3},
        "listeners": {
            "w": {
                "bind": "127.0.0.1:0",
                "routes": [{"pool": "a"}],
            }
        },
        "pools": {
            "a": {"servers": [{"host": "127.0.0.1", "port": 1}], "health_check": {"interval": 1}},
            "b": {"servers": [{"host": "127.0.0.1", "port": 1}]},
        },
    }
    cfg = build_config(data, "x", {})
    assert (cfg.pool("a").health.interval, cfg.pool("a").health.timeout) == (1, 1)
    assert (cfg.pool("b").health.interval, cfg.pool("b").health.timeout) == (10, 3)
    # A timeout the pool sets itself is never changed: over its interval, an error.
    data["pools"]["a"]["health_check"]["timeout"] = 2  # type: ignore[index]
    with pytest.raises(ConfigError, match=r"^x: pools\.a\.health_check\.timeout: must not"):
        build_config(data, "x", {})


def test_json_has_the_same_shape(tmp_path: Path) -> None:
    text = """
    {"listeners": {"web": {"bind": "[::1]:8080", "routes": [{"pool": "p"}]}},
     "pools": {"p": {"servers": [{"host": "::1", "port": 5001}]}},
     "limits": {"max_body_bytes": null}}
    """
    cfg = load_config(write(tmp_path, text, "site.json"))
    assert (cfg.listeners[0].host, cfg.listeners[0].address) == ("::1", "[::1]:8080")
    assert cfg.pools[0].servers[0].address == "[::1]:5001"


def test_wildcard_hosts_and_ip_literals(tmp_path: Path) -> None:
    hosts = ["*.Example.COM", "127.0.0.1", "[::1]", "a_b.example", "x.y.z."]
    cfg = load_config(write(tmp_path, web(*(f'host = "{h}"\npool = "api"' for h in hosts))))
    assert [r.host for r in cfg.listeners[0].routes] == [
        "*.example.com",
        "127.0.0.1",
        "[::1]",
        "a_b.example",
        "x.y.z",
    ]


def web(*routes: str, pools: str = POOLS, extra: str = "") -> str:
    body = "".join(f"[[listeners.web.routes]]\n{r}\n" for r in routes)
    return f'[listeners.web]\nbind = "127.0.0.1:8080"\n{extra}\n{body}{pools}'


BAD = [
    (
        web('host = "a.example"\npool = "api"', 'path = "/x"\npool = "default"', 'pool = "apii"'),
        'site.toml: listeners.web.routes[2].pool: no pool named "apii" (pools: api, default)',
    ),
    (
        web('pth = "/x"\npool = "api"'),
        'site.toml: listeners.web.routes[0]: unknown field "pth" (did you mean "path"?)',
    ),
    (
        web('colour = "red"\npool = "api"'),
        'site.toml: listeners.web.routes[0]: unknown field "colour" (expected one of: host,',
    ),
    (
        web(
            'path = "/a"\npool = "api"',
            'path = "/b"\npool = "api"',
            'pool = "default"',
            'pool = "api"',
        ),
        "site.toml: listeners.web.routes[3]: can never match: routes[2] matches every request",
    ),
    (
        web(
            'host = "*.example.com"\npath_prefix = "/v1/"\npool = "api"',
            'host = "a.example.com"\npath_prefix = "/v1/users"\npool = "default"',
        ),
        "site.toml: listeners.web.routes[1]: can never match: routes[0] matches every request "
        "it matches",
    ),
    (
        web('path = "/a"\npool = "api"\nredirect = { location = "/b" }'),
        "site.toml: listeners.web.routes[0].redirect: a route has one action; this one also "
        "has pool",
    ),
    (
        web('pool = "api"\nrespond = { status = 200 }'),
        "site.toml: listeners.web.routes[0].respond: a route has one action; this one also "
        "has pool",
    ),
    (
        web('path = "/a"'),
        "site.toml: listeners.web.routes[0]: no action: give one of pool, redirect or respond",
    ),
    (
        web('path = "/a"\npath_prefix = "/b"\npool = "api"'),
        "site.toml: listeners.web.routes[0].path_prefix: give path or path_prefix, not both",
    ),
    (
        web('path = "a"\npool = "api"'),
        'site.toml: listeners.web.routes[0].path: expected a path starting with "/"',
    ),
    (
        web('path_prefix = "/a b"\npool = "api"'),
        'site.toml: listeners.web.routes[0].path_prefix: expected a path starting with "/"',
    ),
    (
        web('path = "/a?b=1"\npool = "api"'),
        'site.toml: listeners.web.routes[0].path: expected a path starting with "/", visible',
    ),
    (
        web('host = "*"\npool = "api"'),
        "site.toml: listeners.web.routes[0].host: expected a host name like",
    ),
    (
        web('host = "a..b"\npool = "api"'),
        "site.toml: listeners.web.routes[0].host: expected a host name like",
    ),
    (
        web('host = "example.com:8080"\npool = "api"'),
        "site.toml: listeners.web.routes[0].host: expected a host name like",
    ),
    (
        web('host = "a.*.com"\npool = "api"'),
        "site.toml: listeners.web.routes[0].host: expected a host name like",
    ),
    (
        web('methods = []\npool = "api"'),
        "site.toml: listeners.web.routes[0].methods: expected at least one method",
    ),
    (
        web('methods = ["GET", "G T"]\npool = "api"'),
        'site.toml: listeners.web.routes[0].methods[1]: expected a method like GET, got "G T"',
    ),
    (
        web('methods = ["GET", "get"]\npool = "api"'),
        'site.toml: listeners.web.routes[0].methods[1]: "GET" is listed twice',
    ),
    (
        web('headers = { "x y" = "1" }\npool = "api"'),
        "site.toml: listeners.web.routes[0].headers: expected a header field name (a token)",
    ),
    (
        web('headers = { "x" = "a\\r\\nb" }\npool = "api"'),
        "site.toml: listeners.web.routes[0].headers.x: expected printable characters",
    ),
    (
        web('headers = {}\npool = "api"'),
        "site.toml: listeners.web.routes[0].headers: expected at least one field",
    ),
    (
        web('path = "/a"\nrespond = { content_type = "" }'),
        "site.toml: listeners.web.routes[0].respond.content_type: expected a media type",
    ),
    (
        web('headers = { "x" = 1 }\npool = "api"'),
        "site.toml: listeners.web.routes[0].headers.x: expected a string, got 1",
    ),
    (
        web('pool = "api"\nrequest_headers = { set = { "Content-Length" = "1" } }'),
        'site.toml: listeners.web.routes[0].request_headers.set: "Content-Length" is not for '
        "routes to edit",
    ),
    (
        web('pool = "api"\nrequest_headers = { remove = ["host"] }'),
        'site.toml: listeners.web.routes[0].request_headers.remove[0]: "host" is not for routes',
    ),
    (
        web('pool = "api"\nresponse_headers = { remove = ["Transfer-Encoding"] }'),
        'site.toml: listeners.web.routes[0].response_headers.remove[0]: "Transfer-Encoding"',
    ),
    (
        web('pool = "api"\nresponse_headers = { set = { "x" = "a\\u0000" } }'),
        "site.toml: listeners.web.routes[0].response_headers.set.x: expected printable",
    ),
    (
        web('pool = "api"\nresponse_headers = { add = { "x" = "1" } }'),
        'site.toml: listeners.web.routes[0].response_headers: unknown field "add"',
    ),
    (
        web('pool = "api"\nrequest_headers = { set = { "x" = "1" }, remove = ["X"] }'),
        'site.toml: listeners.web.routes[0].request_headers.remove[0]: "X" is also set',
    ),
    (
        web('path = "/a"\nredirect = { location = "/b" }\nstrip_prefix = "/a"'),
        "site.toml: listeners.web.routes[0].strip_prefix: only with pool (this route has redirect)",
    ),
    (
        web('path = "/a"\nrespond = { status = 200 }\nrequest_headers = { remove = ["x"] }'),
        "site.toml: listeners.web.routes[0].request_headers: only with pool",
    ),
    (
        web('path = "/a"\nredirect = { location = "/b", status = 200 }'),
        "site.toml: listeners.web.routes[0].redirect.status: expected one of 301, 302, 303, 307, "
        "308, got 200",
    ),
    (
        web('path = "/a"\nredirect = { status = 301 }'),
        "site.toml: listeners.web.routes[0].redirect.location: missing",
    ),
    (
        web('path = "/a"\nredirect = { location = "/a b" }'),
        "site.toml: listeners.web.routes[0].redirect.location: expected a URL of visible ASCII",
    ),
    (
        web('path = "/a"\nrespond = { status = 600 }'),
        "site.toml: listeners.web.routes[0].respond.status: expected an integer 200-599, got 600",
    ),
    (
        web('path = "/a"\nrespond = { status = 204, body = "x" }'),
        "site.toml: listeners.web.routes[0].respond.body: a 204 response has no body",
    ),
    (
        web('path = "/a"\nrespond = { status = 200, body = 1 }'),
        "site.toml: listeners.web.routes[0].respond.body: expected a string, got 1",
    ),
    (
        web(extra="routes = []"),
        "site.toml: listeners.web.routes: no routes: list at least one",
    ),
    (
        f'[listeners.web]\nbind = "127.0.0.1:1"\n{POOLS}',
        "site.toml: listeners.web.routes: missing: an http listener needs at least one route",
    ),
    (
        web('pool = "api"', extra='pool = "api"'),
        'site.toml: listeners.web.pool: only for protocol "tcp"',
    ),
    (
        web('pool = "api"', extra='send_proxy = "v1"'),
        'site.toml: listeners.web.send_proxy: only supported with protocol "tcp" (protocol is '
        '"http")',
    ),
    (
        web('pool = "api"', extra="accept_proxy = true"),
        'site.toml: listeners.web.accept_proxy: only supported with protocol "tcp"',
    ),
    (
        web('pool = "api"', extra="timeouts = { connect = 1 }"),
        'site.toml: listeners.web.timeouts: "connect" is a pool\'s timeout: set it in '
        "[pools.NAME.timeouts] or in the top-level [timeouts]",
    ),
    (
        web('pool = "api"', extra="limits = { pool_size = 1 }"),
        'site.toml: listeners.web.limits: "pool_size" is a pool\'s limit: set it in '
        "[pools.NAME.limits] or in the top-level [limits]",
    ),
    (
        web('pool = "api"', extra="timeouts = { idel = 1 }"),
        'site.toml: listeners.web.timeouts: unknown field "idel" (did you mean "idle"?)',
    ),
    (
        web('pool = "api"', extra="timeouts = { idle = 0 }"),
        "site.toml: listeners.web.timeouts.idle: expected a number of seconds > 0",
    ),
    (
        web('pool = "api"', extra='protocol = "udp"'),
        'site.toml: listeners.web.protocol: expected one of http, tcp, got "udp"',
    ),
    (
        web('pool = "api"', extra='bnd = "x"'),
        'site.toml: listeners.web: unknown field "bnd" (did you mean "bind"?)',
    ),
    (
        f'[listeners.db]\nprotocol = "tcp"\nbind = "127.0.0.1:1"\npool = "dbb"\n{POOLS}',
        'site.toml: listeners.db.pool: no pool named "dbb" (pools: api, default)',
    ),
    (
        f'[listeners.db]\nprotocol = "tcp"\nbind = "127.0.0.1:1"\n{POOLS}',
        "site.toml: listeners.db.pool: missing: the pool a tcp listener sends connections to",
    ),
    (
        f'[listeners.db]\nprotocol = "tcp"\nbind = "127.0.0.1:1"\npool = "api"\n'
        f'[[listeners.db.routes]]\npool = "api"\n{POOLS}',
        'site.toml: listeners.db.routes: only for protocol "http"',
    ),
    (
        f'[listeners.db]\nprotocol = "tcp"\nbind = "127.0.0.1:1"\npool = "api"\n'
        f'send_proxy = "v3"\n{POOLS}',
        'site.toml: listeners.db.send_proxy: expected one of v1, v2, got "v3"',
    ),
    (
        web('pool = "api"').replace('bind = "127.0.0.1:8080"', ""),
        'site.toml: listeners.web.bind: missing: the address to listen on, like "127.0.0.1:8080"',
    ),
    (
        web('pool = "api"').replace("127.0.0.1:8080", "8080"),
        'site.toml: listeners.web.bind: expected "host:port" or "[IPv6]:port", got "8080"',
    ),
    (
        web('pool = "api"').replace("127.0.0.1:8080", "::1:8080"),
        'site.toml: listeners.web.bind: expected "host:port" or "[IPv6]:port", got '
        '"::1:8080" (an IPv6 address goes in brackets)',
    ),
    (
        web('pool = "api"').replace("127.0.0.1:8080", "127.0.0.1:70000"),
        "site.toml: listeners.web.bind: expected a port 0-65535 after the colon, got",
    ),
    (
        web('pool = "api"')
        + '[listeners.two]\nbind = "127.0.0.1:8080"\n[[listeners.two.routes]]\npool = "api"\n',
        "site.toml: listeners.two.bind: 127.0.0.1:8080 is also bound by listeners.web "
        "(127.0.0.1:8080)",
    ),
    (
        web('pool = "api"')
        + '[listeners.two]\nbind = "0.0.0.0:8080"\n[[listeners.two.routes]]\npool = "api"\n',
        "site.toml: listeners.two.bind: 0.0.0.0:8080 is also bound by listeners.web",
    ),
    (
        web('pool = "api"').replace("[pools.api]", '[listeners."a b"]\n[pools.api]'),
        'site.toml: listeners: "a b": a listener name is 1-64 letters, digits, _ and -',
    ),
    (
        web('pool = "api"', pools="[pools.api]\nservers = []\n"),
        "site.toml: pools.api.servers: no servers: list at least one",
    ),
    (
        web('pool = "api"', pools="[pools.api]\n"),
        "site.toml: pools.api.servers: missing: list at least one server",
    ),
    (
        web(
            'pool = "api"',
            pools='[pools.api]\nservers = [{ host = "a", port = 1 }, { host = "a", port = 1 }]\n',
        ),
        "site.toml: pools.api.servers[1]: duplicate server a:1 (also servers[0])",
    ),
    (
        web(
            'pool = "api"',
            pools='[pools.api]\nservers = [{ host = "a", port = 1, id = "x" }, '
            '{ host = "b", port = 1, id = "x" }]\n',
        ),
        'site.toml: pools.api.servers[1].id: duplicate id "x" (also servers[0])',
    ),
    (
        web(
            'pool = "api"',
            pools='[pools.api]\nservers = [{ host = "a", port = 1, name = "x" }, '
            '{ host = "b", port = 1, name = "x" }]\n',
        ),
        'site.toml: pools.api.servers[1].name: duplicate name "x" (also servers[0])',
    ),
    (
        web('pool = "api"', pools='[pools.api]\nservers = [{ host = "a", port = 1, prot = 2 }]\n'),
        'site.toml: pools.api.servers[0]: unknown field "prot" (did you mean "port"?)',
    ),
    (
        web(
            'pool = "api"',
            pools='[pools.api]\nalgorithm = "fastest"\nservers = [{ host = "a", port = 1 }]\n',
        ),
        "site.toml: pools.api.algorithm: expected one of round_robin, roundrobin, least_requests, "
        'p2c, random, hash, first, got "fastest"',
    ),
    (
        web(
            'pool = "api"',
            pools='[pools.api]\nservers = [{ host = "a", port = 1 }]\ntimeouts = { idle = 1 }\n',
        ),
        'site.toml: pools.api.timeouts: "idle" is a listener\'s timeout: set it in '
        "[listeners.NAME.timeouts] or in the top-level [timeouts]",
    ),
    (
        web(
            'pool = "api"',
            pools='[pools.api]\nservers = [{ host = "a", port = 1 }]\n'
            "limits = { max_headers = 1 }\n",
        ),
        'site.toml: pools.api.limits: "max_headers" is a listener\'s limit: set it in '
        "[listeners.NAME.limits] or in the top-level [limits]",
    ),
    (
        web(
            'pool = "api"',
            pools='[pools.api]\nservers = [{ host = "a", port = 1 }]\n'
            "health_check = { interval = 1, timeout = 2 }\n",
        ),
        "site.toml: pools.api.health_check.timeout: must not exceed the interval (1 s), got 2",
    ),
    (
        web(
            'pool = "api"',
            pools='[pools.api]\nservers = [{ host = "a", port = 1 }]\n'
            "health_check = { intervall = 1 }\n",
        ),
        'site.toml: pools.api.health_check: unknown field "intervall" (did you mean "interval"?)',
    ),
    (
        web('pool = "api"') + '[[server_list]]\nhost = "a"\nport = 1\n',
        "site.toml: server_list: not allowed with listeners and pools: list servers in "
        "[pools.NAME]",
    ),
    (
        'mode = "tcp"\n' + web('pool = "api"'),
        "site.toml: mode: not allowed with listeners and pools: set protocol in [listeners.NAME]",
    ),
    (
        "[listen]\nport = 1\n" + web('pool = "api"'),
        "site.toml: listen: not allowed with listeners and pools: set bind in [listeners.NAME]",
    ),
    (
        "listners = 1\n" + web('pool = "api"'),
        'site.toml: unknown field "listners" (did you mean "listeners"?)',
    ),
    (
        POOLS,
        "site.toml: listeners: missing: define at least one listener ([listeners.NAME])",
    ),
    (
        "listeners = {}\n" + POOLS,
        "site.toml: listeners: no listeners: define at least one ([listeners.NAME])",
    ),
    (
        '[listeners.web]\nbind = "127.0.0.1:1"\n[[listeners.web.routes]]\npool = "x"\n',
        "site.toml: pools: missing: define at least one pool ([pools.NAME])",
    ),
    (
        "listeners = 3\n" + POOLS,
        "site.toml: listeners: expected a table (an object in JSON), got 3",
    ),
    (
        "[health_check]\nrise = 0\n" + web('pool = "api"'),
        "site.toml: health_check.rise: expected an integer 1-100, got 0",
    ),
]


@pytest.mark.parametrize(("text", "message"), BAD, ids=[m.split(": ", 2)[1] for _, m in BAD])
def test_bad_configs_name_the_field(tmp_path: Path, text: str, message: str) -> None:
    got = error(tmp_path, text)
    assert got.startswith(message), got


def test_port_0_may_repeat_and_other_addresses_may_share_a_port(tmp_path: Path) -> None:
    text = web('pool = "api"').replace("127.0.0.1:8080", "127.0.0.1:0")
    for name, bind in (("b", "127.0.0.1:0"), ("c", "127.0.0.2:8080"), ("d", "127.0.0.3:8080")):
        text += f'[listeners.{name}]\nbind = "{bind}"\n[[listeners.{name}.routes]]\npool = "api"\n'
    cfg = load_config(write(tmp_path, text))
    assert [spec.port for spec in cfg.listeners] == [0, 0, 8080, 8080]


def test_an_unused_pool_is_a_warning_not_an_error(tmp_path: Path) -> None:
    cfg = load_config(
        write(
            tmp_path, web('pool = "api"') + '[pools.spare]\nservers = [{ host = "a", port = 9 }]\n'
        )
    )
    source = str(tmp_path / "site.toml")
    assert config_warnings(cfg) == [
        f"{source}: pools.default: not used by any listener",
        f"{source}: pools.spare: not used by any listener",
    ]


def test_a_pool_used_by_a_tcp_listener_or_a_later_route_is_used() -> None:
    data = {
        "listeners": {
            "web": {"bind": "127.0.0.1:0", "routes": [{"path": "/a", "pool": "a"}, {"pool": "b"}]},
            "db": {"bind": "127.0.0.1:0", "protocol": "tcp", "pool": "c"},
        },
        "pools": {
            name: {"servers": [{"host": "127.0.0.1", "port": 5001}]} for name in ("a", "b", "c")
        },
    }
    assert config_warnings(build_config(data, "x", {})) == []
