"""The request parser (httptools + rota.http.rules) over the strictness corpus, no sockets.

The same corpus runs through the whole proxy in tests/integration/test_corpus.py; here it pins
the parser-level decision of every case, whole and byte by byte, and that a hidden request
never parses as one.
"""

from __future__ import annotations

import random

import httptools
import pytest

from rota.config.model import LimitSpec
from rota.http.chunks import MAX_CHUNK_LINE
from rota.http.errors import ProtocolError
from rota.http.request import BYPASS_MIN, Body, RequestHead, RequestParser
from tests.support.corpus import CASES, MARKER, SMUGGLED, Case
from tests.support.parse import read_cut, read_stream


def test_corpus_is_large_and_ids_unique() -> None:
    ids = [case.id for case in CASES]
    assert len(ids) >= 60
    assert len(set(ids)) == len(ids)
    assert sum(case.status == 200 for case in CASES) >= 20
    assert all(case.rfc.startswith("RFC ") for case in CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
@pytest.mark.parametrize("piece", [65536, 1], ids=["whole", "bytewise"])
def test_case(case: Case, piece: int) -> None:
    result = read_stream(case.raw, piece=piece)
    assert result.status == case.status, result.error
    assert MARKER not in [parsed.head.target for parsed in result.requests]
    if case.status == 200:
        assert len(result.requests) == case.requests
        assert all(parsed.complete for parsed in result.requests)
    elif case.stage == "head":
        # Refused before its head was complete: nothing of it would be forwarded.
        assert result.requests == []
    else:
        assert len(result.requests) == 1
        assert not result.requests[0].complete


def test_stripped_upgrade_keeps_its_body() -> None:
    raw = (
        b"POST / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n"
        b"Content-Length: %d\r\n\r\n"
        % len(SMUGGLED)
        + SMUGGLED
        + b"GET /next HTTP/1.1\r\nHost: a\r\n\r\n"
    )
    for piece in (65536, 1, 7):
        result = read_stream(raw, piece=piece)
        assert result.error is None
        assert [bytes(p.body) for p in result.requests] == [SMUGGLED, b""]
        assert [p.head.target for p in result.requests] == [b"/", b"/next"]
        assert all(p.complete for p in result.requests)
    chunked = (
        b"POST / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
    )
    result = read_stream(chunked, piece=3)
    assert [bytes(p.body) for p in result.requests] == [b"hello"]
    assert result.requests[0].head.body is Body.CHUNKED and result.requests[0].complete


def test_pipelined_upload_does_not_count_as_head_bytes() -> None:
    head = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n"
    # The second 64 KiB read ends the body and stops 10 bytes into the next head: that read
    # must not count as 64 KiB of head.
    body = b"x" * (2 * 65536 - len(head) - 10)
    head = head.replace(b"100000", b"%d" % len(body))
    raw = head + body + b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"
    result = read_stream(raw, piece=65536)
    assert result.error is None and len(result.requests) == 2


def test_endless_header_is_cut_off_while_it_trickles() -> None:
    raw = b"GET / HTTP/1.1\r\nHost: a\r\nX-Endless: " + b"a" * 200_000
    result = read_stream(raw, piece=4096)
    assert result.status == 431


def test_chunked_body_over_the_limit() -> None:
    limits = LimitSpec(max_body_bytes=10)
    raw = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
    assert read_stream(raw + b"5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n", limits).status == 200
    assert read_stream(raw + b"5\r\nhello\r\n6\r\nworld!\r\n0\r\n\r\n", limits).status == 413
    cl = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n"
    result = read_stream(cl, limits)  # refused from the head alone, before any body byte
    assert result.status == 413 and result.requests == []


def test_trailers_are_forwarded_but_never_a_framing_or_routing_field() -> None:
    raw = (
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n"
        b"Host: b\r\nX-Checksum: abc \r\nConnection: close\r\nAuthorization: x\r\n\r\n"
    )
    result = read_stream(raw)
    assert result.status == 200 and result.requests[0].complete
    assert result.requests[0].trailers == b"X-Checksum: abc\r\n"


def test_ten_thousand_trailer_fields_get_431() -> None:
    raw = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n"
    result = read_stream(raw + b"X: 1\r\n" * 10_000 + b"\r\n")
    assert result.status == 431 and not result.requests[0].complete


class _Sink:
    def __init__(self) -> None:
        self.events: list[tuple[str, bytes]] = []

    def on_request(self, head: RequestHead) -> None:
        self.events.append(("head", head.target))

    def on_request_body(self, data: bytes) -> None:
        self.events.append(("body", data))

    def on_request_framed(self, data: bytes, body: int) -> None:
        self.events.append(("framed", data))

    def on_request_trailers(self, section: bytes) -> None:
        self.events.append(("trailers", section))

    def on_request_end(self) -> None:
        self.events.append(("end", b""))


def test_websocket_handshake_holds_what_follows_unparsed() -> None:
    sink = _Sink()
    parser = RequestParser(sink, LimitSpec())
    handshake = b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
    # What follows may be tunnel data (after a 101): even garbage must not be parsed yet.
    parser.feed(handshake + b"GET /next HTTP/1.1\r\n")
    parser.feed(b"\x00\xff not http")
    assert sink.events == [("head", b"/ws"), ("end", b"")]
    assert parser.held == b"GET /next HTTP/1.1\r\n\x00\xff not http"
    assert parser.release_held() == b"GET /next HTTP/1.1\r\n\x00\xff not http"
    assert parser.held is None and parser.release_held() is None
    # No 101: the held bytes are fed back and parse as HTTP on a fresh parser.
    parser.feed(b"GET /next HTTP/1.1\r\nHost: a\r\n\r\n")
    assert sink.events[2:] == [("head", b"/next"), ("end", b"")]
    assert parser.held is None


# --- chunk extensions (RFC 9112 7.1.1): llhttp has no limit, rota's is MAX_CHUNK_LINE ---

_CHUNKED_HEAD = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"


def test_llhttp_accepts_any_chunk_extension() -> None:
    # Measured (httptools 0.9): llhttp alone parses a 1 MiB extension, and httptools has no
    # extension callback; this is why rota follows the size lines itself.
    done: list[bool] = []

    class Proto:
        def on_message_complete(self) -> None:
            done.append(True)

    httptools.HttpRequestParser(Proto()).feed_data(
        _CHUNKED_HEAD + b"5;" + b"a" * (1 << 20) + b"\r\nhello\r\n0\r\n\r\n"
    )
    assert done == [True]


@pytest.mark.parametrize("piece", [65536 * 2, 4096, 1000])
def test_64k_chunk_extension_is_refused(piece: int) -> None:
    raw = _CHUNKED_HEAD + b"5;x=" + b"a" * 65536 + b"\r\nhello\r\n0\r\n\r\n"
    result = read_stream(raw, piece=piece)
    assert result.status == 400
    assert result.error is not None and result.error.reason == "chunk extension too long"
    # Never a complete request, nor a byte of that chunk's data.
    assert all(not p.complete and not p.body for p in result.requests)


def test_chunk_line_limit_is_exact() -> None:
    line = b"5;" + b"e" * (MAX_CHUNK_LINE - 2)  # size digit + ";" + extension = the limit
    assert len(line) == MAX_CHUNK_LINE
    ok = _CHUNKED_HEAD + line + b"\r\nhello\r\n0\r\n\r\n"
    over = _CHUNKED_HEAD + line + b"e\r\nhello\r\n0\r\n\r\n"
    for piece in (65536, 1000, 7):
        assert read_stream(ok, piece=piece).status == 200
        assert read_stream(over, piece=piece).status == 400
    # The last chunk's line counts too, and so do leading zeros (llhttp takes any number).
    assert read_stream(_CHUNKED_HEAD + b"0;" + b"e" * MAX_CHUNK_LINE + b"\r\n\r\n").status == 400
    assert (
        read_stream(_CHUNKED_HEAD + b"0" * (MAX_CHUNK_LINE + 1) + b"5\r\nhello\r\n").status == 400
    )


def test_endless_chunk_extension_is_cut_off_while_it_trickles() -> None:
    sink = _Sink()
    parser = RequestParser(sink, LimitSpec())
    parser.feed(_CHUNKED_HEAD + b"5;x=")
    with pytest.raises(ProtocolError) as refused:
        for _ in range(100):
            parser.feed(b"a" * 1000)
    assert refused.value.status == 400
    assert sink.events == [("head", b"/")]


def test_endless_trailer_field_is_cut_off_while_it_trickles() -> None:
    # llhttp buffers a field until it is complete: the trailer section is bounded by the
    # bytes fed into it, as a head is (max_header_bytes), not only at the message's end.
    sink = _Sink()
    parser = RequestParser(sink, LimitSpec())
    parser.feed(_CHUNKED_HEAD + b"3\r\nabc\r\n0\r\nX-Endless: ")
    with pytest.raises(ProtocolError) as refused:
        for _ in range(100):
            parser.feed(b"a" * 1000)
    assert refused.value.status == 431
    assert ("end", b"") not in sink.events


def test_trailers_and_what_follows_them_in_one_read_are_not_counted_as_trailer() -> None:
    # A small trailer section, then a large pipelined upload in the same read and after it.
    upload = b"POST /u HTTP/1.1\r\nHost: a\r\nContent-Length: 50000\r\n\r\n" + b"x" * 50_000
    raw = _CHUNKED_HEAD + b"3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n" + upload
    for piece in (65536, 1000, 7):
        result = read_stream(raw, piece=piece)
        assert result.error is None, piece
        assert [r.complete for r in result.requests] == [True, True]


def test_chunk_extensions_under_the_limit_on_every_chunk() -> None:
    # aws-chunked puts an 81-byte signature on every chunk: no total per body.
    signature = b";chunk-signature=" + b"0" * 64
    body = b"".join(b"4%s\r\nabcd\r\n" % signature for _ in range(2000)) + b"0" + signature
    result = read_stream(_CHUNKED_HEAD + body + b"\r\n\r\n", piece=8192)
    assert result.error is None and len(result.requests[0].body) == 8000


_MIXES = [
    _CHUNKED_HEAD + b"3;a=b\r\nabc\r\n0\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\n\r\n" + _CHUNKED_HEAD + b"3\r\n\r\n\r\r\n0\r\nX-T: 1\r\n\r\n",
    # Same last field in both heads, a body starting with CRLFCRLF, chunks named DELETE.
    (_CHUNKED_HEAD + b"4\r\n\r\n\r\n\r\n0\r\n\r\n") * 2
    + b"DELETE / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
    + b"A\r\n0123456789\r\n0\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\n\r\n\r\n"
    + _CHUNKED_HEAD
    + b"1\r\nx\r\n0\r\n\r\n",
    b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nHost: a  \r\n\r\n"
    + b'10;q="a b"\r\n'
    + b"x" * 16
    + b"\r\n0\r\n\r\nGET /end HTTP/1.1\r\nHost: a\r\n\r\n",
]


@pytest.mark.parametrize("raw", _MIXES)
def test_chunk_lines_follow_llhttp_whatever_the_reads(raw: bytes) -> None:
    # Every cut of the stream into two or three reads: never a false refusal.
    expected = read_stream(raw)
    assert expected.error is None, expected.error
    rng = random.Random(raw)
    cuts = [[i] for i in range(1, len(raw))]
    cuts += [sorted(rng.sample(range(1, len(raw)), 2)) for _ in range(300)]
    for cut in cuts:
        result = read_cut(raw, cut)
        assert result.error is None, (cut, result.error)
        assert [bytes(p.body) for p in result.requests] == [
            bytes(p.body) for p in expected.requests
        ]
        assert all(p.complete for p in result.requests)


_PASSED_CHUNKS = b'3;a=b\r\nabc\r\n00A\r\n0123456789\r\n1;q="x y"\r\nz\r\n'


def test_passthrough_hands_on_the_clients_chunks_byte_for_byte() -> None:
    """However the reads cut it, a chunked body is handed on as the client framed it (size
    lines, extensions, data), without its last chunk, which the sink writes with the
    trailer section rota forwards."""
    raw = _CHUNKED_HEAD + _PASSED_CHUNKS + b"0;end\r\nX-T: 1\r\n\r\n"
    rng = random.Random(1)
    cuts = [[i] for i in range(1, len(raw))]
    cuts += [sorted(rng.sample(range(1, len(raw)), 3)) for _ in range(300)]
    for cut in cuts:
        result = read_cut(raw, cut)
        assert result.error is None, (cut, result.error)
        [parsed] = result.requests
        assert bytes(parsed.framed) == _PASSED_CHUNKS, cut
        assert parsed.framed_data == len(parsed.body) == 14
        assert parsed.complete and parsed.trailers == b"X-T: 1\r\n"


def test_a_chunked_request_behind_another_in_its_read_is_reframed_not_passed() -> None:
    """Where a head ends in a read that ended another message is a search that a crafted
    earlier body could mislead (body_start.body_start): such a body is handed on de-chunked."""
    first = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9\r\n\r\n\r\n\r\n3\r\nab"
    raw = first + _CHUNKED_HEAD + _PASSED_CHUNKS + b"0\r\n\r\n"
    result = read_stream(raw)
    assert result.error is None
    assert [bytes(p.framed) for p in result.requests] == [b"", b""]
    assert bytes(result.requests[1].body) == b"abc0123456789z"
    # The same request in a read of its own passes through.
    result = read_cut(raw, [len(first)])
    assert bytes(result.requests[1].framed) == _PASSED_CHUNKS


def test_a_large_content_length_body_read_past_llhttp_ends_where_its_length_says() -> None:
    """A body of BYPASS_MIN or more is handed on read by read without llhttp; what follows
    its length is parsed as the next request, however the reads fall."""
    body = (b"GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n" * 3000)[: BYPASS_MIN + 7]
    raw = (
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n" % len(body)
        + body
        + b"GET /next HTTP/1.1\r\nHost: a\r\n\r\n"
    )
    for piece in (1000, 4096, 65536, 1 << 20, len(raw) - 5):
        result = read_stream(raw, piece=piece)
        assert result.error is None, piece
        assert [p.head.target for p in result.requests] == [b"/", b"/next"], piece
        assert bytes(result.requests[0].body) == body
        assert all(p.complete for p in result.requests)


def _random_chunks(rng: random.Random) -> tuple[bytes, bytes]:
    """A chunked body's chunks as a client might frame them (any hex case, leading zeros,
    extensions), and the data they carry."""
    framed = b""
    data = b""
    for _ in range(rng.randrange(1, 6)):
        piece = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40)))
        size = f"{len(piece):x}"
        size = rng.choice([size, size.upper(), "0" * rng.randrange(1, 4) + size])
        ext = rng.choice([b"", b";a", b";a=b", b';q="x y"', b";s=" + b"f" * 64])
        framed += size.encode() + ext + b"\r\n" + piece + b"\r\n"
        data += piece
    return framed, data


