"""Property tests: the rules never crash, and what they accept is forwarded unambiguously."""

from __future__ import annotations

import httptools
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rota.config.model import LimitSpec
from rota.http.errors import ProtocolError
from rota.http.forward import build_request_head
from rota.http.head import BodyKind
from rota.http.rules import check_request
from tests.support.corpus import CASES
from tests.support.parse import read_stream

LIMITS = LimitSpec()

_names = st.sampled_from(
    [
        b"Host",
        b"host",
        b"Content-Length",
        b"Transfer-Encoding",
        b"Connection",
        b"Upgrade",
        b"Expect",
        b"X-Forwarded-For",
        b"Via",
        b"Keep-Alive",
        b"TE",
        b"X-A",
    ]
) | st.binary(max_size=12)
_values = st.sampled_from(
    [
        b"a",
        b"chunked",
        b"gzip, chunked",
        b"5",
        b"5, 5",
        b"upgrade",
        b"websocket",
        b"h2c",
        b"close",
        b"100-continue",
        b"[::1]:80",
        b"",
    ]
) | st.binary(max_size=20)
_fields = st.lists(st.tuples(_names, _values), max_size=8)
_methods = st.sampled_from([b"GET", b"POST", b"OPTIONS", b"CONNECT", b"PUT"]) | st.binary(
    max_size=8
)
_targets = st.sampled_from([b"/", b"*", b"/a?b#c", b"http://a/x", b"a:80"]) | st.binary(max_size=30)
_versions = st.tuples(st.integers(0, 3), st.integers(0, 10))


class _Collect:
    def __init__(self) -> None:
        self.url = b""
        self.heads = 0
        self.fields: list[tuple[bytes, bytes]] = []

    def on_url(self, piece: bytes) -> None:
        self.url += piece

    def on_header(self, name: bytes, value: bytes) -> None:
        self.fields.append((name, value))

    def on_headers_complete(self) -> None:
        self.heads += 1


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_methods, _targets, _versions, _fields)
def test_rules_accept_or_refuse(
    method: bytes, target: bytes, version: tuple[int, int], fields: list[tuple[bytes, bytes]]
) -> None:
    try:
        head = check_request(method, target, version, fields, LIMITS)
    except ProtocolError as exc:
        assert exc.status in {400, 413, 414, 417, 431, 501, 505}
        return
    out = build_request_head(head, b"127.0.0.1")
    # What we forward must parse strictly as exactly one head with the same target and
    # framing: the backend cannot see a different message than rota decided on.
    collect = _Collect()
    parser = httptools.HttpRequestParser(collect)
    try:
        parser.feed_data(out)
    except httptools.HttpParserUpgrade:
        assert head.websocket
    assert collect.heads == 1
    assert collect.url == target
    lengths = [v for n, v in collect.fields if n.lower() == b"content-length"]
    chunked = [v for n, v in collect.fields if n.lower() == b"transfer-encoding"]
    if head.body is BodyKind.LENGTH:
        assert lengths == [b"%d" % head.content_length] and not chunked
    elif head.body is BodyKind.CHUNKED:
        assert chunked == [b"chunked"] and not lengths
    else:
        assert not lengths and not chunked


_seeds = st.sampled_from([case.raw for case in CASES])


@st.composite
def _mutated(draw: st.DrawFn) -> bytes:
    raw = bytearray(draw(_seeds))
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.integers(0, 2))
        pos = draw(st.integers(0, len(raw)))
        if kind == 0 and raw:
            del raw[min(pos, len(raw) - 1)]
        elif kind == 1:
            raw[pos:pos] = draw(st.sampled_from([b"\r", b"\n", b" ", b"\0", b",", b":", b"0"]))
        else:
            raw[pos:pos] = draw(st.binary(max_size=4))
    return bytes(raw)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_mutated() | st.binary(max_size=200), st.sampled_from([65536, 1, 5]))
def test_parser_never_crashes(raw: bytes, piece: int) -> None:
    # Every byte stream through the proxy's request parser is either parsed into requests or
    # refused with a ProtocolError; any other exception escapes and fails the test. Parsing
    # is bounded by len(raw) (no loop waits on anything), so a hang would show as a timeout.
    result = read_stream(raw, piece=piece)
    assert result.status in {200, 400, 413, 414, 417, 431, 501, 505}
    for parsed in result.requests:
        if parsed.complete and parsed.head.body is BodyKind.LENGTH:
            assert len(parsed.body) == parsed.head.content_length
        if parsed.head.body is BodyKind.NONE:
            assert not parsed.body
