"""Health checks end to end: real backends and a real load balancer on 127.0.0.1.

Intervals are at most 0.5 s so the file runs in well under a minute. The bounds are the
issue's: a dead backend leaves within fall x interval + timeout, a recovered one is back
within rise x interval plus a little; jitter (+-10 %) and process wake-ups get a small slack.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.http import Client, get
from tests.support.procs import Proc, start_backend, start_lb, write_config

INTERVAL = 0.25
TIMEOUT = 0.15
RISE = 2
FALL = 3
SLACK = 0.3  # process wake-ups and log delivery on a busy 2-core machine


class Setup:
    def __init__(self, backends: list[tuple[Proc, int]], lb: Proc, port: int) -> None:
        self.backends = backends
        self.lb = lb
        self.port = port

    def addr(self, i: int) -> str:
        return f"127.0.0.1:{self.backends[i][1]}"

    def control(self, i: int, command: str | None = None) -> dict[str, object]:
        """POST a command to backend i's /control/health (GET if None); its JSON state."""
        with Client(self.backends[i][1]) as c:
            if command is None:
                r = c.request("GET", "/control/health", headers={"Connection": "close"})
            else:
                r = c.request("POST", "/control/health", {"Connection": "close"}, command.encode())
        assert r.status == 200, r.body
        state: dict[str, object] = json.loads(r.body)
        return state

    def mark(self) -> int:
        """Where the lb's output ends now; wait_line looks only at lines after it."""
        return len(self.lb.lines)

    def wait_line(self, text: str, since: int, timeout: float) -> tuple[str, float]:
        """The first lb line after `since` containing `text`, and when it was seen."""
        deadline = time.monotonic() + timeout
        while True:
            for line in self.lb.lines[since:]:
                if text in line:
                    return line, time.monotonic()
            if time.monotonic() > deadline:
                raise AssertionError(f"no {text!r} within {timeout} s:\n{self.lb.output()}")
            time.sleep(0.005)

    def served_by(self, n: int) -> list[str | None]:
        with Client(self.port) as c:
            return [c.request("GET", "/").header("x-served-by") for _ in range(n)]


def start(tmp_path: Path, *flags: str, n: int = 3) -> Setup:
    backends = [start_backend(name=name) for name in "abc"[:n]]
    config = write_config(tmp_path / "db.json", [port for _, port in backends])
    lb, port = start_lb(config, *flags)
    return Setup(backends, lb, port)


def stop(setup: Setup) -> None:
    setup.lb.stop()
    for proc, _ in setup.backends:
        proc.stop()


@pytest.fixture
def fast(tmp_path: Path) -> Iterator[Setup]:
    setup = start(
        tmp_path,
        "--health-check-interval", str(INTERVAL),
        "--health-check-timeout", str(TIMEOUT),
        "--rise", str(RISE),
        "--fall", str(FALL),
    )  # fmt: skip
    yield setup
    stop(setup)


DOWN_WITHIN = FALL * INTERVAL * 1.1 + TIMEOUT + SLACK
UP_WITHIN = RISE * INTERVAL * 1.1 + SLACK


def test_killed_backend_leaves_within_fall_and_returns_within_rise(fast: Setup) -> None:
    time.sleep(INTERVAL)  # past the start-up probes
    since = fast.mark()
    proc, port = fast.backends[1]
    killed = time.monotonic()
    proc.stop(signal.SIGKILL)
    line, seen = fast.wait_line(f"backend {fast.addr(1)} DOWN", since, timeout=5)
    took = seen - killed
    # No traffic: only active checks act, so it takes `fall` failed probes.
    print(f"killed -> DOWN line: {took:.3f} s (bound {DOWN_WITHIN:.3f})")
    assert (FALL - 1) * INTERVAL * 0.9 - 0.05 <= took <= DOWN_WITHIN, (took, line)
    assert "(connection refused; 2/3 up)" in line
    assert set(fast.served_by(6)) == {"a", "c"}

    since = fast.mark()
    fast.backends[1] = start_backend(port, "b")  # back on the same port, ready line seen
    back = time.monotonic()
    line, seen = fast.wait_line(f"backend {fast.addr(1)} UP", since, timeout=5)
    print(f"restarted -> UP line: {seen - back:.3f} s (bound {UP_WITHIN:.3f})")
    assert seen - back <= UP_WITHIN, seen - back
    assert line.endswith(f"backend {fast.addr(1)} UP (2 checks passed; 3/3 up)")
    assert set(fast.served_by(6)) == {"a", "b", "c"}


def test_clients_see_no_error_while_a_backend_dies(tmp_path: Path) -> None:
    # A long interval, so that only the passive check can be this quick.
    setup = start(tmp_path, "--health-check-interval", "0.5", "--fall", "3")
    statuses: list[int] = []
    errors: list[str] = []
    running = threading.Event()
    running.set()

    def client() -> None:
        try:
            with Client(setup.port) as c:
                for _ in range(5000):  # bounded; the test stops it long before
                    if not running.is_set():
                        return
                    statuses.append(c.request("GET", "/").status)
        except OSError as exc:
            errors.append(repr(exc))

    threads = [threading.Thread(target=client) for _ in range(4)]
    try:
        for t in threads:
            t.start()
        time.sleep(0.3)
        since = setup.mark()
        killed = time.monotonic()
        setup.backends[1][0].stop(signal.SIGKILL)
        line, seen = setup.wait_line(f"backend {setup.addr(1)} DOWN", since, timeout=5)
        time.sleep(0.5)
    finally:
        running.clear()
        for t in threads:
            t.join(10)
        stop(setup)
    print(f"killed under traffic -> DOWN line: {seen - killed:.3f} s; {len(statuses)} requests")
    # Passive: at once, far sooner than the 3 x 0.5 s the active checks would need.
    assert seen - killed < 0.5, (seen - killed, line)
    assert "connection refused" in line or "connection reset" in line, line
    assert errors == []
    assert len(statuses) > 100
    assert set(statuses) == {200}


