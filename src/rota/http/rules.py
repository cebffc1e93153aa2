"""Request strictness and framing rules: what llhttp lets through, we refuse here.

Pure functions, no I/O. The parser wrapper collects one request head from httptools (method,
raw target, version, fields exactly as received) and calls `decide_request`, which either
returns a `RequestHead` (the framing decision, rota.http.head) or raises `ProtocolError` with
the status to answer; `check_request` adds the character checks llhttp makes, for heads from
anywhere else. Beside these rules: the trailer sections (rota.http.trailers), the chunk-size
lines (rota.http.chunks), where a body starts in a read (rota.http.body_start), and the head
sent to the backend (rota.http.forward).

What llhttp 0.9 (httptools 0.9, strict defaults) already rejects, measured: CL+TE together,
duplicate Content-Length (even identical), non-digit Content-Length, whitespace before a colon,
bare CR/LF, NUL and other controls in fields, obs-fold, invalid field-name characters, bad
chunk sizes/extensions/data framing, controls and spaces in the target, unknown methods.
What it lets through and this module refuses: missing/duplicate/invalid Host, Transfer-Encoding
on HTTP/1.0, codings before `chunked` (`gzip, chunked`), a fragment or `*` with a method other
than OPTIONS, HTTP/2.0 and HTTP/0.9 request lines, CONNECT, trailer fields that must not be
trailers (Host), size limits (llhttp has none), chunk-size lines over MAX_CHUNK_LINE
(rota.http.chunks; llhttp takes extensions of any length). Fields whose name holds "_" are
accepted but never forwarded (rota.http.forward). Values it reads are OWS-stripped here (llhttp
strips only the leading OWS). The full table is in docs/http-strictness.md.

Performance: this is on the proxy's hot path, once per request, and compiled with mypyc
(rota.native). The parser calls `decide_request`, which leaves the character checks to
llhttp; names are sorted by length before any is lower-cased. Measured with timeit
(docs/http-strictness.md), compiled: decide_request 0.47 us for a 3-field request, 0.58 us
for an 8-field browser request.
"""

from __future__ import annotations

from operator import itemgetter
from typing import Final

from rota.config.model import LimitSpec
from rota.http.charsets import ALPHA, DIGITS, OWS, TCHAR, VALUE_CHARS
from rota.http.errors import ProtocolError
from rota.http.head import BodyKind, Fields, RequestHead
from rota.http.headers import MEMO_LIMIT, connection_options

_HEX: Final = DIGITS + b"abcdefABCDEF"
# RFC 3986 2.2/2.3: unreserved and sub-delims.
_UNRESERVED: Final = ALPHA + DIGITS + b"-._~"
_SUB_DELIMS: Final = b"!$&'()*+,;="
# RFC 3986 3.3/3.4: path and query characters, plus "%" of pct-encoded. "[" and "]" are not
# RFC 3986 path characters, but HAProxy admits them by default and real clients send them
# unencoded (PHP-style `a[]=1`); they are not a smuggling vector. Everything else is refused:
# "#" (a fragment is never sent, RFC 9112 3.2.1), and `"<>\^`{|}` as HAProxy does by default.
_TARGET_CHARS: Final = _UNRESERVED + _SUB_DELIMS + b":@/?%[]"
# RFC 3986 3.2.2: reg-name (IPv4 addresses are a subset).
_REG_NAME: Final = _UNRESERVED + _SUB_DELIMS + b"%"
_IPV6_CHARS: Final = _HEX + b":."
_NO_TOKENS: Final[frozenset[bytes]] = frozenset()

_MAX_CONTENT_LENGTH: Final = 2**63 - 1  # HAProxy, nginx and Envoy all keep lengths in int64

# Fields whose value decide_request reads; all others are only copied.
_HOST: Final = b"host"
_CL: Final = b"content-length"
_TE: Final = b"transfer-encoding"
_CONNECTION: Final = b"connection"
_UPGRADE: Final = b"upgrade"
_EXPECT: Final = b"expect"
# (name, value) -> name / value, in C: no Python frame per request for the joins below.
_name_of = itemgetter(0)
_value_of = itemgetter(1)

# RequestHead's generated __new__ is a Python function; building the tuple directly skips
# that frame on the hot path (same object, same fields, in declaration order).
_new_head = tuple.__new__


def _split_list(values: list[bytes]) -> list[bytes]:
    """RFC 9110 5.6.1 list elements of several field lines, OWS-stripped, lower-cased, empty
    elements kept (callers decide whether an empty element is an error)."""
    out: list[bytes] = []
    for value in values:
        out.extend(part.strip(OWS).lower() for part in value.split(b","))
    return out


