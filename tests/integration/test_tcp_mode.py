"""TCP mode over real loopback sockets: rota and its backends run as separate processes."""

from __future__ import annotations

import asyncio
import json
import os
import resource
import socket
import struct
import threading
import time
import zlib
from collections.abc import Iterator

import pytest

from tests.support.tcp_procs import Procs, procs_fixture

HOST = "127.0.0.1"


@pytest.fixture
def procs() -> Iterator[Procs]:
    yield from procs_fixture()


def connect(port: int, timeout: float = 5.0) -> socket.socket:
    return socket.create_connection((HOST, port), timeout=timeout)


def recv_exactly(sock: socket.socket, n: int) -> bytes:
    data = bytearray()
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise AssertionError(f"EOF after {len(data)} of {n} bytes")
        data += chunk
    return bytes(data)


def recv_line(sock: socket.socket) -> bytes:
    data = bytearray()
    while not data.endswith(b"\n"):
        chunk = sock.recv(1)
        if not chunk:
            raise AssertionError(f"EOF in line {bytes(data)!r}")
        data += chunk
    return bytes(data)


def recv_until_eof(sock: socket.socket) -> bytes:
    data = bytearray()
    while chunk := sock.recv(65536):
        data += chunk
    return bytes(data)


def read_at_close(sock: socket.socket) -> bytes:
    """What a read returns on a connection the other side closed: b"" for a FIN, and b""
    for an RST too (both count as "closed" where the test says so)."""
    try:
        return sock.recv(1)
    except ConnectionResetError:
        return b""


