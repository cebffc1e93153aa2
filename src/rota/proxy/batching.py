"""Write coalescing: one send per connection per event-loop callback.

While the loop runs one `data_received`, an exchange may write to the same connection
several times (a response head, then the first body bytes; a request head, then its body).
Each `transport.write` on an empty buffer is a `send` syscall, the largest single cost of a
proxied request. Writes made while the batch is active are kept per connection and sent
as one when the callback ends.
"""

from __future__ import annotations

import asyncio
from typing import Any


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


class BatchedWriter:
    """Mixin for a protocol with `transport` that sends through a shared `WriteBatch`."""

    __slots__ = ("_batch", "_out")

    _out: list[bytes] | None
    _batch: WriteBatch
    transport: asyncio.Transport | None

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
        transport = self.transport
        if transport is not None:
            transport.write(data)

    def flush(self) -> None:
        out = self._out
        if out is None:
            return
        self._out = None
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.write(out[0] if len(out) == 1 else b"".join(out))


def as_protocol(protocol: object) -> asyncio.Protocol:
    """rota's protocols are duck-typed asyncio protocols: they do not subclass
    `asyncio.Protocol`, so that mypyc can compile them as native classes (attributes in a C
    struct, methods called directly). The event loop only calls their methods."""
    untyped: Any = protocol
    return untyped  # type: ignore[no-any-return]