# A server sees a handful of Host values over and over: the answer for each is remembered,
# like Connection options. Bounded: once full, other values are checked every time.
_HOST_OK: Final[dict[bytes, bool]] = {}


def _host_ok(host: bytes) -> bool:
    ok = _HOST_OK.get(host)
    if ok is None:
        ok = _valid_host(host)
        if len(_HOST_OK) < MEMO_LIMIT:
            _HOST_OK[host] = ok
    return ok


def _valid_host(host: bytes) -> bool:
    """RFC 9110 7.2 / RFC 3986 3.2.2: uri-host [ ":" port ]; no userinfo. Empty is allowed
    (RFC 9112 3.2: a target without authority is sent with an empty Host)."""
    if host.startswith(b"["):
        end = host.find(b"]")
        if end < 2 or host[1:end].translate(None, _IPV6_CHARS):
            return False
        rest = host[end + 1 :]
        if not rest:
            return True
        return rest.startswith(b":") and not rest[1:].translate(None, DIGITS) and len(rest) <= 6
    name, colon, port = host.partition(b":")
    # The cheap test first: letters, digits, dots and hyphens are what names are made of.
    if not name.replace(b".", b"").replace(b"-", b"").isalnum() and name.translate(None, _REG_NAME):
        return False
    if not colon:
        return True
    return (not port or port.isdigit()) and len(port) <= 5


def _check_target(method: bytes, target: bytes) -> bytes | None:
    """RFC 9112 3.2: validate the request-target; return the authority of an absolute-form
    target (to compare with Host), else None."""
    first = target[:1]
    if first == b"/":
        if target.translate(None, _TARGET_CHARS):
            raise ProtocolError(400, "invalid character in request target")
        return None
    if target == b"*":
        # RFC 9112 3.2.4: asterisk-form is only for a server-wide OPTIONS.
        if method != b"OPTIONS":
            raise ProtocolError(400, "asterisk-form target with a method other than OPTIONS")
        return None
    # RFC 9112 3.2.2: absolute-form. Authority-form (3.2.3) belongs to CONNECT, refused before.
    scheme, sep, rest = target.partition(b"://")
    if not sep or scheme.lower() not in (b"http", b"https"):
        raise ProtocolError(400, "invalid request target form")
    cut = len(rest)
    for stop in (b"/", b"?"):
        i = rest.find(stop)
        if i != -1 and i < cut:
            cut = i
    authority, tail = rest[:cut], rest[cut:]
    # RFC 9110 4.2.1: an http(s) URI with an empty host is invalid; userinfo is deprecated
    # (4.2.4) and a classic way to confuse URL parsers, so refuse it.
    if not authority or not _host_ok(authority):
        raise ProtocolError(400, "invalid authority in request target")
    if tail.translate(None, _TARGET_CHARS):
        raise ProtocolError(400, "invalid character in request target")
    return authority


def _content_length(values: list[bytes]) -> int:
    """RFC 9110 8.6: Content-Length = 1*DIGIT. RFC 9112 6.3 item 5: several values (fields or
    a list) are an error unless all equal, in which case they may be merged."""
    length = -1
    for value in values:
        for part in value.split(b","):
            digits = part.strip(OWS)
            if not digits or digits.translate(None, DIGITS) or len(digits) > 19:
                raise ProtocolError(400, "invalid Content-Length")
            n = int(digits)
            if n > _MAX_CONTENT_LENGTH:
                raise ProtocolError(400, "Content-Length too large")
            if length != -1 and n != length:
                raise ProtocolError(400, "conflicting Content-Length values")
            length = n
    return length


def _transfer_encoding(values: list[bytes]) -> None:
    """RFC 9112 6.1/6.3: accept exactly one coding, `chunked` (case-insensitive, 7)."""
    codings = _split_list(values)
    if codings == [b"chunked"]:
        return
    if not codings or codings[-1] != b"chunked":
        # RFC 9112 6.3 item 4: chunked not final, the length cannot be determined: 400.
        raise ProtocolError(400, "Transfer-Encoding without final chunked")
    if b"" in codings or codings.count(b"chunked") > 1:
        raise ProtocolError(400, "invalid Transfer-Encoding list")
    # RFC 9112 6.1: a coding we do not implement (gzip, chunked): 501.
    raise ProtocolError(501, "unsupported transfer coding")


