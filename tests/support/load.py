"""A bounded load of HTTP/1.1 requests from threads of the test process, counting what a
user would notice: requests answered, requests failed, connections refused.

Two kinds of client run side by side:
- keep-alive clients send request after request on one connection. When rota closes an idle
  keep-alive connection (a drain does), a request sent at that moment meets a closed
  connection with no byte of an answer: like every HTTP client (RFC 9112 9.3.1), the client
  then retries that idempotent GET once on a new connection. These retries are counted
  (`retried`), never hidden: a retry that fails too is a failure.
- one-shot clients open a new connection for every request (`Connection: close`).

Every loop is bounded by `limit` requests per client and by `seconds`.
"""

from __future__ import annotations

import collections
import errno
import socket
import threading
import time

from tests.support.http import Client


class Load:
    def __init__(
        self,
        port: int,
        keepalive: int = 2,
        fresh: int = 2,
        limit: int = 20000,
        seconds: float = 120.0,
        path: str = "/",
    ) -> None:
        self.port = port
        self.limit = limit
        self.path = path
        self.deadline = time.monotonic() + seconds
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.ok = 0
        self.retried = 0
        self.refused = 0
        self.failures: list[str] = []
        self.served: collections.Counter[str] = collections.Counter()
        self.threads = [
            threading.Thread(target=self._keepalive, daemon=True) for _ in range(keepalive)
        ] + [threading.Thread(target=self._fresh, daemon=True) for _ in range(fresh)]

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=30)

    @property
    def failed(self) -> int:
        return len(self.failures)

    def wait_for(self, count: int, timeout: float = 30.0) -> None:
        """Wait until `count` more requests have been answered (bounded)."""
        with self.lock:
            target = self.ok + count
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self.lock:
                if self.ok >= target or self.failures:
                    return
            time.sleep(0.01)

    def summary(self) -> str:
        return (
            f"ok {self.ok}, failed {self.failed}, refused {self.refused}, "
            f"retried {self.retried}, served {dict(self.served)}; {self.failures[:5]}"
        )

    def _running(self, n: int) -> bool:
        return n < self.limit and not self.stopping.is_set() and time.monotonic() < self.deadline

    def _count(self, body: str) -> None:
        with self.lock:
            self.ok += 1
            self.served[body] += 1

    def _fail(self, what: str) -> None:
        with self.lock:
            self.failures.append(what)

    def _keepalive(self) -> None:
        client: Client | None = None
        n = 0
        while self._running(n):
            n += 1
            fresh = client is None
            try:
                if client is None:
                    client = Client(self.port)
                answer = client.request("GET", self.path, headers={"Host": "load"})
            except OSError as exc:
                stale = not fresh and _nothing_received(client, exc)
                if client is not None:
                    client.close()
                client = None
                if not stale:
                    self._refused_or_failed(exc)
                    continue
                # A reused connection closed under the request: retry once, fresh.
                with self.lock:
                    self.retried += 1
                try:
                    client = Client(self.port)
                    answer = client.request("GET", self.path, headers={"Host": "load"})
                except OSError as again:
                    if client is not None:
                        client.close()
                    client = None
                    self._refused_or_failed(again)
                    continue
            if answer.status != 200:
                self._fail(f"status {answer.status}")
            else:
                self._count(answer.body.decode().strip())
            if (answer.header("connection") or "").lower() == "close":
                client.close()
                client = None
        if client is not None:
            client.close()

    def _fresh(self) -> None:
        n = 0
        while self._running(n):
            n += 1
            try:
                with Client(self.port) as client:
                    answer = client.request(
                        "GET", self.path, headers={"Host": "load", "Connection": "close"}
                    )
            except OSError as exc:
                self._refused_or_failed(exc)
                continue
            if answer.status != 200:
                self._fail(f"status {answer.status}")
            else:
                self._count(answer.body.decode().strip())

    def _refused_or_failed(self, exc: OSError) -> None:
        if exc.errno == errno.ECONNREFUSED:
            with self.lock:
                self.refused += 1
        self._fail(f"{type(exc).__name__}: {exc}")


def _nothing_received(client: Client | None, exc: OSError) -> bool:
    """The connection was closed under the request before a byte of the answer came."""
    if client is None or client.buf:
        return False
    closed = isinstance(exc, ConnectionResetError | BrokenPipeError)
    return closed or "before a response head" in str(exc)


def refused(port: int) -> bool:
    """Whether a new connection to 127.0.0.1:port is refused."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            return False
    except ConnectionRefusedError:
        return True
