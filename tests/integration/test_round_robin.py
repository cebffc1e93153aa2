"""Round robin per request, over fresh connections and over one keep-alive connection."""

from __future__ import annotations

from tests.conftest import Cluster
from tests.support.http import Client, get


def test_exact_order_over_fresh_connections(cluster: Cluster) -> None:
    served = [get(cluster.port).header("x-served-by") for _ in range(30)]
    assert served == ["a", "b", "c"] * 10


def test_exact_order_on_one_keep_alive_connection(cluster: Cluster) -> None:
    with Client(cluster.port) as c:
        responses = [c.request("GET", f"/item/{i}") for i in range(30)]
    assert [r.status for r in responses] == [200] * 30
    assert [r.header("x-served-by") for r in responses] == ["a", "b", "c"] * 10
    assert all(r.body == f"Hello from {r.header('x-served-by')}\n".encode() for r in responses)


def test_forwarding_headers_reach_the_backend_and_hop_by_hop_do_not(cluster: Cluster) -> None:
    with Client(cluster.port) as c:
        r = c.request(
            "GET",
            "/request",
            headers={
                "Host": "shop.example",
                "Connection": "keep-alive, X-Secret",
                "X-Secret": "1",
                "Keep-Alive": "timeout=5",
                "X-Forwarded-For": "203.0.113.9",
                "X-Forwarded-Proto": "https",
                "X-Custom": "kept",
            },
        )
    assert r.status == 200
    seen = r.body.decode().splitlines()
    assert seen[0] == "GET /request"
    fields = dict(line.split(": ", 1) for line in seen[1:])
    assert fields["X-Forwarded-For"] == "203.0.113.9, 127.0.0.1"
    assert fields["X-Forwarded-Proto"] == "http"
    assert fields["X-Forwarded-Host"] == "shop.example"
    assert fields["Host"] == "shop.example"
    assert "Via" not in fields  # only with a listener's via = true
    assert fields["X-Custom"] == "kept"
    for hop in ("Connection", "X-Secret", "Keep-Alive"):
        assert hop not in fields
    assert r.header("keep-alive") is None


def test_request_target_forwarded_byte_for_byte(cluster: Cluster) -> None:
    with Client(cluster.port) as c:
        r = c.request("GET", "/request")
        assert r.status == 200
        c.send(b"GET /request HTTP/1.1\r\nHost: t\r\n\r\n")
        assert c.read_response().body.startswith(b"GET /request\n")


def test_pipelined_requests_answered_in_order(cluster: Cluster) -> None:
    with Client(cluster.port) as c:
        c.send(b"".join(b"GET /p%d HTTP/1.1\r\nHost: t\r\n\r\n" % i for i in range(6)))
        served = [c.read_response().header("x-served-by") for _ in range(6)]
    assert served == ["a", "b", "c", "a", "b", "c"]


def test_http10_client_gets_a_complete_response_and_close(cluster: Cluster) -> None:
    with Client(cluster.port) as c:
        c.send(b"GET / HTTP/1.0\r\n\r\n")
        r = c.read_response()
        assert r.status == 200 and r.body.startswith(b"Hello from")
        assert c.closed_by_peer()


def test_head_request_has_no_body_and_keeps_alive(cluster: Cluster) -> None:
    with Client(cluster.port) as c:
        r = c.request("HEAD", "/bytes/1000")
        assert r.status == 200 and r.header("content-length") == "1000"
        r2 = c.request("GET", "/")
        assert r2.status == 200 and r2.body.startswith(b"Hello from")
