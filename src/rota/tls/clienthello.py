"""The server name of a TLS ClientHello, read without decrypting anything (for SNI
passthrough: HAProxy's `req.ssl_sni`, Traefik's `HostSNI`). Pure: bytes in, verdict out.

RFC 8446 section 5.1 (records), 4.1.2 (ClientHello) and RFC 6066 section 3 (server_name).
A ClientHello may span several handshake records; it is bounded by MAX_CLIENT_HELLO,
past which the connection is not worth reading (OpenSSL's own bound is about 128 KiB;
real browsers send under 2 KiB, post-quantum key shares included).
"""

from __future__ import annotations

import enum
from typing import Final

MAX_CLIENT_HELLO: Final = 64 * 1024
_HANDSHAKE: Final = 0x16
_CLIENT_HELLO: Final = 0x01
_SERVER_NAME: Final = 0x0000
_HOST_NAME: Final = 0x00


class Verdict(enum.Enum):
    MORE = "more"  # incomplete: read more bytes
    NAME = "name"  # a complete ClientHello (with or without a server name)
    NOT_TLS = "not a TLS ClientHello"
    TOO_LARGE = "ClientHello too large"
    MALFORMED = "malformed ClientHello"


class _Malformed(Exception):
    pass


def server_name(data: bytes | bytearray) -> tuple[Verdict, str | None]:
    """(NAME, "db.example.com") or (NAME, None) when the ClientHello has no server name;
    (MORE, None) when more bytes are needed; otherwise a reason to close the connection."""
    if data and data[0] != _HANDSHAKE:
        return Verdict.NOT_TLS, None
    # The handshake layer, reassembled from the records read so far.
    message = bytearray()
    pos = 0
    while len(data) - pos >= 5:
        if data[pos] != _HANDSHAKE or data[pos + 1] != 3:
            return (Verdict.NOT_TLS if pos == 0 else Verdict.MALFORMED), None
        length = int.from_bytes(data[pos + 3 : pos + 5], "big")
        if length == 0 or length > 16384 + 2048:  # RFC 8446 5.1 and 5.2
            return Verdict.MALFORMED, None
        if len(data) - pos - 5 < length:
            break  # this record is incomplete
        message += data[pos + 5 : pos + 5 + length]
        pos += 5 + length
        if len(message) >= 4 and len(message) >= 4 + int.from_bytes(message[1:4], "big"):
            break  # the whole ClientHello is here
    if len(data) > 1 and data[1] != 3:
        return Verdict.NOT_TLS, None
    if len(message) >= 4:
        if message[0] != _CLIENT_HELLO:
            return Verdict.NOT_TLS, None
        size = int.from_bytes(message[1:4], "big")
        if size > MAX_CLIENT_HELLO:
            return Verdict.TOO_LARGE, None
        if len(message) >= 4 + size:
            try:
                return Verdict.NAME, _parse(memoryview(message)[4 : 4 + size])
            except _Malformed:
                return Verdict.MALFORMED, None
    if len(data) > MAX_CLIENT_HELLO + 5 * 8:
        return Verdict.TOO_LARGE, None
    return Verdict.MORE, None


class _Cursor:
    __slots__ = ("data", "pos")

    def __init__(self, data: memoryview) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> memoryview:
        end = self.pos + n
        if end > len(self.data):
            raise _Malformed
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def number(self, n: int) -> int:
        return int.from_bytes(self.take(n), "big")

    def vector(self, length_bytes: int) -> memoryview:
        return self.take(self.number(length_bytes))

    @property
    def left(self) -> int:
        return len(self.data) - self.pos


def _parse(body: memoryview) -> str | None:
    c = _Cursor(body)
    c.take(2 + 32)  # legacy_version, random
    c.vector(1)  # legacy_session_id
    c.vector(2)  # cipher_suites
    c.vector(1)  # legacy_compression_methods
    if c.left == 0:
        return None  # no extensions at all (an SSL 3.0-era hello)
    extensions = _Cursor(c.vector(2))
    while extensions.left:
        kind = extensions.number(2)
        data = extensions.vector(2)
        if kind != _SERVER_NAME:
            continue
        names = _Cursor(_Cursor(data).vector(2))
        while names.left:
            name_type = names.number(1)
            name = names.vector(2)
            if name_type == _HOST_NAME:
                raw = bytes(name)
                if (
                    not raw
                    or not raw.isascii()
                    or not raw.replace(b"-", b"").replace(b".", b"").replace(b"_", b"").isalnum()
                ):
                    raise _Malformed
                return raw.decode("ascii").lower().rstrip(".")
        return None
    return None
