"""Backends that refuse or vanish cost clients nothing; none at all gives a fast 503."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

from tests.conftest import Cluster
from tests.support.http import Client, get
from tests.support.procs import free_port, start_backend, start_lb, write_config


def test_refused_backend_is_invisible(tmp_path: Path) -> None:
    (a, pa), (c, pc) = start_backend(name="a"), start_backend(name="c")
    dead = free_port()  # nothing listens here: connections are refused
    config = write_config(tmp_path / "db.json", [pa, dead, pc])
    lb, port = start_lb(config)
    try:
        responses = [get(port) for _ in range(12)]
        assert [r.status for r in responses] == [200] * 12
        assert {r.header("x-served-by") for r in responses} == {"a", "c"}
    finally:
        for p in (lb, a, c):
            p.stop()


def test_no_backend_gives_503_with_retry_after_at_once(tmp_path: Path) -> None:
    config = write_config(tmp_path / "db.json", [free_port(), free_port()])
    lb, port = start_lb(config)
    try:
        for _ in range(3):
            started = time.monotonic()
            r = get(port)
            elapsed = time.monotonic() - started
            assert r.status == 503
            assert r.header("retry-after") == "1"
            assert r.body
            assert elapsed < 1.0
    finally:
        lb.stop()


def test_malformed_request_gets_400_while_others_are_served(cluster: Cluster) -> None:
    errors: list[str] = []
    stop = threading.Event()

    def good_client() -> None:
        with Client(cluster.port) as c:
            for _ in range(200):
                if stop.is_set():
                    return
                r = c.request("GET", "/")
                if r.status != 200:
                    errors.append(f"status {r.status}")

    threads = [threading.Thread(target=good_client) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        for bad in (
            b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"GARBAGE\r\n\r\n",
            b"GET / HTTP/1.1\r\n\r\n",  # no Host
            b"GET / HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n",
        ):
            with socket.create_connection(("127.0.0.1", cluster.port), timeout=5) as s:
                s.sendall(bad)
                data = b""
                while chunk := s.recv(4096):
                    data += chunk
            assert data.startswith(b"HTTP/1.1 400 "), (bad, data)
            assert b"Connection: close" in data
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=20)
    assert errors == []


def test_restarted_backend_pooled_connection_replaced_without_error(tmp_path: Path) -> None:
    backend, bport = start_backend(name="solo")
    config = write_config(tmp_path / "db.json", [bport])
    lb, port = start_lb(config)
    try:
        with Client(port) as c:
            assert c.request("GET", "/").status == 200  # the pool now holds a connection
            backend.stop()
            backend, _ = start_backend(bport, "solo")
            for _ in range(5):
                r = c.request("GET", "/")
                assert r.status == 200 and r.header("x-served-by") == "solo"
    finally:
        lb.stop()
        backend.stop()


def test_http_connections_over_the_cap_make_room_or_wait_in_the_backlog(tmp_path: Path) -> None:
    # Every answer but /health waits 1 s: requests stay in flight while the test looks.
    backend, bport = start_backend(None, "a", "--delay", "1.0")
    config = write_config(tmp_path / "db.json", [bport])
    lb, port = start_lb(config, "--max-connections", "2")
    try:
        with Client(port) as first, Client(port) as second:
            assert first.request("GET", "/").status == 200
            assert second.request("GET", "/").status == 200
            # Both idle in keep-alive at the cap: the oldest makes room (issue 20).
            with Client(port) as third:
                assert third.request("GET", "/").status == 200
                assert first.closed_by_peer()
                assert second.request("GET", "/").status == 200  # still open
                # Both held connections busy: nothing to close. The newcomer is not
                # refused (it was answered 503 before issue 20): it waits in the listen
                # backlog until a held connection has been answered and makes room.
                second.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
                third.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
                time.sleep(0.2)  # both requests reach rota (the backend holds them 1 s)
                with Client(port) as fourth:
                    fourth.send(b"GET /late HTTP/1.1\r\nHost: a\r\n\r\n")
                    assert second.read_response().status == 200  # the busy ones are served
                    assert third.read_response().status == 200
                    assert fourth.read_response().status == 200
                    # The first of the two to be answered (and so idle) was closed to let
                    # it in; the other still serves.
                    gone = [c for c in (second, third) if _closed_already(c)]
                    assert len(gone) == 1
                    survivor = third if gone[0] is second else second
                    assert survivor.request("GET", "/").status == 200
    finally:
        lb.stop()
        backend.stop()


def _closed_already(client: Client) -> bool:
    """The peer has closed this connection (without waiting to find out)."""
    client.sock.setblocking(False)
    try:
        return not client.buf and client.sock.recv(1) == b""
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True
    finally:
        client.sock.settimeout(10.0)
