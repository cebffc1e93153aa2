"""Request strictness and framing rules: what llhttp lets through, we refuse here.

Pure functions, no I/O. The parser wrapper collects one request head from httptools (method,
raw target, version, fields exactly as received) and calls `decide_request`, which either
returns a `RequestHead` (the framing decision) or raises `ProtocolError` with the status to
answer; `check_request` adds the character checks llhttp makes, for heads from anywhere
else. `build_request_head` then serialises what goes to the backend.

What llhttp 0.9 (httptools 0.9, strict defaults) already rejects, measured: CL+TE together,
duplicate Content-Length (even identical), non-digit Content-Length, whitespace before a colon,
bare CR/LF, NUL and other controls in fields, obs-fold, invalid field-name characters, bad
chunk sizes/extensions/data framing, controls and spaces in the target, unknown methods.
What it lets through and this module refuses: missing/duplicate/invalid Host, Transfer-Encoding
on HTTP/1.0, codings before `chunked` (`gzip, chunked`), a fragment or `*` with a method other
than OPTIONS, HTTP/2.0 and HTTP/0.9 request lines, CONNECT, trailer fields that must not be
trailers (Host), size limits (llhttp has none), chunk-size lines over MAX_CHUNK_LINE
(ChunkLines; llhttp takes extensions of any length). Fields whose name holds "_" are accepted
but never forwarded (build_request_head). Values it reads are OWS-stripped here (llhttp
strips only the leading OWS). The full table is in docs/http-strictness.md.

Performance: this is on the proxy's hot path, once per request, and compiled with mypyc
(rota.native). The parser calls `decide_request`, which leaves the character checks to
llhttp; names are sorted by length before any is lower-cased; the serialiser does one
b"".join. Measured with timeit (docs/http-strictness.md), compiled: decide_request 0.47 us
for a 3-field request, 0.58 us for an 8-field browser request; build_request_head 0.57 /
0.98 us.
"""

from __future__ import annotations

from enum import Enum
from operator import itemgetter
from typing import Final, NamedTuple

from rota.config.model import LimitSpec
from rota.http.edits import FieldEdits
from rota.http.errors import ProtocolError
from rota.http.headers import MEMO_LIMIT, connection_options

Fields = list[tuple[bytes, bytes]]

_DIGITS: Final = b"0123456789"
_ALPHA: Final = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
_HEX: Final = _DIGITS + b"abcdefABCDEF"
# RFC 9110 5.6.2: tchar.
_TCHAR: Final = _ALPHA + _DIGITS + b"!#$%&'*+-.^_`|~"
# RFC 3986 2.2/2.3: unreserved and sub-delims.
_UNRESERVED: Final = _ALPHA + _DIGITS + b"-._~"
_SUB_DELIMS: Final = b"!$&'()*+,;="
# RFC 3986 3.3/3.4: path and query characters, plus "%" of pct-encoded. "[" and "]" are not
# RFC 3986 path characters, but HAProxy admits them by default and real clients send them
# unencoded (PHP-style `a[]=1`); they are not a smuggling vector. Everything else is refused:
# "#" (a fragment is never sent, RFC 9112 3.2.1), and `"<>\^`{|}` as HAProxy does by default.
_TARGET_CHARS: Final = _UNRESERVED + _SUB_DELIMS + b":@/?%[]"
# RFC 3986 3.2.2: reg-name (IPv4 addresses are a subset).
_REG_NAME: Final = _UNRESERVED + _SUB_DELIMS + b"%"
_IPV6_CHARS: Final = _HEX + b":."
# RFC 9110 5.5: field-value bytes are VCHAR, obs-text, SP, HTAB. llhttp already refuses the
# rest; re-checking is one translate over the joined values and keeps these rules correct on
# their own (the response side, a lenient parser setting).
_VALUE_CHARS: Final = bytes(range(0x20, 0x7F)) + bytes(range(0x80, 0x100)) + b"\t"
_OWS: Final = b" \t"
_NO_TOKENS: Final[frozenset[bytes]] = frozenset()

