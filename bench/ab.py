"""Builds of rota in turn, HAProxy beside them: `python -m bench.ab --base DIR [--base DIR2]`.

For working on one lever at a time: each round starts rota from each `DIR/src` (another
worktree or a copy, with its own compiled build: a stale one runs pure Python) and from
this tree's `src` ("new"), then HAProxy, one after the other against the same nginx
backends, and runs wrk on each (`--workload`, as in bench.run: close50 is one request
per connection over 50 connections). Per contender:
req/s and CPU per request (its whole process tree, from /proc), median of the rounds.
Interleaving the rounds (the order reversed every other round) is what makes the
comparison hold on a shared machine.

Every process is started here and stopped by PID in a `finally`.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
from pathlib import Path

from bench.contenders import haproxy_conf, nginx_backends, rota_config, serving
from bench.machine import require_current_build
from bench.procs import LOOPBACK, Proc, free_port, wait_ready
from bench.procstat import cpu_seconds_between, tree_cpu_ticks
from bench.wrkrun import DONE_LUA, WORKLOADS, run_wrk, wrk_argv

HERE = Path(__file__).resolve().parents[1]


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.ab", description=__doc__.splitlines()[0])
    p.add_argument(
        "--base", type=Path, action="append", required=True, help="another tree (its src/ runs)"
    )
    p.add_argument("--workload", default="close50", choices=[w.key for w in WORKLOADS])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=float, default=4.0)
    p.add_argument("--no-haproxy", action="store_true")
    p.add_argument("--mode", choices=("http", "tcp"), default="http")
    args = p.parse_args()
    workload = next(w for w in WORKLOADS if w.key == args.workload)
    rota = str(Path(sys.executable).with_name("rota"))
    trees = {d.resolve().name: d.resolve() for d in args.base}
    trees["new"] = HERE
    require_current_build("bench.ab", *(tree / "src" for tree in trees.values()))
    results: dict[str, list[tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="ab-") as tmp_name, contextlib.ExitStack() as stack:
        tmp = Path(tmp_name)
        nginx, ports = nginx_backends(tmp, 1024)
        stack.enter_context(serving([nginx], ports))
        (tmp / "rota.json").write_text(rota_config(ports))
        (tmp / "done.lua").write_text(DONE_LUA)
        order = [*trees, *([] if args.no_haproxy else ["haproxy"])]
        for round_ in range(args.rounds):
            # Reversed every other round, as bench.run does: no contender always goes first.
            for key in order if round_ % 2 == 0 else order[::-1]:
                port = free_port()
                if key == "haproxy":
                    (tmp / "haproxy.cfg").write_text(haproxy_conf(args.mode, port, ports, 1024))
                    argv = ["haproxy", "-db", "-f", str(tmp / "haproxy.cfg")]
                else:
                    argv = [
                        "env",
                        f"PYTHONPATH={trees[key] / 'src'}",
                        rota,
                        "lb",
                        "--host",
                        LOOPBACK,
                        "--port",
                        str(port),
                        "--config",
                        str(tmp / "rota.json"),
                        *(["--mode", "tcp"] if args.mode == "tcp" else []),
                    ]
                with Proc(key, argv, tmp) as proc:
                    proc.start()
                    wait_ready(proc, port)
                    url = f"http://{LOOPBACK}:{port}/"
                    before = tree_cpu_ticks(proc.pid)
                    res = run_wrk(
                        wrk_argv(workload, args.duration, url, tmp / "done.lua"), args.duration
                    )
                    cpu = cpu_seconds_between(before, tree_cpu_ticks(proc.pid))
                us = cpu / max(1, res.requests) * 1e6
                results.setdefault(key, []).append((res.rps, us))
                print(f"{key}: {res.rps:,.0f} req/s, {us:.1f} us CPU/request", flush=True)
    print(f"\n{workload.label}, {args.rounds} rounds of {args.duration:.0f} s, medians:")
    for key, runs in results.items():
        rps = statistics.median(r for r, _ in runs)
        us = statistics.median(u for _, u in runs)
        print(f"  {key}: {rps:,.0f} req/s, {us:.1f} us CPU/request")
    if "haproxy" in results:
        for key in trees:
            ratios = [
                r / h for (r, _), (h, _) in zip(results[key], results["haproxy"], strict=True)
            ]
            print(f"  {key} / haproxy: x{statistics.median(ratios):.2f} req/s (per round)")


if __name__ == "__main__":
    main()
