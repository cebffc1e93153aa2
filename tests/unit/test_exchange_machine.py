"""The HTTP request state machine, in process: bytes in on the client and backend sides,
bytes and connection states out (tests/support/memory.py). No sockets, no sleeps: the
clock moves when a test says so.

Each test checks what a client or a backend would see on the wire, so that the proxy
objects behind the harness can be rewritten without touching these tests.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.support.memory import BackendEnd, ClientEnd, Harness

# The harness's clients connect from 192.0.2.1.
PEER = b"192.0.2.1"


def get(target: bytes = b"/", *, method: bytes = b"GET", fields: bytes = b"") -> bytes:
    return b"%s %s HTTP/1.1\r\nHost: x\r\n%s\r\n" % (method, target, fields)


def forwarded(
    target: bytes = b"/",
    *,
    method: bytes = b"GET",
    fields: bytes = b"",
    framing: bytes = b"",
    body: bytes = b"",
) -> bytes:
    """The request a backend receives for `get(target, method=, fields=)` (plus `framing`,
    the Content-Length / Transfer-Encoding / Upgrade lines rota re-emits)."""
    return (
        b"%s %s HTTP/1.1\r\nHost: x\r\n%s%sX-Forwarded-For: %s\r\nX-Forwarded-Proto: http\r\n"
        b"X-Forwarded-Host: x\r\n\r\n%s" % (method, target, fields, framing, PEER, body)
    )


def ok(body: bytes = b"ok", *, fields: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\n%sContent-Length: %d\r\n\r\n%s" % (fields, len(body), body)


REASONS = {
    400: b"Bad Request",
    408: b"Request Timeout",
    414: b"URI Too Long",
    431: b"Request Header Fields Too Large",
    502: b"Bad Gateway",
    503: b"Service Unavailable",
    504: b"Gateway Timeout",
}


def error(status: int, *, close: bool) -> bytes:
    """rota's own error answer, exactly."""
    body = b"%d %s\n" % (status, REASONS[status])
    return b"HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n%s%s\r\n%s" % (
        status,
        REASONS[status],
        len(body),
        b"Retry-After: 1\r\n" if status == 503 else b"",
        b"Connection: close\r\n" if close else b"",
        body,
    )


def assert_still_serves(h: Harness, c: ClientEnd, backend: int, target: bytes = b"/next") -> None:
    """The client connection is kept alive: another request on it is forwarded and answered."""
    before = c.received()
    c.send(get(target))
    conn = h.backend_conn(backend)
    assert conn.received().endswith(forwarded(target))
    conn.send(ok(b"next"))
    assert c.received() == before + ok(b"next")
    assert not c.closed and not c.eof_written


def assert_ended_as_announced(h: Harness, c: ClientEnd, answer: bytes, backend: int) -> None:
    """rota's error answers say whether the connection stays (no Connection: close) or ends;
    the connection must do what was said."""
    if b"Connection: close\r\n" in answer:
        assert c.closed or c.eof_written
    else:
        assert_still_serves(h, c, backend)


# --- Keep-alive, round robin, pipelining ------------------------------------------------


def test_keep_alive_requests_go_round_robin_over_the_backends() -> None:
    h = Harness(backends=3)
    c = h.client()
    expected = b""
    for n, backend in enumerate([0, 1, 2, 0, 1]):
        target = b"/%d" % n
        c.send(get(target))
        conn = h.backend_conn(backend)
        assert conn.received().endswith(forwarded(target))
        conn.send(ok(b"from %d" % backend))
        expected += ok(b"from %d" % backend)
        assert c.received() == expected
    # Each backend's one connection was pooled and reused for its second request.
    assert [len(h.backend_conns(i)) for i in range(3)] == [1, 1, 1]
    assert h.backend_conn(0).received() == forwarded(b"/0") + forwarded(b"/3")
    assert not c.closed


def test_a_down_backend_is_skipped_and_rejoins_at_its_place_when_up() -> None:
    h = Harness(backends=3)
    h.set_down(1)
    c = h.client()

    def exchange(target: bytes, backend: int) -> None:
        c.send(get(target))
        conn = h.backend_conn(backend)
        assert conn.received().endswith(forwarded(target))
        conn.send(ok(b"from %d" % backend))
        assert c.received().endswith(ok(b"from %d" % backend))

    for n, backend in enumerate([0, 2, 0, 2]):
        exchange(b"/%d" % n, backend)
    assert h.backend_conns(1) == []
    h.set_up(1)
    exchange(b"/up0", 0)
    exchange(b"/up1", 1)
    assert h.backend_conn(1).received() == forwarded(b"/up1")


def test_pipelined_requests_are_answered_in_order_one_backend_at_a_time() -> None:
    h = Harness(backends=3)
    c = h.client()
    c.send(get(b"/a") + get(b"/b") + get(b"/c"))
    # One exchange at a time: the second request is not sent before the first is answered.
    assert h.backend_conn(0).received() == forwarded(b"/a")
    assert h.backend_conns(1) == [] and h.backend_conns(2) == []
    h.backend_conn(0).send(ok(b"A"))
    assert c.received() == ok(b"A")
    assert h.backend_conn(1).received() == forwarded(b"/b")
    assert h.backend_conns(2) == []
    h.backend_conn(1).send(ok(b"B"))
    assert h.backend_conn(2).received() == forwarded(b"/c")
    h.backend_conn(2).send(ok(b"C"))
    assert c.received() == ok(b"A") + ok(b"B") + ok(b"C")
    assert_still_serves(h, c, backend=0)


# --- Request bodies -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sends", "backend_body"),
    [
        pytest.param(
            [b"3\r\nabc\r\n0\r\n\r\n"],
            b"3\r\nabc\r\n0\r\n\r\n",
            id="one-chunk",
        ),
        pytest.param(
            [b"3;name=value\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nX-Trailer: t\r\n\r\n"],
            b"3;name=value\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nX-Trailer: t\r\n\r\n",
            id="extensions-kept-trailer-forwarded",
        ),
        pytest.param(
            [b"1\r\na\r\n0\r\nHost: evil\r\nX-Sum: 1\r\nContent-Type: x\r\n\r\n"],
            b"1\r\na\r\n0\r\nX-Sum: 1\r\n\r\n",
            id="framing-and-routing-trailers-dropped",
        ),
        pytest.param(
            [b"5\r\nab", b"cde\r\n", b"0\r\n\r\n"],
            b"5\r\nabcde\r\n0\r\n\r\n",
            id="chunk-split-over-sends",
        ),
        pytest.param(
            [b"1", b'0;e="a b"\r', b"\n0123456789abcdef\r\n0", b"\r\n\r\n"],
            b'10;e="a b"\r\n0123456789abcdef\r\n0\r\n\r\n',
            id="size-lines-split-over-sends",
        ),
        pytest.param(
            [b"00A\r\n0123456789\r\n0;last=1\r\n\r\n"],
            b"00A\r\n0123456789\r\n0\r\n\r\n",
            id="upper-case-leading-zeros-kept-last-chunk-rota-own",
        ),
    ],
)
def test_a_chunked_request_body_passes_through_in_its_framing(
    sends: list[bytes], backend_body: bytes
) -> None:
    """The client's chunks reach the backend as sent (size lines, extensions, data); the
    last chunk and the trailer section are rota's, with the trailer fields it forwards."""
    h = Harness(backends=1)
    c = h.client()
    c.send(get(b"/up", method=b"POST", fields=b"Transfer-Encoding: chunked\r\n"))
    for piece in sends:
        c.send(piece)
    b = h.backend_conn(0)
    framing = b"Transfer-Encoding: chunked\r\n"
    assert b.received() == forwarded(b"/up", method=b"POST", framing=framing) + backend_body
    b.send(ok())
    assert c.received() == ok()
    assert_still_serves(h, c, backend=0)


