"""The strictness corpus through the whole proxy: `rota lb` in front of a recording backend.

Per case: the client gets the expected status; after a refusal the connection is closed; the
backend sees exactly the valid requests, never a hidden (/smuggled) one, never a stripped
hop-by-hop field. Head-stage faults reach the backend not at all. Body-stage faults (found
while the body streams) may leave an incomplete request at the backend, never a complete one,
so they run last: their incomplete records may arrive late.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.corpus import CASES, MARKER, Case
from tests.support.http import Client
from tests.support.procs import Proc, start_lb, write_config

ORDERED = sorted(CASES, key=lambda case: case.stage == "body")


@dataclass
class Rig:
    lb_port: int
    backend_port: int
    record: Path


def _backend_call(port: int, path: str) -> Any:
    with Client(port, timeout=5) as c:
        body = c.request("GET", path).body
    return json.loads(body) if path == "/__records" else None


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    tmp = tmp_path_factory.mktemp("corpus")
    record = tmp / "records.jsonl"
    backend = Proc(
        [sys.executable, "-m", "tests.support.recording_backend", "--record", str(record)]
    )
    line = backend.wait_for("recording backend listening on")
    backend_port = int(line.rsplit(":", 1)[1])
    # TCP health checks: no probe requests in the records.
    config = write_config(tmp / "db.json", [backend_port], health_check={"type": "tcp"})
    lb, lb_port = start_lb(config)
    try:
        yield Rig(lb_port, backend_port, record)
    finally:
        lb.stop()
        backend.stop()
    # The whole run, late records included: no hidden request ever reached the backend.
    entries = [json.loads(x) for x in record.read_text().splitlines()]
    assert not [e for e in entries if e.get("target", "").encode("latin-1") == MARKER]


def _exchange(port: int, case: Case) -> tuple[list[int], bool]:
    """Send the raw bytes; read responses. Returns the statuses and whether rota closed."""
    statuses: list[int] = []
    with Client(port, timeout=5) as c:
        c.send(case.raw)
        expected = case.requests if case.status == 200 else 1
        try:
            while len(statuses) < expected:
                statuses.append(c.read_response().status)
        except ConnectionError:
            return statuses, True
        closed = c.closed_by_peer() if case.status != 200 else False
    return statuses, closed


@pytest.mark.parametrize("case", ORDERED, ids=[case.id for case in ORDERED])
def test_case_through_proxy(rig: Rig, case: Case) -> None:
    _backend_call(rig.backend_port, "/__reset")
    statuses, closed = _exchange(rig.lb_port, case)
    records = _backend_call(rig.backend_port, "/__records")
    complete = [r for r in records if r["complete"]]
    assert all(r["target"].encode("latin-1") != MARKER for r in records)
    if case.status == 200:
        assert statuses == [200] * case.requests
        assert len(complete) == case.requests, [r["head"] for r in records]
        for r in records:
            for hidden in case.hidden_fields:
                assert hidden.decode() not in r["head"], r["head"]
            assert " rota\r\n" not in r["head"]  # no Via of rota's own by default
        return
    assert statuses == [case.status]
    assert closed, "rota must close the connection after refusing a request"
    assert complete == []
    if case.stage == "head":
        assert records == []


def test_body_stage_faults_leave_no_complete_request(rig: Rig) -> None:
    # Late records of the body-stage cases: give them time, then check none is complete.
    time.sleep(0.2)
    records = _backend_call(rig.backend_port, "/__records")
    assert all(not r["complete"] for r in records)
