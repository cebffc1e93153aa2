"""A graceful stop (SIGTERM/SIGINT): rota stops accepting at once, answers what is in
flight (with `Connection: close`), closes idle keep-alive connections and exits 0 when all
is done; a second signal cuts what is left. One process and `--workers 2`."""

from __future__ import annotations

import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.http import Client, Response
from tests.support.load import refused
from tests.support.procs import Proc, free_port, rota
from tests.support.scripted_backend import OK, ScriptedBackend

CONFIG = """
workers = {workers}
drain_timeout = {drain}

[listeners.web]
bind = "127.0.0.1:{port}"

[[listeners.web.routes]]
pool = "app"

[pools.app]
servers = [{{ host = "127.0.0.1", port = {backend}, name = "slow" }}]
health_check = {{ type = "tcp" }}
"""


class Gate:
    """A backend that holds `/slow` until the test opens the gate; answers the rest now."""

    def __init__(self) -> None:
        self.arrived = threading.Event()
        self.open = threading.Event()
        self.backend = ScriptedBackend(self.script)

    def script(self, conn_id: int, n: int, head: bytes, sock: socket.socket) -> bool:
        if head.startswith(b"GET /slow "):
            self.arrived.set()
            self.open.wait(30)
        sock.sendall(OK)
        return True


@pytest.fixture
def gate() -> Iterator[Gate]:
    g = Gate()
    yield g
    g.open.set()
    g.backend.close()


def start(tmp_path: Path, gate: Gate, workers: int, drain: float) -> tuple[Proc, int]:
    port = free_port()
    path = tmp_path / "site.toml"
    text = CONFIG.format(workers=workers, drain=drain, port=port, backend=gate.backend.port)
    path.write_text(text)
    proc = rota("lb", "--config", str(path))
    proc.wait_for("rota listening on")
    return proc, port


def slow_request(port: int, answers: list[Response | Exception]) -> threading.Thread:
    def run() -> None:
        try:
            with Client(port, timeout=30) as c:
                answers.append(c.request("GET", "/slow"))
        except OSError as exc:
            answers.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def wait_refused(port: int, proc: Proc) -> None:
    for _ in range(200):
        if refused(port):
            return
        time.sleep(0.02)
    raise AssertionError(f"new connections are still accepted:\n{proc.output()}")


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_finishes_the_request_in_flight_refuses_new_ones_and_exits_0(
    tmp_path: Path, gate: Gate, workers: int
) -> None:
    proc, port = start(tmp_path, gate, workers, drain=30)
    idle = Client(port)
    assert idle.request("GET", "/").status == 200  # a keep-alive connection, now idle
    answers: list[Response | Exception] = []
    thread = slow_request(port, answers)
    assert gate.arrived.wait(10), proc.output()
    proc.popen.send_signal(signal.SIGTERM)
    wait_refused(port, proc)
    assert idle.closed_by_peer()  # the idle connection was closed
    gate.open.set()
    thread.join(30)
    answer = answers[0]
    assert isinstance(answer, Response), answer
    assert answer.status == 200 and answer.body == b"ok\n"
    assert answer.header("connection") == "close"
    # Exits 0 once the last request is done, long before the 30 s drain_timeout.
    assert proc.popen.wait(timeout=15) == 0, proc.output()
    idle.close()


@pytest.mark.parametrize("workers", [1, 2])
def test_a_second_signal_cuts_what_is_left(tmp_path: Path, gate: Gate, workers: int) -> None:
    proc, port = start(tmp_path, gate, workers, drain=120)
    answers: list[Response | Exception] = []
    thread = slow_request(port, answers)
    assert gate.arrived.wait(10), proc.output()
    proc.popen.send_signal(signal.SIGTERM)
    wait_refused(port, proc)
    assert proc.popen.poll() is None  # still draining: the request is in flight
    proc.popen.send_signal(signal.SIGINT)
    # Without the second signal it would wait for the gate (or 120 s).
    assert proc.popen.wait(timeout=15) == 0, proc.output()
    thread.join(30)
    assert isinstance(answers[0], Exception)  # cut: no response, never a fake one


def test_the_drain_timeout_ends_a_request_that_does_not(tmp_path: Path, gate: Gate) -> None:
    proc, port = rota_with_flag(tmp_path, gate)
    answers: list[Response | Exception] = []
    thread = slow_request(port, answers)
    assert gate.arrived.wait(10), proc.output()
    proc.popen.send_signal(signal.SIGTERM)
    assert proc.popen.wait(timeout=15) == 0, proc.output()  # --drain-timeout 1
    thread.join(30)
    assert isinstance(answers[0], Exception)


def rota_with_flag(tmp_path: Path, gate: Gate) -> tuple[Proc, int]:
    """`--drain-timeout` overrides the file's `drain_timeout`."""
    port = free_port()
    path = tmp_path / "site.toml"
    path.write_text(CONFIG.format(workers=1, drain=300, port=port, backend=gate.backend.port))
    proc = rota("lb", "--config", str(path), "--drain-timeout", "1")
    proc.wait_for("rota listening on")
    return proc, port
