"""TLS termination on an HTTP listener, seen from real clients (Python's ssl, curl,
openssl s_client): the certificate SNI picks, versions, ALPN, resumption,
X-Forwarded-Proto, and what a client that does not speak TLS properly gets."""

from __future__ import annotations

import contextlib
import hashlib
import re
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme

from tests.support.procs import free_port
from tests.support.tcp_procs import Proc, Procs
from tests.support.tls import (
    Issued,
    get,
    issue,
    one_pool_site,
    read_response,
    shake,
    start_rota,
    trusting,
)

BLOCK = bytes(range(256)) * 256  # the backend's /bytes pattern, 64 KiB


@dataclass
class Site:
    ca: trustme.CA
    rota: Proc
    port: int
    ecdsa: Issued
    rsa: Issued
    wild: Issued

    def log(self) -> str:
        return "".join(self.rota.output)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    where = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    ecdsa = issue(ca, where, "a-ecdsa", "a.example.com", "www.a.example.com", ecdsa=True)
    rsa = issue(ca, where, "a-rsa", "a.example.com", "www.a.example.com")
    wild = issue(ca, where, "b", "*.b.example.com")
    procs = Procs()
    try:
        backend_port = free_port()
        procs.start("-m", "rota", "backend", "--port", str(backend_port), "--name", "one")
        rota = start_rota(
            procs,
            where / "rota.toml",
            one_pool_site([ecdsa, rsa, wild], backend_port, listener="timeouts = { header = 1 }"),
        )
        yield Site(ca, rota, rota.port, ecdsa, rsa, wild)
    finally:
        procs.stop_all()


def test_sni_picks_the_certificate_exact_then_wildcard(site: Site) -> None:
    ctx = trusting(site.ca)
    exact, answer, _ = shake(site.port, ctx, "www.a.example.com", request=get("a"))
    assert exact.names == ["a.example.com", "www.a.example.com"]
    assert answer.startswith(b"HTTP/1.1 200")
    wildcard, answer, _ = shake(site.port, ctx, "x.b.example.com", request=get("x"))
    assert wildcard.serial == site.wild.serial
    assert answer.startswith(b"HTTP/1.1 200")


def test_no_sni_or_an_unknown_name_gets_the_first_certificate(site: Site) -> None:
    ctx = trusting(site.ca)
    ctx.check_hostname = False
    for sni in (None, "nowhere.example.org", "a.b.c.example.com"):
        found, _, _ = shake(site.port, ctx, sni)
        assert found.names == ["a.example.com", "www.a.example.com"], sni
        assert found.key_type == "ECDSA"


@pytest.mark.parametrize(
    ("cipher", "kind"),
    [("ECDHE-ECDSA-AES128-GCM-SHA256", "ECDSA"), ("ECDHE-RSA-AES128-GCM-SHA256", "RSA")],
)
def test_ecdsa_and_rsa_certificates_side_by_side(site: Site, cipher: str, kind: str) -> None:
    ctx = trusting(site.ca)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(cipher)
    found, answer, _ = shake(site.port, ctx, "a.example.com", request=get("a"))
    assert found.key_type == kind
    assert found.serial == (site.ecdsa if kind == "ECDSA" else site.rsa).serial
    assert answer.startswith(b"HTTP/1.1 200")


def test_alpn_answers_http_1_1(site: Site) -> None:
    ctx = trusting(site.ca)
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    found, _, _ = shake(site.port, ctx, "a.example.com")
    assert found.alpn == "http/1.1"
    assert found.version == "TLSv1.3"


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_sessions_resume(site: Site, version: ssl.TLSVersion) -> None:
    ctx = trusting(site.ca)
    ctx.minimum_version = ctx.maximum_version = version
    # A request first: TLS 1.3 tickets arrive after the handshake, with the first data.
    first, _, session = shake(site.port, ctx, "a.example.com", request=get("a"))
    assert not first.reused and session is not None
    again, answer, _ = shake(site.port, ctx, "a.example.com", session, get("a"))
    assert again.reused
    assert answer.startswith(b"HTTP/1.1 200")


