"""A raw-socket backend whose every answer is scripted by the test, to provoke backend faults.

It listens on 127.0.0.1 in threads of the test process (the proxy under test is a real `rota
lb` process). Each accepted connection gets an id; `script(conn_id, n, head, sock)` is called
for the n-th request (0-based) on that connection with the raw request head, and does whatever
the test wants with the socket: answer, answer badly, close, hang. It returns False to stop
serving that connection. Every request is recorded as (conn_id, head).
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable

from tests.support.http import recv_head

Script = Callable[[int, int, bytes, socket.socket], bool]

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n"


class ScriptedBackend:
    def __init__(self, script: Script) -> None:
        self.script = script
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = int(self.listener.getsockname()[1])
        self.requests: list[tuple[int, bytes]] = []
        self.closed: dict[int, threading.Event] = {}  # set when that connection ended
        self._lock = threading.Lock()
        self._next = 0
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            with self._lock:
                conn_id = self._next
                self._next += 1
                self.closed[conn_id] = threading.Event()
            threading.Thread(target=self._serve, args=(conn_id, sock), daemon=True).start()

    def _serve(self, conn_id: int, sock: socket.socket) -> None:
        buf = b""
        n = 0
        try:
            with sock, contextlib.suppress(OSError):
                sock.settimeout(10)
                while True:
                    got = recv_head(sock, buf)
                    if got is None:
                        return
                    head, buf = got
                    head += b"\r\n\r\n"
                    with self._lock:
                        self.requests.append((conn_id, head))
                    if not self.script(conn_id, n, head, sock):
                        return
                    n += 1
        finally:
            # Set when the connection ends: closed by rota (EOF or reset seen by the script
            # or the read loop), or ended by the script itself.
            self.closed[conn_id].set()

    def conns_of(self, marker: bytes) -> list[int]:
        """Connection ids of the recorded requests whose head contains `marker`."""
        with self._lock:
            return [c for c, head in self.requests if marker in head]

    def close(self) -> None:
        self._stopping.set()
        self.listener.close()


def read_body(sock: socket.socket, head: bytes, already: bytes = b"") -> bytes:
    """Read a Content-Length body of a request whose head was `head` (tests send simple ones)."""
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    data = already
    while len(data) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data