_MAX_CONTENT_LENGTH: Final = 2**63 - 1  # HAProxy, nginx and Envoy all keep lengths in int64

# RFC 9110 7.6.1: hop-by-hop fields, never forwarded. Transfer-Encoding and Content-Length
# are re-emitted from the framing decision; Upgrade is re-emitted for a WebSocket tunnel.
# X-Forwarded-* and Via are rewritten, not copied. Trailer is end-to-end (RFC 9110 6.6.2):
# it is forwarded with the trailer fields it announces.
_DROP: Final = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"transfer-encoding",
        b"upgrade",
        b"content-length",
        b"x-forwarded-for",
        b"x-forwarded-proto",
        b"x-forwarded-host",
        b"via",
    }
)
_KEEP: Final = frozenset({b"host"})


_NO_LENGTHS: Final[frozenset[int]] = frozenset()
# Per set of Connection options (the same objects over and over, from the Connection memo):
# the fields to drop with them, and the lengths of the names they add to _DROP.
_CONNECTION_DROPS: Final[dict[frozenset[bytes], tuple[frozenset[bytes], frozenset[int]]]] = {}


def _connection_drops(tokens: frozenset[bytes]) -> tuple[frozenset[bytes], frozenset[int]]:
    """RFC 9110 7.6.1: fields named in Connection are hop-by-hop. Host is exempt: a client
    must not be able to strip the routing field on its way to the backend."""
    found = _CONNECTION_DROPS.get(tokens)
    if found is None:
        extra = tokens - _KEEP - _DROP
        found = (_DROP | extra, frozenset([len(name) for name in extra]))
        if len(_CONNECTION_DROPS) < MEMO_LIMIT:
            _CONNECTION_DROPS[tokens] = found
    return found


# Per route's request edits (the same objects for every request, made at load): the fields
# to drop with them, and the lengths of their names. Bounded like the memos above.
_EDIT_DROPS: Final[dict[FieldEdits, tuple[frozenset[bytes], frozenset[int]]]] = {}


def _edit_drops(edits: FieldEdits) -> tuple[frozenset[bytes], frozenset[int]]:
    found = _EDIT_DROPS.get(edits)
    if found is None:
        found = (_DROP | edits.drop, edits.lengths)
        if len(_EDIT_DROPS) < MEMO_LIMIT:
            _EDIT_DROPS[edits] = found
    return found


def _dropped_length(n: int) -> bool:
    """A field name of `n` bytes may be one of _DROP (2, 3, 7, 10, 14, 15, 16, 17 bytes)."""
    return n == 10 or n == 15 or n == 14 or n == 7 or n == 16 or n == 17 or n == 3 or n == 2


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

# RFC 9110 6.5.1: a sender must not put framing, routing, request-modifier or authentication
# fields in trailers; a recipient that merged them could be steered (trailer `Host: evil`).
_FORBIDDEN_TRAILERS: Final = frozenset(
    {
        b"host",
        b"content-length",
        b"transfer-encoding",
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"upgrade",
        b"te",
        b"trailer",
        b"expect",
        b"range",
        b"if-match",
        b"if-none-match",
        b"if-modified-since",
        b"if-unmodified-since",
        b"if-range",
        b"max-forwards",
        b"cache-control",
        b"authorization",
        b"proxy-authorization",
        b"cookie",
        b"content-type",
        b"content-encoding",
        b"content-range",
        b"x-forwarded-for",
        b"x-forwarded-proto",
        b"x-forwarded-host",
        b"via",
    }
)


class BodyKind(Enum):
    NONE = 0
    LENGTH = 1  # Content-Length: RequestHead.content_length bytes
    CHUNKED = 2  # Transfer-Encoding: chunked