def check_request(
    method: bytes,
    target: bytes,
    version: tuple[int, int],
    fields: Fields,
    limits: LimitSpec,
) -> RequestHead:
    """Validate one request head and decide its framing, or raise ProtocolError.

    For a head from any tokenizer: the method and every field name must be tokens, every
    value free of controls (RFC 9110 5.1, 5.5), then `decide_request`. The parser wrapper
    calls `decide_request` directly, because llhttp's strict mode has already refused all
    of these (tests/unit/test_request_parser.py holds it to that).
    """
    _check_version(version)
    # isalpha() (ASCII letters) is the cheap test every standard method passes.
    if not method.isalpha() and (not method or method.translate(None, TCHAR)):
        raise ProtocolError(400, "invalid method")
    # One translate over the joined bytes each; empty names are looked for separately.
    names = b"".join(map(_name_of, fields))
    if not names.replace(b"-", b"").isalnum() and names.translate(None, TCHAR):
        raise ProtocolError(400, "invalid character in field name")
    if b"".join(map(_value_of, fields)).translate(None, VALUE_CHARS):
        raise ProtocolError(400, "invalid character in field value")
    for name, _ in fields:
        if not name:
            raise ProtocolError(400, "empty field name")
    return decide_request(method, target, version, fields, limits)


def _check_version(version: tuple[int, int]) -> None:
    # RFC 9112 2.3 / RFC 9110 15.6.6: only HTTP/1.x here; a well-formed higher major version
    # gets 505, HTTP/0.9 (no headers, no framing) 400.
    if version != (1, 1) and version != (1, 0):
        if version[0] >= 2:
            raise ProtocolError(505, "HTTP version not supported")
        raise ProtocolError(400, "invalid HTTP version")


def _is_ows(byte: int) -> bool:
    return byte == 0x20 or byte == 0x09


def _named(name: bytes, canonical: bytes, lower: bytes) -> bool:
    """`name` is the field `lower`, case-insensitively (RFC 9110 5.1). Clients send the
    canonical spelling almost always: one comparison, no new object."""
    return name == canonical or name.lower() == lower


