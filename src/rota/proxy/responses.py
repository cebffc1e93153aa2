"""Responses rota makes itself, prebuilt once: the one place a status becomes bytes."""

from __future__ import annotations

REASONS = {
    400: b"Bad Request",
    403: b"Forbidden",
    404: b"Not Found",
    405: b"Method Not Allowed",
    408: b"Request Timeout",
    413: b"Content Too Large",
    414: b"URI Too Long",
    417: b"Expectation Failed",
    431: b"Request Header Fields Too Large",
    499: b"Client Closed Request",
    500: b"Internal Server Error",
    501: b"Not Implemented",
    502: b"Bad Gateway",
    503: b"Service Unavailable",
    504: b"Gateway Timeout",
    505: b"HTTP Version Not Supported",
}

RETRY_AFTER_SECONDS = 1


def error_response(status: int, *, close: bool = True) -> bytes:
    """A short text response. 503 carries Retry-After (RFC 9110 10.2.3)."""
    reason = REASONS.get(status, b"Error")
    body = b"%d %s\n" % (status, reason)
    extra = b"Retry-After: %d\r\n" % RETRY_AFTER_SECONDS if status == 503 else b""
    connection = b"Connection: close\r\n" if close else b""
    return b"HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n%s%s\r\n%s" % (
        status,
        reason,
        len(body),
        extra,
        connection,
        body,
    )


CANNED = {status: error_response(status) for status in REASONS}
CANNED_KEEP_ALIVE = {status: error_response(status, close=False) for status in REASONS}
