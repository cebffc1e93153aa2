"""The access log of a real `rota lb` (single process and `--workers 2`): one line per
request (rota's own answers too) and per TCP connection, JSON or combined, to a file or
stdout; SIGUSR1 reopens the file after logrotate renamed it, and nothing is lost; a bad
`[access_log]` stops start-up with exit code 2 naming the field."""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.procs import Proc, rota, start_backend

_READY = re.compile(r"rota listening on (\w+)://127\.0\.0\.1:(\d+) \(listener (\w+)")
COMBINED = re.compile(
    r"^(\S+) - (\S+) \[(\d{2}/\w{3}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4})\] "
    r'"([^"]*)" (\d{3}) (\d+) "([^"]*)" "([^"]*)"$'
)
KEYS = {
    "time",
    "client",
    "listener",
    "method",
    "target",
    "protocol",
    "status",
    "bytes_in",
    "bytes_out",
    "duration",
    "pool",
    "server",
    "connect_time",
    "response_time",
    "retries",
    "end",
}
WAIT = 15.0  # the most any wait below lasts before the test fails

SITE = """
[listeners.web]
bind = "127.0.0.1:0"
timeouts = {{ header = 1 }}

[[listeners.web.routes]]
path_prefix = "/app"
pool = "app"

[[listeners.web.routes]]
path = "/slow"
pool = "slow"

[[listeners.web.routes]]
path = "/lag"
pool = "lag"

[listeners.raw]
bind = "127.0.0.1:0"
protocol = "tcp"
pool = "db"

[pools.app]
servers = [
  {{ host = "127.0.0.1", port = {s1}, name = "s1" }},
  {{ host = "127.0.0.1", port = {s2}, name = "s2" }},
]

[pools.slow]
servers = [{{ host = "127.0.0.1", port = {lazy}, name = "lazy" }}]
timeouts = {{ response = 0.3 }}

[pools.lag]
servers = [{{ host = "127.0.0.1", port = {lazy}, name = "lazy" }}]

[pools.db]
servers = [{{ host = "127.0.0.1", port = {s1}, name = "s1" }}]
"""


@pytest.fixture(scope="module")
def backends() -> Iterator[dict[str, int]]:
    started = {name: start_backend(name=name) for name in ("s1", "s2")}
    started["lazy"] = start_backend(None, "lazy", "--delay", "1.5")
    yield {name: port for name, (_, port) in started.items()}
    for proc, _ in started.values():
        proc.stop()


def start(path: Path, *extra: str) -> tuple[Proc, dict[str, int]]:
    proc = rota("lb", "--config", str(path), *extra)
    ports: dict[str, int] = {}
    while len(ports) < 2:
        line = proc.wait_for("rota listening on")
        proc.lines.remove(line)
        match = _READY.search(line)
        assert match is not None, line
        ports[match.group(3)] = int(match.group(2))
    return proc, ports


def site(tmp_path: Path, backends: dict[str, int], extra: str = "") -> Path:
    path = tmp_path / "site.toml"
    path.write_text(extra + SITE.format(**backends))
    return path


def wait_until(done: object, what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not done():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)


