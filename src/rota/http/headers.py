"""Header rules of a proxy: hop-by-hop fields (RFC 9110 section 7.6.1) and the response head
rota sends on, built in one `b"".join` since it is built for every response. The request
head sent to a backend is built by `rota.http.forward.build_request_head`."""

from __future__ import annotations

from typing import Final

from rota.http.edits import FieldEdits

Headers = list[tuple[bytes, bytes]]

# RFC 9110 7.6.1: a proxy removes Connection and every field it names, plus these, which
# are known to be hop-by-hop even when Connection forgot to name them (RFC 7230 6.1 list;
# Proxy-Connection is the non-standard one browsers used to send). Not Trailer: it is
# end-to-end (RFC 9110 6.6.2), forwarded with the trailer fields it announces.
HOP_BY_HOP: Final = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"transfer-encoding",
        b"upgrade",
    }
)


# Values parsed on every request that come from a small set ("close", "keep-alive" in
# Connection, a server's own Host names) are remembered per value, in dicts of at most
# this many entries: once one is full, other values are parsed every time. A dict lookup
# from compiled code costs a fraction of a call through functools.lru_cache.
MEMO_LIMIT: Final = 256
_OPTIONS: Final[dict[bytes, frozenset[bytes]]] = {}


def _options(value: bytes) -> frozenset[bytes]:
    options = _OPTIONS.get(value)
    if options is None:
        stripped = [p.strip(b" \t").lower() for p in value.split(b",")]
        options = frozenset([o for o in stripped if o])
        if len(_OPTIONS) < MEMO_LIMIT:
            _OPTIONS[value] = options
    return options


def connection_options(values: list[bytes]) -> frozenset[bytes]:
    """The options of one or more Connection field lines (RFC 9110 7.6.1): lower-case,
    OWS-stripped, empty list elements left out. `values` is not empty."""
    options = _options(values[0])
    for value in values[1:]:
        options = options | _options(value)
    return options


# What a proxy consumes from a response head instead of copying it: the hop-by-hop fields,
# and Content-Length, which is re-emitted from the framing decision.
_CONSUMED: Final = HOP_BY_HOP | {b"content-length"}


def consumed_length(n: int) -> bool:
    """A field name of `n` bytes may be one of _CONSUMED (2, 7, 10, 14, 16 or 17 bytes)."""
    return n == 10 or n == 14 or n == 7 or n == 17 or n == 16 or n == 2


# The usual spellings of the consumed names (Title-Case, and lower-case as h11 and HTTP/2
# stacks send them), so that a response using them is sorted without lower-casing a name.
_CANONICAL: Final[dict[bytes, bytes]] = {name: name for name in _CONSUMED}
_CANONICAL.update({name.title(): name for name in _CONSUMED})
_CANONICAL[b"TE"] = b"te"

_STATUS_LINES: Final = {code: b"HTTP/1.1 %d " % code for code in range(100, 600)}


def response_head_parts(
    status: int, reason: bytes, headers: Headers, edits: FieldEdits | None = None
) -> tuple[list[bytes], bytes | None, list[bytes]]:
    """One pass over a final response's head, for the hot path: the pieces of the head rota
    sends (status line and end-to-end fields, to be followed by the framing lines and the
    empty line), plus what the framing decision needs: the Content-Length value and the
    transfer codings in order (lower-case).

    Fields named in Connection are hop-by-hop too (RFC 9110 7.6.1); when a response names
    any beyond the usual ones, the fields are filtered again without them. `edits` (a
    route's response_headers) does the same with the fields it names, then appends its
    lines; the framing lines the caller adds stay rota's. None costs nothing.
    """
    if edits is not None:
        return _edited_parts(status, reason, headers, edits)
    parts = [_STATUS_LINES.get(status) or b"HTTP/1.1 %d " % status, reason, b"\r\n"]
    append = parts.append
    length: bytes | None = None
    codings: list[bytes] = []
    connection: list[bytes] = []
    for name, value in headers:
        # Only names as long as a consumed one are lower-cased and looked up.
        if consumed_length(len(name)):
            lname = _CANONICAL.get(name)
            if lname is None:
                lname = name.lower()
            if lname in _CONSUMED:
                if lname == b"content-length":
                    # llhttp strips the leading OWS of a value, not the trailing.
                    last = value[-1] if value else 0
                    length = value.strip() if last == 32 or last == 9 else value
                elif lname == b"transfer-encoding":
                    stripped = [c.strip().lower() for c in value.split(b",")]
                    codings += [c for c in stripped if c]
                elif lname == b"connection":
                    connection.append(value)
                continue
        append(name)
        append(b": ")
        append(value)
        append(b"\r\n")
    if connection:
        tokens = connection_options(connection)
        if not tokens <= _CONSUMED:
            _refilter(parts, headers, _CONSUMED | tokens)
    return parts, length, codings


