"""A backend that records every request it receives and answers 200.

Run as a process: `python -m tests.support.recording_backend --port P [--record FILE]`; it
prints `recording backend listening on http://HOST:PORT` when ready. Every request is
recorded as one JSON line (in FILE, flushed per line) and kept in memory:

    {"conn": 3, "event": "request", "method": "POST", "target": "/x", "version": "1.1",
     "fields": [["Host", "a"], ...], "head": "<the head re-serialised>",
     "body": "<first 4 KiB, latin-1>", "body_length": 3, "complete": true}

`complete` is false for a request whose head arrived but whose body never finished (the peer
closed mid-body). `GET /__records` sent straight to this backend (not through the proxy)
returns the in-memory list as JSON and is not recorded; `GET /__reset` clears it.

Heads are re-serialised from httptools' callbacks, not copied: the proxy in front normalises
heads anyway, and what matters to the tests is which requests, fields and bodies arrived.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import IO, Any

import httptools

_BODY_KEEP = 4096


class _State:
    def __init__(self, record: IO[str] | None) -> None:
        self.record = record
        self.records: list[dict[str, Any]] = []
        self.connections = 0

    def add(self, entry: dict[str, Any]) -> None:
        self.records.append(entry)
        if self.record is not None:
            self.record.write(json.dumps(entry) + "\n")
            self.record.flush()


class _Conn(asyncio.Protocol):
    def __init__(self, state: _State) -> None:
        self.state = state
        state.connections += 1
        self.conn = state.connections
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.entry: dict[str, Any] | None = None
        self.url = b""
        self.fields: list[tuple[bytes, bytes]] = []
        self.body = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # Not a tunnel endpoint: refuse the upgrade with a plain response and close.
            self._respond(b"no upgrade here\n", close=True)
        except httptools.HttpParserError as exc:
            self.state.add({"conn": self.conn, "event": "error", "error": str(exc)})
            if self.transport is not None:
                self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.entry is not None and not self.entry["complete"]:
            self.entry["body_length"] = len(self.body)
            self.entry["body"] = bytes(self.body[:_BODY_KEEP]).decode("latin-1")
            self.state.add(self.entry)
            self.entry = None

    # httptools callbacks
    def on_message_begin(self) -> None:
        self.url = b""
        self.fields = []
        self.body = bytearray()

    def on_url(self, piece: bytes) -> None:
        self.url += piece

    def on_header(self, name: bytes, value: bytes) -> None:
        self.fields.append((name, value))

    def on_headers_complete(self) -> None:
        method = self.parser.get_method()
        version = self.parser.get_http_version()
        head = b"%s %s HTTP/%s\r\n" % (method, self.url, version.encode())
        head += b"".join(b"%s: %s\r\n" % field for field in self.fields) + b"\r\n"
        self.entry = {
            "conn": self.conn,
            "event": "request",
            "method": method.decode("latin-1"),
            "target": self.url.decode("latin-1"),
            "version": version,
            "fields": [[n.decode("latin-1"), v.decode("latin-1")] for n, v in self.fields],
            "head": head.decode("latin-1"),
            "body": "",
            "body_length": 0,
            "complete": False,
        }

    def on_body(self, data: bytes) -> None:
        self.body += data

    def on_message_complete(self) -> None:
        entry = self.entry
        self.entry = None
        if entry is None:
            return
        if entry["target"] == "/__records":
            self._respond(json.dumps(self.state.records).encode(), close=False)
            return
        if entry["target"] == "/__reset":
            self.state.records.clear()
            self._respond(b"reset\n", close=False)
            return
        entry["complete"] = True
        entry["body_length"] = len(self.body)
        entry["body"] = bytes(self.body[:_BODY_KEEP]).decode("latin-1")
        self.state.add(entry)
        self._respond(
            b"ok %d\n" % len(self.state.records), close=not self.parser.should_keep_alive()
        )

    def _respond(self, body: bytes, close: bool) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n" % len(body)
        head += b"X-Served-By: recorder\r\n"
        if close:
            head += b"Connection: close\r\n"
        self.transport.write(head + b"\r\n" + body)
        if close:
            self.transport.close()


async def serve(host: str, port: int, record: IO[str] | None) -> None:
    state = _State(record)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _Conn(state), host, port)
    bound = server.sockets[0].getsockname()[1]
    print(f"recording backend listening on http://{host}:{bound}", flush=True)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--record", help="append one JSON line per request to this file")
    args = parser.parse_args(argv)
    record = open(args.record, "a", encoding="utf-8") if args.record else None  # noqa: SIM115
    try:
        asyncio.run(serve(args.host, args.port, record))
    except KeyboardInterrupt:
        pass
    finally:
        if record is not None:
            record.close()


if __name__ == "__main__":
    main()