def test_failing_health_is_excluded_while_root_still_answers_and_recovers(fast: Setup) -> None:
    since = fast.mark()
    asked = time.monotonic()
    assert fast.control(1, "fail")["mode"] == "fail"
    line, seen = fast.wait_line(f"backend {fast.addr(1)} DOWN", since, timeout=5)
    assert seen - asked <= DOWN_WITHIN
    assert "(GET /health -> 500; 2/3 up)" in line
    assert get(fast.backends[1][1]).status == 200  # "/" itself still works...
    assert set(fast.served_by(9)) == {"a", "c"}  # ...but rota routes around it

    since = fast.mark()
    asked = time.monotonic()
    fast.control(1, "ok")
    line, seen = fast.wait_line(f"backend {fast.addr(1)} UP", since, timeout=5)
    assert seen - asked <= UP_WITHIN
    assert set(fast.served_by(9)) == {"a", "b", "c"}


def test_hanging_health_is_excluded_and_other_backends_keep_their_schedule(fast: Setup) -> None:
    since = fast.mark()
    asked = time.monotonic()
    fast.control(1, "hang")
    line, seen = fast.wait_line(f"backend {fast.addr(1)} DOWN", since, timeout=5)
    assert seen - asked <= DOWN_WITHIN
    assert "(timeout; 2/3 up)" in line
    time.sleep(1.0)  # b keeps hanging every probe meanwhile
    hang_end = time.monotonic()
    for i in (0, 2):
        times: list[float] = fast.control(i)["probes"]  # type: ignore[assignment]
        probes = [t for t in times if asked <= t <= hang_end]
        gaps = [b - a for a, b in itertools.pairwise(probes)]
        print(f"backend {fast.addr(i)} probe gaps while b hangs: {min(gaps):.3f}-{max(gaps):.3f} s")
        assert len(gaps) >= 5, probes
        assert max(gaps) <= 1.5 * INTERVAL, gaps
        assert min(gaps) >= 0.8 * INTERVAL, gaps  # the schedule, not a probe storm
    # Shutdown does not wait for the hanging probe.
    t0 = time.monotonic()
    assert fast.lb.stop() == 0
    assert time.monotonic() - t0 < 2.0


def test_no_backend_left_gives_503_at_once_and_says_so(tmp_path: Path) -> None:
    setup = start(
        tmp_path, "--health-check-interval", "0.2", "--health-check-timeout", "0.1", "--fall", "1",
        n=1,
    )  # fmt: skip
    try:
        since = setup.mark()
        setup.control(0, "503")
        setup.wait_line("no backend available", since, timeout=3)
        assert f"backend {setup.addr(0)} DOWN (GET /health -> 503; 0/1 up)" in setup.lb.output()
        t0 = time.monotonic()
        r = get(setup.port)
        assert time.monotonic() - t0 < 0.5
        assert r.status == 503
        assert r.header("retry-after")
    finally:
        stop(setup)


async def _load(port: int, clients: int, seconds: float) -> tuple[int, list[str]]:
    """`clients` keep-alive connections sending GET / back to back for `seconds`."""
    done = 0
    errors: list[str] = []
    deadline = time.monotonic() + seconds
    request = b"GET / HTTP/1.1\r\nHost: rota\r\n\r\n"

    async def one() -> None:
        nonlocal done
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError as exc:
            errors.append(f"connect: {exc!r}")
            return
        try:
            while time.monotonic() < deadline:
                writer.write(request)
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
                if not head.startswith(b"HTTP/1.1 200 "):
                    errors.append(head.split(b"\r\n", 1)[0].decode())
                    return
                length = int(head.lower().split(b"content-length:", 1)[1].split(b"\r\n")[0])
                await reader.readexactly(length)
                done += 1
        except (OSError, asyncio.IncompleteReadError, TimeoutError) as exc:
            errors.append(repr(exc))
        finally:
            writer.close()

    await asyncio.gather(*(one() for _ in range(clients)))
    return done, errors


def test_200_concurrent_clients_for_10_s_cause_no_false_down(tmp_path: Path) -> None:
    # The timeout is generous on purpose: this tests that a busy load balancer does not
    # delay its probes, not how fast a loaded backend answers.
    setup = start(
        tmp_path,
        "--health-check-interval", "0.5",
        "--health-check-timeout", "0.45",
        "--fall", str(FALL),
    )  # fmt: skip
    try:
        since = setup.mark()
        done, errors = asyncio.run(_load(setup.port, clients=200, seconds=10.0))
        probes: list[list[float]] = [setup.control(i)["probes"] for i in range(3)]  # type: ignore[misc]
    finally:
        stop(setup)
    transitions = [line for line in setup.lb.lines[since:] if " DOWN " in line or " UP " in line]
    assert transitions == []
    assert errors == []
    print(f"200 clients x 10 s: {done} responses, probes per backend {[len(p) for p in probes]}")
    assert done > 2000, done  # the load was real
    for p in probes:
        assert len(p) >= 15, p  # the checks kept running: ~20 probes in 10 s
