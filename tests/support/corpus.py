"""The request-strictness corpus: raw requests, the RFC rule each exercises, the outcome.

Each case is a client's whole byte stream. `status` is what the client must get back: 200 when
the request is valid (the recording backend answers 200), else the error rota answers before
closing. `smuggle` marks a case hiding a second request (path /smuggled): no backend may ever
see it as a request. `stage` says where the fault sits: "head" faults are refused before any
byte goes upstream; "body" faults (chunk framing, trailers) are found while the body streams,
so the backend may see the head of that request, but never a complete request nor the hidden
one. `requests` is how many requests the backend sees for an accepted case; `hidden_fields`
are bytes the backend must not see in any head (stripped hop-by-hop fields).

Limits are the defaults of LimitSpec (8 KiB request line, 32 KiB head, 100 fields).
"""

from __future__ import annotations

from dataclasses import dataclass

SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"
MARKER = b"/smuggled"


@dataclass(frozen=True, slots=True)
class Case:
    id: str
    rfc: str
    raw: bytes
    status: int
    smuggle: bool = False
    stage: str = "head"
    requests: int = 1
    hidden_fields: tuple[bytes, ...] = ()


def _req(head: str, body: bytes = b"") -> bytes:
    """A request from a readable head: lines joined with CRLF, then the empty line."""
    return head.replace("\n", "\r\n").encode("latin-1") + b"\r\n\r\n" + body


def _post(fields: str, body: bytes, version: str = "1.1") -> bytes:
    return _req(f"POST / HTTP/{version}\nHost: a\n{fields}", body)


def _chunked(body: bytes) -> bytes:
    return _post("Transfer-Encoding: chunked", body)


def _get(fields: str = "") -> bytes:
    head = "GET / HTTP/1.1\nHost: a" + (f"\n{fields}" if fields else "")
    return _req(head)


def _raw_get(line: bytes) -> bytes:
    """A request whose request line is given raw."""
    return line + b"\r\nHost: a\r\n\r\n"


def _field(line: bytes) -> bytes:
    """A GET with one raw extra field line."""
    return b"GET / HTTP/1.1\r\nHost: a\r\n" + line + b"\r\n\r\n"


_ZERO = b"0\r\n\r\n"
_ABC = b"3\r\nabc\r\n" + _ZERO

