"""rota between real servers and clients, as a new user would run it (issue 19): nginx
behind rota compresses as it does direct, and many keep-alive clients reuse a bounded set
of backend connections instead of churning through new ones.

nginx runs with its own config in a temp dir, on free loopback ports, stopped by its PID;
these tests skip where nginx is not installed."""

from __future__ import annotations

import asyncio
import gzip
import json
import textwrap
from pathlib import Path

from tests.support.http import Client
from tests.support.nginx import nginx
from tests.support.procs import free_port, rota, start_lb, write_config

# A JSON document like an API's: large and repetitive, so gzip shrinks it many times over.
DOCUMENT = json.dumps(
    [{"id": i, "name": f"item {i}", "tags": ["alpha", "beta"], "ok": True} for i in range(3000)]
).encode()


def gzip_server(port: int, root: Path) -> str:
    # nginx's defaults but gzip on: gzip_proxied stays off, so a request with Via is
    # answered uncompressed. X-Seen-Via echoes the Via nginx received (absent if none).
    return f"""
    server {{
        listen 127.0.0.1:{port};
        root {root};
        types {{ application/json json; }}
        gzip on;
        gzip_types application/json;
        add_header X-Seen-Via $http_via always;
    }}
"""


def fetch(port: int) -> tuple[dict[str, str], bytes]:
    with Client(port) as c:
        r = c.request("GET", "/data.json", headers={"Accept-Encoding": "gzip"})
    assert r.status == 200
    return r.headers, r.body


def test_nginx_compresses_through_rota_unless_the_listener_adds_via(tmp_path: Path) -> None:
    www = tmp_path / "www"
    www.mkdir()
    (www / "data.json").write_bytes(DOCUMENT)
    backend, plain, with_via = free_port(), free_port(), free_port()
    config = tmp_path / "site.toml"
    config.write_text(
        textwrap.dedent(
            f"""
            [listeners.plain]
            bind = "127.0.0.1:{plain}"
            routes = [{{ pool = "app" }}]

            [listeners.marked]
            bind = "127.0.0.1:{with_via}"
            via = true
            routes = [{{ pool = "app" }}]

            [pools.app]
            servers = [{{ host = "127.0.0.1", port = {backend} }}]
            health_check = {{ type = "tcp", interval = 60 }}
            """
        )
    )
    with nginx(tmp_path / "nginx", gzip_server(backend, www)) as server:
        server.wait_ready(backend)
        lb = rota("lb", "--config", str(config))
        try:
            lb.wait_for(f"127.0.0.1:{plain}")
            lb.wait_for(f"127.0.0.1:{with_via}")
            direct_headers, direct_body = fetch(backend)
            assert gzip.decompress(direct_body) == DOCUMENT
            headers, body = fetch(plain)
            marked_headers, marked_body = fetch(with_via)
        finally:
            lb.stop()
    assert direct_headers.get("content-encoding") == "gzip"
    # By default rota adds no Via: nginx compresses as it does direct.
    assert headers.get("content-encoding") == "gzip"
    assert "x-seen-via" not in headers
    assert gzip.decompress(body) == DOCUMENT
    assert len(body) * 10 < len(DOCUMENT)
    # With via = true nginx sees the Via and, gzip_proxied being off, does not compress.
    assert marked_headers.get("x-seen-via") == "1.1 rota"
    assert "content-encoding" not in marked_headers
    assert marked_body == DOCUMENT


CLIENTS = 200  # more than the 128 idle connections rota used to keep per server
REQUESTS = 15  # per client, over one keep-alive connection


async def keep_alive_client(port: int) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    answered = 0
    try:
        for _ in range(REQUESTS):
            writer.write(b"GET / HTTP/1.1\r\nHost: app\r\n\r\n")
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            await reader.readexactly(length)
            answered += head.startswith(b"HTTP/1.1 200 ")
    finally:
        writer.close()
    return answered


async def load(port: int) -> list[int]:
    clients = [keep_alive_client(port) for _ in range(CLIENTS)]
    return await asyncio.wait_for(asyncio.gather(*clients), timeout=120)


def test_many_keep_alive_clients_reuse_backend_connections(tmp_path: Path) -> None:
    backend = free_port()
    servers = f"""
    server {{
        listen 127.0.0.1:{backend} backlog=1024;
        location / {{ return 200 'ok\\n'; }}
    }}
"""
    with nginx(tmp_path / "nginx", servers) as server:
        server.wait_ready(backend)
        before = server.accepted()
        config = write_config(
            tmp_path / "server_db.json",
            [backend],
            health_check={"type": "tcp", "interval": 3600},
        )
        lb, port = start_lb(config)
        try:
            answered = asyncio.run(load(port))
        finally:
            lb.stop()
        opened = server.accepted() - before
    assert answered == [REQUESTS] * CLIENTS
    # Each client's requests are sequential, so at most CLIENTS are in flight: the
    # connections opened for the first ones (plus the one health probe) serve the rest.
    # Kept to 128 idle per server as before, the same load opened 350-375.
    assert opened <= CLIENTS + 10, opened
