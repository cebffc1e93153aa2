"""An accepted socket made into a transport for a protocol, without a Task.

rota accepts HTTP connections itself (`rota.proxy.listener.Listener`): that is what lets it
stop accepting at the connection cap, and it hands over the peer's address from accept().
The public way from an accepted socket to a transport is the coroutine
`loop.connect_accepted_socket`. Run as a Task it costs a Task, a scheduled step and a
wake-up per connection. But the coroutine does all its work in its first step (the
transport is made and `connection_made` scheduled) and then only waits for that
callback, so `connect` runs the first step at once and finishes the coroutine from the
waiter's done-callback, which is how a Task would resume it. Under uvloop and asyncio
alike the coroutine awaits one future there.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable, Iterator
from typing import Any

log = logging.getLogger("rota")


def connect(
    loop: asyncio.AbstractEventLoop,
    protocol: asyncio.BaseProtocol,
    sock: socket.socket,
    failed: Callable[[], None],
) -> None:
    """Serve `sock` (just accepted; the loop makes it non-blocking) with `protocol`. If no
    transport could be made (the socket was already gone, say), the socket is closed and
    `failed` called.

    The coroutine is stepped through its `__await__` iterator with `next(steps, None)`, so
    its end is a NULL from C. `coro.send()` raised StopIteration through this compiled
    frame instead, and mypyc built a code object, a frame and a traceback only to catch it
    (`_finish`: 5,400 -> 2,100 instructions per connection, `bench.wrk_icount --close`)."""
    steps = loop.connect_accepted_socket(lambda: protocol, sock).__await__()
    try:
        waiter = next(steps, None)
    except Exception as exc:
        log.debug("accepted connection lost before it was served: %r", exc)
        sock.close()
        failed()
        return
    if waiter is not None:  # else done in one step
        waiter.add_done_callback(lambda _: _finish(steps))


def _finish(steps: Iterator[Any]) -> None:
    try:
        next(steps, None)
    except Exception as exc:  # the transport is closed already by the coroutine
        log.debug("accepted connection failed at start: %r", exc)