CASES: tuple[Case, ...] = (
    # --- Framing: Content-Length and Transfer-Encoding (the request-smuggling family) ---
    Case(
        "cl-te",
        "RFC 9112 6.1",
        _post("Content-Length: 5\nTransfer-Encoding: chunked", _ZERO + SMUGGLED),
        400,
        smuggle=True,
    ),
    Case(
        "te-cl",
        "RFC 9112 6.1",
        _post("Transfer-Encoding: chunked\nContent-Length: 40", _ZERO + SMUGGLED),
        400,
        smuggle=True,
    ),
    Case(
        "te-http10",
        "RFC 9112 6.1",
        _post("Transfer-Encoding: chunked", _ZERO + SMUGGLED, version="1.0"),
        400,
        smuggle=True,
    ),
    Case("te-gzip", "RFC 9112 6.3", _post("Transfer-Encoding: gzip", b"abc"), 400),
    Case("te-identity", "RFC 9112 6.3", _post("Transfer-Encoding: identity", b""), 400),
    Case("te-gzip-chunked", "RFC 9112 6.1", _post("Transfer-Encoding: gzip, chunked", _ZERO), 501),
    Case(
        "te-two-fields-gzip-chunked",
        "RFC 9112 6.1",
        _post("Transfer-Encoding: gzip\nTransfer-Encoding: chunked", _ZERO),
        501,
    ),
    Case("te-chunked-gzip", "RFC 9112 6.3", _post("Transfer-Encoding: chunked, gzip", _ZERO), 400),
    Case(
        "te-chunked-twice", "RFC 9112 6.3", _post("Transfer-Encoding: chunked, chunked", _ZERO), 400
    ),
    Case(
        "te-chunked-two-fields",
        "RFC 9112 6.3",
        _post("Transfer-Encoding: chunked\nTransfer-Encoding: chunked", _ZERO),
        400,
    ),
    Case("te-leading-comma", "RFC 9112 6.1", _post("Transfer-Encoding: ,chunked", _ZERO), 400),
    Case("te-parameter", "RFC 9112 7", _post("Transfer-Encoding: chunked;x=1", _ZERO), 400),
    Case("te-empty", "RFC 9112 6.1", _post("Transfer-Encoding: ", b""), 400),
    Case("te-quoted", "RFC 9112 6.1", _post('Transfer-Encoding: "chunked"', _ZERO), 400),
    Case(
        "te-xchunked",
        "RFC 9112 6.1",
        _post("Transfer-Encoding: xchunked", _ZERO + SMUGGLED),
        400,
        smuggle=True,
    ),
    Case(
        "te-vertical-tab",
        "RFC 9110 5.5",
        _post("Transfer-Encoding: chunked\x0b", _ZERO + SMUGGLED),
        400,
        smuggle=True,
    ),
    Case(
        "cl-duplicate-different",
        "RFC 9112 6.3",
        _post("Content-Length: 0\nContent-Length: 37", SMUGGLED),
        400,
        smuggle=True,
    ),
    # llhttp refuses even identical duplicates; RFC 9110 8.6 allows either merging or
    # refusing (rota's own rules would merge them).
    Case(
        "cl-duplicate-identical",
        "RFC 9110 8.6",
        _post("Content-Length: 3\nContent-Length: 3", b"abc"),
        400,
    ),
    Case("cl-list-different", "RFC 9112 6.3", _post("Content-Length: 3, 37", b"abc"), 400),
    Case("cl-plus", "RFC 9110 8.6", _post("Content-Length: +5", b"abcde"), 400),
    Case("cl-minus", "RFC 9110 8.6", _post("Content-Length: -1", b""), 400),
    Case("cl-hex", "RFC 9110 8.6", _post("Content-Length: 0x5", b"abcde"), 400),
    Case("cl-underscore", "RFC 9110 8.6", _post("Content-Length: 1_0", b"0123456789"), 400),
    Case("cl-inner-space", "RFC 9110 8.6", _post("Content-Length: 1 0", b"0123456789"), 400),
    Case("cl-empty", "RFC 9110 8.6", _post("Content-Length: ", b""), 400),
    Case("cl-letter", "RFC 9110 8.6", _post("Content-Length: 5a", b"abcde"), 400),
    Case("cl-overflow", "RFC 9110 8.6", _post("Content-Length: 99999999999999999999999", b""), 400),
    Case("cl-over-int64", "RFC 9110 8.6", _post("Content-Length: 9223372036854775808", b""), 400),
    # --- Field syntax ---
    Case("space-before-colon", "RFC 9112 5.1", _raw_get(b"GET / HTTP/1.1\r\nX-A : 1"), 400),
    Case(
        "space-before-colon-cl",
        "RFC 9112 5.1",
        _post("Content-Length : 37", SMUGGLED),
        400,
        smuggle=True,
    ),
    Case("tab-before-colon", "RFC 9112 5.1", _field(b"X-A\t: 1"), 400),
    Case("bare-cr-in-value", "RFC 9112 2.2", _field(b"X-A: 1\r2"), 400),
    Case(
        "bare-lf-in-value",
        "RFC 9112 2.2",
        _field(b"X-A: 1\nContent-Length: 37") + SMUGGLED,
        400,
        smuggle=True,
    ),
    Case("nul-in-value", "RFC 9110 5.5", _field(b"X-A: 1\x002"), 400),
    Case("ctl-in-value", "RFC 9110 5.5", _field(b"X-A: 1\x012"), 400),
    Case("del-in-value", "RFC 9110 5.5", _field(b"X-A: 1\x7f2"), 400),
    Case("obs-fold", "RFC 9112 5.2", _field(b"X-A: 1\r\n 2"), 400),
    Case("obs-fold-tab", "RFC 9112 5.2", _field(b"X-A: 1\r\n\t2"), 400),
    Case("space-before-first-field", "RFC 9112 2.2", b"GET / HTTP/1.1\r\n Host: a\r\n\r\n", 400),
    Case("bare-lf-line-ends", "RFC 9112 2.2", b"GET / HTTP/1.1\nHost: a\n\n", 400),
    Case("name-space", "RFC 9110 5.1", _field(b"X A: 1"), 400),
    Case("name-at", "RFC 9110 5.1", _field(b"X@A: 1"), 400),
    Case("name-nul", "RFC 9110 5.1", _field(b"X\x00A: 1"), 400),
    Case("name-8bit", "RFC 9110 5.1", _field(b"X\xffA: 1"), 400),
    Case("name-empty", "RFC 9110 5.1", _field(b": 1"), 400),
    Case("field-no-colon", "RFC 9112 5", _field(b"X-A"), 400),
    # --- Host ---
    Case("host-missing", "RFC 9112 3.2", b"GET / HTTP/1.1\r\n\r\n", 400),
    Case("host-duplicate", "RFC 9112 3.2", _get("Host: b"), 400),
    Case("host-duplicate-identical", "RFC 9112 3.2", _get("Host: a"), 400),
    Case("host-space", "RFC 9110 7.2", _req("GET / HTTP/1.1\nHost: a b"), 400),
    Case("host-userinfo", "RFC 9110 7.2", _req("GET / HTTP/1.1\nHost: u@a"), 400),
    Case("host-bad-port", "RFC 9110 7.2", _req("GET / HTTP/1.1\nHost: a:8x"), 400),
    Case("host-list", "RFC 9110 7.2", _req("GET / HTTP/1.1\nHost: a, b"), 400),
    Case("host-slash", "RFC 9110 7.2", _req("GET / HTTP/1.1\nHost: a/b"), 400),
    Case("host-mismatch-absolute", "RFC 9112 3.2.2", _req("GET http://b/ HTTP/1.1\nHost: a"), 400),
    # --- Request line ---
    Case("method-lowercase", "RFC 9110 9.1", _raw_get(b"get / HTTP/1.1"), 400),
    Case("method-bad-char", "RFC 9110 9.1", _raw_get(b"G@T / HTTP/1.1"), 400),
    Case("method-tab", "RFC 9112 3", _raw_get(b"GET\t/ HTTP/1.1"), 400),
    Case("target-space", "RFC 9112 3.2", _raw_get(b"GET /a b HTTP/1.1"), 400),
    Case("target-tab", "RFC 9112 3.2", _raw_get(b"GET /a\tb HTTP/1.1"), 400),
    Case("target-ctl", "RFC 9112 3.2", _raw_get(b"GET /a\x01b HTTP/1.1"), 400),
    Case("target-nul", "RFC 9112 3.2", _raw_get(b"GET /a\x00b HTTP/1.1"), 400),
    Case("target-del", "RFC 9112 3.2", _raw_get(b"GET /a\x7fb HTTP/1.1"), 400),
    Case("target-8bit", "RFC 9112 3.2", _raw_get(b"GET /a\xffb HTTP/1.1"), 400),
    Case("target-fragment", "RFC 9112 3.2.1", _raw_get(b"GET /a#frag HTTP/1.1"), 400),
    Case("target-fragment-in-query", "RFC 9112 3.2.1", _raw_get(b"GET /?a#b HTTP/1.1"), 400),
    Case("target-quote", "RFC 3986 2", _raw_get(b'GET /a"b HTTP/1.1'), 400),
    Case("target-brace", "RFC 3986 2", _raw_get(b"GET /a{b} HTTP/1.1"), 400),
    Case("target-backslash", "RFC 3986 2", _raw_get(b"GET /a\\b HTTP/1.1"), 400),
    Case("target-asterisk-get", "RFC 9112 3.2.4", _raw_get(b"GET * HTTP/1.1"), 400),
    Case("target-authority-get", "RFC 9112 3.2.3", _raw_get(b"GET a:80 HTTP/1.1"), 400),
    Case("target-no-slash", "RFC 9112 3.2", _raw_get(b"GET a HTTP/1.1"), 400),
    Case("target-scheme-ftp", "RFC 9112 3.2.2", _raw_get(b"GET ftp://a/ HTTP/1.1"), 400),
    Case(
        "target-absolute-userinfo", "RFC 9110 4.2.4", _raw_get(b"GET http://u:p@a/ HTTP/1.1"), 400
    ),
    Case("version-1.2", "RFC 9112 2.3", _raw_get(b"GET / HTTP/1.2"), 400),
    Case("version-2.0", "RFC 9110 15.6.6", _raw_get(b"GET / HTTP/2.0"), 505),
    Case("version-0.9", "RFC 9112 2.3", _raw_get(b"GET / HTTP/0.9"), 400),
    Case("version-missing", "RFC 9112 3", b"GET /\r\n\r\n", 400),
    Case("version-lowercase", "RFC 9112 2.3", _raw_get(b"GET / http/1.1"), 400),
    Case("version-trailing-space", "RFC 9112 3", _raw_get(b"GET / HTTP/1.1 "), 400),
    Case("connect", "RFC 9110 9.3.6", b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", 501),
    Case(
        "expect-unknown", "RFC 9110 10.1.1", _post("Expect: teapot\nContent-Length: 3", b"abc"), 417
    ),
    Case(
        "websocket-upgrade-with-body",
        "RFC 6455 4.1",
        _req(
            "GET / HTTP/1.1\nHost: a\nConnection: Upgrade\nUpgrade: websocket\n"
            f"Content-Length: {len(SMUGGLED)}",
            SMUGGLED,
        ),
        400,
        smuggle=True,
    ),
    # --- Limits (defaults) ---
    Case(
        "request-line-too-long",
        "RFC 9110 15.5.15",
        _raw_get(b"GET /" + b"a" * 9000 + b" HTTP/1.1"),
        414,
    ),
    Case("header-section-too-large", "RFC 6585 5", _get("X-Big: " + "a" * 40000), 431),
    Case("too-many-fields", "RFC 6585 5", _get("\n".join(f"X-{i}: 1" for i in range(101))), 431),
    # --- Chunked body framing (found while the body streams) ---
    Case("chunk-size-0x", "RFC 9112 7.1", _chunked(b"0x5\r\nabcde\r\n" + _ZERO), 400, stage="body"),
    Case(
        "chunk-size-plus", "RFC 9112 7.1", _chunked(b"+5\r\nabcde\r\n" + _ZERO), 400, stage="body"
    ),
    Case(
        "chunk-size-minus-zero",
        "RFC 9112 7.1",
        _chunked(b"-0\r\n\r\n" + SMUGGLED),
        400,
        stage="body",
        smuggle=True,
    ),
    Case(
        "chunk-size-leading-space",
        "RFC 9112 7.1",
        _chunked(b" 5\r\nabcde\r\n" + _ZERO),
        400,
        stage="body",
    ),
    Case(
        "chunk-size-trailing-space",
        "RFC 9112 7.1",
        _chunked(b"5 \r\nabcde\r\n" + _ZERO),
        400,
        stage="body",
    ),
    Case(
        "chunk-size-overflow",
        "RFC 9112 7.1",
        _chunked(b"FFFFFFFFFFFFFFFFF\r\nabc\r\n" + _ZERO),
        400,
        stage="body",
    ),
    Case(
        "chunk-size-non-hex", "RFC 9112 7.1", _chunked(b"g\r\nabc\r\n" + _ZERO), 400, stage="body"
    ),
    Case("chunk-size-empty", "RFC 9112 7.1", _chunked(b"\r\nabc\r\n" + _ZERO), 400, stage="body"),
    Case(
        "chunk-data-overrun",
        "RFC 9112 7.1",
        _chunked(b"3\r\nabc" + b"0\r\n\r\n" + SMUGGLED + b"\r\n" + _ZERO),
        400,
        stage="body",
        smuggle=True,
    ),
    Case(
        "chunk-missing-crlf",
        "RFC 9112 7.1",
        _chunked(b"3\r\nabcdef\r\n" + _ZERO),
        400,
        stage="body",
    ),
    Case("chunk-lf-only", "RFC 9112 7.1", _chunked(b"3\nabc\n0\n\n"), 400, stage="body"),
    Case(
        "chunk-ext-bad-char",
        "RFC 9112 7.1.1",
        _chunked(b"3;f@o\r\nabc\r\n" + _ZERO),
        400,
        stage="body",
    ),
    Case(
        "chunk-ext-bare-cr",
        "RFC 9112 7.1.1",
        _chunked(b"3;a\rb\r\nabc\r\n" + _ZERO),
        400,
        stage="body",
    ),
    # RFC 9112 7.1.1 allows BWS before ";"; llhttp refuses it, which is stricter, never looser.
    Case(
        "chunk-ext-space-before",
        "RFC 9112 7.1.1",
        _chunked(b"3 ;a\r\nabc\r\n" + _ZERO),
        400,
        stage="body",
    ),
    Case(
        "trailer-bad-name",
        "RFC 9112 7.1.2",
        _chunked(b"3\r\nabc\r\n0\r\nX A: 1\r\n\r\n"),
        400,
        stage="body",
    ),
    Case(
        "trailer-obs-fold",
        "RFC 9112 7.1.2",
        _chunked(b"3\r\nabc\r\n0\r\nX: 1\r\n 2\r\n\r\n"),
        400,
        stage="body",
    ),
    Case(
        "trailer-content-length",
        "RFC 9110 6.5.1",
        _chunked(b"3\r\nabc\r\n0\r\nContent-Length: 37\r\n\r\n" + SMUGGLED),
        400,
        stage="body",
        smuggle=True,
    ),
    # A trailer naming a framing or routing field is dropped, never forwarded (issue 19): the
    # body has gone to the backend by then; the unit tests check what is forwarded.
    Case(
        "ok-trailer-host-dropped",
        "RFC 9110 6.5.1",
        _chunked(b"3\r\nabc\r\n0\r\nHost: evil\r\n\r\n"),
        200,
    ),
    # --- Valid requests: forwarded, answered 200 ---
    Case("ok-get", "RFC 9112 3", _get(), 200),
    Case("ok-http10-no-host", "RFC 9112 3.2", b"GET / HTTP/1.0\r\n\r\n", 200),
    Case(
        "ok-http10-keep-alive",
        "RFC 9112 9.3",
        b"GET / HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\n\r\n",
        200,
    ),
    Case("ok-post-content-length", "RFC 9112 6.2", _post("Content-Length: 3", b"abc"), 200),
    Case("ok-post-no-body-framing", "RFC 9112 6.3", _post("X-A: 1", b""), 200),
    Case("ok-cl-leading-zeros", "RFC 9110 8.6", _post("Content-Length: 003", b"abc"), 200),
    Case("ok-cl-trailing-ows", "RFC 9110 5.5", _post("Content-Length: 3\t", b"abc"), 200),
    Case("ok-chunked", "RFC 9112 7.1", _chunked(_ABC), 200),
    Case("ok-chunked-uppercase-te", "RFC 9112 7", _post("Transfer-Encoding: CHUNKED", _ABC), 200),
    Case(
        "ok-chunked-extension",
        "RFC 9112 7.1.1",
        _chunked(b'3;name=value;q="a b"\r\nabc\r\n' + _ZERO),
        200,
    ),
    Case("ok-chunked-upper-hex", "RFC 9112 7.1", _chunked(b"A\r\n0123456789\r\n" + _ZERO), 200),
    Case("ok-chunked-leading-zeros", "RFC 9112 7.1", _chunked(b"0003\r\nabc\r\n" + _ZERO), 200),
    Case("ok-chunked-trailer", "RFC 9112 7.1.2", _chunked(b"3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n"), 200),
    Case(
        "ok-pipelined",
        "RFC 9112 9.3.2",
        _get() + _post("Content-Length: 3", b"abc") + _get(),
        200,
        requests=3,
    ),
    Case("ok-absolute-form", "RFC 9112 3.2.2", _req("GET http://a/b?c HTTP/1.1\nHost: a"), 200),
    Case(
        "ok-absolute-form-port",
        "RFC 9112 3.2.2",
        _req("GET https://a.example:8443/x HTTP/1.1\nHost: a.example:8443"),
        200,
    ),
    Case("ok-options-asterisk", "RFC 9112 3.2.4", _req("OPTIONS * HTTP/1.1\nHost: a"), 200),
    Case(
        "ok-query-sub-delims",
        "RFC 3986 3.4",
        _raw_get(b"GET /a/b;p?x=1&y=%20&z=(1)*!$',:@~ HTTP/1.1"),
        200,
    ),
    Case("ok-query-brackets", "RFC 3986 3.4", _raw_get(b"GET /a?x[]=1 HTTP/1.1"), 200),
    Case("ok-obs-text-value", "RFC 9110 5.5", _field(b"X-A: caf\xe9"), 200),
    Case("ok-tab-in-value", "RFC 9110 5.5", _field(b"X-A: a\tb"), 200),
    Case("ok-empty-value", "RFC 9110 5.5", _field(b"X-A:"), 200),
    Case("ok-token-name", "RFC 9110 5.1", _field(b"!#$%&'*+-.^_`|~: 1"), 200),
    Case("ok-host-port", "RFC 9110 7.2", _req("GET / HTTP/1.1\nHost: a.example:8080"), 200),
    Case("ok-host-ipv6", "RFC 9110 7.2", _req("GET / HTTP/1.1\nHost: [::1]:8080"), 200),
    Case("ok-host-empty", "RFC 9112 3.2", _req("GET / HTTP/1.1\nHost:"), 200),
    Case("ok-leading-empty-line", "RFC 9112 2.2", b"\r\n" + _get(), 200),
    Case(
        "ok-expect-100-continue",
        "RFC 9110 10.1.1",
        _post("Expect: 100-continue\nContent-Length: 3", b"abc"),
        200,
    ),
    Case("ok-connection-close", "RFC 9112 9.6", _get("Connection: close"), 200),
    Case(
        "ok-connection-named-field",
        "RFC 9110 7.6.1",
        _get("Connection: X-Secret\nX-Secret: 1"),
        200,
        hidden_fields=(b"X-Secret",),
    ),
    Case(
        "ok-hop-by-hop-fields",
        "RFC 9110 7.6.1",
        _get("Keep-Alive: timeout=5\nProxy-Connection: keep-alive\nTE: trailers"),
        200,
        hidden_fields=(b"Keep-Alive", b"Proxy-Connection", b"TE:"),
    ),
    Case(
        "ok-h2c-upgrade-stripped",
        "RFC 9110 7.8",
        _get("Connection: Upgrade, HTTP2-Settings\nUpgrade: h2c\nHTTP2-Settings: AAMAAABkAAQA"),
        200,
        hidden_fields=(b"h2c", b"HTTP2-Settings"),
    ),
    # llhttp treats an upgrade request as bodiless: the body (a request lookalike) must stay
    # a body once the Upgrade is stripped.
    Case(
        "ok-h2c-upgrade-post-body",
        "RFC 9110 7.8",
        _post(f"Connection: Upgrade\nUpgrade: h2c\nContent-Length: {len(SMUGGLED)}", SMUGGLED),
        200,
        smuggle=True,
        hidden_fields=(b"h2c",),
    ),
    Case(
        "ok-upgrade-without-connection",
        "RFC 9110 7.8",
        _get("Upgrade: websocket"),
        200,
        hidden_fields=(b"websocket",),
    ),
    Case(
        "ok-chunked-body-looks-like-request",
        "RFC 9112 7.1",
        _chunked(b"%x\r\n" % len(SMUGGLED) + SMUGGLED + b"\r\n" + _ZERO),
        200,
        smuggle=True,
    ),
    Case("ok-method-extension", "RFC 9110 16.1", _req("PROPFIND / HTTP/1.1\nHost: a"), 200),
    # WSGI/CGI read "_" as "-" (RFC 3875 4.1.18): such a name would be a second framing field
    # or a spoofed forwarding field behind rota. Never forwarded (nginx's default).
    Case(
        "ok-underscore-fields-dropped",
        "RFC 3875 4.1.18",
        _post(
            "Content-Length: 3\nTransfer_Encoding: chunked\nX_Forwarded_For: 6.6.6.6\nX-Kept_: 1",
            b"abc",
        ),
        200,
        hidden_fields=(b"Transfer_Encoding", b"X_Forwarded_For", b"6.6.6.6", b"X-Kept_"),
    ),
    Case(
        "chunk-extension-64k",
        "RFC 9112 7.1.1",
        _chunked(b"5;x=" + b"a" * 65536 + b"\r\nhello\r\n" + _ZERO),
        400,
        stage="body",
    ),
)
