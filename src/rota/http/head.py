"""The framing decision for one accepted request: `RequestHead`, and its `BodyKind`.

Made by `rota.http.rules.decide_request` once per request, read by everything after it:
the parser wrapper (how to read the body), the routes and the policies (method, target,
Host, fields), the forwarded head (rota.http.forward).
"""

from __future__ import annotations

from enum import Enum
from typing import NamedTuple

Fields = list[tuple[bytes, bytes]]


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
