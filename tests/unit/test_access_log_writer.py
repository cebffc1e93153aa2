"""The access log's writer (rota.observe.access_log) with a real thread and real files: lines
reach the file whole and in order, a graceful close writes everything, reopen follows a
rename, and a writer that cannot keep up drops and counts lines instead of growing."""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from rota.config.model import AccessLogSpec
from rota.observe.access_log import AccessLog
from rota.outcome import Outcome


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    # Not running: lines are handed to the writer by the batch size and at close, never by
    # the timer (which needs a running loop).
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def outcome(n: int) -> Outcome:
    o = Outcome("web", 1.0)
    o.finished = 1.5
    o.status = 200
    o.method, o.target, o.protocol, o.reason = "GET", f"/{n}", "HTTP/1.1", "completed"
    return o


def test_every_line_is_written_whole_and_in_order_by_close(
    tmp_path: Path, loop: asyncio.AbstractEventLoop
) -> None:
    path = tmp_path / "a.log"
    log = AccessLog(AccessLogSpec(str(path)), loop)
    for n in range(1000):
        log.observe(outcome(n))
    log.close()
    assert not log.thread.is_alive()
    lines = path.read_text().splitlines()
    assert [json.loads(line)["target"] for line in lines] == [f"/{n}" for n in range(1000)]
    assert (log.dropped, log.failed, log.pending) == (0, 0, 0)


def test_a_file_that_exists_is_appended_to(tmp_path: Path, loop: asyncio.AbstractEventLoop) -> None:
    path = tmp_path / "a.log"
    path.write_text("earlier\n")
    log = AccessLog(AccessLogSpec(str(path), "combined"), loop)
    log.observe(outcome(1))
    log.close()
    first, second = path.read_text().splitlines()
    assert first == "earlier" and '"GET /1 HTTP/1.1" 200 0' in second


def test_reopen_after_a_rename_sends_later_lines_to_a_new_file(
    tmp_path: Path, loop: asyncio.AbstractEventLoop
) -> None:
    path = tmp_path / "a.log"
    log = AccessLog(AccessLogSpec(str(path)), loop)
    for n in range(300):
        log.observe(outcome(n))
    path.rename(tmp_path / "a.log.1")
    log.reopen()
    for n in range(300, 500):
        log.observe(outcome(n))
    log.close()
    old = (tmp_path / "a.log.1").read_text().splitlines()
    new = path.read_text().splitlines()
    assert len(old) == 300 and len(new) == 200
    assert json.loads(new[0])["target"] == "/300"


def test_a_writer_that_falls_behind_drops_and_counts_instead_of_growing(
    tmp_path: Path, loop: asyncio.AbstractEventLoop
) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # nobody reads it for a while
    log = AccessLog(AccessLogSpec(str(fifo)), loop, max_pending=1000)
    total = 5000
    for n in range(total):
        log.observe(outcome(n))
        assert log.pending <= 1000
    assert log.dropped >= total - 1000 - 300  # the pipe holds a few hundred lines at most
    got = bytearray()
    done = threading.Event()

    def drain() -> None:
        os.set_blocking(reader, True)
        while chunk := os.read(reader, 65536):
            got.extend(chunk)
        done.set()

    thread = threading.Thread(target=drain)
    thread.start()
    log.close()
    thread.join(10)
    os.close(reader)
    assert done.is_set()
    lines = bytes(got).decode().splitlines()
    assert len(lines) == total - log.dropped
    targets = [json.loads(line)["target"] for line in lines]  # every line whole
    assert targets == sorted(targets, key=lambda t: int(t[1:]))  # in order, gaps dropped
