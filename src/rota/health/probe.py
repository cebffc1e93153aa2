"""One health probe of one backend: the only I/O of the health checker.

A probe is a plain blocking call, made from the backend's own checker thread. One deadline
covers everything (connect, send, and reading the status line): before every socket call
the remaining time becomes the socket's timeout, so a backend that accepts and then
trickles bytes cannot stretch the probe past `timeout`.

HTTP kind: `GET PATH HTTP/1.1` with `Host`, `Connection: close` and a `User-Agent`, and
only the status line is read (HAProxy's `option httpchk` does the same); the status must
fall within the configured range. TCP kind: a completed connect is a pass.
"""

from __future__ import annotations

import contextlib
import errno
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from rota import __version__
from rota.config.model import CheckKind, HealthSpec
from rota.health.report import probe_answer

USER_AGENT = f"rota-health/{__version__}"

# A status line is short ("HTTP/1.1 200 OK\r\n"); a backend that sends more than this
# without a line ending is not speaking HTTP.
MAX_STATUS_LINE = 1024

_ERRNO_REASONS = {
    errno.ECONNREFUSED: "connection refused",
    errno.ECONNRESET: "connection reset",
    errno.ECONNABORTED: "connection aborted",
    errno.EPIPE: "connection reset",
    errno.EHOSTUNREACH: "host unreachable",
    errno.ENETUNREACH: "network unreachable",
    errno.EADDRNOTAVAIL: "address not available",
}


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """A pass or a failure, and what was seen: "GET /health -> 200", "connection refused",
    "timeout", "GET /health -> 404"."""

    ok: bool
    reason: str


class _Timeout(Exception):
    pass


class Probe:
    """Probes one backend; `abort()` (from another thread) cuts a probe in flight short,
    so that shutdown does not wait for a hanging backend."""

    __slots__ = ("_aborted", "_clock", "_host", "_lock", "_port", "_request", "_sock", "_spec")

    def __init__(
        self,
        host: str,
        port: int,
        spec: HealthSpec,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._host = host
        self._port = port
        self._spec = spec
        self._clock = clock
        authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        # RFC 9112 section 3.2: Host is required in HTTP/1.1; Connection: close (RFC 9112
        # section 9.6) because a probe is one request and we do not keep the connection.
        self._request = (
            f"GET {spec.path} HTTP/1.1\r\n"
            f"Host: {authority}\r\n"
            f"User-Agent: {USER_AGENT}\r\n"
            "Accept: */*\r\n"
            "Connection: close\r\n"
            "\r\n"
        ).encode("ascii")
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._aborted = False

    def abort(self) -> None:
        """Make the probe in flight, and any later one, fail at once. Thread-safe."""
        with self._lock:
            self._aborted = True
            sock = self._sock
        if sock is not None:
            # shutdown() wakes a thread blocked in recv()/send() on this socket; close()
            # from another thread would not, and could close a reused descriptor.
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def __call__(self) -> ProbeResult:
        deadline = self._clock() + self._spec.timeout
        try:
            return self._run(deadline)
        except _Timeout:
            return ProbeResult(False, "timeout")
        except TimeoutError:
            return ProbeResult(False, "timeout")
        except OSError as exc:
            return ProbeResult(False, _reason(exc))

    def _run(self, deadline: float) -> ProbeResult:
        family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            with self._lock:
                if self._aborted:
                    return ProbeResult(False, "aborted")
                self._sock = sock
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.settimeout(self._remaining(deadline))
            try:
                sock.connect((self._host, self._port))
            except TimeoutError:
                return ProbeResult(False, "connect timeout")
            if self._spec.kind is CheckKind.TCP:
                return ProbeResult(True, "connected")
            self._send(sock, deadline)
            line = self._read_status_line(sock, deadline)
            if line is None:
                if self._aborted:
                    return ProbeResult(False, "aborted")
                return ProbeResult(False, "connection closed before a status line")
            status = _parse_status(line)
            if status is None:
                return ProbeResult(False, "bad status line")
            self._drain(sock)
            ok = self._spec.status_min <= status <= self._spec.status_max
            return ProbeResult(ok, probe_answer(self._spec.path, status))
        finally:
            with self._lock:
                self._sock = None
            sock.close()

    def _remaining(self, deadline: float) -> float:
        left = deadline - self._clock()
        if left <= 0:
            raise _Timeout
        return left

    def _send(self, sock: socket.socket, deadline: float) -> None:
        view = memoryview(self._request)
        while view:
            sock.settimeout(self._remaining(deadline))
            sent = sock.send(view)
            view = view[sent:]

    def _read_status_line(self, sock: socket.socket, deadline: float) -> bytes | None:
        buf = b""
        while True:
            end = buf.find(b"\n", 0, MAX_STATUS_LINE)
            if end >= 0:
                return buf[:end]
            if len(buf) >= MAX_STATUS_LINE:
                return b""  # no line ending where one must be: _parse_status rejects it
            sock.settimeout(self._remaining(deadline))
            chunk = sock.recv(4096)
            if not chunk:
                return None
            buf += chunk

    @staticmethod
    def _drain(sock: socket.socket) -> None:
        # Closing with unread bytes in the receive buffer makes the kernel send a RST
        # (RFC 1122 section 4.2.2.13) and the backend log a reset; read what has already
        # arrived, without waiting for more.
        sock.setblocking(False)
        try:
            for _ in range(16):
                if not sock.recv(65536):
                    return
        except OSError:
            return


def _parse_status(line: bytes) -> int | None:
    """The status code of `HTTP/1.x NNN reason` (RFC 9112 section 4), or None."""
    parts = line.rstrip(b"\r").split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
        return None
    code = parts[1]
    if len(code) != 3 or not code.isdigit():
        return None
    return int(code)


def _reason(exc: OSError) -> str:
    if exc.errno is not None and exc.errno in _ERRNO_REASONS:
        return _ERRNO_REASONS[exc.errno]
    if isinstance(exc, ConnectionResetError):
        return "connection reset"
    text = exc.strerror or type(exc).__name__
    return text[:1].lower() + text[1:]
