"""Binary upgrade (`rota upgrade --pid-file`, SIGUSR2): a new rota process takes the
listening sockets and the old one drains, under a load of keep-alive and new connections:
no request fails, no connection is refused, a WebSocket opened before still echoes after,
a large download in flight completes byte for byte. A new process that fails to start
leaves the old one serving, and says so."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rota.backend.server import pattern_block
from tests.support.http import Client, recv_head
from tests.support.load import Load
from tests.support.procs import Proc, free_port, rota, start_backend
from tests.support.ws_backend import WsBackend

CONFIG = """
workers = {workers}

[listeners.web]
bind = "127.0.0.1:{port}"

[[listeners.web.routes]]
path = "/echo"
pool = "ws"

[[listeners.web.routes]]
pool = "app"

[pools.app]
servers = [{{ host = "127.0.0.1", port = {app}, name = "a" }}]

[pools.ws]
servers = [{{ host = "127.0.0.1", port = {ws}, name = "ws" }}]
health_check = {{ type = "tcp" }}
"""
UPGRADE = (
    b"GET /echo HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)
BIG = 48 << 20


@pytest.fixture
def backends() -> Iterator[tuple[int, WsBackend]]:
    proc, port = start_backend(name="a")
    ws = WsBackend(hold=0.05)
    yield port, ws
    ws.close()
    proc.stop()


def pid_in(path: Path) -> int:
    return int(path.read_text())


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def stop_pid(pid: int) -> None:
    """Stop a rota started by the one this test started (by its pid, from the pid file)."""
    if not gone(pid):
        os.kill(pid, signal.SIGTERM)
    for _ in range(500):
        if gone(pid):
            return
        time.sleep(0.02)
    os.kill(pid, signal.SIGKILL)


def command(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rota", *args], capture_output=True, text=True, timeout=120
    )


def start(tmp_path: Path, backends: tuple[int, WsBackend], workers: int) -> tuple[Proc, int, Path]:
    app, ws = backends
    port = free_port()
    config = tmp_path / "site.toml"
    config.write_text(CONFIG.format(workers=workers, port=port, app=app, ws=ws.port))
    pid_file = tmp_path / "rota.pid"
    proc = rota("lb", "--config", str(config), "--pid-file", str(pid_file))
    proc.wait_for("rota listening on")
    assert pid_in(pid_file) == proc.pid
    return proc, port, pid_file


def open_websocket(port: int) -> Client:
    c = Client(port, timeout=20)
    c.send(UPGRADE)
    assert c.read_response(head_only=True).status == 101
    return c


def echo(c: Client, data: bytes) -> bytes:
    c.send(data)
    got = c.buf
    c.buf = b""
    while len(got) < len(data):
        chunk = c.sock.recv(65536)
        assert chunk, "the tunnel closed"
        got += chunk
    return got


def start_download(port: int) -> tuple[socket.socket, bytes]:
    """GET /bytes/BIG and read only its head and a first part: the rest stays in flight."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=20)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 10)
    sock.sendall(b"GET /bytes/%d HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n" % BIG)
    got = recv_head(sock, b"")
    assert got is not None
    head, body = got
    assert b" 200 " in head.split(b"\r\n")[0] and b"content-length: %d" % BIG in head.lower()
    while len(body) < 1 << 20:
        body += sock.recv(65536)
    return sock, body