class RequestHead(NamedTuple):
    """The framing decision for one accepted request. A NamedTuple: built once per request on
    the hot path, and tuple construction is several times cheaper than a frozen dataclass."""

    method: bytes
    target: bytes  # forwarded byte for byte
    version: tuple[int, int]
    fields: Fields  # as received
    body: BodyKind
    content_length: int  # for BodyKind.LENGTH, else 0
    host: bytes | None  # the Host value, OWS-stripped; None only for HTTP/1.0 without Host
    keep_alive: bool  # the client wants the connection kept after this exchange
    websocket: bool  # a WebSocket upgrade to tunnel once the backend answers 101
    upgrade_stripped: bool  # an Upgrade we do not tunnel (h2c, ...), removed when forwarding
    expect_continue: bool  # Expect: 100-continue (HTTP/1.1 only, RFC 9110 10.1.1)
    connection_tokens: frozenset[bytes]  # lower-case Connection options, hop-by-hop too
    underscore: bool  # a field name holds "_": such fields are never forwarded


# RequestHead's generated __new__ is a Python function; building the tuple directly skips
# that frame on the hot path (same object, same fields, in declaration order).
_new_head = tuple.__new__


def _split_list(values: list[bytes]) -> list[bytes]:
    """RFC 9110 5.6.1 list elements of several field lines, OWS-stripped, lower-cased, empty
    elements kept (callers decide whether an empty element is an error)."""
    out: list[bytes] = []
    for value in values:
        out.extend(part.strip(_OWS).lower() for part in value.split(b","))
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
        return rest.startswith(b":") and not rest[1:].translate(None, _DIGITS) and len(rest) <= 6
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
            digits = part.strip(_OWS)
            if not digits or digits.translate(None, _DIGITS) or len(digits) > 19:
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
    if not method.isalpha() and (not method or method.translate(None, _TCHAR)):
        raise ProtocolError(400, "invalid method")
    # One translate over the joined bytes each; empty names are looked for separately.
    names = b"".join(map(_name_of, fields))
    if not names.replace(b"-", b"").isalnum() and names.translate(None, _TCHAR):
        raise ProtocolError(400, "invalid character in field name")
    if b"".join(map(_value_of, fields)).translate(None, _VALUE_CHARS):
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
            host = host.strip(_OWS)
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


def check_request_line_length(length: int, limits: LimitSpec) -> None:
    """For the wrapper while the request line arrives (on_url pieces): 414 over the limit,
    before the rest is buffered."""
    if length > limits.max_request_line:
        raise ProtocolError(414, "request line too long")


def check_head_size(length: int, limits: LimitSpec) -> None:
    """For the wrapper while the head arrives: `length` raw bytes fed and the head still not
    complete. 431 over the limit (RFC 6585 5)."""
    if length > limits.max_header_bytes:
        raise ProtocolError(431, "request header section too large")


def check_field_count(count: int, limits: LimitSpec) -> None:
    """For the wrapper on each on_header: 431 over the limit, never truncation."""
    if count > limits.max_headers:
        raise ProtocolError(431, "too many header fields")


def check_body_size(received: int, limits: LimitSpec) -> None:
    """For the wrapper while a chunked body arrives: 413 once it passes the limit."""
    if limits.max_body_bytes is not None and received > limits.max_body_bytes:
        raise ProtocolError(413, "request body too large")


