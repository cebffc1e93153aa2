"""TLS on TCP listeners: termination (rota decrypts, the backend sees plain bytes) and
SNI passthrough (rota reads the ClientHello's server name and relays the still-encrypted
connection to that name's pool)."""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from tests.support.tcp_procs import Proc, Procs
from tests.support.tls import get, issue, shake, start_rota, tls_backend, toml_list, trusting


@pytest.fixture
def procs() -> Iterator[Procs]:
    started = Procs()
    yield started
    started.stop_all()


def test_termination_relays_plain_bytes_to_the_backend(procs: Procs, tmp_path: Path) -> None:
    ca = trustme.CA()
    site = issue(ca, tmp_path, "site", "db.example.com", ecdsa=True)
    echo = procs.echo("e1")
    rota = start_rota(
        procs,
        tmp_path / "rota.toml",
        f"""
[listeners.db]
bind = "127.0.0.1:0"
protocol = "tcp"
pool = "echo"
tls = {{ certificates = {toml_list([site])} }}
[pools.echo]
servers = [{{ host = "127.0.0.1", port = {echo.port} }}]
health_check = {{ type = "tcp" }}
""",
    )
    assert "tls://" in rota.ready_line
    ctx = trusting(ca)
    with (
        socket.create_connection(("127.0.0.1", rota.port), timeout=10) as raw,
        ctx.wrap_socket(raw, server_hostname="db.example.com") as tls,
    ):
        payload = b"x" * 300_000
        tls.sendall(payload)
        got = b""
        while len(got) < len(payload):
            chunk = tls.recv(65536)
            assert chunk
            got += chunk
        assert got == payload
    # Plain bytes to the TLS port never reach the echo backend.
    with socket.create_connection(("127.0.0.1", rota.port), timeout=10) as s:
        s.sendall(b"hello, plain\n")
        assert b"hello, plain" not in _until_closed(s)


def _until_closed(sock: socket.socket) -> bytes:
    received = b""
    try:
        while chunk := sock.recv(4096):
            received += chunk
    except ConnectionResetError:
        pass
    return received


@pytest.fixture(scope="module")
def passthrough(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[trustme.CA, Proc, Proc]]:
    procs = Procs()
    try:
        yield _passthrough(procs, tmp_path_factory.mktemp("sni"))
    finally:
        procs.stop_all()


def _passthrough(procs: Procs, tmp_path: Path) -> tuple[trustme.CA, Proc, Proc]:
    ca = trustme.CA()
    a = tls_backend(procs, issue(ca, tmp_path, "a", "a.example.com"), "a")
    w = tls_backend(procs, issue(ca, tmp_path, "w", "*.w.example.com"), "w")
    d = tls_backend(procs, issue(ca, tmp_path, "d", "default.example.com"), "d")
    routes = '[{ sni = "a.example.com", pool = "a" }, { sni = "*.w.example.com", pool = "w" }]'
    with_default = start_rota(
        procs,
        tmp_path / "default.toml",
        f"""
[listeners.sni]
bind = "127.0.0.1:0"
protocol = "tcp"
sni_routes = {routes}
pool = "d"
timeouts = {{ header = 1 }}
[pools.a]
servers = [{{ host = "127.0.0.1", port = {a.port} }}]
health_check = {{ type = "tcp" }}
[pools.w]
servers = [{{ host = "127.0.0.1", port = {w.port} }}]
health_check = {{ type = "tcp" }}
[pools.d]
servers = [{{ host = "127.0.0.1", port = {d.port} }}]
health_check = {{ type = "tcp" }}
""",
    )
    without = start_rota(
        procs,
        tmp_path / "strict.toml",
        f"""
[listeners.sni]
bind = "127.0.0.1:0"
protocol = "tcp"
sni_routes = {routes}
[pools.a]
servers = [{{ host = "127.0.0.1", port = {a.port} }}]
health_check = {{ type = "tcp" }}
[pools.w]
servers = [{{ host = "127.0.0.1", port = {w.port} }}]
health_check = {{ type = "tcp" }}
""",
    )
    return ca, with_default, without


def test_passthrough_routes_by_sni_without_decrypting(
    passthrough: tuple[trustme.CA, Proc, Proc],
) -> None:
    ca, rota, _ = passthrough
    ctx = trusting(ca)  # verifies the backend's own certificate: rota never decrypts
    for sni, served_by in (
        ("a.example.com", b"a"),
        ("x.w.example.com", b"w"),
        ("default.example.com", b"d"),
    ):
        found, answer, _ = shake(rota.port, ctx, sni, request=get(sni))
        assert answer.startswith(b"HTTP/1.1 200"), sni
        assert b"X-Served-By: " + served_by in answer
        assert found.alpn is None
    # No SNI at all: the default pool too.
    ctx.check_hostname = False
    _, answer, _ = shake(rota.port, ctx, None, request=get("x"))
    assert b"X-Served-By: d" in answer


def test_passthrough_without_a_default_closes_an_unknown_name(
    passthrough: tuple[trustme.CA, Proc, Proc],
) -> None:
    ca, _, rota = passthrough
    ctx = trusting(ca)
    _, answer, _ = shake(rota.port, ctx, "a.example.com", request=get("a"))
    assert b"X-Served-By: a" in answer
    with pytest.raises((ssl.SSLError, ConnectionError)):
        shake(rota.port, ctx, "b.example.com")
    deadline = time.monotonic() + 5
    wanted = "1 ClientHello failed: no route for the server name 1"
    while time.monotonic() < deadline and wanted not in "".join(rota.output):
        time.sleep(0.05)
    assert wanted in "".join(rota.output)


@pytest.mark.parametrize(
    "data",
    [b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", b"\x16\x03\x01\x00\x10" + b"\x02" * 16, b"\x16\x03"],
    ids=["plain-http", "not-a-client-hello", "truncated"],
)
def test_passthrough_closes_what_is_no_client_hello(
    passthrough: tuple[trustme.CA, Proc, Proc], data: bytes
) -> None:
    ca, rota, _ = passthrough
    with socket.create_connection(("127.0.0.1", rota.port), timeout=10) as s:
        s.sendall(data)  # a truncated hello waits for the header timeout (1 s)
        assert _until_closed(s) == b""
    _, answer, _ = shake(rota.port, trusting(ca), "a.example.com", request=get("a"))
    assert b"X-Served-By: a" in answer
