"""Instructions of a process already running under `valgrind --tool=callgrind`, for the
part of its life a `with` block covers (bench.tls_icount, bench.wrk_icount).

The counters are zeroed on entry (`callgrind_control -z`) and dumped on exit
(`callgrind_control -d`); the dump's `summary:` line is the count. Start-up and warm-up
are left out that way, and only user-space instructions are counted."""

from __future__ import annotations

import contextlib
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path


class Count:
    """Filled in when the `with` block of `counted` ends."""

    instructions = 0


def _control(flag: str, pid: int) -> None:
    subprocess.run(
        ["callgrind_control", flag, str(pid)], check=True, timeout=60, capture_output=True
    )


@contextlib.contextmanager
def counted(pid: int, out: Path, who: str) -> Iterator[Count]:
    """Count what process `pid` (writing its dumps to `out`.N) runs inside the block."""
    count = Count()
    _control("-z", pid)
    yield count
    time.sleep(0.3)  # the last answers have been read; let the process go back to waiting
    _control("-d", pid)
    time.sleep(0.5)
    dump = Path(f"{out}.1").read_text(errors="replace")
    found = re.search(r"^summary:\s*(\d+)", dump, re.MULTILINE)
    if found is None:
        raise SystemExit(f"{who}: callgrind dumped no summary")
    count.instructions = int(found.group(1))


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM (callgrind writes its last dump), then SIGKILL after a minute."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
