"""Where a new TLS connection's CPU goes, per side: `python -m bench.tls_split`.

    python -m bench.tls_split [--only rota,haproxy] [--rounds 4] [--duration 4]
                              [--base-src DIR] [--strace]

`bench.tls`'s `new50` workload (wrk, 50 connections, `Connection: close`, a full handshake
per request) against each contender in turn, rounds alternated, and per connection from
/proc: the load balancer's user and system CPU (utime, stime), its minor page faults and
context switches, and wrk's own user and system CPU (the client's cost differs if a
server sends more, smaller writes). `--base-src DIR` adds `rota-base`, rota run from
another source tree (a build of the commit before a change), to compare within one run.
`--strace` attaches `strace -c -f` to the load balancer for one run each and prints its
syscall counts (strace slows everything: read its counts, not its times).

Every process is started here and stopped by PID; all traffic goes to 127.0.0.1; every
run is bounded in time. Run it under the shared benchmark lock.
"""

from __future__ import annotations

import argparse
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.contenders import nginx_backends
from bench.machine import require_current_build
from bench.procs import LOOPBACK, free_port
from bench.procstat import tree_pids
from bench.tls import started
from bench.tls_contenders import CONNS, CONTENDERS, make_cert
from bench.wrkrun import DONE_LUA, Workload, run_wrk, wrk_argv

ROOT = Path(__file__).resolve().parents[1]
NEW50 = Workload("new50", "new TLS connection per request, 50 conns", 50, True)


def counters(root: int) -> tuple[int, int, int, int, int]:
    """utime, stime (ticks), minor faults, voluntary and involuntary context switches of
    the process tree."""
    utime = stime = faults = vcs = ivcs = 0
    for pid in tree_pids(root):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        faults += int(fields[7])
        utime += int(fields[11])
        stime += int(fields[12])
        for line in status.splitlines():
            if line.startswith("voluntary_ctxt_switches"):
                vcs += int(line.split()[1])
            elif line.startswith("nonvoluntary_ctxt_switches"):
                ivcs += int(line.split()[1])
    return utime, stime, faults, vcs, ivcs


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m bench.tls_split", description=__doc__)
    p.add_argument("--only", default="rota,haproxy", help="comma-separated contenders")
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--duration", type=int, default=4, help="seconds per run")
    p.add_argument("--base-src", help="rota-base runs from this source tree")
    p.add_argument("--strace", action="store_true", help="syscall counts (slow)")
    args = p.parse_args()
    require_current_build(
        "bench.tls_split", ROOT / "src", *([Path(args.base_src)] if args.base_src else [])
    )
    keys = args.only.split(",")
    if args.base_src:
        keys.insert(0, "rota-base")
    os.environ["PATH"] = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    root = Path(tempfile.mkdtemp(prefix="rota-tls-split-"))
    lua = root / "done.lua"
    lua.write_text(DONE_LUA)
    backends, ports = nginx_backends(root, CONNS)
    cert = make_cert(root)
    tick_us = 1e6 / os.sysconf("SC_CLK_TCK")
    rps: dict[str, list[float]] = {k: [] for k in keys}
    backends.start()
    try:
        time.sleep(0.5)
        for round_no in range(args.rounds):
            for key in keys if round_no % 2 == 0 else keys[::-1]:
                tmp = Path(tempfile.mkdtemp(prefix=f"{key}-", dir=root))
                port = free_port()
                builder = CONTENDERS["rota" if key == "rota-base" else key][1]
                argv, env = builder(tmp, port, ports, cert)
                if key == "rota-base":
                    env["PYTHONPATH"] = str(args.base_src)
                url = f"https://{LOOPBACK}:{port}/"
                with started(key, argv, env, tmp, port) as proc:
                    run_wrk(wrk_argv(NEW50, 1, url, lua), 1)
                    tracer = None
                    if args.strace:
                        pids = [a for pid in tree_pids(proc.pid) for a in ("-p", str(pid))]
                        out = str(tmp / "strace.txt")
                        tracer = subprocess.Popen(
                            ["strace", "-c", "-f", "-o", out, *pids], stderr=subprocess.DEVNULL
                        )
                        time.sleep(1)
                    wrk0 = resource.getrusage(resource.RUSAGE_CHILDREN)
                    before = counters(proc.pid)
                    result = run_wrk(wrk_argv(NEW50, args.duration, url, lua), args.duration)
                    after = counters(proc.pid)
                    wrk1 = resource.getrusage(resource.RUSAGE_CHILDREN)
                    if tracer is not None:
                        tracer.send_signal(signal.SIGINT)
                        tracer.wait(30)
                n = max(1, result.requests)
                d = [a - b for a, b in zip(after, before, strict=True)]
                rps[key].append(result.rps)
                print(
                    f"round {round_no + 1} {key:10} {result.rps:7,.0f} conn/s errors "
                    f"{result.error_total} | lb user {d[0] * tick_us / n:4.0f} sys "
                    f"{d[1] * tick_us / n:4.0f} us/conn, faults {d[2] / n:.2f}, ctx switches "
                    f"{d[3] / n:.2f}+{d[4] / n:.2f} | wrk user "
                    f"{(wrk1.ru_utime - wrk0.ru_utime) * 1e6 / n:4.0f} sys "
                    f"{(wrk1.ru_stime - wrk0.ru_stime) * 1e6 / n:4.0f} us/conn",
                    flush=True,
                )
                if args.strace:
                    print(f"strace -c of {key}, {n} connections:")
                    print((tmp / "strace.txt").read_text())
    finally:
        backends.stop()
    if "haproxy" in rps:
        for key in keys:
            if key != "haproxy" and len(rps[key]) == len(rps["haproxy"]):
                ratios = [a / b for a, b in zip(rps[key], rps["haproxy"], strict=True) if b]
                print(
                    f"{key}/haproxy conn/s: median of per-round ratios "
                    f"{statistics.median(ratios):.2f} ({', '.join(f'{r:.2f}' for r in ratios)})"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
