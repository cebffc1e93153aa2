"""One `rota lb` with several listeners, started from a listeners/routes/pools TOML file:
routes by host and path to named pools, prefix stripping and header edits, redirect and
respond routes, rota's own 404, and a TCP listener beside the HTTP one; with one process
and with two workers."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.http import Client, Response
from tests.support.procs import Proc, rota, start_backend

_READY = re.compile(r"rota listening on (\w+)://127\.0\.0\.1:(\d+) \(listener (\w+)")


@pytest.fixture
def recorder() -> Iterator[int]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.support.recording_backend"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "listening on http://127.0.0.1:" in line, line
        yield int(line.rsplit(":", 1)[1])
    finally:
        proc.terminate()
        proc.wait(timeout=5)


@pytest.fixture
def site_backends() -> Iterator[dict[str, int]]:
    started = {name: start_backend(name=name) for name in ("s1", "s2", "db")}
    yield {name: port for name, (_, port) in started.items()}
    for proc, _ in started.values():
        proc.stop()


SITE = """
[health_check]
interval = 0.5

[listeners.web]
bind = "127.0.0.1:0"

[[listeners.web.routes]]
host = "api.test"
path_prefix = "/v1/"
pool = "api"
strip_prefix = "/v1"
request_headers = {{ set = {{ "x-env" = "prod" }}, remove = ["x-debug"] }}
response_headers = {{ set = {{ "strict-transport-security" = "max-age=63072000" }} }}

[[listeners.web.routes]]
path = "/old"
redirect = {{ location = "https://example.com/new", status = 301 }}

[[listeners.web.routes]]
path = "/robots.txt"
respond = {{ status = 200, body = "User-agent: *\\nDisallow: /\\n" }}

[[listeners.web.routes]]
host = "www.test"
pool = "site"

[listeners.db]
bind = "127.0.0.1:0"
protocol = "tcp"
pool = "db"

[pools.api]
servers = [{{ host = "127.0.0.1", port = {api}, name = "api-1" }}]
health_check = {{ path = "/__records" }}

[pools.site]
servers = [
  {{ host = "127.0.0.1", port = {s1}, name = "s1" }},
  {{ host = "127.0.0.1", port = {s2}, name = "s2" }},
]

[pools.db]
servers = [{{ host = "127.0.0.1", port = {db}, name = "db" }}]
"""


def start(path: Path, *extra: str) -> tuple[Proc, dict[str, int]]:
    proc = rota("lb", "--config", str(path), *extra)
    ports: dict[str, int] = {}
    for _ in range(2):
        line = proc.wait_for("rota listening on")
        proc.lines.remove(line)
        match = _READY.search(line)
        assert match is not None, line
        ports[match.group(3)] = int(match.group(2))
    return proc, ports


def get(port: int, path: str, host: str, **headers: str) -> Response:
    with Client(port) as c:
        return c.request("GET", path, headers={"Host": host, "Connection": "close", **headers})


def records(port: int) -> list[dict[str, object]]:
    """What the recording backend received (asked directly, not through rota)."""
    with Client(port) as c:
        found: list[dict[str, object]] = json.loads(c.request("GET", "/__records").body)
    return found


@pytest.mark.parametrize("workers", [1, 2])
def test_one_rota_routes_several_listeners_to_named_pools(
    tmp_path: Path, recorder: int, site_backends: dict[str, int], workers: int
) -> None:
    path = tmp_path / "site.toml"
    path.write_text(SITE.format(api=recorder, **site_backends))
    proc, ports = start(path, "--workers", str(workers))
    try:
        web = ports["web"]
        # Host and path prefix to the API pool: prefix stripped, headers edited both ways.
        answer = get(web, "/v1/users?page=2", "API.test:8080", **{"X-Debug": "1"})
        assert answer.status == 200
        assert answer.header("strict-transport-security") == "max-age=63072000"
        seen = [r for r in records(recorder) if r.get("event") == "request"]
        assert seen[-1]["target"] == "/users?page=2"
        fields = {str(k).lower(): v for k, v in seen[-1]["fields"]}  # type: ignore[attr-defined]
        assert fields["x-env"] == "prod" and "x-debug" not in fields
        # Redirect and respond routes: rota answers, no backend involved.
        moved = get(web, "/old", "anything.test")
        assert moved.status == 301
        assert moved.header("location") == "https://example.com/new"
        robots = get(web, "/robots.txt", "www.test")
        assert (robots.status, robots.body) == (200, b"User-agent: *\nDisallow: /\n")
        # Host routing with round robin in the pool (per worker: count, not order).
        names = [get(web, "/", "www.test").body.decode() for _ in range(4)]
        assert {n.strip() for n in names} == {"Hello from s1", "Hello from s2"}
        # No route: rota's own 404, never a backend's answer.
        missing = get(web, "/", "nobody.test")
        assert missing.status == 404 and missing.body == b"404 Not Found\n"
        assert get(web, "/v2/users", "api.test").status == 404
        # The TCP listener relays bytes to its own pool.
        with socket.create_connection(("127.0.0.1", ports["db"]), timeout=5) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: db\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        assert data.endswith(b"Hello from db\n")
    finally:
        assert proc.stop() == 0


def test_flags_that_name_one_listener_are_refused_with_a_listeners_file(
    tmp_path: Path, recorder: int, site_backends: dict[str, int]
) -> None:
    path = tmp_path / "site.toml"
    path.write_text(SITE.format(api=recorder, **site_backends))
    run = subprocess.run(
        [sys.executable, "-m", "rota", "lb", "--config", str(path), "--port", "9"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert run.returncode == 2
    assert "--port" in run.stderr and "listeners" in run.stderr
