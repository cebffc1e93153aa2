"""Where a request's body starts: in the read that completed its head, and for a fresh
parser.

httptools tells no offsets, so to hand a body on past llhttp (a large Content-Length body,
or a chunked one in the client's own framing) the parser wrapper finds where its head
ended in the read: exactly with `head_end` when no earlier message ended in that read,
else by `body_start`'s search among a pipelined read's requests. `resume_head` is the
synthetic head that primes a fresh parser to frame a body that llhttp would not (after an
Upgrade rota strips).
"""

from __future__ import annotations

from typing import Final

from rota.http.chunks import hex_value
from rota.http.head import BodyKind, RequestHead

_CRLF2: Final = b"\r\n\r\n"


def body_start(data: bytes, start: int, began: bool, tail: bytes, last_value: bytes) -> int:
    """Where the body begins in `data`, a read in which llhttp just completed a request head
    (httptools tells no offsets), or -1 if it cannot be found. `began`: the head began in
    this read, after `start` (the end of an earlier request found in it); else it began in
    an earlier read ending with `tail`. The head ends at an empty line right after its last
    field's value (llhttp keeps its trailing whitespace), and a body starts with a chunk
    size: a candidate end that is not so belongs to another request of the read."""
    if not began:
        # No other request before it in this read: the first empty line, maybe cut.
        return _continued_head_end(data, tail)
    n = len(data)
    i = data.find(_CRLF2, start)
    while i != -1:
        k = i + 4
        # A slice compared is cheaper from compiled code than a call of endswith.
        if i - start >= len(last_value) and data[i - len(last_value) : i] == last_value:
            # The body starts with hex digits, then ";" or CR, or the read ends first.
            j = k
            while j < n and hex_value(data[j]) >= 0:
                j += 1
            if j == n or (j > k and (data[j] == 59 or data[j] == 13)):
                return k
        i = data.find(_CRLF2, i + 1)
    return -1


def _continued_head_end(data: bytes, tail: bytes) -> int:
    """Where a head begun in earlier reads (whose last bytes were `tail`) ends in `data`:
    after its first empty line, which may be cut between the reads; -1 if not in it."""
    joined = tail + data[:3]
    i = joined.find(_CRLF2)
    if i != -1:
        return i + 4 - len(tail)
    i = data.find(_CRLF2)
    return i + 4 if i != -1 else -1


def head_end(data: bytes, began: bool, tail: bytes) -> int:
    """Where the body begins in `data`, a read in which llhttp completed a request head and
    in which no earlier message ended, or -1. Then nothing but this head (after the line
    breaks llhttp skips before a request line) comes before the body in the read, and a
    head ends at its first empty line (llhttp refuses a bare CR or LF): exact, unlike
    `body_start`, which must choose between the requests of a pipelined read. `began`: the
    head began in this read; else in earlier ones, whose last bytes were `tail`."""
    if not began:
        return _continued_head_end(data, tail)
    n = len(data)
    pos = 0
    while pos < n and (data[pos] == 13 or data[pos] == 10):
        pos += 1
    i = data.find(_CRLF2, pos)
    return i + 4 if i != -1 else -1


def resume_head(head: RequestHead) -> bytes:
    """A synthetic head to feed a fresh httptools parser after llhttp paused on an Upgrade we
    strip (HttpParserUpgrade): llhttp treats an upgrade request as bodiless, so without this
    the body of `POST + Upgrade: h2c` would be parsed as the next request (smuggling). Feed
    this with callbacks muted until its on_headers_complete, then the bytes after the pause
    offset: the body is framed as `head` says and later requests parse normally. None of it is
    forwarded."""
    if head.body is BodyKind.CHUNKED:
        return b"PUT / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    if head.body is BodyKind.LENGTH:
        return b"PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % head.content_length
    return b""
