"""The demo backend's /health switch."""

from __future__ import annotations

import json

import pytest

from rota.backend.sickness import ControlError, Mode, Sickness


def test_healthy_by_default() -> None:
    s = Sickness()
    assert s.mode is Mode.OK
    assert s.health(1.0) == 200


def test_start_sick_or_hanging() -> None:
    assert Sickness(status=500).health(1.0) == 500
    assert Sickness(status=500).mode is Mode.FAIL
    assert Sickness(hang=True).health(1.0) is None


@pytest.mark.parametrize(
    ("body", "mode", "answer"),
    [
        (b"fail", Mode.FAIL, 500),
        (b"503", Mode.FAIL, 503),
        (b"hang\n", Mode.HANG, None),
        (b" OK ", Mode.OK, 200),
        (b"204", Mode.OK, 204),
    ],
)
def test_control(body: bytes, mode: Mode, answer: int | None) -> None:
    s = Sickness()
    s.control(body)
    assert s.mode is mode
    assert s.health(1.0) == answer


def test_recovers_from_hang_and_fail() -> None:
    s = Sickness(hang=True)
    s.control(b"ok")
    assert s.health(1.0) == 200
    s.control(b"fail")
    s.control(b"ok")
    assert s.health(2.0) == 200


@pytest.mark.parametrize("body", [b"", b"sick", b"99", b"600", b"1000", b"\xff"])
def test_rejects_nonsense(body: bytes) -> None:
    s = Sickness()
    with pytest.raises(ControlError):
        s.control(body)
    assert s.mode is Mode.OK


def test_report_lists_mode_and_recent_probe_times() -> None:
    s = Sickness()
    for t in range(300):
        s.health(float(t))
    s.control(b"hang")
    report = json.loads(s.report())
    assert report["mode"] == "hang"
    assert report["probes"][0] == 100.0  # the last 200 kept
    assert report["probes"][-1] == 299.0
    assert len(report["probes"]) == 200