def finish_download(sock: socket.socket, body: bytes) -> None:
    with sock:
        while len(body) < BIG:
            chunk = sock.recv(1 << 20)
            assert chunk, f"the download ended at {len(body)} of {BIG} bytes"
            body += chunk
    block = pattern_block()
    whole = block * (BIG // len(block)) + block[: BIG % len(block)]
    assert len(body) == BIG and body == whole


@pytest.mark.parametrize(("workers", "via"), [(2, "command"), (1, "signal")])
def test_upgrade_under_load_drops_nothing(
    tmp_path: Path, backends: tuple[int, WsBackend], workers: int, via: str
) -> None:
    proc, port, pid_file = start(tmp_path, backends, workers)
    new_pid = 0
    try:
        with Load(port, keepalive=2, fresh=2) as load:
            load.wait_for(100)
            ws = open_websocket(port)
            assert echo(ws, b"before") == b"before"
            download, part = start_download(port)
            if via == "command":
                done = command("upgrade", "--pid-file", str(pid_file))
                assert done.returncode == 0, done.stderr + proc.output()
                assert "upgraded" in done.stdout
            else:
                proc.popen.send_signal(signal.SIGUSR2)
                proc.wait_for("drains", timeout=60)
            new_pid = pid_in(pid_file)
            assert new_pid != proc.pid
            load.wait_for(200)
            # The old process drains: what it had open goes on.
            assert proc.popen.poll() is None
            assert echo(ws, b"after the upgrade") == b"after the upgrade"
            finish_download(download, part)
            ws.close()
            # Nothing open any more: the old process exits, 0.
            assert proc.popen.wait(timeout=30) == 0, proc.output()
            load.wait_for(200)  # all of it served by the new process now
        assert load.failed == 0 and load.refused == 0, load.summary()
        assert load.ok > 400, load.summary()
        with Client(port) as c:
            assert c.request("GET", "/").body == b"Hello from a\n"
    finally:
        if new_pid:
            stop_pid(new_pid)
        proc.stop()
    assert not pid_file.exists()  # removed by its owner, the new process, at its exit


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("fault", ["bad file", "port in use"])
def test_a_new_process_that_fails_leaves_the_old_one_serving(
    tmp_path: Path, backends: tuple[int, WsBackend], workers: int, fault: str
) -> None:
    proc, port, pid_file = start(tmp_path, backends, workers)
    busy = socket.create_server(("127.0.0.1", 0))
    config = tmp_path / "site.toml"
    good = config.read_text()
    try:
        if fault == "bad file":
            # The new process reads the file again: a bad one stops it before it serves.
            config.write_text("workers = 0\n")
            why = "exited with code 2"
        else:
            # A valid file, with a new listener on a port something else listens on.
            taken = busy.getsockname()[1]
            config.write_text(
                f'{good}\n[listeners.more]\nbind = "127.0.0.1:{taken}"\n'
                '[[listeners.more.routes]]\npool = "app"\n'
            )
            why = "address already in use"
        done = command("upgrade", "--pid-file", str(pid_file))
        assert done.returncode == 1
        assert f"pid {proc.pid} keeps serving" in done.stderr, done.stderr
        assert why in done.stderr, done.stderr
        assert "upgrade failed" in proc.wait_for("upgrade failed")
        assert pid_in(pid_file) == proc.pid
        with Client(port) as c:
            assert c.request("GET", "/").body == b"Hello from a\n"
        # The failed process left the pid file and the control socket to the old one.
        config.write_text(good)
        done = command("reload", "--pid-file", str(pid_file))
        assert done.returncode == 0, done.stderr
        assert f"pid {proc.pid}" in done.stdout
    finally:
        busy.close()
        assert proc.stop() == 0
    assert not pid_file.exists()


def test_the_admin_listener_reloads_and_goes_to_the_new_process(
    tmp_path: Path, backends: tuple[int, WsBackend]
) -> None:
    app, ws = backends
    port, admin = free_port(), free_port()
    config = tmp_path / "site.toml"
    text = CONFIG.format(workers=1, port=port, app=app, ws=ws.port)
    config.write_text(f'{text}\n[admin]\nbind = "127.0.0.1:{admin}"\n')
    pid_file = tmp_path / "rota.pid"
    proc = rota("lb", "--config", str(config), "--pid-file", str(pid_file))
    proc.wait_for("rota admin on")
    new_pid = 0
    try:
        # POST /api/v1/reload runs the same reload as SIGHUP and `rota reload`.
        with Client(admin) as c:
            assert c.request("POST", "/api/v1/reload").status == 200
        assert "reloaded" in proc.wait_for("reloaded")
        config.write_text(config.read_text().replace(f"port = {app}", "port = 0"))
        with Client(admin) as c:
            answer = c.request("POST", "/api/v1/reload")
        assert answer.status == 400 and b"pools.app.servers[0].port" in answer.body
        config.write_text(f'{text}\n[admin]\nbind = "127.0.0.1:{admin}"\n')
        done = command("upgrade", "--pid-file", str(pid_file))
        assert done.returncode == 0, done.stderr + proc.output()
        new_pid = pid_in(pid_file)
        assert proc.popen.wait(timeout=30) == 0, proc.output()
        # The old process is gone: its admin socket is the new one's, on the same port.
        with Client(admin) as c:
            assert c.request("GET", "/metrics").status == 200
        with Client(port) as c:
            assert c.request("GET", "/").body == b"Hello from a\n"
    finally:
        if new_pid:
            stop_pid(new_pid)
        proc.stop()


TCP_CONFIG = """
workers = 2

[listeners.raw]
bind = "127.0.0.1:{port}"
protocol = "tcp"
pool = "echo"

[pools.echo]
servers = [{{ host = "127.0.0.1", port = {echo}, name = "echo" }}]
health_check = {{ type = "tcp" }}
"""


def echo_server() -> socket.socket:
    """A raw echo backend in threads of the test process (one thread per connection)."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve(conn: socket.socket) -> None:
        with conn:
            while data := conn.recv(65536):
                conn.sendall(data)

    def accept() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return listener


def test_a_tcp_tunnel_runs_on_through_an_upgrade(tmp_path: Path) -> None:
    echo = echo_server()
    port = free_port()
    config = tmp_path / "tcp.toml"
    config.write_text(TCP_CONFIG.format(port=port, echo=echo.getsockname()[1]))
    pid_file = tmp_path / "rota.pid"
    proc = rota("lb", "--config", str(config), "--pid-file", str(pid_file))
    proc.wait_for("rota listening on")
    new_pid = 0
    try:
        tunnel = socket.create_connection(("127.0.0.1", port), timeout=20)
        tunnel.sendall(b"before")
        assert tunnel.recv(64) == b"before"
        done = command("upgrade", "--pid-file", str(pid_file))
        assert done.returncode == 0, done.stderr + proc.output()
        new_pid = pid_in(pid_file)
        tunnel.sendall(b"after")  # through the old process, which drains
        assert tunnel.recv(64) == b"after"
        with socket.create_connection(("127.0.0.1", port), timeout=20) as fresh:
            fresh.sendall(b"new")  # through the new one
            assert fresh.recv(64) == b"new"
        assert proc.popen.poll() is None
        tunnel.close()
        assert proc.popen.wait(timeout=30) == 0, proc.output()
    finally:
        if new_pid:
            stop_pid(new_pid)
        proc.stop()
        echo.close()
