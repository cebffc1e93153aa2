"""Instructions per request of a real rota process under wrk, counted by callgrind:
`python -m bench.wrk_icount [--close] [--src DIR | --contender haproxy] [--seconds S]`.

`bench.icount` counts rota's own request path over memory transports; what it cannot see
is the event loop's and the accept path's share per connection (uvloop's transports, the
listener, the peer's address), which is what one request per connection pays on top. Here
rota (`--src`, default this tree's src/, with its compiled build) runs under
`valgrind --tool=callgrind` in front of three nginx backends; wrk drives it with 50
connections (`--close`: `Connection: close`, a new connection per request) for a warm-up,
the counters are zeroed (`callgrind_control -z`), wrk runs again for `--seconds`, and the
counters are dumped: user-space instructions over the requests wrk counted. The kernel's
share is not counted; CPU time is `bench.ab`'s and `make bench`'s. Under callgrind rota is
about fifty times slower, so more connections wait per readiness event than at full speed,
and with `--close` the figure moves by a few thousand instructions from run to run (how
many connections each event finds): compare builds by the per-function counts of the
dump it leaves in its temporary directory, or by differences well above that.
`--contender haproxy` counts HAProxy (bench.run's configuration) the same way.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.callgrind import counted, stop
from bench.contenders import haproxy_conf, nginx_backends, rota_config
from bench.machine import require_current_build
from bench.procs import LOOPBACK, free_port, wait_ready
from bench.wrkrun import DONE_LUA, WORKLOADS, WrkError, run_wrk, wrk_argv

ROOT = Path(__file__).resolve().parents[1]


def wrk(port: int, seconds: float, close: bool, script: Path) -> int:
    """Requests wrk completed in `seconds` with 50 connections (bench.run's workloads)."""
    workload = next(w for w in WORKLOADS if w.key == ("close50" if close else "ka50"))
    argv = wrk_argv(workload, seconds, f"http://{LOOPBACK}:{port}/", script)
    return run_wrk(argv, seconds).requests


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.wrk_icount", description=__doc__)
    p.add_argument("--close", action="store_true", help="a new connection per request")
    p.add_argument("--src", default=str(ROOT / "src"), help="rota's source tree to run")
    p.add_argument("--contender", default="rota", choices=["rota", "haproxy"])
    p.add_argument("--seconds", type=float, default=10.0, help="the counted run")
    args = p.parse_args()
    if args.contender == "rota":
        require_current_build("bench.wrk_icount", Path(args.src))
    os.environ["PATH"] = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    root = Path(tempfile.mkdtemp(prefix="rota-wrk-icount-"))
    backends, ports = nginx_backends(root, 1024)
    script = root / "done.lua"
    script.write_text(DONE_LUA)
    config = root / "rota.json"
    config.write_text(rota_config(ports))
    port = free_port()
    out = root / "callgrind.out"
    argv = [sys.executable, "-m", "rota", "lb", "--host", LOOPBACK, "--port", str(port)]
    argv += ["--config", str(config)]
    env = {**os.environ, "PYTHONPATH": args.src, "PYTHONHASHSEED": "0"}
    name = f"rota ({args.src})"
    if args.contender == "haproxy":
        (root / "haproxy.cfg").write_text(haproxy_conf("http", port, ports, 1024))
        argv = ["haproxy", "-db", "-f", str(root / "haproxy.cfg")]
        name = "HAProxy"
    backends.start()
    with open(root / "valgrind.log", "w") as log:
        proc = subprocess.Popen(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *argv],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    try:
        for backend_port in ports:
            wait_ready(backends, backend_port)
        deadline = time.monotonic() + 120
        while True:
            try:
                wrk(port, 1, args.close, script)
                break
            except WrkError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise SystemExit(f"wrk_icount: {name} did not start") from None
                time.sleep(0.5)
        wrk(port, 2, args.close, script)
        with counted(proc.pid, out, "wrk_icount") as count:
            requests = wrk(port, args.seconds, args.close, script)
        mode = "close per request" if args.close else "keep-alive"
        per = count.instructions / requests
        print(f"{name}: {mode}, 50 connections: {per:,.0f} instructions per request")
    finally:
        stop(proc)
        backends.stop()


if __name__ == "__main__":
    main()
