"""The ClientHello's server name, read from real ClientHellos (made by Python's ssl and
split every way a socket may split them) and from bytes that are none."""

from __future__ import annotations

import ssl

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rota.config.model import SniRoute
from rota.tls.clienthello import MAX_CLIENT_HELLO, Verdict, server_name
from rota.tls.passthrough import SniTable


def hello(sni: str | None, version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_3) -> bytes:
    ctx = ssl.create_default_context()
    ctx.check_hostname = sni is not None
    ctx.maximum_version = version
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname=sni)
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    return outgoing.read()


def test_the_name_of_a_real_client_hello() -> None:
    assert server_name(hello("DB.Example.com")) == (Verdict.NAME, "db.example.com")
    assert server_name(hello("a.b", ssl.TLSVersion.TLSv1_2)) == (Verdict.NAME, "a.b")


def test_no_server_name_is_a_complete_hello_without_one() -> None:
    assert server_name(hello(None)) == (Verdict.NAME, None)


@settings(max_examples=50, deadline=None)
@given(st.data())
def test_every_prefix_asks_for_more(data: st.DataObject) -> None:
    whole = hello("x.example.org")
    cut = data.draw(st.integers(0, len(whole) - 1))
    assert server_name(whole[:cut]) == (Verdict.MORE, None)


def test_a_hello_split_over_several_records() -> None:
    whole = hello("split.example.org")
    body = whole[5:]
    records = b"".join(
        whole[:3] + len(body[i : i + 50]).to_bytes(2, "big") + body[i : i + 50]
        for i in range(0, len(body), 50)
    )
    assert server_name(records) == (Verdict.NAME, "split.example.org")


@pytest.mark.parametrize(
    ("data", "verdict"),
    [
        (b"GET / HTTP/1.1\r\n\r\n", Verdict.NOT_TLS),
        (b"\x16\x02\x00\x00\x05hello", Verdict.NOT_TLS),  # not TLS 1.x's record version
        (b"\x16\x03\x01\x00\x05\x02\x00\x00\x01\x00", Verdict.NOT_TLS),  # a ServerHello
        (b"\x16\x03\x01\x00\x00", Verdict.MALFORMED),  # an empty record
        (b"\x16\x03\x01\x00\x08\x01\x00\x00\x04\x03\x03\x00\x00", Verdict.MALFORMED),
        (b"\x16\x03\x01\x00\x04\x01\xff\xff\xff", Verdict.TOO_LARGE),
    ],
)
def test_what_is_no_client_hello(data: bytes, verdict: Verdict) -> None:
    assert server_name(data)[0] is verdict


def test_a_hello_just_over_the_bound_is_too_large_at_its_first_record() -> None:
    size = MAX_CLIENT_HELLO + 1
    first = b"\x16\x03\x01\x40\x00" + b"\x01" + size.to_bytes(3, "big") + b"\x00" * (16384 - 4)
    assert server_name(first)[0] is Verdict.TOO_LARGE


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_any_bytes_give_a_verdict_never_an_exception(data: bytes) -> None:
    verdict, name = server_name(b"\x16\x03\x01" + data)
    assert name is None or verdict is Verdict.NAME


def test_sni_table_exact_then_wildcard_then_default() -> None:
    routes = (SniRoute("a.example.com", "a"), SniRoute("*.example.com", "w"))
    table = SniTable(routes, {"a": "A", "w": "W"}, "D")
    assert table.pick("a.example.com") == "A"
    assert table.pick("b.example.com") == "W"
    assert table.pick("x.b.example.com") == "D"  # a wildcard covers one label
    assert table.pick("example.com") == "D"
    assert table.pick(None) == "D"
    assert SniTable(routes, {"a": "A", "w": "W"}, None).pick("other.org") is None
