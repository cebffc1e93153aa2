"""The trailer fields of a chunked message as rota forwards them, request or response.

RFC 9110 6.5.1: a sender must not put framing, routing, request-modifier or authentication
fields in trailers, and a recipient that merged one could be steered (trailer `Host:
evil`): those are dropped, never forwarded. A request's trailer section is checked as a
head would be (400, 431); a response's, whose body has gone out already, is dropped
rather than failed.
"""

from __future__ import annotations

from typing import Final

from rota.config.model import LimitSpec
from rota.http.charsets import OWS, TCHAR, VALUE_CHARS
from rota.http.errors import ProtocolError
from rota.http.head import Fields

# RFC 9110 6.5.1: the fields that must not be trailers.
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
        if not name or name.translate(None, TCHAR):
            raise ProtocolError(400, "invalid character in trailer name")
        if value.translate(None, VALUE_CHARS):
            raise ProtocolError(400, "invalid character in trailer value")
        if name.lower() not in _FORBIDDEN_TRAILERS:
            kept += (name, b": ", value.rstrip(OWS), b"\r\n")
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
            and not name.translate(None, TCHAR)
            and not value.translate(None, VALUE_CHARS)
            and name.lower() not in _FORBIDDEN_TRAILERS
        ):
            kept += (name, b": ", value.rstrip(OWS), b"\r\n")
    if size > limits.max_header_bytes:
        return b""
    return b"".join(kept)
