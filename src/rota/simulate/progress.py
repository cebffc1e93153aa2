"""A progress bar on stderr: only on a terminal, or for a run long enough to wonder about.

Redrawn at most a few times a second, on one line (`\\r`) on a terminal; elsewhere (a log,
CI) a plain line every 10% so the output stays readable.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

WIDTH = 30
REDRAW = 0.2  # seconds between redraws on a terminal


class Bar:
    __slots__ = ("_last", "_shown", "_start", "label", "out", "total", "tty")

    def __init__(self, label: str, total: int, out: TextIO = sys.stderr) -> None:
        self.label = label
        self.total = max(1, total)
        self.out = out
        self.tty = out.isatty()
        self._start = time.monotonic()
        self._last = 0.0
        self._shown = -1  # tenths printed, off a terminal

    def __call__(self, done: int) -> None:
        frac = min(1.0, done / self.total)
        now = time.monotonic()
        if self.tty:
            if now - self._last < REDRAW and frac < 1.0:
                return
            self._last = now
            filled = int(frac * WIDTH)
            bar = "#" * filled + "." * (WIDTH - filled)
            end = "\n" if frac >= 1.0 else ""
            self.out.write(
                f"\r{self.label:<16} [{bar}] {frac * 100:5.1f}% {now - self._start:6.1f} s{end}"
            )
            self.out.flush()
            return
        tenth = int(frac * 10)
        if tenth > self._shown:
            self._shown = tenth
            self.out.write(f"{self.label}: {tenth * 10}% ({now - self._start:.1f} s)\n")
            self.out.flush()