def test_a_chunked_body_pipelined_behind_another_request_in_one_read_is_reframed() -> None:
    """Where a request behind another in the same read ends is not known for sure
    (body_start.head_end), so its body is re-chunked from what llhttp delivered, extensions
    dropped, as before passthrough."""
    h = Harness(backends=1)
    c = h.client()
    c.send(
        get(b"/a")
        + get(b"/up", method=b"POST", fields=b"Transfer-Encoding: chunked\r\n")
        + b"3;x=y\r\nabc\r\n0\r\n\r\n"
    )
    b = h.backend_conn(0)
    assert b.received() == forwarded(b"/a")
    b.send(ok(b"A"))
    framing = b"Transfer-Encoding: chunked\r\n"
    assert b.received() == forwarded(b"/a") + forwarded(
        b"/up", method=b"POST", framing=framing, body=b"3\r\nabc\r\n0\r\n\r\n"
    )
    b.send(ok(b"B"))
    assert c.received() == ok(b"A") + ok(b"B")
    assert_still_serves(h, c, backend=0)


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(b"3\r\nabcX\r\n", id="data-longer-than-size"),
        pytest.param(b"zz\r\nabc\r\n", id="non-hex-size"),
        pytest.param(b"3 ;x\r\nabc\r\n", id="space-before-extension"),
        pytest.param(b"3;x\nabc\r\n", id="bare-lf"),
    ],
)
def test_a_malformed_chunk_mid_body_is_refused_and_never_reaches_the_backend(bad: bytes) -> None:
    """A passed-through body's later read is forwarded only once llhttp accepted it: a bad
    chunk after good ones answers 400, closes the client and aborts the backend connection,
    which got the good chunks only, never a last chunk."""
    h = Harness(backends=1)
    c = h.client()
    c.send(get(b"/up", method=b"POST", fields=b"Transfer-Encoding: chunked\r\n") + b"2\r\nok\r\n")
    c.send(b"1;a=b\r\nx\r\n")
    b = h.backend_conn(0)
    framing = b"Transfer-Encoding: chunked\r\n"
    good = forwarded(b"/up", method=b"POST", framing=framing) + b"2\r\nok\r\n1;a=b\r\nx\r\n"
    assert b.received() == good
    c.send(bad + b"0\r\n\r\n")
    assert b.received() == good
    assert b.aborted
    assert c.received() == error(400, close=True)
    assert c.eof_written or c.closed


def test_a_chunked_body_sent_with_its_head_waits_for_the_new_connection() -> None:
    h = Harness(backends=1)
    c = h.client()
    c.send(
        get(b"/up", method=b"POST", fields=b"Transfer-Encoding: chunked\r\n")
        + b"3\r\nabc\r\n0\r\n\r\n"
    )
    framing = b"Transfer-Encoding: chunked\r\n"
    expected = forwarded(b"/up", method=b"POST", framing=framing) + b"3\r\nabc\r\n0\r\n\r\n"
    assert h.backend_conn(0).received() == expected


def test_a_content_length_body_is_forwarded_as_is() -> None:
    h = Harness(backends=1)
    c = h.client()
    c.send(get(b"/up", method=b"POST", fields=b"Content-Length: 5\r\n") + b"he")
    c.send(b"llo")
    b = h.backend_conn(0)
    assert b.received() == forwarded(
        b"/up", method=b"POST", framing=b"Content-Length: 5\r\n", body=b"hello"
    )
    b.send(ok())
    assert c.received() == ok()


# --- Response framing ---------------------------------------------------------------------


@dataclass
class Framing:
    request: bytes
    response: list[bytes]  # what the backend sends, piece by piece
    client: bytes  # what the client receives
    backend_closes: bool = False  # after the response pieces, the backend closes (FIN)
    keep_client: bool = True  # the client connection stays usable
    reuse_backend: bool = True  # the backend connection is pooled and serves the next request


GET_1_0 = b"GET / HTTP/1.0\r\nHost: x\r\n\r\n"

