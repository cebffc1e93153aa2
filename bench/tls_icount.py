"""Instructions per HTTPS request of a real load balancer process, under callgrind:
`python -m bench.tls_icount [--close] [--plain] [--contender haproxy] [--src DIR] [-n N]`.

CPU time per request from /proc moves with whatever else the machine runs (the same
process measured twice differed by 30% on the shared machine); instructions do not. The
contender (rota from `--src`, default this tree's src/, or HAProxy) runs under
`valgrind --tool=callgrind` with the configuration of `bench.tls` in front of three nginx
backends; a Python `ssl` client sends 50 warm-up requests, the counters are zeroed
(`callgrind_control -z`), N requests follow (keep-alive on one connection, or with
`--close` a new TLS connection, full handshake, for each), and the counters are dumped.
User-space instructions only: the kernel's share (syscalls, TCP) is not counted.

`--plain` runs the same process, configuration and client without TLS (the certificate
left out of the listener): the difference from the default run is what TLS costs per
request in the whole process, the event loop's part included (bench.icount counts rota's
Python alone, with in-memory transports, so it cannot answer that).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.callgrind import counted, stop
from bench.contenders import nginx_backends
from bench.machine import require_current_build
from bench.procs import LOOPBACK, free_port
from bench.tls_contenders import CONNS, CONTENDERS, make_cert, rota_builder

ROOT = Path(__file__).resolve().parents[1]
REQUEST = b"GET / HTTP/1.1\r\nHost: b\r\n\r\n"
REQUEST_CLOSE = b"GET / HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n"


def exchange(port: int, requests: int, close: bool, plain: bool = False) -> None:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection((LOOPBACK, port), timeout=30) as raw,
        contextlib.nullcontext(raw) if plain else ctx.wrap_socket(raw) as tls,
    ):
        for _ in range(requests):
            tls.sendall(REQUEST_CLOSE if close else REQUEST)
            answer = b""
            while not answer.endswith(b"ok\n"):  # the backends answer "ok\n"
                data = tls.recv(65536)
                if not data:
                    break
                answer += data
            if not answer.startswith(b"HTTP/1.1 200"):
                raise SystemExit(f"tls_icount: unexpected answer {answer[:100]!r}")


def run(port: int, n: int, close: bool, plain: bool = False) -> None:
    if close:
        for _ in range(n):
            exchange(port, 1, True, plain)
    else:
        exchange(port, n, False, plain)


def without_tls(contender: str, root: Path) -> None:
    """Rewrite the contender's configuration so that its listener speaks plain HTTP."""
    if contender == "rota":
        conf = root / "rota.toml"
        conf.write_text(re.sub(r"^tls = .*\n", "", conf.read_text(), flags=re.MULTILINE))
    else:
        conf = root / "haproxy.cfg"
        conf.write_text(re.sub(r" ssl crt \S+ alpn \S+", "", conf.read_text()))


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.tls_icount", description=__doc__)
    p.add_argument("--close", action="store_true", help="a new TLS connection per request")
    p.add_argument("--contender", default="rota", choices=["rota", "haproxy"])
    p.add_argument("--plain", action="store_true", help="the same without TLS, for the difference")
    p.add_argument("--src", default=str(ROOT / "src"), help="rota's source tree to run")
    p.add_argument("-n", type=int, help="requests counted (2000, or 300 with --close)")
    args = p.parse_args()
    if args.contender == "rota":
        require_current_build("bench.tls_icount", Path(args.src))
    n = args.n or (300 if args.close else 2000)
    os.environ["PATH"] = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    root = Path(tempfile.mkdtemp(prefix="rota-tls-icount-"))
    backends, ports = nginx_backends(root, CONNS)
    cert = make_cert(root)
    port = free_port()
    if args.contender == "rota":
        argv, env = rota_builder("uvloop")(root, port, ports, cert)
        env["PYTHONPATH"] = args.src
        env["PYTHONHASHSEED"] = "0"
    else:
        argv, env = CONTENDERS[args.contender][1](root, port, ports, cert)
    if args.plain:
        without_tls(args.contender, root)
    plain = args.plain
    out = root / "callgrind.out"
    backends.start()
    with open(root / "valgrind.log", "w") as log:
        proc = subprocess.Popen(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *argv],
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                run(port, 1, args.close, plain)
                break
            except (OSError, ssl.SSLError):
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise SystemExit(f"tls_icount: {args.contender} did not start") from None
                time.sleep(0.5)
        run(port, 50, args.close, plain)
        time.sleep(0.5)
        with counted(proc.pid, out, "tls_icount") as count:
            run(port, n, args.close, plain)
        mode = "new TLS connection per request" if args.close else "keep-alive over TLS"
        if plain:
            mode = "new connection per request" if args.close else "keep-alive, plain HTTP"
        print(f"{args.contender}: {mode}: {count.instructions / n:,.0f} instructions per request")
    finally:
        stop(proc)
        backends.stop()


if __name__ == "__main__":
    sys.exit(main())