def trailer_section(fields: Fields, limits: LimitSpec) -> bytes:
    """The trailer fields of a chunked request (httptools reports them through on_header
    after on_headers_complete) as rota forwards them: `Name: value\r\n` lines, b"" for
    none. Refused as a head would be: a bad character 400 (llhttp refuses most, and
    Content-Length and Transfer-Encoding there), past `limits` 431. A field that must not be
    a trailer (framing, routing, request modifiers, authentication, hop-by-hop; RFC 9110
    6.5.1) is dropped, never forwarded: a recipient that merged it could be steered
    (trailer `Host: evil`)."""
    if len(fields) > limits.max_headers:
        raise ProtocolError(431, "too many trailer fields")
    size = 0
    kept: list[bytes] = []
    for name, value in fields:
        size += len(name) + len(value) + 4
        if not name or name.translate(None, _TCHAR):
            raise ProtocolError(400, "invalid character in trailer name")
        if value.translate(None, _VALUE_CHARS):
            raise ProtocolError(400, "invalid character in trailer value")
        if name.lower() not in _FORBIDDEN_TRAILERS:
            kept += (name, b": ", value.rstrip(_OWS), b"\r\n")
    if size > limits.max_header_bytes:
        raise ProtocolError(431, "trailer section too large")
    return b"".join(kept)


def response_trailer_section(fields: Fields, limits: LimitSpec) -> bytes:
    """The trailer fields of a chunked response as rota forwards them to an HTTP/1.1 client:
    the same fields dropped as from a request's, and a field with a character a client
    could misread (llhttp reads responses leniently) too; past `limits` (the listener's
    head limits) the whole section is dropped rather than the response failed, whose body
    has gone out already."""
    if len(fields) > limits.max_headers:
        return b""
    size = 0
    kept: list[bytes] = []
    for name, value in fields:
        size += len(name) + len(value) + 4
        if (
            name
            and not name.translate(None, _TCHAR)
            and not value.translate(None, _VALUE_CHARS)
            and name.lower() not in _FORBIDDEN_TRAILERS
        ):
            kept += (name, b": ", value.rstrip(_OWS), b"\r\n")
    if size > limits.max_header_bytes:
        return b""
    return b"".join(kept)


# RFC 9112 7.1.1: a recipient may limit the length of chunk extensions. llhttp (httptools
# 0.9) accepts any: measured, a 1 MiB extension in one read and 64 MiB fed in pieces parse,
# and httptools exposes no extension callback (llhttp's on_chunk_extension_* are not wired).
# Node.js refuses more than 16 KiB of extensions in one message (kMaxChunkExtensionsSize,
# CVE-2024-22019); HAProxy needs the whole chunk-size line inside one buffer (tune.bufsize,
# 16 KiB). rota takes the same 16 KiB, per chunk-size line (size and extensions): real
# extensions are short (aws-chunked's chunk-signature is 81 bytes on every chunk, so a
# per-body total would refuse large signed uploads), and a body cannot repeat them for free:
# every chunk but the last carries data, which max_body_bytes counts. Leading zeros count
# too (llhttp takes any number of them).
MAX_CHUNK_LINE: Final = 16 * 1024
_MAX_CHUNK_SIZE: Final = 2**64 - 1  # llhttp refuses a larger one
_CRLF2: Final = b"\r\n\r\n"


