"""The chunk-size lines of a chunked request body, followed beside llhttp (`ChunkLines`).

llhttp frames the chunks but sets no bound on a size line's extensions and tells no
offsets; rota reads the size lines itself, ahead of llhttp, to refuse an over-long one
and to know which bytes of a read are the body's own framing (for passing a body through
as the client framed it). Pure: bytes in, counts out.
"""

from __future__ import annotations

from typing import Final

from rota.http.errors import ProtocolError

# RFC 9112 7.1.1: a recipient may limit the length of chunk extensions. llhttp (httptools
# 0.9) accepts any: measured, a 1 MiB extension in one read and 64 MiB fed in pieces parse,
# and httptools exposes no extension callback (llhttp's on_chunk_extension_* are not wired).
# Node.js refuses more than 16 KiB of extensions in one message (kMaxChunkExtensionsSize,
# CVE-2024-22019); HAProxy needs the whole chunk-size line inside one buffer (tune.bufsize,
# 16 KiB). rota takes the same 16 KiB, per chunk-size line (size and extensions): real
# extensions are short (aws-chunked's chunk-signature is 81 bytes on every chunk, so a
# per-body total would refuse large signed uploads), and a body cannot repeat them for free:
# every chunk but the last carries data, which max_body_bytes counts. Leading zeros count
# too (llhttp takes any number of them).
MAX_CHUNK_LINE: Final = 16 * 1024
_MAX_CHUNK_SIZE: Final = 2**64 - 1  # llhttp refuses a larger one


class ChunkLines:
    """Follows the chunk framing of one chunked request body beside llhttp, to bound each
    chunk-size line (MAX_CHUNK_LINE), which llhttp does not. Fed the raw bytes from the start
    of the body, read by read, ahead of llhttp (a too-long line is refused before llhttp
    parses past it); reads nothing but the size lines. `data` (the sizes) and `seen` (what
    llhttp delivered) must agree at the end of the message, or the two disagree on where
    the body is and the request is refused."""

    __slots__ = (
        "carry",
        "checked",
        "cut",
        "data",
        "done",
        "end",
        "line",
        "raw",
        "read",
        "seen",
        "sent",
        "skip",
        "trailer",
    )

    def __init__(self, raw: bool = False) -> None:
        # Passthrough (`raw`): the body's own bytes go to the backend, framing and all, so
        # each scan also says which of the read's bytes are forwardable: up to `cut` (the
        # start of the last chunk's line, or of a size line cut by the end of the read; -1:
        # the whole read), after `carry` (a size line begun in earlier reads, held back
        # until it was known not to be the last chunk's). `sent`: the data bytes of `seen`
        # already forwarded.
        self.raw = raw
        self.cut = -1
        self.carry = b""
        self.sent = 0
        self.line = b""  # the start of a size line cut by the end of a read
        self.skip = 0  # bytes of chunk data and its CRLF before the next size line
        self.done = False  # the last chunk (size 0) was seen: trailer fields follow
        self.data = 0  # data bytes the size lines announced
        self.seen = 0  # data bytes llhttp delivered (kept by the caller)
        self.read: bytes | None = None  # the read in which the last chunk was seen
        self.end = 0  # and the offset after its line
        self.checked = False  # the message ended and agrees() was asked
        self.trailer = 0  # bytes fed after the last chunk while the message is unfinished

    def scan(self, data: bytes, pos: int) -> None:
        """Follow `data[pos:]`; raises ProtocolError (400) for a size line over
        MAX_CHUNK_LINE."""
        n = len(data)
        self.cut = -1
        self.carry = b""
        while pos < n and not self.done:
            skip = self.skip
            if skip:
                take = n - pos if n - pos < skip else skip
                pos += take
                self.skip = skip - take
                continue
            start = pos  # where this size line starts in `data` (0 if it began earlier)
            size = -1
            lf = -1
            if not self.line:
                # The usual size line, hex digits and CRLF, is read without a search.
                i = pos
                value = 0
                while i < n:
                    digit = hex_value(data[i])
                    if digit < 0:
                        break
                    value = value * 16 + digit
                    i += 1
                if i + 1 < n and i > pos and data[i] == 13 and data[i + 1] == 10:
                    lf = i + 1
                    size = value if value <= _MAX_CHUNK_SIZE else -1
            if lf == -1:
                lf = data.find(b"\n", pos)
                if lf == -1:
                    # Cut by the end of the read: keep it (MAX_CHUNK_LINE bytes and CR).
                    line = self.line + data[pos:]
                    if len(line) > MAX_CHUNK_LINE + 1:
                        raise ProtocolError(400, "chunk extension too long")
                    self.line = line
                    self.cut = start
                    return
                # The line ends with CR (llhttp refuses a bare LF); the CR is not counted.
                if self.line:
                    begun = self.line
                    line = begun + data[pos:lf]
                    self.line = b""
                    if len(line) > MAX_CHUNK_LINE + 1:
                        raise ProtocolError(400, "chunk extension too long")
                    size = _chunk_size(line, 0, len(line))
                    if size > 0 and self.raw:
                        self.carry = begun
                else:
                    if lf - pos > MAX_CHUNK_LINE + 1:
                        raise ProtocolError(400, "chunk extension too long")
                    size = _chunk_size(data, pos, lf)
            elif lf - pos > MAX_CHUNK_LINE + 1:
                raise ProtocolError(400, "chunk extension too long")
            pos = lf + 1
            if size < 0:
                # Not a size line: llhttp refuses it when it gets there, unless this lost
                # step with llhttp, which agrees() reports at the end of the message.
                self.cut = start
                self.lose()
                return
            if size == 0:
                self.cut = start
                self.done = True
                self.read = data
                self.end = pos
                return
            self.data += size
            self.skip = size + 2  # the data and its CRLF

    def lose(self) -> None:
        """Stop following: the body is not where this looked for it."""
        self.done = True
        self.data = -1

    def agrees(self) -> bool:
        """At the end of the message: llhttp framed the same body."""
        return self.done and self.data == self.seen

    def in_step(self) -> bool:
        """After a read both parsed whole, mid-body: the data bytes the size lines have
        passed over are those llhttp delivered (of the data and CRLF still to skip, the
        data is not passed yet)."""
        if self.done:
            return self.data == self.seen
        ahead = self.skip - 2
        return self.data - (ahead if ahead > 0 else 0) == self.seen


def hex_value(c: int) -> int:
    """The value of one hex digit's byte, or -1."""
    if 48 <= c <= 57:
        return c - 48
    if 97 <= c <= 102:
        return c - 87
    if 65 <= c <= 70:
        return c - 55
    return -1


def _chunk_size(buf: bytes, start: int, end: int) -> int:
    """The size of the chunk-size line buf[start:end] (its CR included, not its LF): hex
    digits, then ";" or the CR; -1 if it is not one. A loop over bytes, not method calls:
    this runs once per chunk."""
    size = 0
    i = start
    while i < end:
        digit = hex_value(buf[i])
        if digit < 0:
            break
        size = size * 16 + digit
        i += 1
    if i in (start, end) or size > _MAX_CHUNK_SIZE:
        return -1
    c = buf[i]
    if (c == 59 or c == 13) and buf[end - 1] == 13:  # ";" or CR, and the line ends with CR
        return size
    return -1
