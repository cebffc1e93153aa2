"""The request head rota sends to a backend: `build_request_head`.

The request line with the target byte for byte, the end-to-end fields in the order
received, the hop-by-hop ones dropped (RFC 9110 7.6.1), the framing re-emitted from rota's
decision, then X-Forwarded-For/-Proto/-Host and Via, in one b"".join. Once per request
and compiled (rota.native): only names as long as a dropped one are lower-cased, and the
drop sets for a request's Connection options or a route's edits are memoised.
"""

from __future__ import annotations

from typing import Final

from rota.http.charsets import OWS
from rota.http.edits import FieldEdits
from rota.http.head import BodyKind, RequestHead
from rota.http.headers import HOP_BY_HOP, MEMO_LIMIT

# RFC 9110 7.6.1: hop-by-hop fields (HOP_BY_HOP), never forwarded, and the fields rota
# writes itself: Transfer-Encoding and Content-Length are re-emitted from the framing
# decision; Upgrade is re-emitted for a WebSocket tunnel. X-Forwarded-* and Via are
# rewritten, not copied. Trailer is end-to-end (RFC 9110 6.6.2): it is forwarded with the
# trailer fields it announces.
_DROP: Final = HOP_BY_HOP | {
    b"content-length",
    b"x-forwarded-for",
    b"x-forwarded-proto",
    b"x-forwarded-host",
    b"via",
}
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


# Fields build_request_head treats apart from the drop sets.
_HOST: Final = b"host"
_EXPECT: Final = b"expect"


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
    fields whose name holds "_" removed (see rota.http.rules.decide_request), framing
    re-emitted from the decision, then X-Forwarded-For (appended), X-Forwarded-Proto,
    X-Forwarded-Host (replaced) and the client's Via, if any, in one line. `add_via` (a
    listener's `via = true`) appends rota's own entry to it (RFC 9110 7.6.3); off by
    default, as in HAProxy and nginx, because nginx does not compress a response to a
    request with Via (`gzip_proxied`).

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
                    xff.append(value.strip(OWS))
                elif lname == b"via":
                    via.append(value.strip(OWS))
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