class ChunkLines:
    """Follows the chunk framing of one chunked request body beside llhttp, to bound each
    chunk-size line (MAX_CHUNK_LINE), which llhttp does not. Fed the raw bytes from the start
    of the body, read by read, ahead of llhttp (a too-long line is refused before llhttp
    parses past it); reads nothing but the size lines. `data` (the sizes) and `seen` (what
    llhttp delivered) must agree at the end of the message, or the two disagree on where
    the body is and the request is refused."""

    __slots__ = (
        "carry",
        "checked",
        "cut",
        "data",
        "done",
        "end",
        "line",
        "raw",
        "read",
        "seen",
        "sent",
        "skip",
        "trailer",
    )

    def __init__(self, raw: bool = False) -> None:
        # Passthrough (`raw`): the body's own bytes go to the backend, framing and all, so
        # each scan also says which of the read's bytes are forwardable: up to `cut` (the
        # start of the last chunk's line, or of a size line cut by the end of the read; -1:
        # the whole read), after `carry` (a size line begun in earlier reads, held back
        # until it was known not to be the last chunk's). `sent`: the data bytes of `seen`
        # already forwarded.
        self.raw = raw
        self.cut = -1
        self.carry = b""
        self.sent = 0
        self.line = b""  # the start of a size line cut by the end of a read
        self.skip = 0  # bytes of chunk data and its CRLF before the next size line
        self.done = False  # the last chunk (size 0) was seen: trailer fields follow
        self.data = 0  # data bytes the size lines announced
        self.seen = 0  # data bytes llhttp delivered (kept by the caller)
        self.read: bytes | None = None  # the read in which the last chunk was seen
        self.end = 0  # and the offset after its line
        self.checked = False  # the message ended and agrees() was asked
        self.trailer = 0  # bytes fed after the last chunk while the message is unfinished

    def scan(self, data: bytes, pos: int) -> None:
        """Follow `data[pos:]`; raises ProtocolError (400) for a size line over
        MAX_CHUNK_LINE."""
        n = len(data)
        self.cut = -1
        self.carry = b""
        while pos < n and not self.done:
            skip = self.skip
            if skip:
                take = n - pos if n - pos < skip else skip
                pos += take
                self.skip = skip - take
                continue
            start = pos  # where this size line starts in `data` (0 if it began earlier)
            size = -1
            lf = -1
            if not self.line:
                # The usual size line, hex digits and CRLF, is read without a search.
                i = pos
                value = 0
                while i < n:
                    digit = _hex_value(data[i])
                    if digit < 0:
                        break
                    value = value * 16 + digit
                    i += 1
                if i + 1 < n and i > pos and data[i] == 13 and data[i + 1] == 10:
                    lf = i + 1
                    size = value if value <= _MAX_CHUNK_SIZE else -1
            if lf == -1:
                lf = data.find(b"\n", pos)
                if lf == -1:
                    # Cut by the end of the read: keep it (MAX_CHUNK_LINE bytes and CR).
                    line = self.line + data[pos:]
                    if len(line) > MAX_CHUNK_LINE + 1:
                        raise ProtocolError(400, "chunk extension too long")
                    self.line = line
                    self.cut = start
                    return
                # The line ends with CR (llhttp refuses a bare LF); the CR is not counted.
                if self.line:
                    begun = self.line
                    line = begun + data[pos:lf]
                    self.line = b""
                    if len(line) > MAX_CHUNK_LINE + 1:
                        raise ProtocolError(400, "chunk extension too long")
                    size = _chunk_size(line, 0, len(line))
                    if size > 0 and self.raw:
                        self.carry = begun
                else:
                    if lf - pos > MAX_CHUNK_LINE + 1:
                        raise ProtocolError(400, "chunk extension too long")
                    size = _chunk_size(data, pos, lf)
            elif lf - pos > MAX_CHUNK_LINE + 1:
                raise ProtocolError(400, "chunk extension too long")
            pos = lf + 1
            if size < 0:
                # Not a size line: llhttp refuses it when it gets there, unless this lost
                # step with llhttp, which agrees() reports at the end of the message.
                self.cut = start
                self.lose()
                return
            if size == 0:
                self.cut = start
                self.done = True
                self.read = data
                self.end = pos
                return
            self.data += size
            self.skip = size + 2  # the data and its CRLF

    def lose(self) -> None:
        """Stop following: the body is not where this looked for it."""
        self.done = True
        self.data = -1

    def agrees(self) -> bool:
        """At the end of the message: llhttp framed the same body."""
        return self.done and self.data == self.seen

    def in_step(self) -> bool:
        """After a read both parsed whole, mid-body: the data bytes the size lines have
        passed over are those llhttp delivered (of the data and CRLF still to skip, the
        data is not passed yet)."""
        if self.done:
            return self.data == self.seen
        ahead = self.skip - 2
        return self.data - (ahead if ahead > 0 else 0) == self.seen


def _hex_value(c: int) -> int:
    """The value of one hex digit's byte, or -1."""
    if 48 <= c <= 57:
        return c - 48
    if 97 <= c <= 102:
        return c - 87
    if 65 <= c <= 70:
        return c - 55
    return -1


