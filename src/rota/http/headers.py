"""Header rules of a proxy: hop-by-hop fields (RFC 9110 section 7.6.1) and the response head
rota sends on, built in one `b"".join` since it is built for every response. The request
head sent to a backend is built by `rota.http.rules.build_request_head`."""

from __future__ import annotations

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
