"""The recording backend records what it receives and answers 200 (it underpins the corpus)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def recorder(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    record = tmp_path / "records.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.support.recording_backend", "--record", str(record)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("recording backend listening on http://127.0.0.1:"), line
        yield int(line.rsplit(":", 1)[1]), record
    finally:
        proc.terminate()
        proc.wait(timeout=5)


def exchange(port: int, raw: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(raw)
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_records_pipelined_requests_and_partial_bodies(recorder: tuple[int, Path]) -> None:
    port, record = recorder
    out = exchange(
        port,
        b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
        b"POST /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
        b"POST /c HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc",
    )
    assert out.count(b"HTTP/1.1 200 OK") == 2
    listed = json.loads(
        exchange(port, b"GET /__records HTTP/1.1\r\nHost: x\r\n\r\n").split(b"\r\n\r\n", 1)[1]
    )
    assert [(r["target"], r["complete"], r["body_length"]) for r in listed] == [
        ("/a", True, 0),
        ("/b", True, 3),
        ("/c", False, 3),
    ]
    lines = [json.loads(line) for line in record.read_text().splitlines()]
    assert lines == listed
    assert lines[1]["body"] == "abc"
    assert lines[0]["head"].startswith("GET /a HTTP/1.1\r\nHost: x\r\n")
    exchange(port, b"GET /__reset HTTP/1.1\r\nHost: x\r\n\r\n")
    listed = json.loads(
        exchange(port, b"GET /__records HTTP/1.1\r\nHost: x\r\n\r\n").split(b"\r\n\r\n", 1)[1]
    )
    assert listed == []
