"""The transition log lines an operator reads."""

from __future__ import annotations

from rota.health.report import NO_BACKEND, transition_lines
from rota.pool import State

ADDR = "127.0.0.1:5002"


def test_down_line() -> None:
    assert transition_lines(ADDR, ADDR, State.DOWN, "connection refused", 2, 3) == (
        "backend 127.0.0.1:5002 DOWN (connection refused; 2/3 up)",
    )


def test_up_line() -> None:
    assert transition_lines(ADDR, ADDR, State.UP, "2 checks passed", 3, 3) == (
        "backend 127.0.0.1:5002 UP (2 checks passed; 3/3 up)",
    )


def test_last_backend_down_adds_no_backend_available() -> None:
    assert transition_lines(ADDR, ADDR, State.DOWN, "timeout", 0, 1) == (
        "backend 127.0.0.1:5002 DOWN (timeout; 0/1 up)",
        NO_BACKEND,
    )
    assert NO_BACKEND == "no backend available"


def test_a_named_backend_shows_its_address_too() -> None:
    assert transition_lines("web2", ADDR, State.DOWN, "status 500", 1, 2) == (
        "backend web2 127.0.0.1:5002 DOWN (status 500; 1/2 up)",
    )


def test_no_reason() -> None:
    assert transition_lines(ADDR, ADDR, State.UP, "", 1, 1) == (
        "backend 127.0.0.1:5002 UP (1/1 up)",
    )
