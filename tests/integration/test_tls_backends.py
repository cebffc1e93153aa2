"""TLS to backends (a pool's `tls`), strict SNI, and certificates re-read on SIGHUP."""

from __future__ import annotations

import shutil
import signal
import socket
import ssl
import time
from pathlib import Path

import pytest
import trustme

from tests.support.procs import free_port
from tests.support.tcp_procs import Proc, Procs
from tests.support.tls import (
    get,
    issue,
    read_response,
    shake,
    start_rota,
    tls_backend,
    toml_list,
    trusting,
)


@pytest.fixture
def procs() -> object:
    started = Procs()
    yield started
    started.stop_all()


def _wait_for(proc: Proc, text: str, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in list(proc.output):
            if text in line:
                return line
        time.sleep(0.05)
    raise AssertionError(f"no {text!r} in:\n{''.join(proc.output)}")


def _plain_get(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        return read_response(s)


def test_backends_over_tls_verified_and_a_bad_certificate_is_a_502_with_why(
    procs: Procs, tmp_path: Path
) -> None:
    good_ca, other_ca = trustme.CA(), trustme.CA()
    good = tls_backend(procs, issue(good_ca, tmp_path, "good", "api.internal"), "good")
    bad = tls_backend(procs, issue(other_ca, tmp_path, "bad", "api.internal"), "bad")
    good_ca.cert_pem.write_to_path(tmp_path / "ca.pem")
    rota = start_rota(
        procs,
        tmp_path / "rota.toml",
        f"""
[listeners.good]
bind = "127.0.0.1:0"
[[listeners.good.routes]]
pool = "good"
[listeners.bad]
bind = "127.0.0.1:{free_port()}"
[[listeners.bad.routes]]
pool = "bad"
[pools.good]
tls = {{ ca = "ca.pem", sni = "api.internal" }}
servers = [{{ host = "127.0.0.1", port = {good.port}, name = "g" }}]
health_check = {{ path = "/", interval = 0.2, rise = 1, fall = 1 }}
[pools.bad]
tls = {{ ca = "ca.pem", sni = "api.internal" }}
servers = [{{ host = "127.0.0.1", port = {bad.port}, name = "b" }}]
health_check = {{ path = "/", interval = 0.3, rise = 1, fall = 3 }}
""",
    )
    bad_port = int(_wait_for(rota, "listener bad").split(":")[2].split(" ")[0])
    # The bad backend's certificate does not verify: a failed connect, and none is left.
    assert _plain_get(bad_port).startswith(b"HTTP/1.1 502")
    _wait_for(rota, "backend b: tls: certificate verify failed")
    # The health checks speak TLS too: the bad server goes down saying why, and the good
    # one (down at its first failed check) stays up.
    down = _wait_for(rota, "backend bad/b 127.0.0.1")
    assert "DOWN (tls: certificate verify failed" in down
    answer = _plain_get(rota.port)
    assert answer.startswith(b"HTTP/1.1 200")
    assert b"Hello from good" in answer
    assert not [line for line in rota.output if "good/g" in line and "DOWN" in line]


def test_certificates_are_reread_on_sighup_open_connections_keep_theirs(
    procs: Procs, tmp_path: Path
) -> None:
    ca = trustme.CA()
    old = issue(ca, tmp_path, "old", "site.example.com")
    new = issue(ca, tmp_path, "new", "site.example.com")
    live = tmp_path / "live"
    live.mkdir()
    shutil.copy(old.cert, live / "site.pem")
    shutil.copy(old.key, live / "site.key")
    backend_port = free_port()
    procs.start("-m", "rota", "backend", "--port", str(backend_port), "--name", "one")
    rota = start_rota(
        procs,
        tmp_path / "rota.toml",
        f"""
[listeners.web]
bind = "127.0.0.1:0"
tls = {{ certificates = [{{ cert = "live/site.pem", key = "live/site.key" }}] }}
[[listeners.web.routes]]
pool = "one"
[pools.one]
servers = [{{ host = "127.0.0.1", port = {backend_port} }}]
""",
    )
    ctx = trusting(ca)
    first, _, _ = shake(rota.port, ctx, "site.example.com")
    assert first.serial == old.serial
    with (
        socket.create_connection(("127.0.0.1", rota.port), timeout=10) as raw,
        ctx.wrap_socket(raw, server_hostname="site.example.com") as kept,
    ):
        kept.sendall(get("site"))
        assert read_response(kept).startswith(b"HTTP/1.1 200")
        shutil.copy(new.cert, live / "site.pem")
        shutil.copy(new.key, live / "site.key")
        rota.popen.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            now, _, _ = shake(rota.port, ctx, "site.example.com")
            if now.serial == new.serial:
                break
            time.sleep(0.1)
        assert now.serial == new.serial
        # The connection opened before the reload is untouched.
        kept.sendall(get("site"))
        assert read_response(kept).startswith(b"HTTP/1.1 200")
        der = kept.getpeercert(binary_form=True)
        assert der is not None and der != ssl.PEM_cert_to_DER_cert(new.cert.read_text())


def test_strict_sni_refuses_a_name_no_certificate_has(procs: Procs, tmp_path: Path) -> None:
    ca = trustme.CA()
    site = issue(ca, tmp_path, "site", "site.example.com", ecdsa=True)
    backend_port = free_port()
    procs.start("-m", "rota", "backend", "--port", str(backend_port), "--name", "one")
    rota = start_rota(
        procs,
        tmp_path / "rota.toml",
        f"""
[listeners.web]
bind = "127.0.0.1:0"
tls = {{ certificates = {toml_list([site])}, strict_sni = true }}
[[listeners.web.routes]]
pool = "one"
[pools.one]
servers = [{{ host = "127.0.0.1", port = {backend_port} }}]
""",
    )
    ctx = trusting(ca)
    _, answer, _ = shake(rota.port, ctx, "site.example.com", request=get("site"))
    assert answer.startswith(b"HTTP/1.1 200")
    ctx.check_hostname = False
    for sni in ("other.example.com", None):
        with pytest.raises(ssl.SSLError):
            shake(rota.port, ctx, sni)
    _wait_for(rota, "no certificate for the server name")