def _edited_parts(
    status: int, reason: bytes, headers: Headers, edits: FieldEdits
) -> tuple[list[bytes], bytes | None, list[bytes]]:
    """response_head_parts for a route with response edits: the same pass, which also leaves
    out the fields the edits name, then their lines. Apart so that the usual response does
    not pay a test per field for it."""
    parts = [_STATUS_LINES.get(status) or b"HTTP/1.1 %d " % status, reason, b"\r\n"]
    append = parts.append
    length: bytes | None = None
    codings: list[bytes] = []
    connection: list[bytes] = []
    lengths = edits.lengths
    dropped = edits.drop
    for name, value in headers:
        n = len(name)
        consumed = consumed_length(n)
        if consumed or n in lengths:
            lname = _CANONICAL.get(name)
            if lname is None:
                lname = name.lower()
            if consumed and lname in _CONSUMED:
                if lname == b"content-length":
                    last = value[-1] if value else 0
                    length = value.strip() if last == 32 or last == 9 else value
                elif lname == b"transfer-encoding":
                    stripped = [c.strip().lower() for c in value.split(b",")]
                    codings += [c for c in stripped if c]
                elif lname == b"connection":
                    connection.append(value)
                continue
            if lname in dropped:
                continue
        append(name)
        append(b": ")
        append(value)
        append(b"\r\n")
    if connection:
        tokens = connection_options(connection)
        if not tokens <= _CONSUMED:
            _refilter(parts, headers, _CONSUMED | tokens | dropped)
    append(edits.add)
    return parts, length, codings


def _refilter(parts: list[bytes], headers: Headers, drop: frozenset[bytes]) -> None:
    """Copy the fields again after the status line, leaving out those in `drop`."""
    del parts[3:]
    for name, value in headers:
        if name.lower() not in drop:
            parts += (name, b": ", value, b"\r\n")


def build_response_head(
    status: int,
    reason: bytes,
    headers: Headers,
    *,
    drop: frozenset[bytes],
    framing: bytes,
    edits: FieldEdits | None = None,
) -> bytes:
    """The response head rota sends to a client: HTTP/1.1, hop-by-hop fields removed,
    `framing` (Content-Length / Transfer-Encoding / Connection lines, CRLF-terminated)
    chosen by the proxy for the client's side of the hop. `edits` as in
    response_head_parts: its fields left out, its lines before `framing`."""
    if edits is not None:
        drop = drop | edits.drop
    parts = [b"HTTP/1.1 %d " % status, reason, b"\r\n"]
    for name, value in headers:
        lname = name.lower()
        if lname in drop or lname == b"content-length":
            continue
        parts += (name, b": ", value, b"\r\n")
    if edits is not None:
        parts.append(edits.add)
    parts += (framing, b"\r\n")
    return b"".join(parts)


def cookie_value(fields: Headers, name: bytes) -> bytes | None:
    """The value of cookie `name` in a request's Cookie fields (RFC 6265 5.4: pairs joined
    by "; ", possibly in several fields), or None."""
    prefix = name + b"="
    for field_name, value in fields:
        if len(field_name) == 6 and field_name.lower() == b"cookie":
            for pair in value.split(b";"):
                pair = pair.strip(b" \t")
                if pair.startswith(prefix):
                    return pair[len(prefix) :]
    return None
