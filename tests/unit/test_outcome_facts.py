"""What every ended exchange tells its observers (rota.outcome): who asked what, how long
the backend took to connect and to answer, how many backends were tried, and why it ended.
In process (tests/support/memory.py), on a clock the test moves, so times are exact."""

from __future__ import annotations

from rota.outcome import End, Outcome
from tests.support.memory import Harness

CLIENT = "192.0.2.1:50001"  # the harness's first client


def get(target: bytes = b"/", *, fields: bytes = b"", version: bytes = b"1.1") -> bytes:
    return b"GET %s HTTP/%s\r\nHost: x\r\n%s\r\n" % (target, version, fields)


def ok(body: bytes = b"ok") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)


def only(h: Harness) -> Outcome:
    assert len(h.ended) == 1, h.ended
    return h.ended[0]


def test_a_proxied_request_says_who_asked_what_and_the_backends_times() -> None:
    h = Harness(backends=1)
    h.use_loop_clock()
    c = h.client()
    c.send(get(b"/a?b=1", fields=b"User-Agent: t/1\r\n"))
    h.advance(0.25)
    h.backend_conn(0).send(ok())
    first = only(h)
    assert (first.client, first.method, first.target, first.protocol) == (
        CLIENT,
        "GET",
        "/a?b=1",
        "HTTP/1.1",
    )
    assert (first.status, first.end, first.reason, first.retries) == (
        200,
        End.COMPLETE,
        "completed",
        0,
    )
    assert first.connect_time == 0.0  # the in-memory connect takes no time on this clock
    assert first.response_time == 0.25
    assert first.finished - first.started == 0.25
    assert (b"User-Agent", b"t/1") in first.fields
    # The next request reuses the pooled connection: no connect time at all.
    c.send(get(b"/next", version=b"1.0"))
    h.advance(0.5)
    h.backend_conn(0).send(ok())
    second = h.ended[1]
    assert len(h.backend_conns(0)) == 1
    assert (second.connect_time, second.response_time) == (0.0, 0.5)
    assert (second.target, second.protocol, second.client) == ("/next", "HTTP/1.0", CLIENT)


def test_a_streamed_response_is_timed_to_its_head_not_its_end() -> None:
    h = Harness(backends=1)
    h.use_loop_clock()
    h.client().send(get())
    h.advance(0.25)
    conn = h.backend_conn(0)
    conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nabc")
    h.advance(1.0)
    assert h.ended == []
    conn.send(b"def")
    o = only(h)
    assert (o.response_time, o.finished - o.started, o.bytes_out) == (0.25, 1.25, 6)


def test_a_pipelined_request_is_timed_from_when_it_went_to_the_backend() -> None:
    h = Harness(backends=1)
    h.use_loop_clock()
    c = h.client()
    c.send(get(b"/1") + get(b"/2"))
    h.advance(1.0)
    h.backend_conn(0).send(ok())
    h.advance(0.5)
    h.backend_conn(0).send(ok())
    assert [o.response_time for o in h.ended] == [1.0, 0.5]
    assert [o.finished - o.started for o in h.ended] == [1.0, 1.5]


def test_backends_tried_after_the_first_are_retries() -> None:
    h = Harness(backends=3)
    h.use_loop_clock()
    h.hang(0)
    c = h.client()
    c.send(get())
    h.advance(3.5)  # the connect timeout (3 s): the next backend
    h.backend_conn(1).send(ok())
    o = only(h)
    assert o.backend is not None and o.backend.port == 7002
    assert (o.retries, o.connect_time, o.reason) == (1, 0.0, "completed")


def test_every_backend_refusing_is_a_503_refused_with_no_connection() -> None:
    h = Harness(backends=3)
    for i in range(3):
        h.refuse(i)
    h.client().send(get())
    o = only(h)
    assert (o.status, o.reason, o.retries, o.connect_time, o.response_time) == (
        503,
        "refused",
        2,
        -1.0,
        -1.0,
    )


def test_a_backend_too_slow_is_a_504_timeout() -> None:
    h = Harness(backends=1, timeouts={"response": 2})
    h.client().send(get())
    h.advance(3.0)
    o = only(h)
    assert (o.status, o.reason, o.response_time) == (504, "timeout", -1.0)
    assert o.connect_time >= 0.0


def test_a_backend_closing_without_an_answer_is_a_502_server_closed() -> None:
    h = Harness(backends=1)
    h.client().send(get(b"/", fields=b""))
    h.backend_conn(0).lose()
    o = only(h)
    assert (o.status, o.reason) == (502, "server_closed")


def test_a_response_cut_mid_body_is_server_closed() -> None:
    h = Harness(backends=1)
    h.client().send(get())
    conn = h.backend_conn(0)
    conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
    conn.lose()
    o = only(h)
    assert (o.status, o.end, o.reason, o.bytes_out) == (200, End.CUT_SHORT, "server_closed", 3)


def test_a_client_leaving_first_is_client_closed_with_no_status() -> None:
    h = Harness(backends=1)
    c = h.client()
    c.send(get())
    c.lose()
    o = only(h)
    assert (o.status, o.end, o.reason) == (0, End.CANCELLED, "client_closed")


def test_no_route_is_rotas_own_404() -> None:
    h = Harness(routes=[{"path": "/a", "pool": "default"}])
    h.client().send(get(b"/b"))
    o = only(h)
    assert (o.status, o.pool, o.backend, o.reason) == (404, None, None, "completed")
    assert (o.connect_time, o.response_time, o.target) == (-1.0, -1.0, "/b")


def test_a_malformed_head_is_one_400_with_what_had_arrived() -> None:
    h = Harness(backends=1)
    h.client().send(b"GET /x HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n")
    o = only(h)
    assert (o.status, o.end, o.reason, o.backend, o.client) == (
        400,
        End.REFUSED,
        "completed",
        None,
        CLIENT,
    )
    assert (o.method, o.target) == ("GET", "/x")


def test_a_head_that_never_ends_is_one_408_timeout() -> None:
    h = Harness(backends=1, timeouts={"header": 2})
    h.client().send(b"GET /slow HTTP/1.1\r\nHost: x\r\n")
    h.advance(3.0)
    o = only(h)
    assert (o.status, o.reason, o.method, o.target) == (408, "timeout", "GET", "/slow")


def test_a_body_turning_malformed_ends_its_exchange_once_with_the_400() -> None:
    h = Harness(backends=1)
    c = h.client()
    c.send(b"POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
    c.send(b"zz\r\n")
    o = only(h)
    assert (o.status, o.end, o.method, o.target) == (400, End.LOCAL, "POST", "/up")
    assert b"400 Bad Request" in c.received()
