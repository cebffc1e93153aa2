"""An HTTPS backend for TLS tests, run as a process:

    python -m tests.support.tls_backend --cert PEM --key PEM [--name NAME] [--port 0]

Prints `tls backend NAME listening on 127.0.0.1:PORT` when ready. Every request (any
method, any path; a body is not expected) gets 200 "Hello from NAME\\n" over TLS, on a
keep-alive connection. Python's own ssl and asyncio streams: independent of rota's code.
"""

from __future__ import annotations

import argparse
import asyncio
import ssl


async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, name: str) -> None:
    body = f"Hello from {name}\n".encode()
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            close = b"connection: close" in head.lower()
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nX-Served-By: %s\r\n%s\r\n%s"
                % (len(body), name.encode(), b"Connection: close\r\n" if close else b"", body)
            )
            await writer.drain()
            if close:
                break
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ssl.SSLError):
        pass
    finally:
        writer.close()


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--name", default="tls")
    p.add_argument("--port", type=int, default=0)
    args = p.parse_args()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    server = await asyncio.start_server(
        lambda r, w: serve(r, w, args.name), "127.0.0.1", args.port, ssl=ctx
    )
    port = server.sockets[0].getsockname()[1]
    print(f"tls backend {args.name} listening on 127.0.0.1:{port}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