def dead_port() -> int:
    """A port nobody listens on (bound, then closed): connecting to it is refused."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def greeting(port: int) -> str:
    with connect(port) as s:
        return recv_line(s).decode().strip()


def test_echo_through_rota(procs: Procs) -> None:
    echo = procs.echo("a")
    lb = procs.rota_tcp([echo.port])
    with connect(lb.port) as s:
        for message in (b"hello", b"x" * 100_000, b"bye"):
            s.sendall(message)
            assert recv_exactly(s, len(message)) == message


def test_round_robin_per_connection(procs: Procs) -> None:
    backends = [procs.echo(name, "--greet") for name in "abc"]
    lb = procs.rota_tcp([b.port for b in backends])
    assert [greeting(lb.port) for _ in range(6)] == ["a", "b", "c", "a", "b", "c"]


def test_refused_backend_is_skipped(procs: Procs) -> None:
    a, b = procs.echo("a", "--greet"), procs.echo("b", "--greet")
    lb = procs.rota_tcp([a.port, dead_port(), b.port])
    assert [greeting(lb.port) for _ in range(4)] == ["a", "b", "a", "b"]


def test_no_backend_reachable_closes_the_client_at_once(procs: Procs) -> None:
    lb = procs.rota_tcp([dead_port(), dead_port()])
    with connect(lb.port) as s:
        start = time.monotonic()
        assert read_at_close(s) == b""
        assert time.monotonic() - start < 1.0


def test_connect_timeout_moves_on_to_the_next_backend(procs: Procs) -> None:
    # A listener whose accept queue is full drops SYNs: connecting to it hangs.
    with socket.socket() as blackhole:
        blackhole.bind((HOST, 0))
        blackhole.listen(0)
        fillers = []
        for _ in range(3):
            f = socket.socket()
            f.setblocking(False)
            f.connect_ex(blackhole.getsockname())
            fillers.append(f)
        try:
            b = procs.echo("b", "--greet")
            port = int(blackhole.getsockname()[1])
            lb = procs.rota_tcp([port, b.port], "--connect-timeout", "0.3")
            start = time.monotonic()
            assert greeting(lb.port) == "b"
            assert 0.25 < time.monotonic() - start < 2.0
        finally:
            for f in fillers:
                f.close()


def test_half_close_client_still_receives_the_whole_reply(procs: Procs) -> None:
    echo = procs.echo("a")
    lb = procs.rota_tcp([echo.port])
    payload = bytes(range(256)) * 4096  # 1 MiB
    with connect(lb.port) as s:

        def send() -> None:
            s.sendall(payload)
            s.shutdown(socket.SHUT_WR)

        sender = threading.Thread(target=send)
        sender.start()
        reply = recv_until_eof(s)
        sender.join()
    assert reply == payload


def test_backend_reset_resets_the_client_promptly(procs: Procs) -> None:
    echo = procs.echo("a", "--reset-after", "5")
    lb = procs.rota_tcp([echo.port])
    with connect(lb.port) as s:
        s.sendall(b"0123456789")
        start = time.monotonic()
        with pytest.raises(ConnectionResetError):
            recv_until_eof(s)
        assert time.monotonic() - start < 1.0


def test_client_reset_resets_the_backend_promptly(procs: Procs) -> None:
    with socket.socket() as backend_listener:
        backend_listener.bind((HOST, 0))
        backend_listener.listen(8)
        backend_listener.settimeout(5)
        lb = procs.rota_tcp([int(backend_listener.getsockname()[1])])
        client = connect(lb.port)
        client.sendall(b"ping")
        upstream, _ = backend_listener.accept()
        with upstream:
            upstream.settimeout(5)
            assert recv_exactly(upstream, 4) == b"ping"
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            client.close()
            start = time.monotonic()
            with pytest.raises(ConnectionResetError):
                recv_until_eof(upstream)
            assert time.monotonic() - start < 1.0


def test_backend_closing_first_is_a_half_close_for_the_client(procs: Procs) -> None:
    with socket.socket() as backend_listener:
        backend_listener.bind((HOST, 0))
        backend_listener.listen(8)
        backend_listener.settimeout(5)
        lb = procs.rota_tcp([int(backend_listener.getsockname()[1])])
        with connect(lb.port) as client:
            client.sendall(b"a")
            upstream, _ = backend_listener.accept()
            with upstream:
                upstream.settimeout(5)
                assert recv_exactly(upstream, 1) == b"a"
                upstream.sendall(b"reply")
                upstream.shutdown(socket.SHUT_WR)
                assert recv_until_eof(client) == b"reply"
                # The client's direction is still open: it can keep sending.
                client.sendall(b"more")
                assert recv_exactly(upstream, 4) == b"more"
                client.shutdown(socket.SHUT_WR)
                assert recv_until_eof(upstream) == b""


def test_idle_connection_is_closed_and_a_busy_one_is_not(procs: Procs) -> None:
    echo = procs.echo("a")
    lb = procs.rota_tcp([echo.port], "--idle-timeout", "0.4")
    with connect(lb.port) as idle, connect(lb.port) as busy:
        idle.sendall(b"x")
        assert recv_exactly(idle, 1) == b"x"
        start = time.monotonic()
        deadline = start + 1.2
        while time.monotonic() < deadline:
            busy.sendall(b"y")
            assert recv_exactly(busy, 1) == b"y"
            time.sleep(0.1)
        assert read_at_close(idle) == b""
        # Closed no sooner than the timeout; checked at most a sweep late.
        busy.sendall(b"z")
        assert recv_exactly(busy, 1) == b"z"


def test_idle_timeout_is_not_early(procs: Procs) -> None:
    echo = procs.echo("a")
    lb = procs.rota_tcp([echo.port], "--idle-timeout", "0.4")
    with connect(lb.port) as s:
        s.sendall(b"x")
        assert recv_exactly(s, 1) == b"x"
        start = time.monotonic()
        assert read_at_close(s) == b""
        assert 0.35 < time.monotonic() - start < 1.5


def test_max_connections_makes_the_excess_wait_not_fail(procs: Procs) -> None:
    echo = procs.echo("a")
    lb = procs.rota_tcp([echo.port], "--max-connections", "2")
    first, second = connect(lb.port), connect(lb.port)
    for s in (first, second):
        s.sendall(b"1")
        assert recv_exactly(s, 1) == b"1"
    with connect(lb.port) as third:  # the kernel completes the handshake: the backlog
        third.sendall(b"3")
        third.settimeout(0.5)
        with pytest.raises(TimeoutError):
            third.recv(1)
        first.close()
        third.settimeout(5)
        assert recv_exactly(third, 1) == b"3"
    second.close()


@pytest.mark.parametrize("version", [1, 2])
def test_send_proxy_tells_the_backend_the_client_address(procs: Procs, version: int) -> None:
    backend = procs.echo("p", "--proxy")
    lb = procs.rota_tcp([backend.port], "--send-proxy", f"v{version}")
    with connect(lb.port) as s:
        s.sendall(b"after the header")
        info = json.loads(recv_line(s))
        assert recv_exactly(s, 16) == b"after the header"
        client_host, client_port = s.getsockname()[:2]
    assert info["version"] == version
    assert (info["src"], info["sport"]) == (client_host, client_port)
    assert (info["dst"], info["dport"]) == (HOST, lb.port)


def test_accept_proxy_passes_the_front_balancers_client_on(procs: Procs) -> None:
    backend = procs.echo("p", "--proxy")
    lb = procs.rota_tcp([backend.port], "--accept-proxy", "--send-proxy", "v2")
    with connect(lb.port) as s:
        # Address only as text in a header: documentation ranges, no traffic goes there.
        s.sendall(b"PROXY TCP4 203.0.113.7 198.51.100.1 4242 443\r\nhi")
        info = json.loads(recv_line(s))
        assert recv_exactly(s, 2) == b"hi"
    assert info == {
        "version": 2,
        "command": 1,
        "family": 0x11,
        "src": "203.0.113.7",
        "dst": "198.51.100.1",
        "sport": 4242,
        "dport": 443,
    }


def test_accept_proxy_drops_a_client_without_a_valid_header(procs: Procs) -> None:
    backend = procs.echo("a", "--greet")
    lb = procs.rota_tcp([backend.port], "--accept-proxy")
    with connect(lb.port) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        start = time.monotonic()
        try:
            data = recv_until_eof(s)
        except ConnectionResetError:
            data = b""
        assert data == b""  # a greeting would mean a backend was reached
        assert time.monotonic() - start < 1.0


# -- volume ------------------------------------------------------------------------------


def bulk_echo(port: int, total: int) -> tuple[float, int, int, int]:
    """Send `total` bytes through an echo and read them all back, both at once: returns
    (seconds, crc32 sent, crc32 received, bytes received)."""
    block = bytearray(os.urandom(1 << 20))
    sent_crc = 0
    with connect(port, timeout=30) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def send() -> None:
            nonlocal sent_crc
            left = total
            i = 0
            while left > 0:
                block[:8] = i.to_bytes(8, "big")  # every block differs: order matters
                view = memoryview(block)[: min(left, len(block))]
                sent_crc = zlib.crc32(view, sent_crc)
                s.sendall(view)
                left -= len(view)
                i += 1
            s.shutdown(socket.SHUT_WR)

        start = time.monotonic()
        sender = threading.Thread(target=send)
        sender.start()
        buf = bytearray(1 << 20)
        view = memoryview(buf)
        got = 0
        recv_crc = 0
        while n := s.recv_into(view):
            recv_crc = zlib.crc32(view[:n], recv_crc)
            got += n
        sender.join()
        return time.monotonic() - start, sent_crc, recv_crc, got


BULK_BYTES = int(os.environ.get("ROTA_TCP_BULK_BYTES", str(1 << 30)))


def test_bulk_each_way_checksummed_with_bounded_memory(procs: Procs) -> None:
    echo = procs.echo("a")
    lb = procs.rota_tcp([echo.port])
    rss_before = lb.peak_rss_kib()
    seconds, sent_crc, recv_crc, got = bulk_echo(lb.port, BULK_BYTES)
    rss_peak = lb.peak_rss_kib()
    print(
        f"\nbulk: {BULK_BYTES / 2**20:.0f} MiB each way in {seconds:.2f} s "
        f"({BULK_BYTES / 2**20 / seconds:.0f} MiB/s each way); "
        f"rota peak RSS {rss_before / 1024:.1f} -> {rss_peak / 1024:.1f} MiB"
    )
    assert got == BULK_BYTES
    assert recv_crc == sent_crc
    # Back-pressure bounds rota's buffers to a few write buffers, whatever the volume.
    assert rss_peak - rss_before < 64 * 1024


CONCURRENT = 5000


def test_5000_concurrent_connections(procs: Procs) -> None:
    raise_nofile_limit()
    echo = procs.echo("a")
    lb = procs.rota_tcp([echo.port])

    async def one(i: int, opened: asyncio.Event, all_open: asyncio.Event) -> bytes:
        reader, writer = await asyncio.open_connection(HOST, lb.port)
        message = f"{i:08d}".encode()
        writer.write(message)
        reply = await reader.readexactly(8)
        opened.set()
        await all_open.wait()  # hold it open until every connection is up
        writer.write_eof()
        rest = await reader.read()
        writer.close()
        return reply + rest

    async def run() -> tuple[list[bytes], float]:
        all_open = asyncio.Event()
        counter = 0
        done = asyncio.Event()

        async def tracked(i: int) -> bytes:
            nonlocal counter
            opened = asyncio.Event()
            task = asyncio.ensure_future(one(i, opened, all_open))
            await opened.wait()
            counter += 1
            if counter == CONCURRENT:
                done.set()
            return await task

        start = time.monotonic()
        async with asyncio.timeout(60):
            tasks = [asyncio.ensure_future(tracked(i)) for i in range(CONCURRENT)]
            await done.wait()
            elapsed = time.monotonic() - start
            all_open.set()
            return list(await asyncio.gather(*tasks)), elapsed

    replies, elapsed = asyncio.run(run())
    print(f"\n{CONCURRENT} concurrent connections open and echoing in {elapsed:.2f} s")
    assert replies == [f"{i:08d}".encode() for i in range(CONCURRENT)]


def raise_nofile_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 4 * CONCURRENT
    if soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        if target < wanted:
            pytest.skip(f"RLIMIT_NOFILE hard limit {hard} < {wanted}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
