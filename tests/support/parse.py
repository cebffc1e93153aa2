"""Drive rota.http.request.RequestParser over a whole byte stream, without sockets."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from rota.config.model import LimitSpec
from rota.http.errors import ProtocolError
from rota.http.request import RequestHead, RequestParser


@dataclass
class Parsed:
    head: RequestHead
    body: bytearray = field(default_factory=bytearray)
    trailers: bytes = b""  # the trailer section as rota forwards it
    complete: bool = False
    # A chunked body passed through: the client's chunks as handed on (the last chunk is
    # the sink's to write), and the data bytes the parser said they held. `body` is then
    # what they decode to.
    framed: bytearray = field(default_factory=bytearray)
    framed_data: int = 0


def dechunk(framed: bytes) -> bytes:
    """The data of chunks as passed through (no last chunk; the last one may be cut short),
    decoded by the simplest reading of RFC 9112 7.1: a check of the parser's framing from
    outside it."""
    out = bytearray()
    pos = 0
    while pos < len(framed):
        lf = framed.find(b"\n", pos)
        if lf == -1:
            break
        size = int(framed[pos:lf].split(b";", 1)[0].strip(b"\r"), 16)
        out += framed[lf + 1 : lf + 1 + size]
        pos = lf + 1 + size + 2
    return bytes(out)


@dataclass
class StreamResult:
    requests: list[Parsed]
    error: ProtocolError | None

    @property
    def status(self) -> int:
        """What the client sees for the first problem: the error status, else 200."""
        return self.error.status if self.error is not None else 200


class _Sink:
    def __init__(self) -> None:
        self.requests: list[Parsed] = []

    def on_request(self, head: RequestHead) -> None:
        self.requests.append(Parsed(head))

    def on_request_body(self, data: bytes) -> None:
        self.requests[-1].body += data

    def on_request_framed(self, data: bytes, body: int) -> None:
        parsed = self.requests[-1]
        parsed.framed += data
        parsed.framed_data += body
        parsed.body = bytearray(dechunk(parsed.framed))

    def on_request_trailers(self, section: bytes) -> None:
        self.requests[-1].trailers = section

    def on_request_end(self) -> None:
        self.requests[-1].complete = True


def read_stream(data: bytes, limits: LimitSpec | None = None, piece: int = 65536) -> StreamResult:
    """Feed `data` as a client's byte stream, `piece` bytes per read, as the proxy does."""
    sink = _Sink()
    parser = RequestParser(sink, limits or LimitSpec())
    for pos in range(0, len(data), piece):
        try:
            parser.feed(data[pos : pos + piece])
        except ProtocolError as exc:
            return StreamResult(sink.requests, exc)
    return StreamResult(sink.requests, None)


def read_cut(data: bytes, cuts: list[int], limits: LimitSpec | None = None) -> StreamResult:
    """Feed `data` cut at the given offsets: reads of uneven sizes."""
    sink = _Sink()
    parser = RequestParser(sink, limits or LimitSpec())
    bounds = [0, *sorted(set(cuts)), len(data)]
    for start, end in itertools.pairwise(bounds):
        if start < end:
            try:
                parser.feed(data[start:end])
            except ProtocolError as exc:
                return StreamResult(sink.requests, exc)
    return StreamResult(sink.requests, None)
