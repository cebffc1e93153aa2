"""The seed's commands, config errors, a busy port, and `rota example`'s clean stop."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.support.http import get
from tests.support.procs import REPO, Proc, free_port, rota, write_config


def run_rota(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rota", *args],
        cwd=cwd or REPO,
        capture_output=True,
        text=True,
        timeout=20,
    )


def test_seed_commands_from_the_repository_root(tmp_path: Path) -> None:
    ports = [free_port() for _ in range(3)]
    backends = [
        Proc([sys.executable, "server.py", "--host", "127.0.0.1", "--port", str(p)], cwd=REPO)
        for p in ports
    ]
    try:
        for b in backends:
            b.wait_for("listening on")
        # The seed's file format, ports as strings as in the seed's own server_db.json;
        # the load balancer reads ./server_db.json from its working directory.
        (tmp_path / "server_db.json").write_text(
            json.dumps(
                {
                    "server_list": [
                        {"id": i + 1, "host": "127.0.0.1", "port": str(p)}
                        for i, p in enumerate(ports)
                    ]
                }
            )
        )
        port = free_port()
        lb = Proc(
            [
                sys.executable,
                str(REPO / "load_balancer.py"),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--health-check-interval",
                "15",
            ],
            cwd=tmp_path,
        )
        try:
            line = lb.wait_for("rota listening on")
            assert line == f"rota listening on http://127.0.0.1:{port} (3 backends)"
            served = [get(port).header("x-served-by") for _ in range(6)]
            assert served == [f"127.0.0.1:{p}" for p in ports] * 2
        finally:
            assert lb.stop() == 0
    finally:
        for b in backends:
            b.stop()


def test_config_error_exits_2_with_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "server_db.json"
    bad.write_text('{"server_list": [{"id": 1, "host": "127.0.0.1", "port": "abc"}]}')
    result = run_rota("lb", "--config", str(bad), "--port", str(free_port()))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f'rota: {bad}: server_list[0].port: expected an integer 1-65535, got "abc"'
    ]


def test_missing_default_config_exits_2(tmp_path: Path) -> None:
    result = run_rota("lb", "--port", str(free_port()), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == "rota: server_db.json: file not found"


def test_port_in_use_exits_1_with_one_line(tmp_path: Path) -> None:
    config = write_config(tmp_path / "db.json", [free_port()])
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_rota("lb", "--config", str(config), "--port", str(port))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"rota: cannot listen on 127.0.0.1:{port}: address already in use"
    ]


def test_example_starts_everything_and_sigint_stops_it(tmp_path: Path) -> None:
    ports = [free_port() for _ in range(3)]
    lb_port = free_port()
    config = write_config(tmp_path / "server_db.json", ports, listen={"port": lb_port})
    example = rota("example", "--config", str(config))
    try:
        example.wait_for("Ctrl-C stops everything", timeout=20)
        deadline = time.monotonic() + 5
        while True:
            try:
                assert get(lb_port).status == 200
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
    finally:
        code = example.stop(signal.SIGINT, timeout=15)
    assert code == 0
    for port in [*ports, lb_port]:
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still listening"
