"""The access log: one line per ended exchange (per connection for TCP listeners), written
off the event loop.

`AccessLog.observe` is an observer (`rota.outcome.Observer`, added to `Runtime.observers`
only when `[access_log]` has a path: with the log off nothing runs per request). On the
event loop it formats the line (rota.observe.log_format) and appends it to a batch; a full
batch, or the first line's batch after HAND_OVER_SECONDS, goes to a writer thread in one
queue operation. The writer joins what it was handed and appends it to the file with one
`write` per batch (split at line ends into PIPE_BUF pieces on a pipe, so lines from
several workers never interleave), so the loop never waits on the disk.

Bounded: at most `max_pending` lines wait for the writer. When it falls behind (a slow
disk, a blocked pipe) new lines are dropped and counted, and a warning says how many, at
most every DROP_REPORT_SECONDS. `reopen()` (SIGUSR1, for logrotate) makes the writer open
the path afresh after the lines handed before it; `close()` (a graceful stop) writes what
is left and ends the thread.

The file is opened O_APPEND: with `--workers N` every worker appends its own lines to the
same file, each write landing whole at its end.
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import select
import stat
import threading
from time import time as wall_clock
from typing import Final

from rota.config.errors import ConfigError
from rota.config.model import AccessLogSpec, Config
from rota.observe.log_format import FORMATTERS, json_line
from rota.outcome import Outcome

log = logging.getLogger("rota")

BATCH_LINES: Final = 4096  # lines handed to the writer at once...
HAND_OVER_SECONDS: Final = 0.1  # ...or this long after the first line of a batch
MAX_PENDING: Final = 65_536  # lines formatted but not written yet; beyond: dropped
DROP_REPORT_SECONDS: Final = 10.0
_REOPEN: Final = "reopen"
_STOP: Final = "stop"


def open_path(path: str) -> int:
    """The log's file descriptor: stdout for "-", else `path` opened for appending
    (created 0644 if missing). Raises OSError."""
    if path == "-":
        return 1
    return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)


class AccessLog:
    def __init__(
        self,
        spec: AccessLogSpec,
        loop: asyncio.AbstractEventLoop,
        *,
        max_pending: int = MAX_PENDING,
    ) -> None:
        if spec.path is None:
            raise ValueError("the access log is off")
        self.path = spec.path
        self.format = FORMATTERS[spec.format]
        self.json = spec.format == "json"
        self.loop = loop
        self.max_pending = max_pending
        self.fd = open_path(self.path)  # OSError here: before any thread starts
        self.batch: list[str] = []
        self.timer: asyncio.TimerHandle | None = None
        self.handed = 0  # lines handed to the writer (event loop only)
        self.written = 0  # lines the writer is done with (writer thread only)
        self.dropped = 0  # lines never written (event loop: over the bound)
        self.failed = 0  # lines the writer could not write (writer thread)
        self.reported = 0
        self.last_report = 0.0
        self.closed = False
        self.queue: queue.SimpleQueue[list[str] | str] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._run, name="rota-access-log", daemon=True)
        self.thread.start()

    def __repr__(self) -> str:
        return f"<AccessLog {self.path} pending={self.pending}>"

    @property
    def pending(self) -> int:
        """Lines formatted and not yet written."""
        return self.handed - self.written + len(self.batch)

    # On the event loop.

    def observe(self, outcome: Outcome) -> None:
        """The observer: one line for `outcome`."""
        batch = self.batch
        if self.handed - self.written + len(batch) >= self.max_pending or self.closed:
            self.dropped += 1
            if self.timer is None and not self.closed:
                self.timer = self.loop.call_later(HAND_OVER_SECONDS, self._tick)
            return
        if self.json:  # a direct call, compiled: no call through the attribute
            batch.append(json_line(outcome, wall_clock()))
        else:
            batch.append(self.format(outcome, wall_clock()))
        if len(batch) >= BATCH_LINES:
            self._hand_over()
        elif self.timer is None:
            self.timer = self.loop.call_later(HAND_OVER_SECONDS, self._tick)

    def _tick(self) -> None:
        self.timer = None
        self._hand_over()
        lost = self.dropped + self.failed
        if lost != self.reported:
            now = self.loop.time()
            if now - self.last_report >= DROP_REPORT_SECONDS or not self.last_report:
                log.warning(
                    "access log %s: %d lines dropped so far (the writer fell behind or "
                    "could not write)",
                    self.path,
                    lost,
                )
                self.reported = lost
                self.last_report = now

    def _hand_over(self) -> None:
        batch = self.batch
        if batch:
            self.batch = []
            self.handed += len(batch)
            self.queue.put(batch)

    def reopen(self) -> None:
        """SIGUSR1: open the path afresh (after logrotate renamed the file). Lines handed
        before go to the old file, the rest to the new one: none is lost."""
        if not self.closed:
            self._hand_over()
            self.queue.put(_REOPEN)

    def close(self, timeout: float = 5.0) -> None:
        """A graceful stop: write everything formatted, then end the writer."""
        if self.closed:
            return
        self._hand_over()
        self.closed = True
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.queue.put(_STOP)
        self.thread.join(timeout)
        lost = self.dropped + self.failed
        if lost:
            log.warning("access log %s: %d lines dropped in all", self.path, lost)

    # In the writer thread.

    def _run(self) -> None:
        while True:
            items = [self.queue.get()]
            while True:  # everything waiting goes out in one write
                try:
                    items.append(self.queue.get_nowait())
                except queue.Empty:
                    break
            lines: list[str] = []
            for item in items:
                if isinstance(item, list):
                    lines += item
                    continue
                self._write(lines)
                lines = []
                if item == _REOPEN:
                    self._reopen()
                else:
                    if self.fd != 1:
                        os.close(self.fd)
                    return
            self._write(lines)

    def _write(self, lines: list[str]) -> None:
        if not lines:
            return
        data = "".join(lines).encode("utf-8", "replace")
        try:
            if len(data) > select.PIPE_BUF and not stat.S_ISREG(os.fstat(self.fd).st_mode):
                for piece in _pieces(data, select.PIPE_BUF):
                    _write_all(self.fd, piece)
            else:
                _write_all(self.fd, data)
        except OSError as exc:
            self.failed += len(lines)
            if self.failed == len(lines):  # the first failure; _tick counts the rest
                log.error("access log %s: cannot write: %s", self.path, exc.strerror)
        finally:
            self.written += len(lines)

    def _reopen(self) -> None:
        try:
            fd = open_path(self.path)
        except OSError as exc:
            log.error(
                "access log %s: cannot reopen, still writing the old file: %s",
                self.path,
                exc.strerror,
            )
            return
        old, self.fd = self.fd, fd
        if old != 1:
            os.close(old)


def _write_all(fd: int, data: bytes) -> None:
    """All of `data`, however many writes it takes (a regular file takes one)."""
    done = os.write(fd, data)
    while done < len(data):
        done += os.write(fd, data[done:])


def _pieces(data: bytes, size: int) -> list[bytes]:
    """`data` cut at line ends into pieces of at most `size` bytes (a longer line alone)."""
    pieces = []
    start = 0
    while start < len(data):
        end = start + size
        if end >= len(data):
            pieces.append(data[start:])
            break
        cut = data.rfind(b"\n", start, end)
        if cut < start:
            cut = data.find(b"\n", end)
            if cut == -1:
                cut = len(data) - 1
        pieces.append(data[start : cut + 1])
        start = cut + 1
    return pieces


def start_access_log(config: Config, loop: asyncio.AbstractEventLoop) -> AccessLog | None:
    """The configured access log, writing; None when it is off. A path that cannot be
    opened raises ConfigError naming `access_log.path` (exit code 2)."""
    if config.access_log.path is None:
        return None
    try:
        return AccessLog(config.access_log, loop)
    except OSError as exc:
        raise _cannot_open(config, exc) from None


def check_access_log(config: Config) -> None:
    """Fail before anything starts if the access log's file cannot be opened (the
    supervisor of `--workers`, whose workers each open it). Raises ConfigError."""
    path = config.access_log.path
    if path is None or path == "-":
        return
    try:
        os.close(open_path(path))
    except OSError as exc:
        raise _cannot_open(config, exc) from None


def _cannot_open(config: Config, exc: OSError) -> ConfigError:
    return ConfigError(
        config.source, "access_log.path", f"cannot open {config.access_log.path}: {exc.strerror}"
    )
