"""A raw-socket backend for WebSocket tunnel tests (threads of the test process).

Every request head is answered by its path:
- `/echo` with `Upgrade: websocket`: waits `hold` seconds recording every byte that arrives
  before it answers (`early[conn_id]`: must stay empty, rota holds them), answers 101, then
  echoes raw bytes until EOF, then sends `BYE` and closes.
- `/close` with `Upgrade: websocket`: answers 101 and `HELLO`, then closes.
- anything else (including `/echo` without Upgrade, or `/refuse`): 200 with the path as the
  body, and goes on reading requests on the connection.
Every request head is recorded in `heads` (conn_id, head).
"""

from __future__ import annotations

import contextlib
import socket
import threading

from tests.support.http import recv_head

BYE = b"BYE"
HELLO = b"HELLO"
SWITCH = (
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
)


class WsBackend:
    def __init__(self, hold: float = 0.3) -> None:
        self.hold = hold
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = int(self.listener.getsockname()[1])
        self.heads: list[tuple[int, bytes]] = []
        self.early: dict[int, bytes] = {}
        self.tunnel_ended = threading.Event()  # an /echo tunnel saw EOF and sent BYE
        self.echo_closed = threading.Event()  # an /echo connection ended, cleanly or not
        self._lock = threading.Lock()
        self._next = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self.listener.close()

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            with self._lock:
                conn_id = self._next
                self._next += 1
            threading.Thread(target=self._serve, args=(conn_id, sock), daemon=True).start()

    def _serve(self, conn_id: int, sock: socket.socket) -> None:
        buf = b""
        with sock, contextlib.suppress(OSError):
            sock.settimeout(10)
            while True:
                got = recv_head(sock, buf)
                if got is None:
                    return
                head, buf = got
                with self._lock:
                    self.heads.append((conn_id, head))
                path = head.split(b" ", 2)[1]
                upgrade = b"\r\nupgrade: websocket" in head.lower()
                if upgrade and path == b"/echo":
                    try:
                        self._echo(conn_id, sock, buf)
                    finally:
                        self.echo_closed.set()
                    return
                if upgrade and path == b"/close":
                    sock.sendall(SWITCH + HELLO)
                    return
                sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%b" % (len(path), path))

    def _echo(self, conn_id: int, sock: socket.socket, early: bytes) -> None:
        sock.settimeout(self.hold)
        with contextlib.suppress(TimeoutError):
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                early += chunk
        with self._lock:
            self.early[conn_id] = early
        sock.settimeout(10)
        sock.sendall(SWITCH + early)  # echo them too, so nothing is lost either way
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            sock.sendall(chunk)
        sock.sendall(BYE)
        self.tunnel_ended.set()
