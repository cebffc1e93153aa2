"""Failed handshakes: counted per reason, logged at most once a second per listener.

A flood of bad handshakes (a scanner, a plain-HTTP client on the TLS port, a client that
never finishes) must not become a flood of log lines: the first failure after a quiet
second schedules one summary line for the end of that second.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections import Counter
from collections.abc import Callable
from typing import Final

log = logging.getLogger("rota.tls")

LOG_INTERVAL: Final = 1.0


class Refused(Exception):
    """A connection rota refuses for a reason of its own (SNI passthrough: no ClientHello,
    no route for its name). The text is the reason: a few fixed phrases, never the name
    a client sent, so the counter cannot grow without bound."""


def reason(exc: BaseException) -> str:
    """A short, stable name for why a handshake failed: "wrong version number",
    "handshake timeout", "http request" (plain HTTP to a TLS port), "client closed"."""
    if isinstance(exc, Refused):
        return str(exc)
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return "handshake timeout"
    if isinstance(exc, ssl.SSLError):
        if exc.reason == "CALLBACK_FAILED":
            # The SNI callback's only refusal (rota.tls.server): strict_sni.
            return "no certificate for the server name"
        if exc.reason:
            return exc.reason.lower().replace("_", " ")
        if isinstance(exc, ssl.SSLEOFError):
            return "client closed"
        return "tls error"
    if isinstance(exc, ConnectionAbortedError) and "longer than" in str(exc):
        return "handshake timeout"  # asyncio and uvloop word their timeout this way
    if isinstance(exc, ConnectionError | EOFError):
        return "client closed"
    if isinstance(exc, OSError):
        return (exc.strerror or type(exc).__name__).lower()
    return type(exc).__name__


class HandshakeFailures:
    """Counts per reason since start (`counts`), and the log's rate limit."""

    def __init__(self, listener: str, clock: Callable[[], float], what: str = "handshake") -> None:
        self.listener = listener
        self.what = what  # "handshake"; "ClientHello" for passthrough
        self.clock = clock
        self.counts: Counter[str] = Counter()
        self._window: Counter[str] = Counter()
        self._flush: asyncio.TimerHandle | None = None

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def failed(self, exc: BaseException) -> str:
        why = reason(exc)
        self.counts[why] += 1
        self._window[why] += 1
        if self._flush is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no event loop (a unit test): log at once
                self.flush()
                return why
            self._flush = loop.call_later(LOG_INTERVAL, self.flush)
        return why

    def flush(self) -> None:
        self._flush = None
        if not self._window:
            return
        total = sum(self._window.values())
        detail = ", ".join(f"{why} {n}" for why, n in self._window.most_common())
        log.warning(
            "listener %s: tls: %d %s%s failed: %s",
            self.listener,
            total,
            self.what,
            "" if total == 1 else "s",
            detail,
        )
        self._window.clear()
