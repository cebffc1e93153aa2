"""rota.http.rules called directly: decisions and limits; and beside them the forwarded head
(rota.http.forward), trailer sections (rota.http.trailers) and resume_head."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from rota.config.model import LimitSpec
from rota.http.body_start import resume_head
from rota.http.edits import FieldEdits, field_edits
from rota.http.errors import ProtocolError, from_parser_error
from rota.http.forward import _DROP, _dropped_length, build_request_head
from rota.http.head import BodyKind, RequestHead
from rota.http.headers import (
    _CONSUMED,
    HOP_BY_HOP,
    build_response_head,
    consumed_length,
    response_head_parts,
)
from rota.http.rules import check_body_size, check_request
from rota.http.trailers import response_trailer_section, trailer_section

LIMITS = LimitSpec()
Fields = list[tuple[bytes, bytes]]


def check(
    fields: Fields,
    method: bytes = b"GET",
    target: bytes = b"/",
    version: tuple[int, int] = (1, 1),
    limits: LimitSpec = LIMITS,
) -> RequestHead:
    return check_request(method, target, version, fields, limits)


def status_of(fields: Fields, **kwargs: object) -> int:
    try:
        check(fields, **kwargs)  # type: ignore[arg-type]
    except ProtocolError as exc:
        return exc.status
    return 200


def test_plain_get() -> None:
    head = check([(b"Host", b"example.com")])
    assert head.body is BodyKind.NONE
    assert head.host == b"example.com"
    assert head.keep_alive
    assert not head.websocket and not head.upgrade_stripped and not head.expect_continue


def test_field_names_are_read_in_any_case() -> None:
    # decide_request compares the usual spelling first and lower-cases only otherwise.
    head = check(
        [
            (b"hOST", b"example.com"),
            (b"CONTENT-length", b"5"),
            (b"connection", b"CLOSE"),
            (b"EXPECT", b"100-continue"),
        ],
        method=b"POST",
    )
    assert head.host == b"example.com"
    assert head.body is BodyKind.LENGTH and head.content_length == 5
    assert not head.keep_alive and head.expect_continue
    assert status_of([(b"host", b"a"), (b"HOST", b"a")]) == 400
    chunked = check([(b"host", b"a"), (b"transfer-ENCODING", b"chunked")], method=b"POST")
    assert chunked.body is BodyKind.CHUNKED
    ws = check([(b"host", b"a"), (b"CONNECTION", b"upgrade"), (b"UPGRADE", b"websocket")])
    assert ws.websocket
    # Names as long as a special one but not it are only copied.
    assert check([(b"Hast", b"x"), (b"Host", b"a"), (b"Contents-Length", b"x")]).host == b"a"


def test_host_with_surrounding_whitespace_is_stripped() -> None:
    assert check([(b"Host", b"a.example \t")]).host == b"a.example"
    assert check([(b"Host", b" a.example")]).host == b"a.example"


def test_name_length_prefilters_cover_every_name_they_guard() -> None:
    # The forwarded head and the response head look up only names of these lengths.
    assert all(_dropped_length(len(name)) for name in _DROP)
    assert all(consumed_length(len(name)) for name in _CONSUMED)
    assert not _dropped_length(len(b"host")) and not consumed_length(len(b"server"))


def test_identical_content_lengths_are_merged() -> None:
    # RFC 9110 8.6 allows merging identical values (llhttp refuses them before we see them).
    head = check([(b"Host", b"a"), (b"Content-Length", b"5"), (b"content-length", b"5, 05")])
    assert head.body is BodyKind.LENGTH and head.content_length == 5


@pytest.mark.parametrize(
    "values",
    [
        [b"5", b"6"],
        [b"5, 6"],
        [b"+5"],
        [b"-1"],
        [b"0x5"],
        [b"1_0"],
        [b"1 0"],
        [b""],
        [b"5,"],
        [b"99999999999999999999"],
        [b"9223372036854775808"],
        [b"\xd9\xa5"],  # Arabic-Indic digit five: int() would take it as str, never as bytes
    ],
)
def test_bad_content_length(values: list[bytes]) -> None:
    fields = [(b"Host", b"a")] + [(b"Content-Length", v) for v in values]
    assert status_of(fields) == 400


def test_zero_content_length_has_no_body() -> None:
    head = check([(b"Host", b"a"), (b"Content-Length", b"0")])
    assert head.body is BodyKind.NONE


@pytest.mark.parametrize(
    ("value", "status"),
    [
        (b"chunked", 200),
        (b"Chunked ", 200),
        (b"gzip", 400),
        (b"chunked, gzip", 400),
        (b"gzip, chunked", 501),
        (b"chunked, chunked", 400),
        (b", chunked", 400),
        (b"chunked;a=1", 400),
        (b"", 400),
    ],
)
def test_transfer_encoding(value: bytes, status: int) -> None:
    assert status_of([(b"Host", b"a"), (b"Transfer-Encoding", value)], method=b"POST") == status


def test_chunked_decision() -> None:
    head = check([(b"Host", b"a"), (b"Transfer-Encoding", b"chunked")], method=b"POST")
    assert head.body is BodyKind.CHUNKED


def test_te_with_cl_and_te_on_http10() -> None:
    te = (b"Transfer-Encoding", b"chunked")
    assert status_of([(b"Host", b"a"), te, (b"Content-Length", b"3")]) == 400
    assert status_of([(b"Host", b"a"), te], version=(1, 0)) == 400


@pytest.mark.parametrize(
    ("hosts", "version", "status"),
    [
        ([], (1, 1), 400),
        ([], (1, 0), 200),
        ([b"a", b"a"], (1, 1), 400),
        ([b"a", b"b"], (1, 0), 400),
        ([b""], (1, 1), 200),
        ([b"a.example:8080"], (1, 1), 200),
        ([b"[::1]"], (1, 1), 200),
        ([b"[::1]:80"], (1, 1), 200),
        ([b"[::1"], (1, 1), 400),
        ([b"[::1]x"], (1, 1), 400),
        ([b"[]"], (1, 1), 400),
        ([b"a:"], (1, 1), 200),
        ([b"a:123456"], (1, 1), 400),
        ([b"a:1:2"], (1, 1), 400),
        ([b"u@a"], (1, 1), 400),
        ([b"a b"], (1, 1), 400),
        ([b"a/b"], (1, 1), 400),
        ([b"a\\b"], (1, 1), 400),
    ],
)
def test_host(hosts: list[bytes], version: tuple[int, int], status: int) -> None:
    assert status_of([(b"Host", h) for h in hosts], version=version) == status


@pytest.mark.parametrize(
    ("method", "target", "status"),
    [
        (b"GET", b"/a?b=c&d=%20", 200),
        (b"GET", b"/a#b", 400),
        (b"GET", b"/a b", 400),
        (b"GET", b"/a\x00", 400),
        (b"GET", b"/a|b", 400),
        (b"GET", b"*", 400),
        (b"OPTIONS", b"*", 200),
        (b"OPTIONS", b"/", 200),
        (b"GET", b"http://a/x", 200),
        (b"GET", b"HTTP://A", 200),
        (b"GET", b"http://a?x", 200),
        (b"GET", b"http://b/x", 400),
        (b"GET", b"http:///x", 400),
        (b"GET", b"http://u@a/x", 400),
        (b"GET", b"ftp://a/x", 400),
        (b"GET", b"http://a/x#f", 400),
        (b"GET", b"a:80", 400),
        (b"GET", b"", 400),
        (b"CONNECT", b"a:443", 501),
        (b"G T", b"/", 400),
        (b"", b"/", 400),
    ],
)
def test_request_line(method: bytes, target: bytes, status: int) -> None:
    assert status_of([(b"Host", b"a")], method=method, target=target) == status


@pytest.mark.parametrize(
    ("version", "status"), [((1, 1), 200), ((1, 0), 200), ((2, 0), 505), ((0, 9), 400)]
)
def test_versions(version: tuple[int, int], status: int) -> None:
    assert status_of([(b"Host", b"a")], version=version) == status


@pytest.mark.parametrize(
    "field",
    [(b"X A", b"1"), (b"", b"1"), (b"X:", b"1"), (b"X", b"a\rb"), (b"X", b"a\nb"), (b"X", b"\0")],
)
def test_bad_fields(field: tuple[bytes, bytes]) -> None:
    assert status_of([(b"Host", b"a"), field]) == 400


def test_keep_alive_by_version() -> None:
    assert not check([(b"Host", b"a"), (b"Connection", b"keep-alive, close")]).keep_alive
    assert not check([], version=(1, 0)).keep_alive
    assert check([(b"Connection", b"Keep-Alive")], version=(1, 0)).keep_alive


def test_websocket_and_h2c() -> None:
    ws = [(b"Host", b"a"), (b"Connection", b"keep-alive, Upgrade"), (b"Upgrade", b"WebSocket")]
    head = check(ws)
    assert head.websocket and not head.upgrade_stripped
    assert status_of([*ws, (b"Content-Length", b"5")]) == 400
    # Not a GET, or HTTP/1.0, or no Connection: upgrade: stripped, not tunnelled.
    assert check(ws, method=b"POST").upgrade_stripped
    assert check(ws, version=(1, 0)).upgrade_stripped
    assert check([(b"Host", b"a"), (b"Upgrade", b"websocket")]).upgrade_stripped
    h2c = check([(b"Host", b"a"), (b"Connection", b"Upgrade"), (b"Upgrade", b"h2c")])
    assert h2c.upgrade_stripped and not h2c.websocket


def test_expect() -> None:
    assert check([(b"Host", b"a"), (b"Expect", b"100-Continue")]).expect_continue
    assert status_of([(b"Host", b"a"), (b"Expect", b"fancy")]) == 417
    # RFC 9110 10.1.1: ignored in an HTTP/1.0 request.
    assert not check([(b"Expect", b"fancy")], version=(1, 0)).expect_continue


def test_limits_in_check_request() -> None:
    small = LimitSpec(max_request_line=30, max_header_bytes=100, max_headers=3, max_body_bytes=10)
    assert status_of([(b"Host", b"a")], target=b"/" + b"a" * 20, limits=small) == 414
    assert status_of([(b"Host", b"a")] * 4, limits=small) == 431
    assert status_of([(b"Host", b"a"), (b"X", b"a" * 90)], limits=small) == 431
    assert status_of([(b"Host", b"a"), (b"Content-Length", b"11")], limits=small) == 413
    assert status_of([(b"Host", b"a"), (b"Content-Length", b"10")], limits=small) == 200


def test_body_size_limit() -> None:
    # The parser calls it as a chunked body arrives (a Content-Length is refused with the
    # head, test_limits_in_check_request); the 414/431 of a head are the parser's and
    # decide_request's, held at their bounds by test_exchange_machine.py.
    small = LimitSpec(max_body_bytes=5)
    check_body_size(5, small)
    check_body_size(10**12, LIMITS)  # unlimited by default
    with pytest.raises(ProtocolError) as info:
        check_body_size(6, small)
    assert info.value.status == 413


def test_trailers() -> None:
    assert trailer_section([(b"X-Checksum", b"abc")], LIMITS) == b"X-Checksum: abc\r\n"
    # Framing, routing and hop-by-hop fields are dropped, never forwarded.
    for dropped in [(b"Host", b"evil"), (b"content-length", b"5"), (b"TE", b"x")]:
        assert trailer_section([dropped, (b"X", b"1")], LIMITS) == b"X: 1\r\n"
    for bad in [(b"X Y", b"1"), (b"X", b"\r")]:
        with pytest.raises(ProtocolError):
            trailer_section([bad], LIMITS)
    with pytest.raises(ProtocolError) as info:
        trailer_section([(b"X", b"1")] * 101, LIMITS)
    assert info.value.status == 431
    # From a backend: a bad field is dropped, too many drop the section (the body is gone).
    assert response_trailer_section([(b"X Y", b"1"), (b"Z", b"2")], LIMITS) == b"Z: 2\r\n"
    assert response_trailer_section([(b"X", b"1")] * 101, LIMITS) == b""


def test_resume_head() -> None:
    chunked = check([(b"Host", b"a"), (b"Transfer-Encoding", b"chunked")], method=b"POST")
    assert b"Transfer-Encoding: chunked" in resume_head(chunked)
    length = check([(b"Host", b"a"), (b"Content-Length", b"12")], method=b"POST")
    assert b"Content-Length: 12\r\n" in resume_head(length)
    assert resume_head(check([(b"Host", b"a")])) == b""


def test_from_parser_error() -> None:
    inner = ProtocolError(431, "too many")
    try:
        try:
            raise inner
        except ProtocolError:
            raise ValueError("wrapped") from None
    except ValueError as outer:
        assert from_parser_error(outer) is inner
    assert from_parser_error(ValueError("Invalid header token")).status == 400
    assert repr(inner) == "ProtocolError(431, 'too many')"


# --- the forwarded head ---


def forwarded(fields: Fields, **kwargs: object) -> bytes:
    return build_request_head(check(fields, **kwargs), b"10.0.0.9")  # type: ignore[arg-type]


def lines(head: bytes) -> list[bytes]:
    assert head.endswith(b"\r\n\r\n")
    return head[:-4].split(b"\r\n")


def test_forwarded_head_basic() -> None:
    out = lines(forwarded([(b"Host", b"a"), (b"Accept", b"*/*")], target=b"/x?y=%41"))
    assert out == [
        b"GET /x?y=%41 HTTP/1.1",
        b"Host: a",
        b"Accept: */*",
        b"X-Forwarded-For: 10.0.0.9",
        b"X-Forwarded-Proto: http",
        b"X-Forwarded-Host: a",
    ]


def test_forwarded_head_adds_via_only_when_the_listener_asks() -> None:
    head = check([(b"Host", b"a")])
    assert not any(line.startswith(b"Via") for line in lines(build_request_head(head, b"1.2.3.4")))
    out = lines(build_request_head(head, b"1.2.3.4", add_via=True))
    assert out[-1] == b"Via: 1.1 rota"


def test_forwarded_head_strips_hop_by_hop() -> None:
    fields = [
        (b"Host", b"a"),
        (b"Connection", b"keep-alive, X-Secret, Host"),
        (b"X-Secret", b"1"),
        (b"Keep-Alive", b"timeout=5"),
        (b"Proxy-Connection", b"keep-alive"),
        (b"TE", b"trailers"),
        (b"Trailer", b"X-T"),
        (b"Upgrade", b"h2c"),
        (b"X-Forwarded-Proto", b"https"),
        (b"X-Forwarded-Host", b"evil"),
        (b"X-Kept", b"yes"),
    ]
    out = lines(forwarded(fields))
    names = {line.split(b":")[0].lower() for line in out[1:]}
    assert names == {
        b"host",  # a client cannot strip Host by naming it in Connection
        b"trailer",  # end-to-end (RFC 9110 6.6.2): rota forwards trailers
        b"x-kept",
        b"x-forwarded-for",
        b"x-forwarded-proto",
        b"x-forwarded-host",
    }
    assert b"X-Forwarded-Proto: http" in out
    assert b"X-Forwarded-Host: a" in out


def test_forwarded_head_appends_xff_and_via() -> None:
    fields = [
        (b"Host", b"a"),
        (b"X-Forwarded-For", b"1.1.1.1"),
        (b"x-forwarded-for", b"2.2.2.2 "),
        (b"Via", b"1.0 edge"),
    ]
    out = lines(forwarded(fields))
    assert b"X-Forwarded-For: 1.1.1.1, 2.2.2.2, 10.0.0.9" in out
    assert b"Via: 1.0 edge" in out  # the client's Via passes, as in HAProxy and nginx
    out = lines(build_request_head(check(fields), b"10.0.0.9", add_via=True))
    assert b"Via: 1.0 edge, 1.1 rota" in out


def test_forwarded_head_framing() -> None:
    cl = lines(forwarded([(b"Host", b"a"), (b"Content-Length", b"003")], method=b"POST"))
    assert b"Content-Length: 3" in cl and b"Content-Length: 003" not in cl
    te = lines(forwarded([(b"Host", b"a"), (b"Transfer-Encoding", b"Chunked ")], method=b"POST"))
    assert b"Transfer-Encoding: chunked" in te
    assert sum(line.lower().startswith(b"transfer-encoding") for line in te) == 1


def test_forwarded_head_http10_and_websocket() -> None:
    head = check([(b"Expect", b"100-continue")], version=(1, 0))
    out = lines(
        build_request_head(
            head, b"::1", b"https", default_host=b"backend:80", close=True, add_via=True
        )
    )
    assert out[0] == b"GET / HTTP/1.1"
    assert b"Host: backend:80" in out
    assert b"Connection: close" in out
    assert b"Via: 1.0 rota" in out
    assert b"X-Forwarded-Proto: https" in out
    assert not any(line.lower().startswith(b"expect") for line in out)
    ws = check([(b"Host", b"a"), (b"Connection", b"Upgrade"), (b"Upgrade", b"websocket")])
    out = lines(build_request_head(ws, b"1.2.3.4", close=True))
    assert b"Connection: Upgrade" in out and b"Upgrade: websocket" in out
    assert b"Connection: close" not in out


@pytest.mark.parametrize("spell", [bytes.title, bytes.lower, bytes.upper, lambda n: n.swapcase()])
def test_response_head_consumes_hop_by_hop_in_any_spelling(spell: Callable[[bytes], bytes]) -> None:
    names = [b"content-length", b"connection", b"keep-alive", b"transfer-encoding", b"te"]
    values = [b"2 ", b"keep-alive", b"timeout=5", b"gzip, Chunked", b"trailers"]
    headers = [(b"Server", b"x"), *zip(map(spell, names), values, strict=True), (b"X-Kept", b"yes")]
    parts, length, codings = response_head_parts(200, b"OK", headers)
    assert b"".join(parts) == b"HTTP/1.1 200 OK\r\nServer: x\r\nX-Kept: yes\r\n"
    assert length == b"2"  # the trailing OWS llhttp leaves is stripped
    assert codings == [b"gzip", b"chunked"]


def test_response_head_drops_fields_named_in_connection() -> None:
    headers = [(b"Connection", b"close, X-Hop"), (b"x-hop", b"1"), (b"Content-Length", b"0")]
    parts, length, _ = response_head_parts(204, b"No Content", headers)
    assert b"".join(parts) == b"HTTP/1.1 204 No Content\r\n"
    assert length == b"0"


# --- field names with "_" (never forwarded) ---


def test_request_head_fields_in_order() -> None:
    # decide_request builds the tuple positionally (_new_head): the order is the interface.
    assert RequestHead._fields == (
        "method",
        "target",
        "version",
        "fields",
        "body",
        "content_length",
        "host",
        "keep_alive",
        "websocket",
        "upgrade_stripped",
        "expect_continue",
        "connection_tokens",
        "underscore",
    )
    head = check([(b"Host", b"a"), (b"X_A", b"1")])
    assert head.underscore and head.connection_tokens == frozenset()
    assert not check([(b"Host", b"a"), (b"X-A", b"1")]).underscore


def test_underscore_fields_are_never_forwarded() -> None:
    fields = [
        (b"Host", b"a"),
        (b"Content-Length", b"3"),
        (b"Transfer_Encoding", b"chunked"),
        (b"X_Forwarded_For", b"6.6.6.6"),
        (b"_", b"x"),
        (b"Hos_", b"x"),  # as long as Host
        (b"X-Kept", b"yes"),
    ]
    head = check(fields, method=b"POST")
    assert head.underscore and head.body is BodyKind.LENGTH  # the framing is not touched
    out = lines(build_request_head(head, b"10.0.0.9"))
    assert not [line for line in out if b"_" in line.split(b":")[0]]
    assert b"X-Kept: yes" in out and b"Content-Length: 3" in out
    assert b"X-Forwarded-For: 10.0.0.9" in out  # not 6.6.6.6
    assert head.fields == fields  # the received fields are left as they were


def test_no_underscore_check_for_fields_rota_reads() -> None:
    head = check([(b"Host", b"a"), (b"Connection", b"close"), (b"Accept", b"*/*")])
    assert not head.underscore


# --- route header edits ---


def _edits(set_: dict[str, str] | None = None, remove: list[str] | None = None) -> FieldEdits:
    edits = field_edits((set_ or {}).items(), remove or [])
    assert edits is not None
    return edits


def test_field_edits_interface() -> None:
    edits = _edits({"X-Env": "prod"}, ["X-Debug"])
    assert edits.drop == frozenset({b"x-env", b"x-debug"})
    assert edits.lengths == frozenset({5, 7})
    assert edits.add == b"X-Env: prod\r\n"
    assert field_edits([], []) is None
    for name in ("Transfer-Encoding", "content-length", "Connection", "X-Forwarded-For", "via"):
        with pytest.raises(ValueError, match="written by rota"):
            field_edits([(name, "1")], [])
        with pytest.raises(ValueError, match="written by rota"):
            field_edits([], [name])
    with pytest.raises(ValueError, match="cannot be removed"):
        field_edits([], ["Host"])


def test_request_edits_set_replaces_every_spelling_and_remove_drops() -> None:
    fields = [
        (b"Host", b"a"),
        (b"X-Env", b"dev"),
        (b"x-env", b"dev2"),
        (b"X-ENV", b"dev3"),
        (b"X-Debug", b"1"),
        (b"x-debug", b"2"),
        (b"X-Kept", b"yes"),
        (b"Content-Length", b"2"),
    ]
    head = check(fields, method=b"POST")
    edits = _edits({"X-Env": "prod"}, ["x-debug"])
    out = lines(build_request_head(head, b"10.0.0.9", edits=edits))
    assert out == [
        b"POST / HTTP/1.1",
        b"Host: a",
        b"X-Kept: yes",
        b"X-Env: prod",  # after the copied fields, before the framing and forwarding lines
        b"Content-Length: 2",
        b"X-Forwarded-For: 10.0.0.9",
        b"X-Forwarded-Proto: http",
        b"X-Forwarded-Host: a",
    ]


def test_request_edits_keep_hop_by_hop_and_framing_rotas() -> None:
    fields = [
        (b"Host", b"a"),
        (b"Connection", b"X-Hop"),
        (b"X-Hop", b"1"),
        (b"Transfer-Encoding", b"chunked"),
        (b"X-Forwarded-For", b"1.1.1.1"),
    ]
    head = check(fields, method=b"POST")
    out = lines(build_request_head(head, b"10.0.0.9", edits=_edits({"X-A": "1"})))
    assert b"X-Hop: 1" not in out and not [x for x in out if x.startswith(b"Connection")]
    assert [x for x in out if x.lower().startswith(b"transfer-encoding")] == [
        b"Transfer-Encoding: chunked"
    ]
    assert b"X-Forwarded-For: 1.1.1.1, 10.0.0.9" in out
    assert out.index(b"X-A: 1") < out.index(b"Transfer-Encoding: chunked")


def test_request_edits_set_host_and_target() -> None:
    head = check([(b"Host", b"public.example"), (b"Accept", b"*/*")], target=b"/v1/users?x=1")
    out = lines(
        build_request_head(head, b"::1", edits=_edits({"Host": "backend"}), target=b"/users?x=1")
    )
    assert out[0] == b"GET /users?x=1 HTTP/1.1"
    assert [x for x in out if x.lower().startswith(b"host")] == [b"Host: backend"]
    assert b"X-Forwarded-Host: public.example" in out
    # HTTP/1.0 without Host: the route's Host, not the default one, and only one.
    old = check([], version=(1, 0))
    out = lines(build_request_head(old, b"::1", default_host=b"b:80", edits=_edits({"Host": "h"})))
    assert [x for x in out if x.lower().startswith(b"host")] == [b"Host: h"]


def test_request_head_unchanged_without_edits() -> None:
    head = check([(b"Host", b"a"), (b"X-Env", b"dev")], target=b"/x")
    plain = build_request_head(head, b"10.0.0.9")
    assert build_request_head(head, b"10.0.0.9", edits=None, target=None) == plain
    assert build_request_head(head, b"10.0.0.9", target=b"/x") == plain


def test_response_edits() -> None:
    headers = [
        (b"Server", b"x"),
        (b"strict-transport-security", b"max-age=1"),
        (b"Strict-Transport-Security", b"max-age=2"),
        (b"X-Powered-By", b"php"),
        (b"Connection", b"keep-alive, X-Hop"),
        (b"X-Hop", b"1"),
        (b"Content-Length", b"2"),
        (b"Transfer-Encoding", b"chunked"),
    ]
    edits = _edits({"Strict-Transport-Security": "max-age=63072000"}, ["x-powered-by"])
    parts, length, codings = response_head_parts(200, b"OK", headers, edits)
    assert b"".join(parts) == (
        b"HTTP/1.1 200 OK\r\nServer: x\r\nStrict-Transport-Security: max-age=63072000\r\n"
    )
    assert length == b"2" and codings == [b"chunked"]  # the framing stays rota's to decide
    plain, _, _ = response_head_parts(200, b"OK", headers)
    assert b"".join(plain) == (
        b"HTTP/1.1 200 OK\r\nServer: x\r\nstrict-transport-security: max-age=1\r\n"
        b"Strict-Transport-Security: max-age=2\r\nX-Powered-By: php\r\n"
    )
    head = build_response_head(
        103, b"Early Hints", headers[:4], drop=HOP_BY_HOP, framing=b"", edits=edits
    )
    assert head == (
        b"HTTP/1.1 103 Early Hints\r\nServer: x\r\n"
        b"Strict-Transport-Security: max-age=63072000\r\n\r\n"
    )
