"""SIGHUP re-reads the configuration file and applies it in place (Runtime.apply, through
the control channel with workers): new routes and servers take effect, a keep-alive
connection opened before stays open, and a bad file changes nothing."""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.http import Client
from tests.support.procs import Proc, rota, start_backend

CONFIG = """
[listeners.web]
bind = "127.0.0.1:{port}"

[[listeners.web.routes]]
path = "/moved"
redirect = {{ location = "https://example.com/{where}" }}

[[listeners.web.routes]]
pool = "{pool}"

[pools.a]
servers = [{{ host = "127.0.0.1", port = {a}, name = "a" }}]

[pools.b]
servers = [{{ host = "127.0.0.1", port = {b}, name = "b" }}]
"""


@pytest.fixture
def two() -> Iterator[dict[str, int]]:
    started = {name: start_backend(name=name) for name in ("a", "b")}
    yield {name: port for name, (_, port) in started.items()}
    for proc, _ in started.values():
        proc.stop()


def body(client: Client, path: str = "/") -> str:
    answer = client.request("GET", path, headers={"Host": "x"})
    if answer.status != 200:
        return f"{answer.status} {answer.header('location')}"
    return answer.body.decode().strip()


def wait_until(proc: Proc, port: int, expected: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        with Client(port) as c:
            last = body(c)
        if last == expected:
            return
        time.sleep(0.05)
    raise AssertionError(f"still {last!r}, not {expected!r}:\n{proc.output()}")


@pytest.mark.parametrize("workers", [1, 2])
def test_sighup_applies_the_file_and_a_bad_file_changes_nothing(
    tmp_path: Path, two: dict[str, int], workers: int
) -> None:
    path = tmp_path / "site.toml"
    path.write_text(CONFIG.format(port=0, pool="a", where="one", **two))
    proc = rota("lb", "--config", str(path), "--workers", str(workers))
    match = re.search(r":(\d+) \(", proc.wait_for("rota listening on"))
    assert match is not None
    port = int(match.group(1))
    try:
        kept = Client(port)
        assert body(kept) == "Hello from a"
        # The listener keeps its address (now named, as an operator would), the catch-all
        # moves to pool b, the redirect changes.
        path.write_text(CONFIG.format(port=port, pool="b", where="two", **two))
        proc.popen.send_signal(signal.SIGHUP)
        wait_until(proc, port, "Hello from b")
        # The connection from before is still served, by the new config once its worker
        # has it (each worker applies on its own, soon after the supervisor).
        deadline = time.monotonic() + 5
        while body(kept) != "Hello from b":
            assert time.monotonic() < deadline, proc.output()
            time.sleep(0.05)
        assert body(kept, "/moved") == "302 https://example.com/two"
        # A bad file: one log line naming the file and the field; nothing changes.
        path.write_text(CONFIG.format(port=port, pool="nope", where="three", **two))
        proc.popen.send_signal(signal.SIGHUP)
        line = proc.wait_for("reload failed")
        assert str(path) in line and "listeners.web.routes[1].pool" in line
        assert body(kept) == "Hello from b"
        assert body(kept, "/moved") == "302 https://example.com/two"
        kept.close()
    finally:
        assert proc.stop() == 0
