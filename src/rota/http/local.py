"""The answers a route gives itself (`redirect`, `respond`), prebuilt whole at load.

Four variants per route: closing the connection or not, and for HEAD (RFC 9110 9.3.2: the
same head, no body). A route's `response_headers` are folded in: its `set` fields follow
rota's own, replacing any of the same name, and its `remove` names drop rota's own fields.
Framing fields (Content-Length, Connection and the other hop-by-hop ones) are rota's alone:
a route could otherwise send a length that is not its body's, so the loader refuses them
and they are skipped here too.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Final
from urllib.parse import quote

from rota.config.model import RouteSpec
from rota.http.headers import HOP_BY_HOP

Answers = tuple[bytes, bytes, bytes, bytes]

_FRAMING: Final = HOP_BY_HOP | {b"content-length"}
# RFC 3986 characters stay as written; anything else (space, controls, non-ASCII) is
# percent-encoded, so that a Location can never break the head (CR LF) or carry raw UTF-8.
_URI_SAFE: Final = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in '"<>\\^`{|}')
_CLOSE: Final = b"Connection: close\r\n"


def reason(status: int) -> bytes:
    """The reason phrase rota writes for `status`; empty when it knows none (RFC 9112 4
    makes the phrase optional)."""
    try:
        return HTTPStatus(status).phrase.encode("latin-1")
    except ValueError:
        return b""


def local_answers(spec: RouteSpec) -> tuple[int, Answers]:
    """(status, answers) for a route with `redirect` or `respond`. Raises ValueError for a
    status no final answer may have (the loader refuses those first)."""
    own: list[tuple[bytes, bytes]] = []
    body = b""
    if spec.redirect is not None:
        status = spec.redirect.status
        if not 300 <= status <= 399:
            raise ValueError(f"redirect status {status}: expected 3xx")
        own.append((b"Location", quote(spec.redirect.location, safe=_URI_SAFE).encode()))
        length: int | None = 0
    elif spec.respond is not None:
        status = spec.respond.status
        if not 200 <= status <= 599:
            raise ValueError(f"respond status {status}: expected 200 to 599")
        if status == 204 or status == 304:
            # RFC 9110 6.4.1 / 8.6: neither has content; 204 must not carry Content-Length.
            length = None
        else:
            body = spec.respond.body.encode()
            length = len(body)
            own.append((b"Content-Type", spec.respond.content_type.encode("latin-1")))
    else:
        raise ValueError("route has neither redirect nor respond")

    edits = spec.response_headers
    drop = {n.lower().encode("latin-1") for n, _ in edits.set}
    drop.update(n.lower().encode("latin-1") for n in edits.remove)
    lines = [b"HTTP/1.1 %d %s\r\n" % (status, reason(status))]
    lines += [b"%s: %s\r\n" % (n, v) for n, v in own if n.lower() not in drop]
    for name, value in edits.set:
        raw = name.encode("latin-1")
        if raw.lower() not in _FRAMING:
            lines.append(b"%s: %s\r\n" % (raw, _field_value(value)))
    if length is not None:
        lines.append(b"Content-Length: %d\r\n" % length)
    head = b"".join(lines)
    return status, (
        head + _CLOSE + b"\r\n" + body,
        head + b"\r\n" + body,
        head + _CLOSE + b"\r\n",
        head + b"\r\n",
    )


def _field_value(value: str) -> bytes:
    raw = value.encode("latin-1")
    # RFC 9110 5.5: no CR, LF or NUL in a field value; the loader checked, this is the
    # last line before the bytes go out prebuilt for every request of the route.
    if b"\r" in raw or b"\n" in raw or b"\0" in raw:
        raise ValueError(f"invalid character in header value {value!r}")
    return raw
