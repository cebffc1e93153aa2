"""Property: any valid configuration, written by `rota check-config`, reads back equal."""

from __future__ import annotations

import dataclasses
import datetime as dt
import string
import tempfile
import tomllib
from pathlib import Path
from typing import Any

import trustme
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from rota.config.errors import ConfigError
from rota.config.load import build_config
from rota.config.model import ALGORITHMS
from rota.config.routes import FRAMING, REQUEST_ONLY, TOKEN
from rota.config.show import to_toml

names = st.from_regex(r"[a-z][a-z0-9_-]{0,6}", fullmatch=True)


def _certificates() -> tuple[list[dict[str, str]], str]:
    """Certificate files for TLS listeners (the loader reads them), and a CA file."""
    where = Path(tempfile.mkdtemp(prefix="rota-show-"))
    ca = trustme.CA()
    ca.cert_pem.write_to_path(where / "ca.pem")
    out = []
    for i, (name, kind) in enumerate(
        [("a.example.com", trustme.KeyType.ECDSA), ("*.b.example.com", trustme.KeyType.RSA)]
    ):
        leaf = ca.issue_cert(name, key_type=kind)
        leaf.cert_chain_pems[0].write_to_path(where / f"{i}.pem")
        leaf.private_key_pem.write_to_path(where / f"{i}.key")
        out.append({"cert": str(where / f"{i}.pem"), "key": str(where / f"{i}.key")})
    return out, str(where / "ca.pem")


CERTIFICATES, CA_FILE = _certificates()
visible = st.characters(min_codepoint=0x21, max_codepoint=0x7E)
paths = st.text(visible.filter(lambda c: c != "?"), max_size=8).map(lambda t: "/" + t)
tokens = st.text(st.sampled_from(sorted(TOKEN)), min_size=1, max_size=8)
# Field values: printable Latin-1 with inner spaces and tabs, nothing around them.
values = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"),
    max_size=12,
).map(lambda t: t.strip(" \t"))
labels = st.text(
    st.sampled_from(string.ascii_lowercase + string.digits + "-"), min_size=1, max_size=5
)
hosts = st.lists(labels, min_size=1, max_size=3).map(".".join)
dns_names = st.lists(labels.filter(lambda x: x[0] != "-" != x[-1]), min_size=1, max_size=3).map(
    ".".join
)
seconds = st.one_of(st.integers(1, 86400), st.floats(0.001, 86400))
CUSTOM = "tests.unit.test_custom_policy:Tiny"
option_scalars = st.one_of(
    st.text(max_size=8),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False),
    st.booleans(),
    st.datetimes(timezones=st.sampled_from([None, dt.UTC, dt.timezone(dt.timedelta(hours=-5))])),
    st.dates(),
)
options = st.dictionaries(
    tokens,
    st.recursive(
        option_scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=3), st.dictionaries(tokens, inner, max_size=3)
        ),
        max_leaves=6,
    ),
    min_size=1,
    max_size=3,
)


@st.composite
def header_edits(draw: st.DrawFn, request: bool) -> dict[str, Any]:
    refused = FRAMING | REQUEST_ONLY if request else FRAMING
    field_names = tokens.map(str.lower).filter(lambda n: n not in refused)
    names_ = draw(st.lists(field_names, unique=True, max_size=3))
    half = len(names_) // 2
    return {"set": {n: draw(values) for n in names_[:half]}, "remove": names_[half:]}


