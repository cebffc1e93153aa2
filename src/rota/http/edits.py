"""Header edits a route asks for, prepared once at load for the serialisers.

`rota.http.forward.build_request_head` and `rota.http.headers.response_head_parts` take a
`FieldEdits` (or None, the usual case, which costs nothing): the fields it names are left
out of the forwarded head and its `add` lines are appended. A set field replaces every field
of its name, so its name is in `drop` too.
"""

from __future__ import annotations

from collections.abc import Iterable


class FieldEdits:
    __slots__ = ("add", "drop", "lengths")

    def __init__(self, drop: frozenset[bytes], add: bytes) -> None:
        self.drop = drop  # lower-case names left out
        self.lengths = frozenset([len(name) for name in drop])  # their lengths, a cheap pre-test
        self.add = add  # b"Name: value\r\n" lines, appended after the copied fields

    def __repr__(self) -> str:
        return f"<FieldEdits drop={sorted(self.drop)} add={self.add!r}>"


# Fields rota writes itself: the hop-by-hop ones (RFC 9110 7.6.1), the framing it re-emits
# from its own decision (a second Content-Length or Transfer-Encoding from a route would be
# request smuggling, RFC 9112 6.3), and the forwarding fields it appends or replaces. A route
# may neither set nor remove them; Host may be set (a backend's virtual host), not removed
# (RFC 9112 3.2: an HTTP/1.1 request carries one).
RESERVED = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
        "x-forwarded-for",
        "x-forwarded-proto",
        "x-forwarded-host",
        "via",
    }
)


def field_edits(set_: Iterable[tuple[str, str]], remove: Iterable[str]) -> FieldEdits | None:
    """Edits from a route's `set` (name, value) pairs and `remove` names; None when empty.
    Names and values were validated by the config loader (tokens; no CR, LF or NUL).
    Raises ValueError for a field rota owns (RESERVED, or removing Host)."""
    set_ = list(set_)
    remove = list(remove)
    for name in [name for name, _ in set_] + remove:
        if name.lower() in RESERVED:
            raise ValueError(f"{name!r} is written by rota itself and cannot be edited")
    for name in remove:
        if name.lower() == "host":
            raise ValueError("'host' cannot be removed (HTTP/1.1 requires it); set it instead")
    pairs = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in set_]
    drop = {name.lower() for name, _ in pairs}
    drop.update(name.lower().encode("latin-1") for name in remove)
    if not drop:
        return None
    add = b"".join(b"%s: %s\r\n" % (name, value) for name, value in pairs)
    return FieldEdits(frozenset(drop), add)
