"""Header rules of a proxy: hop-by-hop fields (RFC 9110 section 7.6.1) and the heads rota
sends on, built in one `b"".join` each since they are built for every request."""

from __future__ import annotations

from collections.abc import Iterable

Headers = list[tuple[bytes, bytes]]

# RFC 9110 7.6.1: a proxy removes Connection and every field it names, plus these, which
# are known to be hop-by-hop even when Connection forgot to name them (RFC 7230 6.1 list;
# Proxy-Connection is the non-standard one browsers used to send).
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)

# Fields rota writes itself on the way to a backend; a client's copies are replaced
# (X-Forwarded-For is appended to, not replaced).
REPLACED_UPSTREAM = frozenset({b"x-forwarded-proto", b"x-forwarded-host", b"content-length"})


def connection_tokens(headers: Iterable[tuple[bytes, bytes]]) -> frozenset[bytes]:
    """The lower-cased tokens of every Connection field (`close`, `keep-alive`, names)."""
    tokens: set[bytes] = set()
    for name, value in headers:
        if name.lower() == b"connection":
            tokens.update(t.strip().lower() for t in value.split(b","))
    tokens.discard(b"")
    return frozenset(tokens)


def build_request_head(
    method: bytes,
    target: bytes,
    headers: Headers,
    *,
    drop: frozenset[bytes],
    client_ip: bytes,
    proto: bytes,
    host: bytes,
    body_framing: bytes,
    extra: bytes = b"",
) -> bytes:
    """The request head rota sends to a backend, always HTTP/1.1 and keep-alive.

    `drop` is HOP_BY_HOP plus the names the client's Connection listed. The target goes on
    byte for byte. `body_framing` is the framing header line(s) rota chose (Content-Length
    or Transfer-Encoding: chunked), already ending in CRLF, or b"" for no body.
    """
    parts = [method, b" ", target, b" HTTP/1.1\r\n"]
    forwarded_for = client_ip
    for name, value in headers:
        lname = name.lower()
        if lname in drop or lname in REPLACED_UPSTREAM:
            continue
        if lname == b"x-forwarded-for":
            forwarded_for = value + b", " + client_ip
            continue
        parts += (name, b": ", value, b"\r\n")
    parts += (
        b"X-Forwarded-For: ",
        forwarded_for,
        b"\r\nX-Forwarded-Proto: ",
        proto,
        b"\r\nX-Forwarded-Host: ",
        host,
        b"\r\nVia: 1.1 rota\r\n",
        body_framing,
        extra,
        b"\r\n",
    )
    return b"".join(parts)


def build_response_head(
    status: int,
    reason: bytes,
    headers: Headers,
    *,
    drop: frozenset[bytes],
    framing: bytes,
) -> bytes:
    """The response head rota sends to a client: HTTP/1.1, hop-by-hop fields removed,
    `framing` (Content-Length / Transfer-Encoding / Connection lines, CRLF-terminated)
    chosen by the proxy for the client's side of the hop."""
    parts = [b"HTTP/1.1 %d " % status, reason, b"\r\n"]
    for name, value in headers:
        lname = name.lower()
        if lname in drop or lname == b"content-length":
            continue
        parts += (name, b": ", value, b"\r\n")
    parts += (framing, b"\r\n")
    return b"".join(parts)
