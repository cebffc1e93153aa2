"""`rota backend` and a request asking to upgrade: one answer per request, in plain HTTP.

issue 20: the backend answered a request carrying `Upgrade` twice (its 200, then a 400
when llhttp stopped at the upgrade), and a pooled connection handed the stray 400 to the
next client. It switches to nothing, so it ignores the Upgrade (RFC 9110 7.8).
"""

from __future__ import annotations

import re
import socket

from tests.support.procs import start_backend

UPGRADE = (
    b"GET /first HTTP/1.1\r\nHost: b\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
    b"Sec-WebSocket-Key: k\r\nSec-WebSocket-Version: 13\r\n\r\n"
)
NEXT = b"GET /second HTTP/1.1\r\nHost: b\r\n\r\n"
LAST = b"GET /third HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n"


def read_to_eof(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def statuses(stream: bytes) -> list[int]:
    return [int(m) for m in re.findall(rb"HTTP/1\.1 (\d{3}) ", stream)]


def test_an_upgrade_request_gets_one_answer_and_the_connection_goes_on() -> None:
    proc, port = start_backend(None, "b")
    try:
        # Pipelined in one write (the bytes after the upgrade request) and in separate ones.
        for writes in ([UPGRADE + NEXT + LAST], [UPGRADE, NEXT, LAST]):
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                for data in writes:
                    s.sendall(data)
                stream = read_to_eof(s)
            assert statuses(stream) == [200, 200, 200], stream
    finally:
        proc.stop()