def _chunk_size(buf: bytes, start: int, end: int) -> int:
    """The size of the chunk-size line buf[start:end] (its CR included, not its LF): hex
    digits, then ";" or the CR; -1 if it is not one. A loop over bytes, not method calls:
    this runs once per chunk."""
    size = 0
    i = start
    while i < end:
        digit = _hex_value(buf[i])
        if digit < 0:
            break
        size = size * 16 + digit
        i += 1
    if i in (start, end) or size > _MAX_CHUNK_SIZE:
        return -1
    c = buf[i]
    if (c == 59 or c == 13) and buf[end - 1] == 13:  # ";" or CR, and the line ends with CR
        return size
    return -1


def body_start(data: bytes, start: int, began: bool, tail: bytes, last_value: bytes) -> int:
    """Where the body begins in `data`, a read in which llhttp just completed a request head
    (httptools tells no offsets), or -1 if it cannot be found. `began`: the head began in
    this read, after `start` (the end of an earlier request found in it); else it began in
    an earlier read ending with `tail`. The head ends at an empty line right after its last
    field's value (llhttp keeps its trailing whitespace), and a body starts with a chunk
    size: a candidate end that is not so belongs to another request of the read."""
    if not began:
        # No other request before it in this read: the first empty line, maybe cut.
        return _continued_head_end(data, tail)
    n = len(data)
    i = data.find(_CRLF2, start)
    while i != -1:
        k = i + 4
        # A slice compared is cheaper from compiled code than a call of endswith.
        if i - start >= len(last_value) and data[i - len(last_value) : i] == last_value:
            # The body starts with hex digits, then ";" or CR, or the read ends first.
            j = k
            while j < n and _hex_value(data[j]) >= 0:
                j += 1
            if j == n or (j > k and (data[j] == 59 or data[j] == 13)):
                return k
        i = data.find(_CRLF2, i + 1)
    return -1


def _continued_head_end(data: bytes, tail: bytes) -> int:
    """Where a head begun in earlier reads (whose last bytes were `tail`) ends in `data`:
    after its first empty line, which may be cut between the reads; -1 if not in it."""
    joined = tail + data[:3]
    i = joined.find(_CRLF2)
    if i != -1:
        return i + 4 - len(tail)
    i = data.find(_CRLF2)
    return i + 4 if i != -1 else -1


def head_end(data: bytes, began: bool, tail: bytes) -> int:
    """Where the body begins in `data`, a read in which llhttp completed a request head and
    in which no earlier message ended, or -1. Then nothing but this head (after the line
    breaks llhttp skips before a request line) comes before the body in the read, and a
    head ends at its first empty line (llhttp refuses a bare CR or LF): exact, unlike
    `body_start`, which must choose between the requests of a pipelined read. `began`: the
    head began in this read; else in earlier ones, whose last bytes were `tail`."""
    if not began:
        return _continued_head_end(data, tail)
    n = len(data)
    pos = 0
    while pos < n and (data[pos] == 13 or data[pos] == 10):
        pos += 1
    i = data.find(_CRLF2, pos)
    return i + 4 if i != -1 else -1


def resume_head(head: RequestHead) -> bytes:
    """A synthetic head to feed a fresh httptools parser after llhttp paused on an Upgrade we
    strip (HttpParserUpgrade): llhttp treats an upgrade request as bodiless, so without this
    the body of `POST + Upgrade: h2c` would be parsed as the next request (smuggling). Feed
    this with callbacks muted until its on_headers_complete, then the bytes after the pause
    offset: the body is framed as `head` says and later requests parse normally. None of it is
    forwarded."""
    if head.body is BodyKind.CHUNKED:
        return b"PUT / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    if head.body is BodyKind.LENGTH:
        return b"PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % head.content_length
    return b""


