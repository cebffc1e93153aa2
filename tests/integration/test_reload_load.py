"""Reloads under load through `--workers 2`, and their bad input: `rota reload --pid-file`
applies the file everywhere before it returns (so traffic follows the new config from the
next request on), a bad file changes nothing and exits 2, reloads at once are serialised,
a SIGHUP during start-up leaves no half config, a changed worker count is honoured, a
server that stays keeps its health state, and a removed server's connections close."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.http import Client
from tests.support.load import Load
from tests.support.procs import Proc, free_port, rota, start_backend
from tests.support.scripted_backend import OK, ScriptedBackend

CONFIG = """
workers = {workers}

[listeners.web]
bind = "127.0.0.1:{port}"

[[listeners.web.routes]]
pool = "app"

[pools.app]
servers = [{servers}]
health_check = {{ interval = 0.2, rise = 2, fall = 1 }}
"""


def server(name: str, port: int, weight: int = 1) -> str:
    return f'{{ host = "127.0.0.1", port = {port}, name = "{name}", weight = {weight} }}'


@pytest.fixture
def three() -> Iterator[dict[str, int]]:
    started = {name: start_backend(name=name) for name in ("a", "b", "c")}
    yield {name: port for name, (_, port) in started.items()}
    for proc, _ in started.values():
        proc.stop()


def reload(pid_file: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rota", "reload", "--pid-file", str(pid_file)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def served(port: int, n: int, kept: Client | None = None) -> set[str]:
    """Who answers `n` requests on new connections (and `n` on `kept`)."""
    names = set()
    for _ in range(n):
        with Client(port) as c:
            names.add(c.request("GET", "/").body.decode().split()[-1])
        if kept is not None:
            names.add(kept.request("GET", "/").body.decode().split()[-1])
    return names


def start(path: Path, pid_file: Path) -> tuple[Proc, int]:
    proc = rota("lb", "--config", str(path), "--pid-file", str(pid_file))
    match = re.search(r":(\d+) \(", proc.wait_for("rota listening on"))
    assert match is not None
    return proc, int(match.group(1))


def test_twenty_reloads_under_load_fail_nothing_and_traffic_follows_each(
    tmp_path: Path, three: dict[str, int]
) -> None:
    port = free_port()
    path = tmp_path / "site.toml"
    # One config has a (weight 1) and b (weight 3), the other b (weight 1) and c (weight 2).
    configs = [
        (CONFIG.format(workers=2, port=port, servers=", ".join(s)), names)
        for s, names in (
            ((server("a", three["a"]), server("b", three["b"], 3)), {"a", "b"}),
            ((server("b", three["b"]), server("c", three["c"], 2)), {"b", "c"}),
        )
    ]
    path.write_text(configs[0][0])
    pid_file = tmp_path / "rota.pid"
    proc, port = start(path, pid_file)
    try:
        with Load(port, keepalive=2, fresh=2) as load:
            load.wait_for(50)
            for i in range(1, 21):
                text, names = configs[i % 2]
                kept = Client(port)
                kept.request("GET", "/")
                path.write_text(text)
                done = reload(pid_file)
                assert done.returncode == 0, done.stderr + proc.output()
                # Every worker has it once `rota reload` returns: the very next requests,
                # on new connections and on one opened before, follow it (the removed
                # server gets none; which of the others answers depends on the load's turns).
                assert served(port, 6, kept) <= names, (i, proc.output())
                kept.close()
                load.wait_for(20)
        assert load.failed == 0 and load.refused == 0, load.summary()
        assert set(load.served) == {"Hello from a", "Hello from b", "Hello from c"}
        assert proc.output().count("reloaded") == 20
    finally:
        assert proc.stop() == 0


def test_bad_file_exits_2_and_changes_nothing_and_reloads_at_once_are_serialised(
    tmp_path: Path, three: dict[str, int]
) -> None:
    path = tmp_path / "site.toml"
    good = CONFIG.format(workers=2, port=0, servers=server("a", three["a"]))
    path.write_text(good)
    pid_file = tmp_path / "rota.pid"
    proc, port = start(path, pid_file)
    try:
        path.write_text(good.replace("weight = 1", "weight = -1"))
        done = reload(pid_file)
        assert done.returncode == 2
        assert str(path) in done.stderr and "pools.app.servers[0].weight" in done.stderr
        assert "reload failed" in proc.wait_for(str(path))
        assert served(port, 4) == {"a"}
        # Four at once: each is applied whole, one after the other.
        path.write_text(CONFIG.format(workers=2, port=port, servers=server("b", three["b"])))
        argv = [sys.executable, "-m", "rota", "reload", "--pid-file", str(pid_file)]
        runs = [subprocess.Popen(argv, stdout=subprocess.PIPE, text=True) for _ in range(4)]
        assert [r.wait(timeout=60) for r in runs] == [0, 0, 0, 0]
        for r in runs:
            assert r.stdout is not None
            r.stdout.close()
        assert served(port, 4) == {"b"}
        assert proc.output().count("reloaded") == 4
    finally:
        assert proc.stop() == 0


def test_a_sighup_during_start_up_is_applied_once_started(
    tmp_path: Path, three: dict[str, int]
) -> None:
    path = tmp_path / "site.toml"
    port = free_port()
    path.write_text(CONFIG.format(workers=2, port=port, servers=server("a", three["a"])))
    pid_file = tmp_path / "rota.pid"
    proc = rota("lb", "--config", str(path), "--pid-file", str(pid_file))
    try:
        for _ in range(500):  # the pid file is written before the workers start
            if pid_file.exists() or proc.popen.poll() is not None:
                break
            time.sleep(0.01)
        path.write_text(CONFIG.format(workers=2, port=port, servers=server("b", three["b"])))
        proc.popen.send_signal(signal.SIGHUP)
        proc.popen.send_signal(signal.SIGHUP)
        proc.wait_for("rota listening on")
        proc.wait_for("reloaded")
        assert served(port, 8) == {"b"}
    finally:
        assert proc.stop() == 0


def test_a_changed_worker_count_starts_and_stops_workers(
    tmp_path: Path, three: dict[str, int]
) -> None:
    path = tmp_path / "site.toml"
    port = free_port()
    text = CONFIG.format(workers=2, port=port, servers=server("a", three["a"]))
    path.write_text(text)
    pid_file = tmp_path / "rota.pid"
    proc, port = start(path, pid_file)
    try:
        with Load(port, keepalive=2, fresh=2) as load:
            for workers in (3, 1, 2):
                path.write_text(text.replace("workers = 2", f"workers = {workers}"))
                assert reload(pid_file).returncode == 0
                proc.wait_for(f"-> {workers}")
                load.wait_for(100)
        assert load.failed == 0 and load.refused == 0, load.summary()
        lines = [line for line in proc.output().splitlines() if "workers:" in line]
        assert [line.split("workers: ")[1] for line in lines] == ["2 -> 3", "3 -> 1", "1 -> 2"]
    finally:
        assert proc.stop() == 0


def test_a_server_that_stays_keeps_its_health_state(tmp_path: Path, three: dict[str, int]) -> None:
    sick, sick_port = start_backend(None, "sick", "--health-status", "503")
    path = tmp_path / "site.toml"
    servers = [server("a", three["a"]), server("sick", sick_port)]
    path.write_text(CONFIG.format(workers=2, port=0, servers=", ".join(servers)))
    pid_file = tmp_path / "rota.pid"
    proc, port = start(path, pid_file)
    try:
        proc.wait_for("DOWN")
        for _ in range(100):  # until every worker heard it from the supervisor
            if served(port, 4) == {"a"}:
                break
        # New weights for both: the sick server stays DOWN, with no new rise to sit out
        # for the healthy one either.
        servers = [server("a", three["a"], 2), server("sick", sick_port, 5)]
        path.write_text(CONFIG.format(workers=2, port=port, servers=", ".join(servers)))
        assert reload(pid_file).returncode == 0
        assert served(port, 10) == {"a"}
        assert proc.output().count(" UP") == 0, proc.output()
    finally:
        assert proc.stop() == 0
        sick.stop()


def test_a_removed_server_closes_its_connection_once_its_exchange_ends(
    tmp_path: Path, three: dict[str, int]
) -> None:
    arrived, go = threading.Event(), threading.Event()

    def script(conn_id: int, n: int, head: bytes, sock: socket.socket) -> bool:
        if head.startswith(b"GET /slow "):
            arrived.set()
            go.wait(20)
        sock.sendall(OK)
        return True

    gone = ScriptedBackend(script)
    path = tmp_path / "site.toml"
    servers = f'{{ host = "127.0.0.1", port = {gone.port}, name = "gone" }}'
    text = CONFIG.format(workers=1, port=0, servers=servers).replace(
        "interval = 0.2, rise = 2, fall = 1", 'type = "tcp"'
    )
    path.write_text(text)
    pid_file = tmp_path / "rota.pid"
    proc, port = start(path, pid_file)
    try:
        answers: list[bytes] = []

        def slow() -> None:
            with Client(port) as c:
                answers.append(c.request("GET", "/slow").body)

        thread = threading.Thread(target=slow, daemon=True)
        thread.start()
        assert arrived.wait(10)
        conn = gone.conns_of(b"/slow")[0]
        new = CONFIG.format(workers=1, port=port, servers=server("a", three["a"]))
        path.write_text(new)
        assert reload(pid_file).returncode == 0
        assert served(port, 3) == {"a"}
        go.set()
        thread.join(20)
        assert answers == [b"ok\n"]  # the exchange in flight finished as it began
        # ... and its connection was closed instead of going back to an idle stack.
        assert gone.closed[conn].wait(10), proc.output()
    finally:
        assert proc.stop() == 0
        gone.close()
