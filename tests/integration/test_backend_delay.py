"""`rota backend --delay`: a slow server for balancing benchmarks; /health stays quick."""

from __future__ import annotations

import time

from tests.support.http import get
from tests.support.procs import start_backend


def test_every_answer_but_health_waits_the_delay() -> None:
    proc, port = start_backend(None, "slow", "--delay", "0.3")
    try:
        t0 = time.monotonic()
        assert get(port, "/health").status == 200
        quick = time.monotonic() - t0
        t0 = time.monotonic()
        answer = get(port, "/")
        slow = time.monotonic() - t0
    finally:
        proc.stop()
    assert answer.body == b"Hello from slow\n"
    assert slow >= 0.3 and quick < 0.3, (slow, quick)