def build_request_head(
    head: RequestHead,
    client_ip: bytes,
    proto: bytes = b"http",
    default_host: bytes = b"",
    close: bool = False,
    edits: FieldEdits | None = None,
    target: bytes | None = None,
    add_via: bool = False,
) -> bytes:
    """The request head sent to a backend: the line with the target byte for byte and
    HTTP/1.1, end-to-end fields in received order, hop-by-hop fields removed (RFC 9110 7.6.1),
    fields whose name holds "_" removed (see decide_request), framing re-emitted from the
    decision, then X-Forwarded-For (appended), X-Forwarded-Proto, X-Forwarded-Host (replaced)
    and the client's Via, if any, in one line. `add_via` (a listener's `via = true`) appends
    rota's own entry to it (RFC 9110 7.6.3); off by default, as in HAProxy and nginx,
    because nginx does not compress a response to a request with Via (`gzip_proxied`).

    `default_host` is sent as Host for an HTTP/1.0 request without one (HTTP/1.1 upstream
    requires it). `close` asks the backend to close after this exchange. `edits` (a route's
    request_headers) leaves out the fields it names and appends its lines after the copied
    fields, before the framing and X-Forwarded lines, which stay rota's. `target` replaces the
    received target in the request line (a route's strip_prefix). Both None cost nothing.
    """
    drop = _DROP
    # Only names as long as a dropped one are lower-cased and looked up: those of _DROP,
    # and these.
    lengths = _NO_LENGTHS
    tokens = head.connection_tokens
    if tokens:
        drop, lengths = _connection_drops(tokens)
    if head.version == (1, 0):
        # RFC 9110 15.2: no 1xx to an HTTP/1.0 client, so do not invite one from upstream.
        drop = drop | {_EXPECT}
        lengths = lengths | {len(_EXPECT)}
    if edits is not None:
        if drop is _DROP:
            drop, lengths = _edit_drops(edits)
        else:
            drop = drop | edits.drop
            lengths = lengths | edits.lengths
    parts = [head.method, b" ", head.target if target is None else target, b" HTTP/1.1\r\n"]
    append = parts.append
    xff: list[bytes] = []
    via: list[bytes] = []
    fields = head.fields
    if head.underscore:
        fields = [field for field in fields if b"_" not in field[0]]
    for name, value in fields:
        n = len(name)
        if _dropped_length(n) or (lengths and n in lengths):
            lname = name.lower()
            if lname in drop:
                if lname == b"x-forwarded-for":
                    xff.append(value.strip(_OWS))
                elif lname == b"via":
                    via.append(value.strip(_OWS))
                continue
        append(name)
        append(b": ")
        append(value)
        append(b"\r\n")
    if edits is not None:
        append(edits.add)
    host = head.host
    if host is None:
        host = default_host
        # A route that sets Host has put its own among the edits.
        if edits is None or _HOST not in edits.drop:
            parts += (b"Host: ", host, b"\r\n")
    if head.body is BodyKind.CHUNKED:
        append(b"Transfer-Encoding: chunked\r\n")
    elif head.body is BodyKind.LENGTH:
        parts += (b"Content-Length: ", b"%d" % head.content_length, b"\r\n")
    if head.websocket:
        append(b"Connection: Upgrade\r\nUpgrade: websocket\r\n")
    elif close:
        append(b"Connection: close\r\n")
    if xff:
        xff.append(client_ip)
        client_ip = b", ".join(xff)
    parts += (
        b"X-Forwarded-For: ",
        client_ip,
        b"\r\nX-Forwarded-Proto: ",
        proto,
        b"\r\nX-Forwarded-Host: ",
        host,
        b"\r\n",
    )
    if add_via:
        via.append(b"1.1 rota" if head.version == (1, 1) else b"1.0 rota")
    if via:
        parts += (b"Via: ", b", ".join(via), b"\r\n")
    append(b"\r\n")
    return b"".join(parts)