def test_tls_1_3_tickets_arrive_with_the_first_answer_in_one_send(site: Site) -> None:
    # rota holds TLS 1.3's session tickets back from the handshake's end and sends them
    # with the first answer, in one send: the client's first read after its Finished and
    # request holds both (before, the tickets came alone, as soon as the Finished arrived),
    # and the session they carry resumes.
    ctx = trusting(site.ca)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(incoming, outgoing, server_hostname="a.example.com")
    with socket.create_connection(("127.0.0.1", site.port), timeout=10) as raw:
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                raw.sendall(outgoing.read())
                data = raw.recv(65536)
                assert data, "closed during the handshake"
                incoming.write(data)
        raw.sendall(outgoing.read())  # the client's Finished
        time.sleep(0.2)  # rota has the Finished alone: before, the tickets left then
        tls.write(get("a"))
        raw.sendall(outgoing.read())
        incoming.write(raw.recv(65536))  # rota's first bytes after the handshake
        answer = b""
        with contextlib.suppress(ssl.SSLWantReadError):
            while chunk := tls.read(65536):
                answer += chunk
    assert answer.startswith(b"HTTP/1.1 200")
    assert tls.session is not None and tls.session.has_ticket
    again, _, _ = shake(site.port, ctx, "a.example.com", tls.session, get("a"))
    assert again.reused


