"""Hostile clients through `rota lb`: a flood of bad requests, slowloris, size limits."""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

from tests.conftest import Cluster
from tests.support.corpus import CASES
from tests.support.http import Client
from tests.support.procs import Proc, start_backend, start_lb, write_config

BAD = [case.raw for case in CASES if case.status != 200 and case.stage == "head"]


def fd_count(proc: Proc) -> int:
    return len(os.listdir(f"/proc/{proc.pid}/fd"))


def send_bad(port: int, raw: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(raw)
        data = b""
        while chunk := s.recv(4096):
            data += chunk
    return data


def settle(proc: Proc, baseline: int, timeout: float = 3.0) -> int:
    """fds of `proc` once closed connections are gone (or after `timeout`)."""
    deadline = time.monotonic() + timeout
    while True:
        now = fd_count(proc)
        if now <= baseline or time.monotonic() > deadline:
            return now
        time.sleep(0.05)


def flood(port: int, n_bad: int) -> tuple[dict[bytes, int], list[str], int]:
    """`n_bad` bad requests on fresh connections while 4 keep-alive clients send good ones.
    Returns the bad statuses, the good clients' errors and how many good requests passed."""
    errors: list[str] = []
    served = [0]
    stop = threading.Event()

    def good_client() -> None:
        with Client(port) as c:
            for _ in range(5000):  # bounded; stopped when the flood is over
                if stop.is_set():
                    return
                try:
                    r = c.request("GET", "/")
                except OSError as exc:
                    errors.append(repr(exc))
                    return
                if r.status != 200:
                    errors.append(f"status {r.status}")
                served[0] += 1

    threads = [threading.Thread(target=good_client) for _ in range(4)]
    for t in threads:
        t.start()
    statuses: dict[bytes, int] = {}
    try:
        for i in range(n_bad):
            data = send_bad(port, BAD[i % len(BAD)])
            assert data.startswith((b"HTTP/1.1 4", b"HTTP/1.1 5")), data[:80]
            assert b"Connection: close" in data
            statuses[data[9:12]] = statuses.get(data[9:12], 0) + 1
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=20)
    return statuses, errors, served[0]


def test_thousand_bad_requests_while_good_clients_see_no_error(cluster: Cluster) -> None:
    # Warm up (allocator, upstream pools) the same way before taking the baseline.
    _, errors, _ = flood(cluster.port, 200)
    assert errors == []
    baseline_fds = settle(cluster.lb, 0, timeout=0.5)
    baseline_rss = cluster.lb.rss_kib()

    statuses, errors, served = flood(cluster.port, 1000)
    assert errors == []
    assert served > 0
    assert sum(statuses.values()) == 1000
    assert set(statuses) >= {b"400", b"414", b"431", b"501", b"505"}
    # Flat: every refused connection is closed and nothing accumulates per request (a few
    # fds of slack: the upstream pools may hold a connection more or less than before).
    fds = settle(cluster.lb, baseline_fds)
    assert fds <= baseline_fds + 4, (baseline_fds, fds)
    grown = cluster.lb.rss_kib() - baseline_rss
    assert grown < 8 * 1024, f"rss grew {grown} KiB over 1000 bad requests"


def test_slowloris_gets_408_at_the_header_deadline(tmp_path: Path) -> None:
    backend, bport = start_backend(name="a")
    config = write_config(tmp_path / "db.json", [bport])
    lb, port = start_lb(config, "--timeout-header", "0.5")
    try:
        slow = socket.create_connection(("127.0.0.1", port), timeout=5)
        started = time.monotonic()
        slow.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n")
        data = b""
        # A field every 0.1 s keeps the connection busy but must not extend the deadline.
        for i in range(30):
            try:
                slow.sendall(b"X-%d: 1\r\n" % i)
            except OSError:
                break
            slow.settimeout(0.1)
            try:
                chunk = slow.recv(4096)
            except TimeoutError:
                continue
            if not chunk:
                break
            data += chunk
        slow.settimeout(2)
        try:
            while chunk := slow.recv(4096):
                data += chunk
        except OSError:
            pass
        elapsed = time.monotonic() - started
        slow.close()
        assert data.startswith(b"HTTP/1.1 408 "), data[:80]
        assert 0.4 < elapsed < 1.5, elapsed
        # Meanwhile and after, a normal client is served.
        with Client(port) as c:
            assert c.request("GET", "/").status == 200
    finally:
        lb.stop()
        backend.stop()


def test_idle_keep_alive_connection_is_closed_silently(tmp_path: Path) -> None:
    backend, bport = start_backend(name="a")
    config = write_config(tmp_path / "db.json", [bport])
    lb, port = start_lb(config, "--timeout-idle", "0.3")
    try:
        with Client(port) as c:
            assert c.request("GET", "/").status == 200
            started = time.monotonic()
            assert c.closed_by_peer()  # no bytes, just the close
            assert time.monotonic() - started < 1.5
    finally:
        lb.stop()
        backend.stop()


def test_limit_flags(tmp_path: Path) -> None:
    backend, bport = start_backend(name="a")
    config = write_config(tmp_path / "db.json", [bport])
    lb, port = start_lb(
        config,
        "--max-request-line",
        "100",
        "--max-header-bytes",
        "600",
        "--max-headers",
        "5",
        "--max-body-bytes",
        "10",
    )

    def status(raw: bytes) -> int:
        return int(send_bad(port, raw)[9:12])

    try:
        ok = b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
        assert status(ok) == 200
        assert status(b"GET /" + b"a" * 100 + b" HTTP/1.1\r\nHost: a\r\n\r\n") == 414
        fields = b"".join(b"X-%d: 1\r\n" % i for i in range(5))
        assert status(b"GET / HTTP/1.1\r\nHost: a\r\n" + fields + b"\r\n") == 431
        assert status(b"GET / HTTP/1.1\r\nHost: a\r\nX: " + b"a" * 600 + b"\r\n\r\n") == 431
        post = b"POST / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n"
        assert status(post + b"Content-Length: 10\r\n\r\n0123456789") == 200
        # Refused from the head: the body is never awaited.
        assert status(post + b"Content-Length: 11\r\n\r\n") == 413
        chunked = post + b"Transfer-Encoding: chunked\r\n\r\n"
        assert status(chunked + b"5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n") == 200
        assert status(chunked + b"6\r\nhello!\r\n5\r\nworld\r\n0\r\n\r\n") == 413
    finally:
        lb.stop()
        backend.stop()
