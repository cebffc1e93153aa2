"""Write coalescing: one send per connection per event-loop callback.

While the loop runs one `data_received`, an exchange may write to the same connection
several times (a response head, then the first body bytes; a request head, then its body).
Each `transport.write` on an empty buffer is a `send` syscall, the largest single cost of a
proxied request. Writes made while the batch is active are kept per connection and sent
as one when the callback ends.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Final, cast

# Write-buffer marks of a connection that carries a body (TCP mode's too). uvloop's default
# marks are 64 KiB and 16 *bytes* (its FLOW_CONTROL_HIGH_WATER // 4, in bytes): each read of
# a body (up to 256 KiB) then paused the other side, which resumed only once the buffer was
# empty, so the socket ran dry between reads. Set at the first pause_writing, so a
# connection whose writes never back up pays nothing; the memory bound per direction is
# HIGH_WATER plus one read.
HIGH_WATER: Final = 256 * 1024
LOW_WATER: Final = 64 * 1024


class WriteBatch:
    """A callback sets `active` before its work and calls `flush()` after (in `finally`)."""

    __slots__ = ("active", "pending")

    def __init__(self) -> None:
        self.active = False
        self.pending: list[BatchedWriter] = []

    def flush(self) -> None:
        self.active = False
        pending = self.pending
        if pending:
            self.pending = []
            for writer in pending:
                writer.flush()


def _closed() -> bool:
    return True


def _nowhere(data: bytes) -> None:
    pass


class BatchedWriter:
    """Mixin for a protocol with `transport` that sends through a shared `WriteBatch`.

    The transport's `write` and `is_closing` are kept as bound methods, taken once in
    `bind`: a call through a method name looks the name up on the transport's type every
    time, about 20 times per proxied request in all."""

    __slots__ = ("_batch", "_is_closing", "_out", "_send", "transport")

    _out: list[bytes] | None
    _batch: WriteBatch
    _send: Callable[[bytes], None]
    _is_closing: Callable[[], bool]
    transport: asyncio.Transport | None

    def init_writer(self, batch: WriteBatch) -> None:
        """Called by the protocol's __init__, before any transport is bound."""
        self._batch = batch
        self._out = None
        self.transport = None
        self._send = _nowhere
        self._is_closing = _closed

    def widen(self) -> None:
        """Called from pause_writing: the body marks (HIGH_WATER, LOW_WATER). The transport
        is paused already, so the new high mark pauses nothing more; it resumes below
        LOW_WATER."""
        transport = self.transport
        if transport is not None:
            transport.set_write_buffer_limits(HIGH_WATER, LOW_WATER)

    def bind(self, transport: asyncio.BaseTransport) -> None:
        """connection_made: keep the transport and the two methods every write uses."""
        self.transport = bound = cast(asyncio.Transport, transport)
        self._send = bound.write
        self._is_closing = bound.is_closing

    def write(self, data: bytes) -> None:
        out = self._out
        if out is not None:
            out.append(data)
            return
        batch = self._batch
        if batch.active:
            self._out = [data]
            batch.pending.append(self)
            return
        if self.transport is not None:
            self._send(data)

    def write_parts(self, parts: list[bytes]) -> None:
        """write(b"".join(parts)), taking the list over: in a batch the parts are joined
        once, with whatever follows them (a response head and its body)."""
        out = self._out
        if out is not None:
            out += parts
            return
        batch = self._batch
        if batch.active:
            self._out = parts
            batch.pending.append(self)
            return
        if self.transport is not None:
            self._send(b"".join(parts))

    def flush(self) -> None:
        out = self._out
        if out is None:
            return
        self._out = None
        if self.transport is not None and not self._is_closing():
            self._send(out[0] if len(out) == 1 else b"".join(out))


def as_protocol(protocol: object) -> asyncio.Protocol:
    """rota's protocols are duck-typed asyncio protocols: they do not subclass
    `asyncio.Protocol`, so that mypyc can compile them as native classes (attributes in a C
    struct, methods called directly). The event loop only calls their methods."""
    untyped: Any = protocol
    return untyped  # type: ignore[no-any-return]