def test_forwarded_requests_say_https(site: Site) -> None:
    _, answer, _ = shake(site.port, trusting(site.ca), "a.example.com", request=get("a"))
    assert b"X-Forwarded-Proto: https" in answer
    assert b"X-Forwarded-Proto: http\n" not in answer


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_gets_an_answer(site: Site, tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    site.ca.cert_pem.write_to_path(ca)
    done = subprocess.run(
        [
            "curl",
            "-sS",
            "--cacert",
            str(ca),
            "--max-time",
            "10",
            "--resolve",
            f"a.example.com:{site.port}:127.0.0.1",
            f"https://a.example.com:{site.port}/",
        ],
        capture_output=True,
        timeout=20,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == b"Hello from one\n"


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_tls_1_1_is_refused_and_1_2_accepted(site: Site) -> None:
    def s_client(flag: str) -> subprocess.CompletedProcess[bytes]:
        # SECLEVEL=0: this client would offer TLS 1.1; whether it is used is rota's call.
        return subprocess.run(
            [
                "openssl",
                "s_client",
                "-connect",
                f"127.0.0.1:{site.port}",
                "-servername",
                "a.example.com",
                flag,
                "-cipher",
                "DEFAULT:@SECLEVEL=0",
            ],
            input=b"",
            capture_output=True,
            timeout=20,
        )

    old = s_client("-tls1_1")
    assert old.returncode != 0
    assert b"no peer certificate available" in old.stdout
    ok = s_client("-tls1_2")
    assert ok.returncode == 0, ok.stderr
    assert b"Protocol  : TLSv1.2" in ok.stdout
    assert b"Cipher is (NONE)" not in ok.stdout


def test_a_large_download_is_byte_exact_with_bounded_memory(site: Site) -> None:
    size = 96 * 1024 * 1024
    before = site.rota.rss_kib()
    ctx = trusting(site.ca)
    with (
        socket.create_connection(("127.0.0.1", site.port), timeout=30) as raw,
        ctx.wrap_socket(raw, server_hostname="a.example.com") as tls,
    ):
        tls.sendall(b"GET /bytes/%d HTTP/1.1\r\nHost: a\r\n\r\n" % size)
        time.sleep(0.5)  # a slow start: rota must stop reading the backend, not buffer
        buf = b""
        while b"\r\n\r\n" not in buf:
            buf += tls.recv(65536)
        head, _, body = buf.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        got = hashlib.sha256(body)
        n = len(body)
        while n < size:
            chunk = tls.recv(1 << 20)
            assert chunk, f"closed after {n} bytes"
            got.update(chunk)
            n += len(chunk)
    want = hashlib.sha256(BLOCK * (size // len(BLOCK)))
    assert n == size
    assert got.hexdigest() == want.hexdigest()
    # Bounded: far less than the body was ever in rota's memory at once.
    assert site.rota.peak_rss_kib() - before < 40 * 1024


def test_pipelined_requests_in_many_records_are_all_answered(site: Site) -> None:
    # 20 requests, each its own TLS record, all sent before reading: rota decrypts every
    # record that arrived in one read and must pass all of them on, past its pipeline
    # depth (8), and answer each.
    ctx = trusting(site.ca)
    with (
        socket.create_connection(("127.0.0.1", site.port), timeout=10) as raw,
        ctx.wrap_socket(raw, server_hostname="a.example.com") as tls,
    ):
        for i in range(20):
            tls.sendall(b"GET /?n=%d HTTP/1.1\r\nHost: a\r\n\r\n" % i)
        received = b""
        while received.count(b"HTTP/1.1 200") < 20:
            chunk = tls.recv(65536)
            assert chunk, f"closed after {received.count(b'HTTP/1.1 200')} answers"
            received += chunk
    assert received.count(b"HTTP/1.1 200") == 20


def test_an_upload_in_full_size_records_arrives_whole(site: Site) -> None:
    # 1 MiB and a bit in one sendall: Python's ssl cuts it into full 16 KiB records, many
    # of them in each read rota makes, the last one short. Every byte must reach the
    # backend, which answers with their SHA-256 and count.
    body = bytes(range(256)) * 4096 + b"tail"
    ctx = trusting(site.ca)
    with (
        socket.create_connection(("127.0.0.1", site.port), timeout=10) as raw,
        ctx.wrap_socket(raw, server_hostname="a.example.com") as tls,
    ):
        tls.sendall(
            b"POST /sha256 HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n" % len(body) + body
        )
        answer = read_response(tls)
    assert answer.startswith(b"HTTP/1.1 200")
    assert answer.endswith(f"{hashlib.sha256(body).hexdigest()} {len(body)}\n".encode())


class RecordClient:
    """A TLS client over memory BIOs: it sends ciphertext in whatever pieces a test
    chooses, so a record can be cut between two of rota's reads."""

    def __init__(self, site: Site) -> None:
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = trusting(site.ca).wrap_bio(
            self.incoming, self.outgoing, server_hostname="a.example.com"
        )
        self.sock = socket.create_connection(("127.0.0.1", site.port), timeout=10)
        while True:
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self.sock.sendall(self.outgoing.read())
                self.receive()
        self.sock.sendall(self.outgoing.read())  # the client's Finished
        self.plain = b""

    def receive(self) -> None:
        data = self.sock.recv(65536)
        assert data, "rota closed the connection"
        self.incoming.write(data)

    def record(self, data: bytes) -> bytes:
        """`data` encrypted, as the ciphertext of one record."""
        self.tls.write(data)
        return self.outgoing.read()

    def answers(self, n: int) -> bytes:
        """Read until `n` complete answers of the backend's /request have come."""
        # The backend's answer to /request shows the request: its body begins with it.
        while self.plain.count(b"\r\n\r\nGET /request") < n:
            try:
                self.plain += self.tls.read(65536)
            except ssl.SSLWantReadError:
                self.receive()
        return self.plain


def test_records_cut_between_reads_are_answered(site: Site) -> None:
    client = RecordClient(site)
    try:
        first = client.record(b"GET /request HTTP/1.1\r\nHost: a\r\n\r\n")
        second = client.record(b"GET /request HTTP/1.1\r\nHost: a\r\n\r\n")
        # A record cut after its 5-byte header, then after 10 bytes of its body: rota
        # waits for the rest and answers it then.
        client.sock.sendall(first[:5])
        time.sleep(0.1)
        client.sock.sendall(first[5:15])
        time.sleep(0.1)
        client.sock.sendall(first[15:])
        assert client.answers(1).startswith(b"HTTP/1.1 200")
        # A whole record followed by a piece of the next: the whole one is answered at
        # once (the test waits for that answer before it sends the rest).
        third = client.record(b"GET /request HTTP/1.1\r\nHost: a\r\n\r\n")
        client.sock.sendall(second + third[:20])
        assert client.answers(2).count(b"HTTP/1.1 200") == 2
        client.sock.sendall(third[20:])
        assert client.answers(3).count(b"HTTP/1.1 200") == 3
    finally:
        client.sock.close()


def test_a_client_close_notify_is_answered_with_one(site: Site) -> None:
    ctx = trusting(site.ca)
    with socket.create_connection(("127.0.0.1", site.port), timeout=10) as raw:
        tls = ctx.wrap_socket(raw, server_hostname="a.example.com")
        tls.sendall(get("a"))
        received = b""
        while b"\r\n\r\n" not in received:
            received += tls.recv(65536)
        assert received.startswith(b"HTTP/1.1 200")
        time.sleep(0.2)  # the rest of the answer has arrived
        plain = tls.unwrap()  # sends close_notify, returns once rota's has come back
        plain.settimeout(10)
        assert plain.recv(100) == b""  # and rota closed the connection


def _closed_without_an_answer(sock: socket.socket) -> bytes:
    sock.settimeout(10)
    received = b""
    try:
        while chunk := sock.recv(4096):
            received += chunk
    except ConnectionResetError:
        pass
    return received


def test_plain_http_to_the_tls_port_is_closed_not_passed_on(site: Site) -> None:
    with socket.create_connection(("127.0.0.1", site.port), timeout=10) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        received = _closed_without_an_answer(s)
    assert b"Hello from" not in received
    assert not received.startswith(b"HTTP/1.1 200")


def _hello(sni: str) -> bytes:
    """A real ClientHello, from Python's ssl through memory buffers."""
    ctx = ssl.create_default_context()
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname=sni)
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    return outgoing.read()


@pytest.mark.parametrize(
    "what",
    [
        b"\x00\x01garbage" * 100,
        b"\x16\x03\x01\x40\x00\x01\xff\xff\xff"
        + b"\x00" * 16375
        + b"\x16\x03\x01\x40\x00"
        + b"\x00" * 16384,  # a ClientHello claiming 16 MiB
        "truncated",
    ],
    ids=["garbage", "huge", "truncated"],
)
def test_bad_handshakes_are_closed_and_counted(site: Site, what: bytes | str) -> None:
    data = _hello("a.example.com")[:100] if what == "truncated" else what
    assert isinstance(data, bytes)
    with socket.create_connection(("127.0.0.1", site.port), timeout=10) as s:
        s.sendall(data)  # the truncated one then waits: the header timeout (1 s) closes it
        _closed_without_an_answer(s)
    # ... and rota serves the next client as ever.
    _, answer, _ = shake(site.port, trusting(site.ca), "a.example.com", request=get("a"))
    assert answer.startswith(b"HTTP/1.1 200")


def test_failed_handshakes_are_logged_per_reason_at_most_once_a_second(site: Site) -> None:
    time.sleep(1.2)  # the lines of earlier tests' failures are out
    start = len(site.rota.output)
    began = time.monotonic()
    for _ in range(20):
        with socket.create_connection(("127.0.0.1", site.port), timeout=10) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            _closed_without_an_answer(s)
    pattern = re.compile(r"listener web: tls: (\d+) handshakes? failed: (.*)")
    deadline = time.monotonic() + 5
    while True:
        lines = [m for m in map(pattern.search, site.rota.output[start:]) if m]
        counted = sum(n for m in lines for why, n in _reasons(m.group(2)) if why == "http request")
        if counted >= 20 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert counted == 20
    # One line per second at most (each sums up its second), never one per failure.
    assert len(lines) <= time.monotonic() - began + 1
    assert len(lines) < 20


def _reasons(text: str) -> list[tuple[str, int]]:
    out = []
    for part in text.split(", "):
        why, _, n = part.rpartition(" ")
        out.append((why, int(n)))
    return out


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_a_client_that_stops_reading_holds_up_nobody(
    site: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, loop: str
) -> None:
    """A TLS client that asks for a large body and reads none of it fills its socket's
    buffers; rota must wait for it without waiting on it (non-blocking sockets), while
    every other client is served. On both event loops: uvloop's add_reader makes a
    socket non-blocking by itself, asyncio's does not."""
    if loop == "asyncio":
        monkeypatch.setenv("ROTA_LOOP", "asyncio")
    procs = Procs()
    try:
        backend = free_port()
        procs.start("-m", "rota", "backend", "--port", str(backend), "--name", "one")
        rota = start_rota(procs, tmp_path / "rota.toml", one_pool_site([site.ecdsa], backend))
        ctx = trusting(site.ca)
        with (
            socket.create_connection(("127.0.0.1", rota.port), timeout=30) as raw,
            ctx.wrap_socket(raw, server_hostname="a.example.com") as stalled,
        ):
            stalled.sendall(b"GET /bytes/%d HTTP/1.1\r\nHost: a\r\n\r\n" % (256 * 1024 * 1024))
            time.sleep(1.0)  # rota has filled what the kernel would buffer for it
            for _ in range(5):
                _, answer, _ = shake(rota.port, ctx, "a.example.com", request=get("a"))
                assert answer.startswith(b"HTTP/1.1 200")
    finally:
        procs.stop_all()
