"""What one accepted connection costs by each way of making it a transport:
`python -m bench.accept_paths [--loop uvloop|asyncio] [--rounds N]`.

A server with the least protocol there is (answers `200 ok` to any request head and
closes) is started once per variant, `wrk -c50 -H "Connection: close"` runs against it,
and its CPU per connection comes from /proc. The variants:

- `server`: `loop.create_server` (uvloop: libuv's accept loop, in C);
- `task`: rota's accept loop (`add_reader`, up to 64 `accept()` per readiness event),
  then `loop.connect_accepted_socket` run as a Task;
- `step`: the same accept loop, the coroutine's first step run at once and the rest from
  its waiter's callback (`rota.proxy.accepted.connect`), no Task;
- `rota`: rota's `Listener` and `accepted.connect` as they are: `step`, with the accepted
  sockets made without `socket.accept()`'s enum-building property reads
  (`listener.accepted_class`).

The protocol here asks for the peer's address with `get_extra_info` in the `server`
variant (as rota did) and takes it from `accept()` in the others (as rota does now).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
from typing import Any

from bench.machine import require_current_build
from bench.procs import LOOPBACK, free_port

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
VARIANTS = ("server", "task", "step", "rota")


class Answer:
    """Answers the first request head and closes."""

    def __init__(self, peer: object = None) -> None:
        self.peer = peer
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        if self.peer is None:
            self.peer = transport.get_extra_info("peername")

    def data_received(self, data: bytes) -> None:
        if b"\r\n\r\n" in data:
            self.transport.write(RESPONSE)
            self.transport.close()

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        pass


def noop() -> None:
    pass


async def serve(variant: str, port: int) -> None:
    from rota.proxy.accepted import connect
    from rota.proxy.listener import Listener

    loop = asyncio.get_running_loop()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((LOOPBACK, port))
    sock.listen(4096)
    sock.setblocking(False)
    if variant == "server":
        await loop.create_server(Answer, sock=sock, backlog=4096)
    else:
        tasks: set[asyncio.Task[None]] = set()

        async def run(conn: socket.socket, protocol: Answer) -> None:
            await loop.connect_accepted_socket(lambda: protocol, conn)

        def ready() -> None:
            for _ in range(64):
                try:
                    conn, peer = sock.accept()
                except BlockingIOError:
                    return
                if variant == "task":
                    task = loop.create_task(run(conn, Answer(peer)))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                else:
                    connect(loop, Answer(peer), conn, noop)

        if variant == "rota":
            Listener(loop, [sock], lambda c, p: connect(loop, Answer(p), c, noop), 1 << 30).start()
        else:
            loop.add_reader(sock.fileno(), ready)
    print("ready", flush=True)
    await asyncio.Event().wait()


def cpu_ticks(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def measure(variant: str, loop_name: str, seconds: int) -> tuple[float, int]:
    port = free_port()
    argv = [sys.executable, "-m", "bench.accept_paths", "--serve", variant, str(port), loop_name]
    server = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        server.stdout.readline()  # "ready"
        before = cpu_ticks(server.pid)
        wrk = ["wrk", "-t1", "-c50", f"-d{seconds}s", "-H", "Connection: close"]
        out = subprocess.run(
            [*wrk, f"http://{LOOPBACK}:{port}/"],
            capture_output=True,
            text=True,
            timeout=seconds + 30,
            check=True,
        ).stdout
        ticks = cpu_ticks(server.pid) - before
    finally:
        server.terminate()
        server.wait(timeout=10)
    requests = int(next(line for line in out.splitlines() if "requests in" in line).split()[0])
    return ticks / os.sysconf("SC_CLK_TCK") / requests * 1e6, requests


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--serve":
        _, _, variant, port, loop_name = sys.argv
        if loop_name == "uvloop":
            import uvloop

            uvloop.install()
        asyncio.run(serve(variant, int(port)))
        return
    p = argparse.ArgumentParser(prog="python -m bench.accept_paths")
    p.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--seconds", type=int, default=4)
    args = p.parse_args()
    require_current_build("bench.accept_paths")
    results: dict[str, list[float]] = {v: [] for v in VARIANTS}
    for _ in range(args.rounds):
        for variant in VARIANTS:
            us, requests = measure(variant, args.loop, args.seconds)
            results[variant].append(us)
            print(f"{args.loop} {variant}: {us:.1f} us CPU per connection ({requests} requests)")
            time.sleep(0.5)
    for variant, values in results.items():
        print(f"median {variant}: {statistics.median(values):.1f} us CPU per connection")


if __name__ == "__main__":
    main()