@st.composite
def route(draw: st.DrawFn, pools: list[str], catch_all: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if not catch_all:
        keys = draw(st.sets(st.sampled_from(["host", "path", "methods", "headers"]), min_size=1))
        if "host" in keys:
            out["host"] = draw(st.one_of(hosts, hosts.map(lambda h: "*." + h)))
        if "path" in keys:
            out[draw(st.sampled_from(["path", "path_prefix"]))] = draw(paths)
        if "methods" in keys:
            out["methods"] = draw(
                st.lists(tokens.map(str.upper), min_size=1, max_size=3, unique=True)
            )
        if "headers" in keys:
            out["headers"] = draw(
                st.dictionaries(tokens.map(str.lower), values, min_size=1, max_size=2)
            )
    action = draw(st.sampled_from(["pool", "redirect", "respond"]))
    if action == "pool":
        out["pool"] = draw(st.sampled_from(pools))
        if draw(st.booleans()):
            out["strip_prefix"] = draw(paths)
        out["request_headers"] = draw(header_edits(True))
    elif action == "redirect":
        out["redirect"] = {
            "location": draw(st.text(visible, min_size=1, max_size=12)),
            "status": draw(st.sampled_from([301, 302, 303, 307, 308])),
        }
    else:
        out["respond"] = {
            "status": draw(st.sampled_from([200, 403, 404, 410, 503])),
            "body": draw(st.text(max_size=20)),
            "content_type": draw(values.filter(bool)),
        }
    out["response_headers"] = draw(header_edits(False))
    return out


@st.composite
def balancing(draw: st.DrawFn) -> dict[str, Any]:
    """A pool's balancing keys; a custom class, with options, from the policies' tests."""
    out: dict[str, Any] = {}
    algorithm = draw(st.sampled_from([*ALGORITHMS, CUSTOM, None]))
    if algorithm is not None:
        out["algorithm"] = algorithm
    if algorithm == "hash":
        out["key"] = draw(
            st.one_of(
                st.sampled_from(["client_ip", "path"]),
                tokens.map(lambda t: "header:" + t.lower()),
                tokens.map(lambda t: "cookie:" + t),
                tokens.filter(lambda t: not {"&", "#"} & set(t)).map(lambda t: "query:" + t),
            )
        )
        if draw(st.booleans()):
            out["hash_balance_factor"] = draw(st.sampled_from([0, 1.25, 2, 100]))
    if algorithm == CUSTOM and draw(st.booleans()):
        out["options"] = draw(options)
    if draw(st.booleans()):
        out["slow_start"] = draw(st.one_of(st.just(0), seconds))
    if draw(st.booleans()):
        out["queue_timeout"] = draw(st.one_of(st.just(0), seconds))
    if draw(st.booleans()):
        out["sticky"] = {"cookie": draw(tokens)}
    return out


@st.composite
def listener_tls(draw: st.DrawFn, http: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "certificates": draw(st.lists(st.sampled_from(CERTIFICATES), min_size=1, max_size=2))
    }
    if draw(st.booleans()):
        out["min_version"] = draw(st.sampled_from(["1.2", "1.3"]))
    if draw(st.booleans()):
        protocols = ["http/1.1", "http/1.0"] if http else ["h2", "http/1.1", "postgresql"]
        out["alpn"] = draw(st.lists(st.sampled_from(protocols), max_size=2, unique=True))
    if draw(st.booleans()):
        out["strict_sni"] = draw(st.booleans())
    return out


@st.composite
def backend_tls(draw: st.DrawFn) -> dict[str, Any]:
    out: dict[str, Any] = {}
    verify = draw(st.sampled_from([True, False, None]))
    if verify is not None:
        out["verify"] = verify
    if verify is not False and draw(st.booleans()):
        out["ca"] = CA_FILE
    if draw(st.booleans()):
        out["sni"] = draw(dns_names)
    return out


@st.composite
def configs(draw: st.DrawFn) -> dict[str, Any]:
    pool_names = draw(st.lists(names, min_size=1, max_size=3, unique=True))
    pools: dict[str, Any] = {}
    for name in pool_names:
        ports = draw(st.lists(st.integers(1, 65535), min_size=1, max_size=3, unique=True))
        servers = []
        for i, port in enumerate(ports):
            server: dict[str, Any] = {
                "host": draw(st.sampled_from(["127.0.0.1", "::1"])),
                "port": port,
            }
            if draw(st.booleans()):
                server["name"] = f"{draw(values.filter(str.isprintable))}#{i}"
            if draw(st.booleans()):
                # Unique by construction: an integer ending in i, or "s" and i.
                number = draw(st.integers(0, 99)) * 10 + i
                server["id"] = draw(st.sampled_from([number, f"s{i}"]))
            server["weight"] = draw(st.integers(1, 1000))
            if draw(st.booleans()):
                server["backup"] = draw(st.booleans())
            if draw(st.booleans()):
                server["max_requests"] = draw(st.integers(1, 1_000_000))
            servers.append(server)
        pool: dict[str, Any] = {"servers": servers, **draw(balancing())}
        if draw(st.booleans()):
            interval = draw(seconds)
            pool["health_check"] = {
                "interval": interval,
                "type": draw(st.sampled_from(["http", "tcp"])),
            }
        if draw(st.booleans()):
            pool["timeouts"] = {"connect": draw(seconds)}
        if draw(st.booleans()):
            pool["tls"] = draw(backend_tls())
        pools[name] = pool
    listeners: dict[str, Any] = {}
    for i, name in enumerate(draw(st.lists(names, min_size=1, max_size=3, unique=True))):
        listener: dict[str, Any] = {"bind": f"127.0.0.1:{8000 + i}"}
        if draw(st.booleans()):
            listener.update(protocol="tcp", pool=draw(st.sampled_from(pool_names)))
            if draw(st.booleans()):
                listener["send_proxy"] = draw(st.sampled_from(["v1", "v2"]))
            passthrough = draw(st.sampled_from(["", "sni_routes", "tls"]))
            if passthrough == "sni_routes":
                snis = draw(st.lists(dns_names, min_size=1, max_size=3, unique=True))
                listener["sni_routes"] = [
                    {"sni": sni, "pool": draw(st.sampled_from(pool_names))} for sni in snis
                ]
                if draw(st.booleans()):
                    del listener["pool"]
            elif passthrough == "tls":
                listener["tls"] = draw(listener_tls(http=False))
        else:
            n = draw(st.integers(0, 3))
            last = draw(st.booleans())
            listener["routes"] = [
                draw(route(pool_names, catch_all=last and j == n)) for j in range(n + 1)
            ]
            if draw(st.booleans()):
                listener["tls"] = draw(listener_tls(http=True))
        if draw(st.booleans()):
            listener["limits"] = {"max_body_bytes": draw(st.integers(1, 2**40))}
        listeners[name] = listener
    top: dict[str, Any] = {"listeners": listeners, "pools": pools}
    if draw(st.booleans()):
        top["timeouts"] = {"idle": draw(seconds), "response": draw(seconds)}
    if draw(st.booleans()):
        top["health_check"] = {"interval": 100, "timeout": draw(st.floats(0.001, 100)), "rise": 5}
    return top


@settings(max_examples=100, deadline=None)
@given(configs())
def test_printed_config_reads_back_equal(data: dict[str, Any]) -> None:
    try:
        config = build_config(data, "x", {})
    except ConfigError as exc:
        # Random routes may shadow each other, which the loader refuses: not this test's
        # subject (tests/unit/test_config_listeners.py has it).
        assume("can never match" not in exc.problem)
        raise
    text = to_toml(config)
    again = build_config(tomllib.loads(text), "x", {})
    assert again == dataclasses.replace(config, seed=False)
