"""CPU per request of rota with the access log off and on: `python -m bench.access_cost`.

Three nginx backends (as in `make bench`), one rota worker in front, wrk keep-alive with
50 connections (bench.wrkrun's `ka50`). Rounds alternate: the access log off, then JSON
appended to a file in the run's temp dir (and, with `--combined`, the combined format too).
CPU per request is the rota process's user + system time (/proc) over wrk's request count;
the figure is the median of the rounds. Everything runs on 127.0.0.1, bounded in time, and
every process started here is stopped by PID.

    python -m bench.access_cost [--rounds 3] [--duration 5] [--combined]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.contenders import max_conns, nginx_backends, rota_config, serving
from bench.machine import require_current_build
from bench.procs import LOOPBACK, Proc, free_port, wait_ready
from bench.procstat import cpu_seconds_between, machine_busy_seconds, tree_cpu_ticks
from bench.wrkrun import DONE_LUA, WORKLOADS, run_wrk, wrk_argv

KA50 = next(w for w in WORKLOADS if w.key == "ka50")


def measure(
    tmp: Path, backends: list[int], flags: list[str], duration: float, lua: Path
) -> tuple[float, float, float]:
    """(µs of rota CPU per request, req/s, other load in cores) of one run."""
    port = free_port()
    config = tmp / "rota.json"
    config.write_text(rota_config(backends))
    argv = [sys.executable, "-m", "rota", "lb", "--host", LOOPBACK, "--port", str(port)]
    argv += ["--config", str(config), *flags]
    with Proc("rota", argv, tmp).start() as proc:
        wait_ready(proc, port)
        url = f"http://{LOOPBACK}:{port}/"
        run_wrk(wrk_argv(KA50, 1, url, lua), 1)  # warm up
        before = tree_cpu_ticks(proc.pid)
        busy0 = machine_busy_seconds()
        result = run_wrk(wrk_argv(KA50, duration, url, lua), duration)
        rota_cpu = cpu_seconds_between(before, tree_cpu_ticks(proc.pid))
        busy = machine_busy_seconds() - busy0
    other = max(0.0, busy - rota_cpu) / result.duration_s
    return rota_cpu / result.requests * 1e6, result.rps, other


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.access_cost", description=__doc__)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=float, default=5.0)
    p.add_argument("--combined", action="store_true", help="measure the combined format too")
    args = p.parse_args()
    require_current_build("bench.access_cost")
    variants: dict[str, list[str]] = {"off": [], "json to a file": ["--access-log", "LOG"]}
    if args.combined:
        variants["combined to a file"] = ["--access-log", "LOG", "--access-log-format", "combined"]
    results: dict[str, list[tuple[float, float, float]]] = {name: [] for name in variants}
    with tempfile.TemporaryDirectory(prefix="rota-access-cost-") as name:
        tmp = Path(name)
        lua = tmp / "done.lua"
        lua.write_text(DONE_LUA)
        nginx, ports = nginx_backends(tmp, max_conns(65536))
        with serving([nginx], ports):
            for round_no in range(args.rounds):
                for variant, flags in variants.items():
                    log = tmp / f"access-{round_no}.log"
                    argv = [str(log) if f == "LOG" else f for f in flags]
                    results[variant].append(measure(tmp, ports, argv, args.duration, lua))
                    print(f"round {round_no + 1} {variant}: {results[variant][-1]}", flush=True)
                    log.unlink(missing_ok=True)
                    time.sleep(0.5)
    base = statistics.median(r[0] for r in results["off"])
    print(f"keep-alive 50 connections, {args.rounds} rounds of {args.duration:g} s, medians:")
    for variant, runs in results.items():
        cpu = statistics.median(r[0] for r in runs)
        rps = statistics.median(r[1] for r in runs)
        other = statistics.median(r[2] for r in runs)
        # Against the "off" of the same round (rounds interleave): the median of the
        # paired ratios cancels the machine's drift between rounds.
        ratios = [r[0] / o[0] for r, o in zip(runs, results["off"], strict=True)]
        print(
            f"  {variant:20} {cpu:6.1f} µs CPU/request ({cpu / base - 1:+.1%}; paired by "
            f"round {statistics.median(ratios) - 1:+.1%}), {rps:8.0f} req/s, "
            f"other load {other:.2f} cores"
        )


if __name__ == "__main__":
    main()
