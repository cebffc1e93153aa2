"""Failed TLS handshakes reach /metrics: counted per listener and reason, summed over
workers, beside the log line that reports them (test_tls.py)."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import trustme

from tests.support.admin import metrics, total
from tests.support.procs import free_port
from tests.support.tcp_procs import Procs
from tests.support.tls import get, issue, one_pool_site, shake, start_rota, trusting


def _refused(port: int, data: bytes) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(data)
        s.settimeout(10)
        try:
            while s.recv(4096):
                pass
        except ConnectionResetError:
            pass


def test_failed_handshakes_are_counted_per_reason_in_metrics(tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = issue(ca, tmp_path, "a", "a.example.com", ecdsa=True)
    procs = Procs()
    try:
        backend = free_port()
        procs.start("-m", "rota", "backend", "--port", str(backend), "--name", "one")
        admin = free_port()
        rota = start_rota(
            procs,
            tmp_path / "rota.toml",
            one_pool_site([cert], backend, head=f'[admin]\nbind = "127.0.0.1:{admin}"'),
        )
        for _ in range(6):  # plain HTTP to the TLS port
            _refused(rota.port, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        for _ in range(2):  # not TLS at all
            _refused(rota.port, b"\x00\x01garbage" * 100)
        _, answer, _ = shake(rota.port, trusting(ca), "a.example.com", request=get("a"))
        assert answer.startswith(b"HTTP/1.1 200")

        name = "rota_tls_handshake_failures_total"
        deadline = time.monotonic() + 10
        while True:
            samples = metrics(admin)
            counted = total(samples, name, listener="web")
            if counted >= 8 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert total(samples, name, listener="web", reason="http request") == 6
        assert counted == 8  # the two others, under whatever reason OpenSSL gave
    finally:
        procs.stop_all()
