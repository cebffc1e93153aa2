"""Instructions per request of `bench.hotpath`, under callgrind: `python -m bench.icount`.

Runs `valgrind --tool=callgrind python -m bench.hotpath -n N --rounds 1` for two values of
N; the difference in instructions over the difference in N is the count per request, with
start-up cancelled out (docs/performance.md). Extra arguments go to bench.hotpath.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile

from bench.machine import require_current_build

SMALL, LARGE = 2_000, 12_000


def instructions(n: int, extra: list[str]) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "callgrind.out")
        cmd = [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={out}",
            sys.executable,
            "-m",
            "bench.hotpath",
            "-n",
            str(n),
            "--rounds",
            "1",
            *extra,
        ]
        run = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if run.returncode != 0:
            raise SystemExit(f"icount: {' '.join(cmd)} failed:\n{run.stderr[-2000:]}")
        match = re.search(r"Collected\s*:\s*(\d+)", run.stderr)
        if match is None:
            raise SystemExit("icount: callgrind printed no total")
        return int(match.group(1))


def main() -> None:
    if shutil.which("valgrind") is None:
        raise SystemExit("icount: valgrind is not installed (apt-get install valgrind)")
    require_current_build("bench.icount")
    extra = sys.argv[1:]
    small = instructions(SMALL, extra)
    large = instructions(LARGE, extra)
    per = (large - small) / (LARGE - SMALL)
    label = " ".join(extra) or "keep-alive"
    print(f"{label}: {per:,.0f} instructions per request")


if __name__ == "__main__":
    main()