FRAMING = [
    pytest.param(
        Framing(
            get(),
            [b"HTTP/1.1 200 OK\r\nServer: s\r\nContent-Length: 5\r\n\r\nhel", b"lo"],
            b"HTTP/1.1 200 OK\r\nServer: s\r\nContent-Length: 5\r\n\r\nhello",
        ),
        id="content-length",
    ),
    pytest.param(
        Framing(
            get(),
            [
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                b"2;ext=1\r\nab\r\n1\r\nc\r\n",
                b"0\r\n\r\n",
            ],
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n1\r\nc\r\n0\r\n\r\n",
        ),
        id="chunked-rechunked",
    ),
    pytest.param(
        Framing(
            get(),
            [b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nabc", b"defg"],
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n",
            backend_closes=True,
            reuse_backend=False,
        ),
        id="until-close-rechunked-for-1.1",
    ),
    pytest.param(
        Framing(
            GET_1_0,
            [b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nabc", b"defg"],
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nabcdefg",
            backend_closes=True,
            keep_client=False,
            reuse_backend=False,
        ),
        id="until-close-passed-through-for-1.0",
    ),
    pytest.param(
        Framing(
            get(method=b"HEAD"),
            [b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 1234\r\n\r\n"],
            b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 1234\r\n\r\n",
        ),
        id="head-keeps-content-length",
    ),
    pytest.param(
        Framing(
            get(method=b"HEAD"),
            [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"],
            b"HTTP/1.1 200 OK\r\n\r\n",
        ),
        id="head-chunked",
    ),
    pytest.param(
        Framing(
            get(method=b"DELETE"),
            [b"HTTP/1.1 204 No Content\r\nX-Id: 7\r\n\r\n"],
            b"HTTP/1.1 204 No Content\r\nX-Id: 7\r\n\r\n",
        ),
        id="204",
    ),
    pytest.param(
        Framing(
            get(fields=b'If-None-Match: "v1"\r\n'),
            [b'HTTP/1.1 304 Not Modified\r\nETag: "v1"\r\nContent-Length: 10\r\n\r\n'],
            b'HTTP/1.1 304 Not Modified\r\nETag: "v1"\r\nContent-Length: 10\r\n\r\n',
        ),
        id="304",
    ),
    pytest.param(
        Framing(
            get(),
            [b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"],
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
            reuse_backend=False,
        ),
        id="backend-says-close",
    ),
    pytest.param(
        Framing(
            get(fields=b"Connection: close\r\n"),
            [ok()],
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
            keep_client=False,
        ),
        id="client-says-close",
    ),
    pytest.param(
        Framing(
            b"GET / HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n",
            [ok()],
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok",
        ),
        id="1.0-keep-alive",
    ),
    pytest.param(
        Framing(
            GET_1_0,
            [ok()],
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
            keep_client=False,
        ),
        id="1.0-close",
    ),
    pytest.param(
        Framing(
            GET_1_0,
            [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"],
            b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nabc",
            keep_client=False,
        ),
        id="chunked-dechunked-for-1.0",
    ),
    pytest.param(
        Framing(
            get(),
            [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"],
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        ),
        id="gzip-chunked-keeps-its-coding",
    ),
    pytest.param(
        Framing(
            get(),
            [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nabc"],
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
            backend_closes=True,
            reuse_backend=False,
        ),
        id="gzip-until-close-rechunked",
    ),
]


@pytest.mark.parametrize("row", FRAMING)
def test_response_framing(row: Framing) -> None:
    h = Harness(backends=1)
    c = h.client()
    c.send(row.request)
    b = h.backend_conn(0)
    for piece in row.response:
        b.send(piece)
    if row.backend_closes:
        b.eof()
    assert c.received() == row.client
    if not row.keep_client:
        assert c.closed
        return
    assert not c.closed
    # The next request on the same client connection is answered: the response really
    # ended where rota said it did (no body bytes read as the next response).
    c.send(get(b"/next"))
    assert len(h.backend_conns(0)) == (1 if row.reuse_backend else 2)
    nb = h.backend_conn(0)
    assert nb.received().endswith(forwarded(b"/next"))
    nb.send(ok(b"next"))
    assert c.received() == row.client + ok(b"next")


def test_interim_100_continue_is_forwarded_before_the_final_response() -> None:
    h = Harness(backends=1)
    c = h.client()
    fields = b"Expect: 100-continue\r\n"
    c.send(get(b"/up", method=b"PUT", fields=fields + b"Content-Length: 3\r\n"))
    b = h.backend_conn(0)
    assert b.received() == forwarded(
        b"/up", method=b"PUT", fields=fields, framing=b"Content-Length: 3\r\n"
    )
    b.send(b"HTTP/1.1 100 Continue\r\n\r\n")
    assert c.received() == b"HTTP/1.1 100 Continue\r\n\r\n"
    c.send(b"abc")
    assert b.received().endswith(b"\r\n\r\nabc")
    b.send(ok(b"stored"))
    assert c.received() == b"HTTP/1.1 100 Continue\r\n\r\n" + ok(b"stored")
    assert_still_serves(h, c, backend=0)


def test_interim_and_final_response_in_one_read() -> None:
    h = Harness(backends=1)
    c = h.client()
    c.send(get(b"/up", method=b"PUT", fields=b"Content-Length: 1\r\n") + b"x")
    h.backend_conn(0).send(b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n" + ok())
    assert c.received() == b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n" + ok()
    assert_still_serves(h, c, backend=0)


# --- Failures and the statuses they become ---------------------------------------------


def test_every_backend_down_gives_503_with_retry_after() -> None:
    h = Harness(backends=2)
    h.set_down(0)
    h.set_down(1)
    c = h.client()
    c.send(get())
    answer = c.received()
    assert answer == error(503, close=False)  # the connection stays, as for refusals
    assert b"Retry-After: 1\r\n" in answer
    assert h.backend_conns(0) == [] and h.backend_conns(1) == []
    h.set_up(0)
    assert_ended_as_announced(h, c, answer, backend=0)


def test_a_refused_connect_moves_to_the_next_backend() -> None:
    h = Harness(backends=3)
    h.refuse(0)
    c = h.client()
    c.send(get(b"/r"))
    assert h.backend_conns(0) == []
    b = h.backend_conn(1)
    assert b.received() == forwarded(b"/r")
    b.send(ok())
    assert c.received() == ok()
    assert_still_serves(h, c, backend=2)


def test_a_connect_that_hangs_moves_on_after_the_connect_timeout() -> None:
    h = Harness(backends=2, timeouts={"connect": 2})
    h.hang(0)
    c = h.client()
    c.send(get(b"/h"))
    h.advance(1.5)
    assert h.backend_conns(1) == []
    h.advance(1.0)
    b = h.backend_conn(1)
    assert b.received() == forwarded(b"/h")
    b.send(ok())
    assert c.received() == ok()


def test_every_backend_refusing_gives_503() -> None:
    h = Harness(backends=3)
    for i in range(3):
        h.refuse(i)
    c = h.client()
    c.send(get())
    answer = c.received()
    assert answer in (error(503, close=True), error(503, close=False))
    for i in range(3):
        h.accept(i)
    assert_ended_as_announced(h, c, answer, backend=0)


def _pooled(h: Harness, c: ClientEnd) -> BackendEnd:
    """One exchange so that backend 0's connection is pooled; returns it."""
    c.send(get(b"/first"))
    b = h.backend_conn(0)
    b.send(ok(b"first"))
    assert c.received() == ok(b"first")
    return b


def _request(method: bytes, body: bytes = b"") -> tuple[bytes, bytes]:
    """A request to /r as the client sends it and as a backend receives it."""
    framing = b"Content-Length: %d\r\n" % len(body) if body else b""
    return (
        get(b"/r", method=method, fields=framing) + body,
        forwarded(b"/r", method=method, framing=framing, body=body),
    )


GET_R = _request(b"GET")
DELETE_R = _request(b"DELETE")
POST_R = _request(b"POST", b"hi")
PUT_R = _request(b"PUT", b"hi")  # idempotent, but its body is gone once sent


@dataclass
class LostBeforeAnswer:
    backends: int
    pooled: bool  # the request goes on backend 0's pooled connection (else a fresh one)
    request: tuple[bytes, bytes]  # as sent, as forwarded
    how: str  # the connection ends before any response byte: "eof" (FIN) or "reset"
    goes_to: int | None  # the backend the request is then sent to on a new connection


LOST_BEFORE_ANSWER = [
    pytest.param(LostBeforeAnswer(1, True, GET_R, "eof", 0), id="pooled-get-eof-retried"),
    pytest.param(LostBeforeAnswer(1, True, GET_R, "reset", 0), id="pooled-get-reset-retried"),
    pytest.param(LostBeforeAnswer(2, True, DELETE_R, "eof", 0), id="pooled-delete-retried"),
    pytest.param(LostBeforeAnswer(1, True, POST_R, "eof", None), id="pooled-post-502"),
    pytest.param(LostBeforeAnswer(1, True, PUT_R, "eof", None), id="pooled-put-body-502"),
    pytest.param(LostBeforeAnswer(2, False, GET_R, "reset", 1), id="fresh-get-next-backend"),
    pytest.param(LostBeforeAnswer(2, False, GET_R, "eof", 1), id="fresh-get-eof-next-backend"),
    pytest.param(LostBeforeAnswer(1, False, GET_R, "reset", None), id="fresh-get-only-backend-502"),
    pytest.param(LostBeforeAnswer(2, False, POST_R, "reset", None), id="fresh-post-502"),
]


@pytest.mark.parametrize("row", LOST_BEFORE_ANSWER)
def test_a_backend_connection_lost_before_any_answer(row: LostBeforeAnswer) -> None:
    h = Harness(backends=row.backends)
    c = h.client()
    warm = b""
    if row.pooled:  # one exchange per backend, so that the next goes to backend 0's pool
        for i in range(row.backends):
            c.send(get(b"/warm"))
            h.backend_conn(i).send(ok(b"warm"))
            warm += ok(b"warm")
        assert c.received() == warm
    sent, arrives = row.request
    c.send(sent)
    first = h.backend_conn(0)
    assert first.received().endswith(arrives)
    if row.how == "eof":
        first.eof()
    else:
        first.lose(ConnectionResetError())
    opened = [len(h.backend_conns(i)) for i in range(row.backends)]
    if row.goes_to is None:  # never sent twice: 502
        expected = [1] * row.backends if row.pooled else [1] + [0] * (row.backends - 1)
        assert opened == expected
        assert c.received() == warm + error(502, close=False)
        assert_ended_as_announced(h, c, error(502, close=False), backend=row.backends - 1)
        return
    again = h.backend_conn(row.goes_to)
    assert again is not first
    assert again.received() == arrives
    again.send(ok(b"again"))
    assert c.received() == warm + ok(b"again")
    assert not c.closed


def test_the_retry_on_a_fresh_connection_is_only_once() -> None:
    h = Harness(backends=1)
    c = h.client()
    c.send(get(b"/first"))
    pooled = h.backend_conn(0)
    pooled.send(ok(b"first"))
    c.send(get(b"/again"))
    pooled.eof()
    h.backend_conn(0).eof()  # the fresh connection closes too
    assert len(h.backend_conns(0)) == 2
    assert c.received() == ok(b"first") + error(502, close=False)
    assert_ended_as_announced(h, c, error(502, close=False), backend=0)


def test_an_invalid_response_gives_502_and_the_connection_is_dropped() -> None:
    h = Harness(backends=1)
    c = h.client()
    c.send(get())
    b = h.backend_conn(0)
    b.send(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nhi")
    assert c.received() == error(502, close=False)
    assert b.closed
    assert_still_serves(h, c, backend=0)
    assert len(h.backend_conns(0)) == 2


def test_no_response_within_the_response_timeout_gives_504() -> None:
    h = Harness(backends=1, timeouts={"response": 5})
    c = h.client()
    c.send(get(b"/slow"))
    b = h.backend_conn(0)
    h.advance(3.5)
    assert c.received() == b""
    h.advance(3.0)
    assert c.received() == error(504, close=False)
    assert b.aborted  # never pooled: its answer may still come
    assert_still_serves(h, c, backend=0)


# --- A response cut short ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("response", "how"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello", "eof"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello", "reset"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n", "eof"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n", "reset"),
        (b"HTTP/1.1 200 OK\r\n\r\nhello", "reset"),
    ],
    ids=["length-eof", "length-reset", "chunked-eof", "chunked-reset", "until-close-reset"],
)
def test_a_backend_dying_mid_body_closes_the_client_short_of_the_framing(
    response: bytes, how: str
) -> None:
    h = Harness(backends=1)
    c = h.client()
    c.send(get())
    b = h.backend_conn(0)
    b.send(response)
    before = c.received()
    assert before.endswith(b"hello") or before.endswith(b"hello\r\n")
    if how == "eof":
        b.eof()
    else:
        b.lose(ConnectionResetError())
    assert c.received() == before  # no final 0-chunk, nothing that looks complete
    assert c.closed


def test_a_body_stalled_past_the_body_timeout_is_cut_short() -> None:
    h = Harness(backends=1, timeouts={"body": 4})
    c = h.client()
    c.send(get())
    b = h.backend_conn(0)
    b.send(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello")
    before = c.received()
    h.advance(2.0)
    assert not c.closed
    h.advance(3.5)
    assert c.received() == before
    assert c.closed and b.aborted


# --- The client's side: malformed input, timeouts, going away -------------------------------


def test_a_malformed_request_after_a_good_one_is_answered_in_order_then_lingers() -> None:
    h = Harness(backends=1)
    c = h.client()
    c.send(get(b"/good") + b"NOT HTTP AT ALL\r\n\r\n")
    b = h.backend_conn(0)
    assert b.received() == forwarded(b"/good")
    assert c.received() == b""  # the 400 waits for the answer before it
    b.send(ok(b"good"))
    assert c.received() == ok(b"good") + error(400, close=True)
    # Lingering close: write side half-closed, the client's late bytes read and dropped.
    assert c.eof_written and not c.closed and not c.reading_paused
    c.send(b"more garbage" * 100)
    assert not c.closed
    assert c.received() == ok(b"good") + error(400, close=True)
    c.eof()
    assert c.closed
    assert len(h.backend_conns(0)) == 1 and b.received() == forwarded(b"/good")


# Small limits, so that each request below is exactly at one of them or one byte or field
# past it: the bound is the client's whole request line, head and field count, Host included.
LIMITS = {"max_request_line": 64, "max_header_bytes": 200, "max_headers": 5}


def _line_of(length: int) -> bytes:
    """The target of a GET whose request line (`GET /... HTTP/1.1`) is `length` bytes."""
    return b"/" + b"a" * (length - len(b"GET / HTTP/1.1"))


def _padding_to(length: int) -> bytes:
    """A field that makes the head of a GET to / exactly `length` bytes, CRLFs included."""
    return b"X: " + b"a" * (length - len(get(fields=b"X: \r\n"))) + b"\r\n"


def _fields(count: int) -> bytes:
    """`count` fields beside Host."""
    return b"".join(b"X-%d: 1\r\n" % i for i in range(count))


@pytest.mark.parametrize(
    ("at_limit", "past_it", "status"),
    [
        ((_line_of(64), b""), (_line_of(65), b""), 414),
        ((b"/", _padding_to(200)), (b"/", _padding_to(201)), 431),
        ((b"/", _fields(4)), (b"/", _fields(5)), 431),
    ],
    ids=["request line", "head bytes", "field count"],
)
def test_a_head_at_a_limit_is_forwarded_and_one_past_it_refused(
    at_limit: tuple[bytes, bytes], past_it: tuple[bytes, bytes], status: int
) -> None:
    h = Harness(backends=1, limits=LIMITS)
    c = h.client()
    target, fields = at_limit
    c.send(get(target, fields=fields))
    assert h.backend_conn(0).received() == forwarded(target, fields=fields)
    h.backend_conn(0).send(ok())
    assert c.received() == ok()

    h = Harness(backends=1, limits=LIMITS)
    c = h.client()
    target, fields = past_it
    c.send(get(target, fields=fields))
    assert c.received() == error(status, close=True)
    assert c.eof_written  # lingering, like every error answer that closes
    assert h.backend_conns(0) == []  # nothing of it reached a backend


def test_lingering_ends_after_its_time_limit() -> None:
    h = Harness(backends=1)
    c = h.client()
    c.send(b"\x00\x01garbage\r\n\r\n")
    assert c.received() == error(400, close=True)
    assert c.eof_written and not c.closed
    h.advance(2.5)
    assert c.closed
    assert h.backend_conns(0) == []


def test_an_idle_keep_alive_connection_is_closed_silently() -> None:
    h = Harness(backends=1, timeouts={"idle": 5})
    c = h.client()
    _pooled(h, c)
    h.advance(3.5)
    assert not c.closed
    h.advance(3.0)
    assert c.closed
    assert c.received() == ok(b"first")  # no 408 for an idle connection


def test_a_request_head_not_finished_in_time_gets_408() -> None:
    h = Harness(backends=1, timeouts={"header": 4})
    c = h.client()
    c.send(b"GET /slow HTTP/1.1\r\nHost: x\r\n")
    h.advance(2.0)
    assert c.received() == b""
    h.advance(3.5)
    assert c.received() == error(408, close=True)
    assert c.eof_written  # lingering, like every error answer that closes
    assert h.backend_conns(0) == []


@pytest.mark.parametrize("how", ["reset", "eof"])
def test_the_client_going_away_mid_response_aborts_the_backend_connection(how: str) -> None:
    h = Harness(backends=1)
    c = h.client()
    c.send(get())
    b = h.backend_conn(0)
    b.send(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhel")
    if how == "reset":
        c.lose(ConnectionResetError())
    else:
        c.lose()
    assert b.aborted
    # Never pooled: the next client's request goes on a new connection.
    c2 = h.client()
    c2.send(get(b"/2"))
    assert len(h.backend_conns(0)) == 2
    assert h.backend_conn(0).received() == forwarded(b"/2")


def test_the_client_going_away_before_the_answer_aborts_the_backend_connection() -> None:
    h = Harness(backends=1)
    c = h.client()
    c.send(get())
    b = h.backend_conn(0)
    c.lose(ConnectionResetError())
    assert b.aborted


def test_a_client_half_close_after_a_request_still_gets_the_answer() -> None:
    h = Harness(backends=1)
    c = h.client()
    c.send(get(b"/last"))
    c.eof()
    assert not c.closed
    b = h.backend_conn(0)
    b.send(ok(b"last"))
    assert c.received() == b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: close\r\n\r\nlast"
    assert c.closed
    assert not b.closed  # the exchange was complete: the backend connection is pooled


def test_a_client_half_closing_mid_body_closes_both_at_once() -> None:
    h = Harness(backends=1)
    c = h.client()
    c.send(get(b"/up", method=b"POST", fields=b"Content-Length: 10\r\n") + b"abc")
    b = h.backend_conn(0)
    c.eof()  # the body can never end now
    assert c.closed and c.received() == b""
    assert b.aborted


def test_an_upload_silent_past_the_body_timeout_closes_both() -> None:
    h = Harness(backends=1, timeouts={"body": 4})
    c = h.client()
    c.send(get(b"/up", method=b"POST", fields=b"Content-Length: 10\r\n") + b"abc")
    b = h.backend_conn(0)
    h.advance(2.0)
    c.send(b"def")  # body bytes move the deadline
    h.advance(3.0)
    assert not c.closed
    h.advance(2.0)
    assert c.closed and b.aborted
    assert c.received() == b""


def test_the_header_timeout_starts_again_for_a_head_pipelined_behind_an_answer() -> None:
    h = Harness(backends=1, timeouts={"header": 4})
    c = h.client()
    c.send(get(b"/a") + b"GET /b HTTP/1.1\r\n")
    h.advance(3.0)
    h.backend_conn(0).send(ok())
    h.advance(3.0)
    assert c.received() == ok()
    h.advance(2.0)
    assert c.received() == ok() + error(408, close=True)


def test_a_head_response_with_body_bytes_loses_its_backend_connection() -> None:
    h = Harness(backends=1)
    c = h.client()
    c.send(get(method=b"HEAD"))
    b = h.backend_conn(0)
    b.send(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
    assert c.received() == b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"
    assert b.closed
    assert_still_serves(h, c, backend=0)


def test_a_response_before_the_request_body_ended_ends_the_client_connection() -> None:
    h = Harness(backends=1)
    c = h.client()
    c.send(get(b"/upload", method=b"POST", fields=b"Content-Length: 100\r\n") + b"partial")
    b = h.backend_conn(0)
    b.send(b"HTTP/1.1 413 Content Too Large\r\nContent-Length: 4\r\n\r\nbig!")
    assert c.received() == (
        b"HTTP/1.1 413 Content Too Large\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbig!"
    )
    assert c.closed
    assert b.closed  # the rest of the body would be read as a request: never pooled


# --- WebSocket upgrade --------------------------------------------------------------------

UPGRADE = get(
    b"/ws",
    fields=b"Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: k\r\n"
    b"Sec-WebSocket-Version: 13\r\n",
)
UPGRADE_FORWARDED = forwarded(
    b"/ws",
    fields=b"Sec-WebSocket-Key: k\r\nSec-WebSocket-Version: 13\r\n",
    framing=b"Connection: Upgrade\r\nUpgrade: websocket\r\n",
)
SWITCHING = (
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Accept: a\r\n\r\n"
)
SWITCHING_TO_CLIENT = (
    b"HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: a\r\n"
    b"Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
)


def test_a_websocket_upgrade_holds_early_bytes_until_the_101_then_tunnels() -> None:
    h = Harness(backends=1)
    c = h.client()
    c.send(UPGRADE + b"\x81\x02hi")
    b = h.backend_conn(0)
    assert b.received() == UPGRADE_FORWARDED  # the frame is held back
    assert c.reading_paused
    c.send(b"\x81\x03hey")  # arrives while reading is paused: not read yet
    assert b.received() == UPGRADE_FORWARDED
    b.send(SWITCHING + b"\x81\x05hello")
    assert c.received() == SWITCHING_TO_CLIENT + b"\x81\x05hello"
    assert b.received() == UPGRADE_FORWARDED + b"\x81\x02hi\x81\x03hey"
    assert not c.reading_paused
    # Raw both ways now, HTTP-looking bytes included.
    c.send(get(b"/not-http-any-more"))
    assert b.received().endswith(get(b"/not-http-any-more"))
    b.send(b"HTTP/1.1 200 OK\r\n\r\n")
    assert c.received().endswith(b"\x81\x05helloHTTP/1.1 200 OK\r\n\r\n")
    # A half-close is passed on; both close once both ended.
    c.eof()
    assert b.eof_written and not c.closed
    b.eof()
    assert c.eof_written or c.closed
    assert c.closed and b.closed


def test_a_websocket_tunnel_closed_by_the_backend_closes_the_client() -> None:
    h = Harness(backends=1)
    c = h.client()
    c.send(UPGRADE)
    b = h.backend_conn(0)
    b.send(SWITCHING)
    b.lose(ConnectionResetError())
    assert c.closed


def test_a_websocket_tunnel_reset_by_the_client_aborts_the_backend() -> None:
    h = Harness(backends=1)
    c = h.client()
    c.send(UPGRADE)
    b = h.backend_conn(0)
    b.send(SWITCHING)
    c.lose(ConnectionResetError())
    assert b.aborted


def test_a_client_half_close_before_the_101_is_passed_on_after_it() -> None:
    h = Harness(backends=1)
    c = h.client()
    c.send(UPGRADE)
    c.eof()
    b = h.backend_conn(0)
    assert not b.eof_written  # still an HTTP exchange: nothing to half-close yet
    b.send(SWITCHING + b"bye")
    assert b.eof_written
    assert c.received() == SWITCHING_TO_CLIENT + b"bye"
    assert not c.closed
    b.eof()
    assert c.closed and b.closed


def test_a_non_101_answer_to_an_upgrade_parses_the_held_bytes_as_http() -> None:
    h = Harness(backends=2)
    c = h.client()
    c.send(UPGRADE + get(b"/after"))
    assert h.backend_conn(0).received() == UPGRADE_FORWARDED
    assert h.backend_conns(1) == []
    refusal = b"HTTP/1.1 426 Upgrade Required\r\nContent-Length: 4\r\n\r\nnope"
    h.backend_conn(0).send(refusal)
    assert h.backend_conn(1).received() == forwarded(b"/after")
    h.backend_conn(1).send(ok(b"after"))
    assert c.received() == refusal + ok(b"after")
    assert not c.reading_paused


def test_a_connection_whose_upgrade_was_not_switched_is_never_pooled() -> None:
    # issue 20: a backend answered an Upgrade twice (200, then 400); the pooled connection
    # handed the stray 400 to the next client's request.
    h = Harness(backends=1)
    c = h.client()
    c.send(UPGRADE)
    first = h.backend_conn(0)
    first.send(ok(b"plain"))
    assert c.received() == ok(b"plain")
    assert first.closed  # bytes beyond the response may still come: not pooled
    c.send(get(b"/next"))
    first.send(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 5\r\n\r\nstray")
    assert len(h.backend_conns(0)) == 2
    h.backend_conn(0).send(ok(b"next"))
    assert c.received() == ok(b"plain") + ok(b"next")


def test_a_101_to_a_request_without_upgrade_gives_502() -> None:
    h = Harness(backends=1)
    c = h.client()
    c.send(get())
    h.backend_conn(0).send(SWITCHING)
    assert c.received() == error(502, close=False)


def test_a_websocket_tunnel_outlives_the_body_timeout_and_closes_after_the_tunnel_one() -> None:
    h = Harness(backends=1, timeouts={"body": 1, "tunnel": 4})
    c = h.client()
    c.send(UPGRADE)
    b = h.backend_conn(0)
    b.send(SWITCHING)
    h.advance(3.0)  # three times the body timeout: a tunnel is not a body
    assert not c.closed and not b.closed
    c.send(b"ping")  # traffic one way moves the deadline
    h.advance(3.0)
    assert not c.closed and not b.closed
    h.advance(2.0)
    assert c.closed and b.closed


# --- Pipelining limits and back-pressure -----------------------------------------------------


def test_reading_pauses_past_eight_queued_requests_and_resumes_as_they_are_answered() -> None:
    h = Harness(backends=1)
    c = h.client()
    c.send(b"".join(get(b"/%d" % n) for n in range(9)))
    assert c.reading_paused
    b = h.backend_conn(0)
    b.send(ok(b"0"))
    b.send(ok(b"1"))
    assert not c.reading_paused
    for n in range(2, 9):
        b.send(ok(b"%d" % n))
    assert c.received() == b"".join(ok(b"%d" % n) for n in range(9))
    assert b.received() == b"".join(forwarded(b"/%d" % n) for n in range(9))


def test_an_upload_waiting_for_a_connection_pauses_the_client_past_256_kib() -> None:
    h = Harness(backends=2, timeouts={"connect": 1})
    h.hang(0)
    c = h.client()
    body = b"x" * (300 * 1024)
    c.send(get(b"/up", method=b"POST", fields=b"Content-Length: %d\r\n" % len(body)))
    c.send(body[: 200 * 1024])
    assert not c.reading_paused
    c.send(body[200 * 1024 : 260 * 1024])
    assert c.reading_paused
    c.send(body[260 * 1024 :])  # held by the paused transport
    h.advance(1.5)  # backend 0's connect times out; backend 1 takes the request
    assert not c.reading_paused
    b = h.backend_conn(1)
    framing = b"Content-Length: %d\r\n" % len(body)
    assert b.received() == forwarded(b"/up", method=b"POST", framing=framing, body=body)


def test_a_stalled_client_pauses_reading_from_the_backend() -> None:
    h = Harness(backends=1)
    c = h.client()
    c.send(get())
    b = h.backend_conn(0)
    b.send(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nabc")
    c.stall()
    assert b.reading_paused
    c.drain()
    assert not b.reading_paused
    b.send(b"def")
    assert c.received() == b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nabcdef"


def test_a_stalled_backend_pauses_reading_from_the_client() -> None:
    h = Harness(backends=1)
    c = h.client()
    c.send(get(b"/up", method=b"POST", fields=b"Content-Length: 6\r\n") + b"abc")
    b = h.backend_conn(0)
    b.stall()
    assert c.reading_paused
    c.send(b"def")  # held by the paused client transport
    assert not b.received().endswith(b"abcdef")
    b.drain()
    assert not c.reading_paused
    assert b.received().endswith(b"\r\n\r\nabcdef")


def test_a_pooled_connection_the_backend_closed_while_idle_is_not_used() -> None:
    h = Harness(backends=1)
    c = h.client()
    idle = _pooled(h, c)
    idle.eof()  # the backend's keep-alive timer
    assert idle.closed
    c.send(get(b"/n"))
    assert len(h.backend_conns(0)) == 2
    assert h.backend_conn(0).received() == forwarded(b"/n")
    assert idle.received() == forwarded(b"/first")


def test_a_backend_speaking_unasked_on_an_idle_connection_loses_it() -> None:
    h = Harness(backends=1)
    c = h.client()
    idle = _pooled(h, c)
    idle.send(ok(b"unasked"))
    assert idle.closed
    assert c.received() == ok(b"first")
    c.send(get(b"/n"))
    assert len(h.backend_conns(0)) == 2


def test_a_second_response_in_the_same_read_is_dropped_with_its_connection() -> None:
    h = Harness(backends=1)
    c = h.client()
    c.send(get())
    b = h.backend_conn(0)
    b.send(ok() + ok(b"extra"))
    assert c.received() == ok()
    assert b.closed
    assert_still_serves(h, c, backend=0)


def test_pooled_connections_idle_past_pool_idle_are_closed() -> None:
    h = Harness(backends=1, timeouts={"pool_idle": 5})
    c = h.client()
    idle = _pooled(h, c)
    h.advance(3.5)
    assert not idle.closed
    h.advance(2.5)
    assert idle.closed and not idle.aborted
    assert not c.closed


def test_a_client_over_max_connections_waits_while_every_connection_is_busy() -> None:
    # issue 20: at the cap with every connection busy, rota stops accepting (the client
    # waits in the listen backlog) instead of answering 503 as it used to.
    h = Harness(backends=1, limits={"max_connections": 1})
    first = h.client()
    first.send(get(b"/busy"))  # in flight: not closed to make room
    second = h.client()
    second.send(get(b"/waiting"))
    assert not second.accepted and second.received() == b"" and not second.closed
    assert not first.closed
    h.backend_conn(0).send(ok(b"busy"))
    assert first.received() == ok(b"busy")
    # Answered, first is idle in keep-alive: it makes room for the waiting client.
    assert first.closed and not first.aborted
    assert second.accepted
    assert h.backend_conn(0).received().endswith(forwarded(b"/waiting"))
    h.backend_conn(0).send(ok(b"served"))
    assert second.received() == ok(b"served")
    second.lose()
    third = h.client()
    assert third.accepted and not third.closed
    assert_still_serves(h, third, backend=0)


def test_at_the_cap_the_oldest_idle_or_unfinished_head_makes_room() -> None:
    # issue 20: 10,000 slow-loris sockets filled the cap and good clients got 503.
    h = Harness(backends=1, limits={"max_connections": 3})
    busy = h.client()
    busy.send(get(b"/busy"))
    slow = h.client()
    slow.send(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")  # a head still arriving
    idle = h.client()
    _pooled(h, idle)  # answered, idle in keep-alive
    newcomer = h.client()
    assert slow.aborted  # the oldest that delivers nothing, cut unanswered
    assert slow.received() == b""
    assert not idle.closed and not busy.closed
    assert_still_serves(h, newcomer, backend=0)
    later = h.client()
    assert idle.closed and not idle.aborted  # then the idle keep-alive one, closed quietly
    assert_still_serves(h, later, backend=0)
    assert not busy.closed


def test_a_malformed_chunk_in_a_forwarded_body_aborts_the_backend_and_answers_400() -> None:
    h = Harness(backends=1)
    c = h.client()
    c.send(get(b"/up", method=b"POST", fields=b"Transfer-Encoding: chunked\r\n") + b"3\r\nabc\r\n")
    b = h.backend_conn(0)
    c.send(b"zz\r\n")
    assert b.aborted
    assert c.received() == error(400, close=True)
    assert c.eof_written


def test_nothing_after_a_connection_close_request_is_forwarded() -> None:
    h = Harness(backends=2)
    c = h.client()
    c.send(get(b"/a", fields=b"Connection: close\r\n") + get(b"/b"))
    h.backend_conn(0).send(ok())
    assert c.received() == b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
    assert c.closed
    assert h.backend_conns(1) == []


# --- Found while writing these tests, and fixed ---------------------------------------------


CHUNKED_WITH_TRAILERS = (
    b"HTTP/1.1 200 OK\r\nTrailer: X-Checksum\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"2\r\nok\r\n0\r\nX-Checksum: c1\r\nConnection: close\r\nHost: evil\r\n"
    b"Grpc-Status: 0\r\n\r\n"
)


def test_response_trailers_reach_an_http_1_1_client_without_framing_fields() -> None:
    h = Harness(backends=1)
    c = h.client()
    c.send(get())
    h.backend_conn(0).send(CHUNKED_WITH_TRAILERS)
    assert c.received() == (
        b"HTTP/1.1 200 OK\r\nTrailer: X-Checksum\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"2\r\nok\r\n0\r\nX-Checksum: c1\r\nGrpc-Status: 0\r\n\r\n"
    )
    assert_still_serves(h, c, backend=0)


def test_response_trailers_are_dropped_for_an_http_1_0_client() -> None:
    h = Harness(backends=1)
    c = h.client()
    c.send(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
    h.backend_conn(0).send(CHUNKED_WITH_TRAILERS)
    assert c.received() == (
        b"HTTP/1.1 200 OK\r\nTrailer: X-Checksum\r\nConnection: close\r\n\r\nok"
    )


def test_response_trailer_fields_do_not_leak_into_the_next_response() -> None:
    # UpstreamConnection.on_header appends trailer fields (llhttp reports them like header
    # fields) to the list on_headers_complete already handed over and reset: they become
    # header fields of the next response on that pooled connection, possibly another
    # client's.
    h = Harness(backends=1)
    a = h.client()
    a.send(get())
    b = h.backend_conn(0)
    b.send(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"2\r\nok\r\n0\r\nX-Secret-Trailer: for a\r\n\r\n"
    )
    other = h.client()
    other.send(get(b"/other"))
    assert len(h.backend_conns(0)) == 1  # the pooled connection, reused
    b.send(ok(b"other"))
    assert other.received() == ok(b"other")


def test_no_interim_response_reaches_an_http_1_0_client() -> None:
    # RFC 9110 15.2: a server must not send a 1xx response to an HTTP/1.0 client. rota drops
    # Expect from 1.0 requests so as not to invite one, but forwards any 1xx the backend
    # sends anyway (103 Early Hints, say).
    h = Harness(backends=1)
    c = h.client()
    c.send(GET_1_0)
    h.backend_conn(0).send(b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n" + ok())
    assert c.received() == b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"


def test_lingering_after_an_upgrade_answered_with_503_reads_the_client() -> None:
    # Every backend down: the handshake is answered 503 from inside the parse, then
    # ClientConnection._feed pauses reading for the held bytes after linger_close resumed it.
    # The lingering close then never reads the client's EOF or late bytes, and the close at
    # LINGER_SECONDS happens with them unread: the RST lingering exists to avoid.
    h = Harness(backends=1)
    h.set_down(0)
    c = h.client()
    c.send(UPGRADE + b"\x81\x02hi")
    assert c.received() == error(503, close=True)
    assert c.eof_written
    assert not c.reading_paused
    c.eof()
    assert c.closed


def test_junk_after_a_complete_response_costs_the_backend_connection_not_the_client() -> None:
    # The response is complete when llhttp fails on the bytes after it, in the same read:
    # UpstreamConnection.data_received calls on_upstream_error before on_response_end, and
    # the exchange, response started, cuts the client short. The client has its answer,
    # but its connection closes unannounced and the pipelined request behind is lost
    # (never answered). Bytes after a response on an idle connection only cost the backend
    # connection.
    h = Harness(backends=1)
    c = h.client()
    c.send(get(b"/1") + get(b"/2"))
    b = h.backend_conn(0)
    b.send(ok(b"1") + b"junk\r\n\r\n")
    assert c.received() == ok(b"1")
    assert b.closed
    assert not c.closed
    assert h.backend_conn(0).received() == forwarded(b"/2")


def test_a_client_half_close_after_pipelined_requests_gets_every_answer() -> None:
    # RFC 9112 9.6: a client's half-close ends its requests, not its answers: every
    # queued request is answered, the last with Connection: close, then rota closes.
    # (printf 'GET ...GET ...' | nc does exactly this.)
    h = Harness(backends=2)
    c = h.client()
    c.send(get(b"/1") + get(b"/2"))
    c.eof()
    h.backend_conn(0).send(ok(b"1"))
    assert h.backend_conns(1) != []
    h.backend_conn(1).send(ok(b"2"))
    assert c.received().endswith(b"\r\n\r\n2")
    assert c.closed


# --- Routes: rota's own answers in the state machine ---------------------------------------

ROUTES = [
    {"path": "/old", "redirect": {"location": "https://example.com/new", "status": 301}},
    {"path": "/robots.txt", "respond": {"status": 200, "body": "no\n"}},
    {
        "path_prefix": "/v1/",
        "pool": "default",
        "strip_prefix": "/v1",
        "request_headers": {"set": {"x-env": "prod"}, "remove": ["x-debug"]},
        "response_headers": {"set": {"x-served": "rota"}},
    },
    {"path": "/", "pool": "default"},
]
MOVED = (
    b"HTTP/1.1 301 Moved Permanently\r\nLocation: https://example.com/new\r\n"
    b"Content-Length: 0\r\n\r\n"
)
ROBOTS_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 3\r\n\r\n"
)
NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 14\r\n\r\n"


def test_no_route_is_rotas_404_and_the_connection_goes_on() -> None:
    h = Harness(routes=ROUTES)
    c = h.client()
    c.send(get(b"/nowhere"))
    assert c.received() == NOT_FOUND + b"404 Not Found\n"
    assert h.backend_conns(0) == []  # no backend saw it
    c.send(get(b"/"))
    h.backend_conn(0).send(ok())
    assert c.received().endswith(ok())
    assert not c.closed


@pytest.mark.parametrize(
    ("request_bytes", "answer"),
    [
        (get(b"/old"), MOVED),
        (get(b"/robots.txt"), ROBOTS_HEAD + b"no\n"),
        (get(b"/robots.txt", method=b"HEAD"), ROBOTS_HEAD),  # the same head, no body
    ],
)
def test_redirect_and_respond_routes_answer_on_a_kept_connection(
    request_bytes: bytes, answer: bytes
) -> None:
    h = Harness(routes=ROUTES)
    c = h.client()
    c.send(request_bytes)
    assert c.received() == answer
    assert not c.closed and h.backend_conns(0) == []


def test_a_local_answer_waits_for_the_request_body_which_is_dropped() -> None:
    h = Harness(routes=ROUTES)
    c = h.client()
    c.send(get(b"/old", method=b"POST", fields=b"Content-Length: 6\r\n") + b"abc")
    assert c.received() == b""  # the body has not all arrived: no answer yet
    c.send(b"def")
    assert c.received() == MOVED
    c.send(get(b"/"))  # the body was read, not taken for a request
    h.backend_conn(0).send(ok())
    assert c.received() == MOVED + ok()


def test_pipelined_local_and_proxied_answers_stay_in_order() -> None:
    h = Harness(routes=ROUTES)
    c = h.client()
    c.send(get(b"/") + get(b"/robots.txt") + get(b"/nowhere"))
    assert c.received() == b""  # the first one is the backend's: nothing may pass it
    h.backend_conn(0).send(ok(b"first"))
    assert c.received() == ok(b"first") + ROBOTS_HEAD + b"no\n" + NOT_FOUND + b"404 Not Found\n"


def test_a_route_strips_its_prefix_and_edits_both_heads() -> None:
    h = Harness(routes=ROUTES)
    c = h.client()
    c.send(get(b"/v1/users?page=2", fields=b"X-Debug: 1\r\nAccept: */*\r\n"))
    b = h.backend_conn(0)
    assert b.received() == forwarded(b"/users?page=2", fields=b"Accept: */*\r\nx-env: prod\r\n")
    b.send(ok())
    assert c.received() == b"HTTP/1.1 200 OK\r\nx-served: rota\r\nContent-Length: 2\r\n\r\nok"


def test_the_end_of_every_exchange_is_reported_once() -> None:
    h = Harness(routes=ROUTES)
    c = h.client()
    c.send(get(b"/") + get(b"/old"))
    assert h.in_flight(0) == 1  # counted from the pick
    h.backend_conn(0).send(ok())
    assert [(o.status, o.end.value, o.backend is not None) for o in h.ended] == [
        (200, "complete", True),
        (301, "local", False),
    ]
    assert all(o.finished >= o.started for o in h.ended)
    assert h.in_flight(0) == 0
    c.send(get(b"/"))
    c.lose(ConnectionResetError())  # the client goes away mid-exchange
    assert [o.end.value for o in h.ended][2:] == ["cancelled"]
    assert h.in_flight(1) == 0


# --- Sticky sessions, per-server limits and the pool's queue -----------------------------


def test_sticky_cookie_keeps_a_client_on_its_server_until_it_is_down() -> None:
    h = Harness(pool={"sticky_cookie": "srv"})
    c = h.client()
    c.send(get(b"/"))
    h.backend_conn(0).send(ok())
    first = c.received()
    line = first.split(b"\r\n")[1]
    assert line.startswith(b"Set-Cookie: srv=") and b"127.0.0.1" not in line  # opaque
    token = line.split(b"=", 1)[1].split(b";", 1)[0]
    c2 = h.client()
    for _ in range(3):  # round robin would move on; the cookie holds it on backend 0
        c2.send(get(b"/", fields=b"Cookie: a=1; srv=%s\r\n" % token))
        h.backend_conn(0).send(ok())
    assert c2.received() == ok() * 3  # a known cookie is not set again
    assert h.backend_conns(1) == [] or h.backend_conns(1)[0].received() == b""
    h.set_down(0)
    c2.send(get(b"/", fields=b"Cookie: srv=%s\r\n" % token))
    others = [i for i in (1, 2) if h.backend_conns(i)]
    h.backend_conn(others[0]).send(ok())
    assert b"Set-Cookie: srv=" in c2.received().split(ok() * 3, 1)[1]  # rewritten


def test_a_full_server_is_skipped_and_a_request_waits_in_the_queue_then_gets_503() -> None:
    h = Harness(backends=2, server={"max_requests": 1}, pool={"queue_timeout": 2.0})
    a, b, c = h.client(), h.client(), h.client()
    a.send(get(b"/a"))
    b.send(get(b"/b"))
    assert h.in_flight(0) == 1 and h.in_flight(1) == 1
    c.send(get(b"/c"))  # both full: it waits
    assert c.received() == b""
    h.backend_conn(0).send(ok(b"a"))  # backend 0 has room again: /c goes there
    assert h.backend_conn(0).received().endswith(forwarded(b"/c"))
    h.backend_conn(0).send(ok(b"c"))
    assert c.received() == ok(b"c")
    d = h.client()
    h.client()  # another client, idle
    c.send(get(b"/c2"))  # backend 0 takes it; backend 1 still busy with /b
    d.send(get(b"/d"))  # both full again: waits, then the queue timeout
    h.advance(2.5)
    assert d.received().startswith(b"HTTP/1.1 503 ")
    assert h.in_flight(0) == 1 and h.in_flight(1) == 1
