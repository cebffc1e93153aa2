"""A real nginx for tests: its own config, pid file and logs in a temp dir, on free
loopback ports, stopped by its PID. Tests that need it skip when nginx is not installed
(`.ci/run` installs the Debian package)."""

from __future__ import annotations

import os
import pwd
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support.procs import free_port


def nginx_binary() -> str:
    found = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/sbin/nginx") if Path(p).exists()), None
    )
    if found is None:
        pytest.skip("nginx is not installed (Debian: apt-get install -y nginx)")
    return found


class Nginx:
    """One nginx with one worker; `status_port` answers stub_status."""

    def __init__(self, tmp: Path, servers: str, status_port: int) -> None:
        self.tmp = tmp
        self.status_port = status_port
        self.conf = tmp / "nginx.conf"
        # Run as root (a container), nginx's workers would switch to `nobody` and could not
        # read files in the test's temp dir: keep them as the user running the test.
        user = f"user {pwd.getpwuid(os.geteuid()).pw_name};\n" if os.geteuid() == 0 else ""
        self.conf.write_text(
            f"""{user}worker_processes 1;
daemon off;
master_process on;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    default_type application/octet-stream;
    keepalive_requests 1000000;
    keepalive_timeout 75s;
    server {{
        listen 127.0.0.1:{status_port};
        location / {{ stub_status; }}
    }}
{servers}
}}
"""
        )
        self.popen = subprocess.Popen(
            [nginx_binary(), "-p", str(tmp), "-c", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, port: int, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                log = (self.tmp / "error.log").read_text(errors="replace")
                raise RuntimeError(f"nginx exited with {self.popen.returncode}:\n{log}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise TimeoutError(f"nginx not listening on {port}")

    def accepted(self) -> int:
        """Connections nginx has accepted so far (stub_status), not counting this query."""
        with socket.create_connection(("127.0.0.1", self.status_port), timeout=5) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: status\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := s.recv(4096):
                data += chunk
        found = re.search(rb"\n\s*(\d+) (\d+) (\d+)", data)
        assert found, data
        return int(found.group(1)) - 1

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()  # SIGTERM to the master we started: a fast shutdown
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


@contextmanager
def nginx(tmp: Path, servers: str) -> Iterator[Nginx]:
    """nginx with the given `server { ... }` blocks; the caller waits for their ports."""
    tmp.mkdir(parents=True, exist_ok=True)
    status_port = free_port()
    server = Nginx(tmp, servers, status_port)
    try:
        server.wait_ready(status_port)
        yield server
    finally:
        server.stop()
