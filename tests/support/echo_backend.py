"""A TCP echo backend for TCP-mode tests, run as a process:

    python -m tests.support.echo_backend --port 0 [--name NAME] [--greet] [--proxy]
        [--reset-after N]

Prints `echo NAME listening on 127.0.0.1:PORT` when ready (port 0 picks a free port and the
line gives the real one). Echoes every byte back with back-pressure; on EOF from the client
it finishes sending and then half-closes (write_eof), so a client that shut down its write
side still gets the whole reply.

--greet        first send "NAME\\n" (tests of which backend served a connection)
--proxy        expect a PROXY header (v1 or v2), send one JSON line describing it, then echo.
               Parsed by the small independent parser below, not rota's own.
--reset-after  after N bytes received, reset the connection (RST) instead of echoing on
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import socket
import struct
import sys
from typing import cast

V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


def parse_proxy(buf: bytes) -> tuple[dict[str, object], int] | None:
    """Deliberately simple and separate from rota.proxy_protocol: a second opinion."""
    if buf.startswith(b"PROXY "):
        end = buf.find(b"\r\n")
        if end < 0:
            return None
        fields = buf[:end].decode("ascii").split(" ")
        info: dict[str, object] = {"version": 1, "proto": fields[1]}
        if fields[1] in ("TCP4", "TCP6"):
            info.update(src=fields[2], dst=fields[3], sport=int(fields[4]), dport=int(fields[5]))
        return info, end + 2
    if len(buf) < 16:
        return None
    if buf[:12] != V2_SIGNATURE:
        raise ValueError("not a PROXY header")
    ver_cmd, fam, length = struct.unpack("!BBH", buf[12:16])
    if len(buf) < 16 + length:
        return None
    body = buf[16 : 16 + length]
    info = {"version": 2, "command": ver_cmd & 0x0F, "family": fam}
    if fam == 0x11:
        info.update(
            src=str(ipaddress.IPv4Address(body[0:4])),
            dst=str(ipaddress.IPv4Address(body[4:8])),
            sport=struct.unpack("!H", body[8:10])[0],
            dport=struct.unpack("!H", body[10:12])[0],
        )
    elif fam == 0x21:
        info.update(
            src=str(ipaddress.IPv6Address(body[0:16])),
            dst=str(ipaddress.IPv6Address(body[16:32])),
            sport=struct.unpack("!H", body[32:34])[0],
            dport=struct.unpack("!H", body[34:36])[0],
        )
    return info, 16 + length


class Echo(asyncio.Protocol):
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.transport: asyncio.Transport | None = None
        self.header_pending = bytearray() if args.proxy else None
        self.received = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        if self.args.greet:
            self.transport.write(f"{self.args.name}\n".encode())

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        if self.header_pending is not None:
            self.header_pending += data
            try:
                parsed = parse_proxy(bytes(self.header_pending))
            except ValueError:
                self.transport.write(b'{"error": "bad header"}\n')
                self.transport.close()
                return
            if parsed is None:
                return
            info, used = parsed
            data = bytes(self.header_pending[used:])
            self.header_pending = None
            self.transport.write(json.dumps(info).encode() + b"\n")
        self.received += len(data)
        if self.args.reset_after is not None and self.received >= self.args.reset_after:
            sock = self.transport.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.transport.abort()
            return
        if data:
            self.transport.write(data)

    def pause_writing(self) -> None:
        assert self.transport is not None
        self.transport.pause_reading()

    def resume_writing(self) -> None:
        assert self.transport is not None
        self.transport.resume_reading()

    def eof_received(self) -> bool:
        assert self.transport is not None
        self.transport.write_eof()
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        pass


async def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--name", default="echo")
    parser.add_argument("--greet", action="store_true")
    parser.add_argument("--proxy", action="store_true")
    parser.add_argument("--reset-after", type=int, default=None)
    args = parser.parse_args(argv)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Echo(args), args.host, args.port, backlog=4096)
    port = server.sockets[0].getsockname()[1]
    print(f"echo {args.name} listening on {args.host}:{port}", flush=True)
    await server.serve_forever()


if __name__ == "__main__":
    import contextlib

    import uvloop

    with contextlib.suppress(KeyboardInterrupt):
        uvloop.run(main(sys.argv[1:]))
