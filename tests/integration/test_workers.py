"""`rota lb --workers N`: a supervisor, N workers sharing the port, one set of checks."""

from __future__ import annotations

import os
import signal
import socket
import time
from collections import Counter
from pathlib import Path

from tests.support.http import get
from tests.support.procs import Proc, free_port, rota, start_backend, write_config


def children(pid: int) -> list[int]:
    """Worker processes of the supervisor (multiprocessing's resource tracker excluded)."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid and b"spawn_main" in cmdline:
            out.append(int(entry.name))
    return sorted(out)


def start_workers_lb(config: Path, workers: int = 2, *extra: str) -> tuple[Proc, int]:
    port = free_port()
    proc = rota(
        "lb", "--config", str(config), "--port", str(port), "--workers", str(workers), *extra
    )
    proc.wait_for("rota listening on", timeout=30)
    return proc, port


def test_workers_share_the_port_and_spread_requests(tmp_path: Path) -> None:
    backends = [start_backend(name=n) for n in ("a", "b", "c")]
    lb, port = start_workers_lb(write_config(tmp_path / "db.json", [p for _, p in backends]))
    try:
        assert "(3 backends, 2 workers)" in lb.output()
        assert len(children(lb.pid)) == 2
        served = Counter(get(port).header("x-served-by") for _ in range(60))
        assert set(served) == {"a", "b", "c"}
        # round robin is per worker, so the split is even per worker, near-even overall
        assert all(10 <= n <= 30 for n in served.values()), served
    finally:
        assert lb.stop() == 0
        for p, _ in backends:
            p.stop()
    assert children(lb.pid) == []
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0


def test_a_killed_worker_is_restarted_and_logged(tmp_path: Path) -> None:
    backend, bport = start_backend(name="a")
    lb, port = start_workers_lb(write_config(tmp_path / "db.json", [bport]))
    try:
        victim = children(lb.pid)[0]
        os.kill(victim, signal.SIGKILL)
        lb.wait_for(f"(pid {victim}) exited with code -9; restarting", timeout=10)
        deadline = time.monotonic() + 20
        while True:
            kids = children(lb.pid)
            if len(kids) == 2 and victim not in kids:
                break
            assert time.monotonic() < deadline, kids
            time.sleep(0.1)
        time.sleep(0.5)  # the new worker binds and listens
        assert all(get(port).status == 200 for _ in range(20))
    finally:
        lb.stop()
        backend.stop()


def test_health_runs_once_in_the_supervisor_and_reaches_every_worker(tmp_path: Path) -> None:
    (a, pa), (b, pb) = start_backend(name="a"), start_backend(name="b")
    config = write_config(
        tmp_path / "db.json",
        [pa, pb],
        health_check={"interval": 0.3, "timeout": 0.2, "rise": 2, "fall": 2},
    )
    lb, port = start_workers_lb(config)
    try:
        b.stop()
        lb.wait_for(f"127.0.0.1:{pb} DOWN", timeout=5)
        # every worker has it out of rotation: no error, only "a" answers
        served = [get(port) for _ in range(30)]
        assert [r.status for r in served] == [200] * 30
        assert {r.header("x-served-by") for r in served} == {"a"}
        b, _ = start_backend(pb, "b")
        lb.wait_for(f"127.0.0.1:{pb} UP", timeout=5)
        time.sleep(0.3)  # workers read the shared states every 100 ms
        served_after = {get(port).header("x-served-by") for _ in range(12)}
        assert served_after == {"a", "b"}
        assert lb.output().count(f"127.0.0.1:{pb} DOWN") == 1  # logged once, not per worker
    finally:
        lb.stop()
        a.stop()
        b.stop()


def test_port_in_use_exits_1_before_starting_workers(tmp_path: Path) -> None:
    config = write_config(tmp_path / "db.json", [free_port()])
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = rota("lb", "--config", str(config), "--port", str(port), "--workers", "2")
        code = proc.popen.wait(timeout=20)
        proc.stop()
    assert code == 1
    assert f"cannot listen on 127.0.0.1:{port}: address already in use" in proc.output()
