"""Good clients beside a slow-loris flood: `python -m bench.flood [--slow N] [--good N]`.

One `rota backend`; in front of it, one at a time, rota (1 worker) and HAProxy (1 thread),
both capped at the same number of client connections (`limits.max_connections`,
`maxconn`). The bench opens as many slow-loris sockets as the cap (the issue's 10,000, or
fewer if the open-files hard limit cannot give HAProxy two fds per connection; each sends
part of a request head, then nothing), then makes `--good`
requests on fresh connections, 16 at a time, each bounded at 10 s. Reported per
contender: how many were answered 200, p50 and p99 of their latency. At the cap both stop
accepting (new clients wait in the listen backlog); rota first closes the oldest
connection still sending a head or idle in keep-alive to let a waiting client in. The
machine may be shared: compare within one run.

Every process is started here and stopped by PID in a `finally`.
"""

from __future__ import annotations

import argparse
import json
import resource
import socket
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.contenders import haproxy_conf
from bench.machine import require_current_build
from bench.procs import LOOPBACK, Proc, free_ports, wait_ready

PARTIAL_HEAD = b"GET /slow HTTP/1.1\r\nHost: a\r\nX-Slow: "


def good_request(port: int) -> tuple[int, float]:
    start = time.monotonic()
    try:
        with socket.create_connection((LOOPBACK, port), timeout=10) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := s.recv(4096):
                data += chunk
    except OSError:
        return 0, time.monotonic() - start
    status = int(data[9:12]) if data.startswith(b"HTTP/1.1 ") else 0
    return status, time.monotonic() - start


def run(port: int, slow_n: int, good_n: int) -> tuple[int, float, float]:
    slow: list[socket.socket] = []
    try:
        for _ in range(slow_n):
            try:
                s = socket.create_connection((LOOPBACK, port), timeout=5)
                s.sendall(PARTIAL_HEAD)
            except OSError:
                break
            slow.append(s)
        time.sleep(1.0)  # let the proxy take them in
        with ThreadPoolExecutor(16) as pool:
            results = list(pool.map(good_request, [port] * good_n))
    finally:
        for s in slow:
            s.close()
    ok = sum(1 for status, _ in results if status == 200)
    times = sorted(t for _, t in results)
    p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
    return ok, statistics.median(times), p99


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--slow", type=int, help="default: 10,000, or what the fd limit allows")
    p.add_argument("--good", type=int, default=1000)
    args = p.parse_args()
    require_current_build("bench.flood")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if args.slow is None:
        # HAProxy wants 2 fds per connection of its maxconn (client and server side) and a
        # few more, and cannot start if the hard limit is below that: 20,000 here, so 9,900.
        args.slow = min(10_000, (hard - 200) // 2)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    rota_bin = str(Path(sys.executable).with_name("rota"))
    backend_port, rota_port, haproxy_port = free_ports(3)
    lines = []
    with tempfile.TemporaryDirectory(prefix="flood-") as tmp:
        work = Path(tmp)
        config = work / "rota.json"
        config.write_text(
            json.dumps(
                {
                    "server_list": [{"id": 1, "host": LOOPBACK, "port": backend_port}],
                    "limits": {"max_connections": args.slow},
                    "timeouts": {"header": 60},
                }
            )
        )
        (work / "haproxy.cfg").write_text(
            haproxy_conf("http", haproxy_port, [backend_port], args.slow)
        )
        rota_lb = [rota_bin, "lb", "--host", LOOPBACK]
        argvs = {
            "rota": [*rota_lb, "--port", str(rota_port), "--config", str(config)],
            "haproxy": ["haproxy", "-db", "-f", str(work / "haproxy.cfg")],
        }
        ports = {"rota": rota_port, "haproxy": haproxy_port}
        backend = Proc(
            "backend", [rota_bin, "backend", "--host", LOOPBACK, "--port", str(backend_port)], work
        )
        try:
            backend.start()
            wait_ready(backend, backend_port)
            for key, argv in argvs.items():
                with Proc(key, argv, work, nofile_soft=soft) as proc:
                    proc.start()
                    wait_ready(proc, ports[key])
                    ok, p50, p99 = run(ports[key], args.slow, args.good)
                    ms = f"{p50 * 1000:.1f} ms | {p99 * 1000:.1f} ms"
                    lines.append(f"| {key} | {ok} of {args.good} | {ms} |")
        finally:
            backend.stop()
    text = (
        f"{args.slow} slow-loris sockets at a cap of {args.slow} connections, {args.good} good"
        " requests:\n\n| contender | good requests answered 200 | p50 | p99 |\n|---|--:|--:|--:|\n"
        + "\n".join(lines)
    )
    print(text)
    out = Path(__file__).resolve().parents[1] / "docs" / "benchmarks-flood.md"
    doc = __doc__.split("\n\n", 1)[1].split("Every process")[0].strip()
    out.write_text(
        f"# Good clients under a connection flood\n\nWritten by `python -m bench.flood`.\n\n"
        f"{doc}\n\n{text}\n"
    )
    print(f"bench: wrote {out}")


if __name__ == "__main__":
    main()