def decide_request(
    method: bytes,
    target: bytes,
    version: tuple[int, int],
    fields: Fields,
    limits: LimitSpec,
) -> RequestHead:
    """The rules for a head whose method is a token and whose fields are well-formed
    (check_request's character checks, or llhttp's): size limits, the target, Host, the
    framing decision (RFC 9112 6.3), Connection, Upgrade, Expect.

    `fields` are (name, value) as httptools reports them: leading OWS stripped by llhttp,
    trailing OWS kept. Size limits are checked here from the collected head; the wrapper
    also enforces them on raw bytes while reading, since httptools buffers a whole field
    before reporting it.

    This runs once per request, so it is written for the compiler (rota.native): the
    fields are sorted out by name length before any name is lower-cased, and the lists for
    fields that may repeat are made only when one is there.
    """
    _check_version(version)
    # RFC 9110 9.3.6: rota is not a forward proxy; a tunnel would bypass every rule here.
    if method == b"CONNECT":
        raise ProtocolError(501, "CONNECT not supported")
    # method SP target SP HTTP/x.y
    line_length = len(method) + len(target) + 10
    if line_length > limits.max_request_line:
        raise ProtocolError(414, "request line too long")
    if not target:
        raise ProtocolError(400, "empty request target")
    authority = _check_target(method, target)

    if len(fields) > limits.max_headers:
        raise ProtocolError(431, "too many header fields")
    size = line_length + 4  # CRLF after the line and the empty line
    host: bytes | None = None
    hosts = 0
    cls: list[bytes] | None = None
    tes: list[bytes] | None = None
    connection: list[bytes] | None = None
    upgrades: list[bytes] | None = None
    expects: list[bytes] | None = None
    underscore = False
    for name, value in fields:
        n = len(name)
        size += n + len(value) + 4
        # The fields read here have names of 4, 6, 7, 10, 14 and 17 bytes. Any other name is
        # looked at once more, for "_" (below): the fields of a plain GET never are.
        if n == 4 and _named(name, b"Host", _HOST):
            host = value
            hosts += 1
        elif n == 14 and _named(name, b"Content-Length", _CL):
            cls = [value] if cls is None else [*cls, value]
        elif n == 10 and _named(name, b"Connection", _CONNECTION):
            connection = [value] if connection is None else [*connection, value]
        elif n == 17 and _named(name, b"Transfer-Encoding", _TE):
            tes = [value] if tes is None else [*tes, value]
        elif n == 7 and _named(name, b"Upgrade", _UPGRADE):
            upgrades = [value] if upgrades is None else [*upgrades, value]
        elif n == 6 and _named(name, b"Expect", _EXPECT):
            expects = [value] if expects is None else [*expects, value]
        elif b"_" in name:
            # WSGI and CGI servers (RFC 3875 4.1.18) turn "-" into "_" in HTTP_* variables,
            # so `Transfer_Encoding: chunked` becomes a second framing field behind rota, and
            # `X_Forwarded_For` a spoofed one. build_request_head drops every such field, as
            # nginx does by default (underscores_in_headers off).
            underscore = True
    if size > limits.max_header_bytes:
        raise ProtocolError(431, "request header section too large")

    # RFC 9112 3.2: exactly one Host on HTTP/1.1; at most one, valid, on any version.
    if host is not None:
        if hosts > 1:
            raise ProtocolError(400, "more than one Host field")
        if host and (_is_ows(host[0]) or _is_ows(host[-1])):
            host = host.strip(OWS)
        if not _host_ok(host):
            raise ProtocolError(400, "invalid Host")
    elif version == (1, 1):
        raise ProtocolError(400, "missing Host")
    # RFC 9112 3.2.2 says a server uses the target's authority and ignores Host; a proxy
    # whose routing and whose backend could disagree on which one counts refuses a mismatch
    # instead (HAProxy does the same).
    if authority is not None and (host is None or host.lower() != authority.lower()):
        raise ProtocolError(400, "Host does not match the target authority")

    body = BodyKind.NONE
    content_length = 0
    if tes is not None:
        # RFC 9112 6.1: CL with TE is a smuggling attempt; TE on HTTP/1.0 cannot be trusted
        # (the framing is faulty); refuse both outright rather than guess.
        if cls is not None:
            raise ProtocolError(400, "both Content-Length and Transfer-Encoding")
        if version == (1, 0):
            raise ProtocolError(400, "Transfer-Encoding in an HTTP/1.0 request")
        _transfer_encoding(tes)
        body = BodyKind.CHUNKED
    elif cls is not None:
        content_length = _content_length(cls)
        if content_length:
            body = BodyKind.LENGTH
        # RFC 9110 15.5.14: refuse before reading a byte of the body.
        if limits.max_body_bytes is not None and content_length > limits.max_body_bytes:
            raise ProtocolError(413, "request body too large")

    tokens = _NO_TOKENS
    if connection is not None:
        tokens = connection_options(connection)
    # RFC 9112 9.3: persistence defaults differ by version.
    if version == (1, 1):
        keep_alive = b"close" not in tokens
    else:
        keep_alive = b"keep-alive" in tokens and b"close" not in tokens

    websocket = False
    upgrade_stripped = False
    if upgrades is not None:
        # RFC 6455 4.1: the handshake is a GET over HTTP/1.1 with Connection: upgrade.
        # Anything else (h2c above all: RFC 9113 3.1 dropped it, and tunnelling it would let
        # a client talk HTTP/2 past every rule here) is removed, never tunnelled.
        protocols = [p.split(b"/", 1)[0] for p in _split_list(upgrades)]
        if (
            b"websocket" in protocols
            and b"upgrade" in tokens
            and method == b"GET"
            and version == (1, 1)
        ):
            # llhttp skips the body of an upgrade request and hands the bytes after the head
            # over as tunnel data, while the backend would read them as a body: refuse.
            if body is not BodyKind.NONE:
                raise ProtocolError(400, "WebSocket upgrade request with a body")
            websocket = True
        else:
            upgrade_stripped = True

    expect_continue = False
    if expects is not None and version == (1, 1):
        # RFC 9110 10.1.1: 100-continue is the only expectation; others may get 417. In an
        # HTTP/1.0 request the expectation MUST be ignored.
        if _split_list(expects) != [b"100-continue"]:
            raise ProtocolError(417, "unsupported expectation")
        expect_continue = True

    return _new_head(
        RequestHead,
        (
            method,
            target,
            version,
            fields,
            body,
            content_length,
            host,
            keep_alive,
            websocket,
            upgrade_stripped,
            expect_continue,
            tokens,
            underscore,
        ),
    )


def check_body_size(received: int, limits: LimitSpec) -> None:
    """For the wrapper while a chunked body arrives: 413 once it passes the limit."""
    if limits.max_body_bytes is not None and received > limits.max_body_bytes:
        raise ProtocolError(413, "request body too large")
