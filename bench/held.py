"""Held connections: many idle keep-alive clients, the load balancer's memory for them, and
whether a fresh client is still served quickly while they are held.

Each held connection completes one request first, so it is a real keep-alive connection the
load balancer has parsed a request on, not just a socket in its accept queue.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bench.procs import LOOPBACK

REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"

# Connections opened at once. Kept under common listen backlogs (asyncio's default is 100):
# an overflowing accept queue drops SYNs, and the client then waits 1 s to retry.
OPEN_CONCURRENCY = 64
PER_CONN_TIMEOUT_S = 10.0
FRESH_REQUESTS = 20


@dataclass(frozen=True)
class HeldResult:
    contender: str
    wanted: int
    held: int  # completed one request and still open when the memory was read
    failures: dict[str, int] = field(default_factory=dict)  # exception name -> count
    open_seconds: float = 0.0
    rss_before_kib: int = 0
    rss_held_kib: int = 0
    rss_after_close_kib: int = 0
    fresh_first_ms: float | None = None  # connect + first request of a fresh client
    fresh_p50_ms: float | None = None  # its next requests on the same connection
    fresh_max_ms: float | None = None
    note: str = ""

    @property
    def kib_per_conn(self) -> float | None:
        if self.held <= 0:
            return None
        return (self.rss_held_kib - self.rss_before_kib) / self.held


class BadResponse(Exception):
    pass


def content_length(head: bytes) -> int:
    """Content-Length of a response head; the benchmark backends always send one."""
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value.strip())
    raise BadResponse("response without Content-Length")


async def _request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(REQUEST)
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise BadResponse(head.split(b"\r\n", 1)[0].decode(errors="replace"))
    await reader.readexactly(content_length(head))


Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def _open(port: int, gate: asyncio.Semaphore) -> Conn:
    async with gate:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(LOOPBACK, port), PER_CONN_TIMEOUT_S
        )
        try:
            await asyncio.wait_for(_request(reader, writer), PER_CONN_TIMEOUT_S)
        except BaseException:
            writer.close()
            raise
        return reader, writer


async def _fresh_client(port: int) -> tuple[float, list[float]]:
    start = time.perf_counter()
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(LOOPBACK, port), PER_CONN_TIMEOUT_S
    )
    try:
        await asyncio.wait_for(_request(reader, writer), PER_CONN_TIMEOUT_S)
        first = (time.perf_counter() - start) * 1e3
        times = []
        for _ in range(FRESH_REQUESTS):
            t0 = time.perf_counter()
            await asyncio.wait_for(_request(reader, writer), PER_CONN_TIMEOUT_S)
            times.append((time.perf_counter() - t0) * 1e3)
        return first, times
    finally:
        writer.close()


async def _close_all(conns: list[Conn]) -> None:
    for _, writer in conns:
        writer.close()
    await asyncio.wait_for(
        asyncio.gather(*(w.wait_closed() for _, w in conns), return_exceptions=True), 30
    )


async def hold_connections(
    contender: str, port: int, wanted: int, rss_kib: Callable[[], int], budget_s: float = 180
) -> HeldResult:
    """Open `wanted` keep-alive connections to 127.0.0.1:port, measure, then close them all.

    `rss_kib` reads the load balancer's resident memory (summed over its processes).
    """
    rss_before = rss_kib()
    gate = asyncio.Semaphore(OPEN_CONCURRENCY)
    start = time.monotonic()
    results = await asyncio.wait_for(
        asyncio.gather(*(_open(port, gate) for _ in range(wanted)), return_exceptions=True),
        budget_s,
    )
    open_seconds = time.monotonic() - start
    conns: list[Conn] = []
    failures: dict[str, int] = {}
    for res in results:
        if isinstance(res, BaseException):
            name = type(res).__name__
            failures[name] = failures.get(name, 0) + 1
        else:
            conns.append(res)
    try:
        await asyncio.sleep(1.0)  # let the load balancer settle (and close, if it does)
        held = sum(1 for reader, _ in conns if not reader.at_eof())
        rss_held = rss_kib()
        first: float | None = None
        times: list[float] = []
        note = ""
        try:
            first, times = await _fresh_client(port)
        except (OSError, TimeoutError, BadResponse, asyncio.IncompleteReadError) as exc:
            note = f"fresh client failed while connections were held: {exc!r}"
    finally:
        await _close_all(conns)
    await asyncio.sleep(1.0)
    return HeldResult(
        contender=contender,
        wanted=wanted,
        held=held,
        failures=failures,
        open_seconds=open_seconds,
        rss_before_kib=rss_before,
        rss_held_kib=rss_held,
        rss_after_close_kib=rss_kib(),
        fresh_first_ms=first,
        fresh_p50_ms=statistics.median(times) if times else None,
        fresh_max_ms=max(times) if times else None,
        note=note,
    )
