"""Errors of the HTTP layer. Each carries the status a server should answer with, so the
proxy turns any of them into a response in one place (`rota.proxy.responses`).

One exception for "the peer broke HTTP (or a limit)": the data plane answers `status` and
closes the connection (RFC 9112 9.6: after a framing error the rest of
the stream cannot be trusted, so keep-alive is never kept).
"""

from __future__ import annotations


class ProtocolError(Exception):
    """A request rota refuses. `status` is the response code (400, 413, 414, 417, 431, 501,
    505); `reason` is a short phrase for logs and the error body, never echoing client bytes."""

    __slots__ = ("reason", "status")

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason

    def __repr__(self) -> str:
        return f"ProtocolError({self.status}, {self.reason!r})"


def from_parser_error(exc: BaseException) -> ProtocolError:
    """Turn an httptools error into the ProtocolError to answer with.

    When one of our callbacks raised ProtocolError (the rules run inside on_headers_complete),
    httptools wraps it in HttpParserCallbackError and keeps ours as `__context__`: that one
    wins. Anything else llhttp rejected is a malformed message: 400. llhttp enforces no size
    limit of its own (measured: a 1 MB target and 10,000 fields parse), so no llhttp error
    maps to 414 or 431.
    """
    inner = exc.__context__
    if isinstance(inner, ProtocolError):
        return inner
    if isinstance(exc, ProtocolError):
        return exc
    text = str(exc) or type(exc).__name__
    return ProtocolError(400, f"malformed request: {text}"[:120])