def test_passthrough_is_exact_for_random_bodies_and_reads() -> None:
    """Random chunked bodies, alone or behind another request, cut into random reads: the
    body always decodes to the data sent, and whatever is passed through is the client's
    framing byte for byte."""
    rng = random.Random(20)
    passed = 0
    for _ in range(300):
        framed, data = _random_chunks(rng)
        tail = rng.choice([b"0\r\n\r\n", b"0;z\r\nX-T: 1\r\n\r\n"])
        before = rng.choice([b"", b"GET /a HTTP/1.1\r\nHost: a\r\n\r\n", b"\r\n"])
        raw = before + _CHUNKED_HEAD + framed + tail + b"GET /z HTTP/1.1\r\nHost: a\r\n\r\n"
        cuts = sorted(rng.sample(range(1, len(raw)), rng.randrange(0, 6)))
        result = read_cut(raw, cuts)
        assert result.error is None, (raw, cuts, result.error)
        posted = [p for p in result.requests if p.head.method == b"POST"]
        assert len(posted) == 1 and posted[0].complete, (raw, cuts)
        assert bytes(posted[0].body) == data, (raw, cuts)
        if posted[0].framed:
            passed += 1
            assert bytes(posted[0].framed) == framed, (raw, cuts)
            assert posted[0].framed_data == len(data)
        assert result.requests[-1].head.target == b"/z"
    assert 100 < passed < 300  # both ways taken: passed through, and re-chunked