def lines_of(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def raw(port: int, data: bytes, *, close_after: float | None = None) -> bytes:
    """Send `data` on a fresh connection; read to EOF, or close early after `close_after`."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(data)
        if close_after is not None:
            time.sleep(close_after)  # the request reaches the backend, then the client leaves
            # A reset: a FIN alone is a half-close, after which rota still answers.
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return b""
        got = b""
        while chunk := s.recv(65536):
            got += chunk
        return got


@pytest.mark.parametrize("workers", [1, 2])
def test_json_lines_for_proxied_local_refused_and_tcp_traffic(
    tmp_path: Path, backends: dict[str, int], workers: int
) -> None:
    log = tmp_path / "access.log"
    proc, ports = start(
        site(tmp_path, backends), "--access-log", str(log), "--workers", str(workers)
    )
    web = ports["web"]
    try:
        # Six keep-alive requests on one connection.
        conn = http.client.HTTPConnection("127.0.0.1", web, timeout=10)
        for i in range(6):
            conn.request("GET", f"/app/x?i={i}", headers={"User-Agent": "t/1"})
            assert conn.getresponse().read().startswith(b"Hello from s")
        client_port = conn.sock.getsockname()[1]
        conn.close()
        # HTTP/1.0; no route (rota's 404); a malformed head (400).
        assert raw(web, b"GET /app/ten HTTP/1.0\r\n\r\n").startswith(b"HTTP/1.1 200")
        assert raw(web, b"GET /none HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")[:12] == (
            b"HTTP/1.1 404"
        )
        assert raw(web, b"GET /bad HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n")[:12] == (
            b"HTTP/1.1 400"
        )
        # The backend too slow for the pool's response timeout (504); a client that
        # leaves before its answer; a head that never completes (408).
        assert (
            raw(web, b"GET /slow HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")[:12]
            == b"HTTP/1.1 504"
        )
        raw(web, b"GET /lag HTTP/1.1\r\nHost: a\r\n\r\n", close_after=0.3)
        assert raw(web, b"GET /half HTTP/1.1\r\nHost: a\r\n")[:12] == b"HTTP/1.1 408"
        # One TCP connection.
        request = b"GET /db HTTP/1.1\r\nHost: db\r\nConnection: close\r\n\r\n"
        answer = raw(ports["raw"], request)
        assert answer.endswith(b"Hello from s1\n")
    finally:
        assert proc.stop() == 0  # a graceful stop writes every line
    entries = [json.loads(line) for line in lines_of(log)]
    assert len(entries) == 13, entries
    assert all(set(e) == KEYS for e in entries)
    by_target: dict[str, list[dict[str, object]]] = {}
    for e in entries:
        by_target.setdefault(str(e["target"]), []).append(e)
    for i in range(6):
        (e,) = by_target[f"/app/x?i={i}"]
        assert e["client"] == f"127.0.0.1:{client_port}"
        assert (e["listener"], e["method"], e["protocol"], e["status"]) == (
            "web",
            "GET",
            "HTTP/1.1",
            200,
        )
        assert (e["pool"], e["end"], e["retries"], e["bytes_in"]) == ("app", "completed", 0, 0)
        assert e["server"] in ("s1", "s2") and e["bytes_out"] == len("Hello from s1\n")
        assert e["connect_time"] >= 0 and 0 <= e["response_time"] <= e["duration"]
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", str(e["time"]))
    (ten,) = by_target["/app/ten"]
    assert (ten["protocol"], ten["status"]) == ("HTTP/1.0", 200)
    (none,) = by_target["/none"]
    assert (none["status"], none["pool"], none["server"], none["end"]) == (
        404,
        None,
        None,
        "completed",
    )
    (bad,) = by_target["/bad"]
    assert (bad["status"], bad["server"], bad["method"]) == (400, None, "GET")
    (slow,) = by_target["/slow"]
    assert (slow["status"], slow["end"], slow["server"], slow["response_time"]) == (
        504,
        "timeout",
        "lazy",
        -1,
    )
    (lag,) = by_target["/lag"]
    assert (lag["status"], lag["end"], lag["server"]) == (None, "client_closed", "lazy")
    (half,) = by_target["/half"]
    assert (half["status"], half["end"], half["server"]) == (408, "timeout", None)
    (tcp,) = by_target[""]
    assert (tcp["listener"], tcp["method"], tcp["protocol"], tcp["status"]) == (
        "raw",
        "",
        "",
        None,
    )
    assert (tcp["pool"], tcp["server"], tcp["end"]) == ("db", "s1", "completed")
    assert (tcp["bytes_in"], tcp["bytes_out"]) == (len(request), len(answer))
    assert str(tcp["client"]).startswith("127.0.0.1:")


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_combined_lines_on_stdout_read_as_nginx_combined(
    tmp_path: Path, backends: dict[str, int]
) -> None:
    proc, ports = start(
        site(tmp_path, backends), "--access-log", "-", "--access-log-format", "combined"
    )
    url = f"http://127.0.0.1:{ports['web']}"
    try:
        for path in ("/app/a", "/app/b?q=1", "/none"):
            run = subprocess.run(
                [
                    "curl",
                    "-s",
                    "-o",
                    "/dev/null",
                    "-A",
                    'say "hi"',
                    "-e",
                    "http://r/",
                    url + path,
                ],
                timeout=30,
                check=True,
            )
            assert run.returncode == 0
        wait_until(lambda: len([ln for ln in proc.lines if COMBINED.match(ln)]) >= 3, "3 lines")
    finally:
        assert proc.stop() == 0
    lines = [m for m in map(COMBINED.match, proc.lines) if m]
    assert len(lines) == 3, proc.output()
    assert [(m[4], m[5]) for m in lines] == [
        ("GET /app/a HTTP/1.1", "200"),
        ("GET /app/b?q=1 HTTP/1.1", "200"),
        ("GET /none HTTP/1.1", "404"),
    ]
    assert all(m[1] == "127.0.0.1" and m[7] == "http://r/" for m in lines)
    assert all(m[8] == "say \\x22hi\\x22" for m in lines)
    assert lines[0][6] == str(len("Hello from s1\n"))


def worker_pids(pid: int) -> list[int]:
    """The workers of the supervisor `pid`: its children that run a rota worker."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(c) for c in children if b"spawn_main" in _cmdline(int(c))]


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def writes_to(pid: int, path: Path) -> bool:
    """Whether process `pid` has `path` (the file now at that name) open."""
    inode = path.stat().st_ino if path.exists() else -1
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            if os.stat(fd).st_ino == inode and os.readlink(fd) == str(path):
                return True
        except OSError:
            continue
    return False


def get_many(port: int, n: int) -> None:
    for i in range(n):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", f"/app/{i}", headers={"Connection": "close"})
        assert conn.getresponse().status == 200
        conn.close()


@pytest.mark.parametrize("workers", [1, 2])
def test_sigusr1_after_logrotate_renamed_the_file_starts_a_new_one_and_loses_nothing(
    tmp_path: Path, backends: dict[str, int], workers: int
) -> None:
    log = tmp_path / "access.log"
    rotated = tmp_path / "access.log.1"
    proc, ports = start(
        site(tmp_path, backends), "--access-log", str(log), "--workers", str(workers)
    )
    writers = worker_pids(proc.pid) if workers > 1 else [proc.pid]
    assert len(writers) == workers
    try:
        get_many(ports["web"], 10)
        wait_until(lambda: len(lines_of(log)) == 10, "the first 10 lines written")
        log.rename(rotated)
        os.kill(proc.pid, signal.SIGUSR1)
        wait_until(lambda: all(writes_to(p, log) for p in writers), "every writer reopened")
        get_many(ports["web"], 7)
    finally:
        assert proc.stop() == 0
    assert len(lines_of(rotated)) == 10
    assert len(lines_of(log)) == 7
    assert sorted(json.loads(x)["target"] for x in lines_of(log)) == sorted(
        f"/app/{i}" for i in range(7)
    )


def test_no_access_log_unless_configured(tmp_path: Path, backends: dict[str, int]) -> None:
    proc, ports = start(site(tmp_path, backends))
    try:
        get_many(ports["web"], 3)
        os.kill(proc.pid, signal.SIGUSR1)  # harmless with the log off
        get_many(ports["web"], 1)
    finally:
        assert proc.stop() == 0
    assert not [line for line in proc.lines if line.startswith("{")]
    assert list(tmp_path.iterdir()) == [tmp_path / "site.toml"]


@pytest.mark.parametrize(
    ("section", "flags", "named"),
    [
        ('[access_log]\nformat = "xml"\n', (), "access_log.format"),
        ('[access_log]\npath = ""\n', (), "access_log.path"),
        ('[access_log]\npaht = "x.log"\n', (), 'unknown field "paht"'),
        ('[access_log]\npath = "/nonexistent-dir/a.log"\n', (), "access_log.path"),
        ("", ("--access-log", "/nonexistent-dir/a.log"), "--access-log"),
        ("", ("--access-log", "/proc/rota-access.log"), "access_log.path"),
        ("", ("--access-log", "/proc/rota-access.log", "--workers", "2"), "access_log.path"),
    ],
)
def test_a_bad_access_log_stops_start_up_with_exit_2_naming_the_field(
    tmp_path: Path, section: str, flags: tuple[str, ...], named: str
) -> None:
    path = tmp_path / "site.toml"
    path.write_text(section + SITE.format(s1=9, s2=10, lazy=11))
    run = subprocess.run(
        [sys.executable, "-m", "rota", "lb", "--config", str(path), *flags],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2, run.stderr
    assert named in run.stderr, run.stderr
    assert run.stderr.count("\n") == 1, run.stderr
