"""The transition log lines an operator reads."""

from __future__ import annotations

from rota.config.model import HealthSpec
from rota.health.report import NO_BACKEND, advice, probe_answer, transition_lines
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


SPEC = HealthSpec()


def test_a_probe_answer_names_the_request() -> None:
    assert probe_answer("/health", 404) == "GET /health -> 404"


def test_every_server_answering_404_gets_one_line_naming_the_settings() -> None:
    reasons = ["GET /health -> 404"] * 3
    assert advice("default", reasons, SPEC, seed=True) == (
        "every server answers its health check with GET /health -> 404: if /health is not "
        "their health endpoint, set health_check.path (--health-check-path) to a path they "
        'answer with 200-399, or health_check.type = "tcp" (--health-check-type tcp) to '
        "check only that they accept connections"
    )
    line = advice("api", reasons, HealthSpec(path="/ready", status_min=200, status_max=200), False)
    assert line is not None
    assert line.startswith("every server of pool api answers its health check with GET /health")
    assert "set pools.api.health_check.path (--health-check-path)" in line
    assert "answer with 200," in line
    assert 'pools.api.health_check.type = "tcp"' in line


def test_no_advice_when_servers_are_really_down_or_fail_differently() -> None:
    assert advice("p", ["connection refused"] * 2, SPEC, seed=True) is None
    assert advice("p", ["GET /health -> 503"] * 2, SPEC, seed=True) is None  # sick, says so
    assert advice("p", ["GET /health -> 404", "GET /health -> 401"], SPEC, seed=True) is None
    assert advice("p", ["GET /health -> 404", ""], SPEC, seed=True) is None  # one disabled
    assert advice("p", [], SPEC, seed=True) is None
