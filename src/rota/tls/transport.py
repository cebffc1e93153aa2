"""rota's own TLS transport for accepted client connections: the handshake and the record
layer driven straight from the event loop's reader and writer callbacks.

Why not the event loop's (`connect_accepted_socket(ssl=...)`): the profile of a worker
under `bench.tls` (docs/tls.md, "Performance") put rota's extra cost over HAProxy in the
Python around OpenSSL, not in OpenSSL: per connection a Task, a coroutine, a waiter
future, uvloop's SSLProtocol and its app transport, `ssl.SSLObject`'s Python wrapper;
per record uvloop's state machine, a 256 KiB read buffer per `SSLObject.read`, the write
backlog. Here one object is the whole connection: it owns the socket, the two memory BIOs
and OpenSSL's connection object (`_ssl._SSLSocket`, the C object `ssl.SSLObject` wraps),
and is the protocol's transport.

Memory BIOs rather than OpenSSL reading the socket itself: with a socket BIO OpenSSL
reads each record with two `read` calls (its 5-byte header, then the rest; Python offers
no read-ahead switch), where one `read` here takes every record that has arrived.

What it keeps of uvloop's behaviour: a client's `close_notify` is `eof_received` and then
a close (TLS half-close is not kept open, as in uvloop and asyncio); a TCP EOF without
`close_notify` is a lost connection; `can_write_eof()` is False; `close()` sends what is
buffered, then `close_notify`, then closes without waiting for the client's.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import ssl
from collections.abc import Callable
from typing import Any, Final

log = logging.getLogger("rota.tls")

# One read takes at most this much ciphertext: 4 full records. `os.read` makes a bytes
# object of this size and shrinks it to what came; below glibc's mmap threshold (128 KiB),
# so that costs no system call.
READ_SIZE: Final = 64 * 1024
# Decrypted bytes asked of OpenSSL per call; it returns at most one record (16 KiB).
RECORD_SIZE: Final = 16 * 1024
# asyncio's default write-buffer marks.
HIGH_WATER: Final = 64 * 1024
LOW_WATER: Final = 16 * 1024
# A close() that still has bytes to send waits this long for a client that reads nothing,
# then aborts (uvloop's and asyncio's ssl_shutdown_timeout default).
SHUTDOWN_TIMEOUT: Final = 30.0

# The socket is read and written with `os.read` and `os.write` on its file descriptor:
# `socket.recv_into` and `send` parse their arguments the old way (a tuple, a format
# string: ~350 instructions a call), and `recv_into` wanted a memoryview slice to hand the
# BIO (~600 more); as module globals they are a dict lookup, not an attribute of `os`.
_read: Final = os.read
_write: Final = os.write

Done = Callable[["TlsTransport", BaseException | None], None]

# States
HANDSHAKE: Final = 0
OPEN: Final = 1
CLOSING: Final = 2  # close() called: flushing what is buffered, then close_notify
CLOSED: Final = 3


class TlsTransport:
    """A server-side TLS connection on an accepted, non-blocking socket: an asyncio
    transport by its methods. It does not subclass `asyncio.Transport`, so that mypyc can
    compile it as a native class (as rota's protocols, rota.proxy.batching.as_protocol).

    `done(transport, error)` is called once when the handshake has ended: with None when
    it succeeded (the protocol from `factory` then has its `connection_made`), with the
    exception when it failed or timed out (the socket is closed by then)."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        context: ssl.SSLContext,
        factory: Callable[[], Any],
        done: Done,
        handshake_timeout: float,
    ) -> None:
        self._loop = loop
        self._sock = sock
        # Accepted sockets come blocking (rota.proxy.listener leaves it to the transport):
        # uvloop's add_reader would make the fd non-blocking anyway, asyncio's does not.
        sock.setblocking(False)
        self._fd = sock.fileno()
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        # The C object behind ssl.SSLObject: the same calls without a Python frame each.
        self._ssl: Any = context._wrap_bio(  # type: ignore[attr-defined]
            self._incoming, self._outgoing, server_side=True, server_hostname=None
        )
        self._context = context
        self._factory = factory
        self._done: Done | None = done
        self._protocol: Any = None
        self._state = HANDSHAKE
        self._reading = True
        self._pending: list[bytes | memoryview] = []  # ciphertext the socket has not taken
        self._held = b""  # TLS 1.3 session tickets, sent with the first bytes that follow
        self._pending_size = 0
        self._writing = False  # the writer callback is set
        self._write_paused = False  # the protocol was told pause_writing
        self._high = HIGH_WATER
        self._low = LOW_WATER
        self._timer: asyncio.TimerHandle | None = loop.call_later(
            handshake_timeout, self._handshake_timeout
        )
        # One reader callback for the connection's whole life, handshake included: every
        # add_reader/remove_reader pair costs uvloop a poll handle and six epoll_ctl calls
        # (libuv checks, deletes, adds), and changing callbacks at the handshake's end was
        # one such pair per connection.
        loop.add_reader(self._fd, self._readable)

    def __repr__(self) -> str:
        states = ("handshake", "open", "closing", "closed")
        return f"<TlsTransport fd={self._fd} {states[self._state]}>"

    # The handshake

    def _handshake_readable(self) -> None:
        if not self._receive():
            if self._state == HANDSHAKE:
                self._fail(ConnectionResetError("the client closed during the handshake"))
            return
        self._handshake()

    def _handshake(self) -> None:
        try:
            self._ssl.do_handshake()
        except ssl.SSLWantReadError:
            self._flush_outgoing()  # the server's flight
            return
        except Exception as exc:  # an SSLError, or the SNI callback's own failure
            self._flush_outgoing()  # the alert, if OpenSSL made one
            self._fail(exc)
            return
        if self._ssl.version() == "TLSv1.3":
            # What OpenSSL wrote at the end is the session tickets alone: they leave with
            # the first answer (or close_notify), one send where they took one of their
            # own (a syscall, a loopback segment, a wake-up of the client). A TLS 1.3
            # client does not wait for them; TLS 1.2's end of the flight (the server's
            # Finished) must leave now.
            self._held = self._outgoing.read()
        else:
            self._flush_outgoing()
            if self._state != HANDSHAKE:
                return  # the flush failed: the socket is gone
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._state = OPEN
        done = self._done
        self._done = None
        if done is not None:
            done(self, None)
        try:
            self._protocol = protocol = self._factory()
            protocol.connection_made(self)
        except Exception as exc:
            self._protocol_error(exc)
            return
        if self._state == OPEN and self._incoming.pending:
            self._records()  # the first request came with the client's Finished

    def _handshake_timeout(self) -> None:
        self._timer = None
        if self._state == HANDSHAKE:
            self._fail(TimeoutError("TLS handshake timed out"))

    def _fail(self, exc: BaseException) -> None:
        """The handshake failed: close at once, tell the acceptor why."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._shut(send_close_notify=False)
        done = self._done
        self._done = None
        if done is not None:
            done(self, exc)

    # Reading

    def _receive(self) -> bool:
        """Read what the socket has into the incoming BIO; False on EOF or error."""
        try:
            data = _read(self._fd, READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return True
        except OSError as exc:
            if self._state == HANDSHAKE:
                self._fail(exc)
            else:
                self._lost(exc)
            return False
        if not data:
            return False
        self._incoming.write(data)
        return True

    def _readable(self) -> None:
        if self._state == HANDSHAKE:
            self._handshake_readable()
            return
        if not self._receive():
            if self._state != CLOSED:
                # A TCP EOF without close_notify: a broken stream, not a graceful end.
                self._lost(None)
            return
        self._records()

    def _records(self) -> None:
        """Decrypt what the incoming BIO holds and pass it on, as one `data_received`.

        A keep-alive request is one record: one `read`, then the loop ends on the BIO's
        `pending` alone. `SSLObject.pending()` (decrypted bytes of a record not yet read)
        is asked only after a full-size chunk: a shorter one was the whole rest of its
        record, so nothing can be pending. That saves a call that releases and takes the
        GIL, and ending on `pending` rather than on `SSLWantReadError` saves an exception
        per record (a record cut between two TCP reads still ends in one, once).

        It reads first and asks after: every caller has just put bytes in the BIO or
        seen some there, so asking before would be one more `pending` per record; a
        wake-up that finds nothing costs one `SSLWantReadError`."""
        ssl_object = self._ssl
        incoming = self._incoming
        first: bytes | None = None
        chunks: list[bytes] | None = None
        eof = False
        try:
            while True:
                chunk = ssl_object.read(RECORD_SIZE)
                if not chunk:
                    eof = True
                    break
                if first is None:
                    first = chunk
                elif chunks is None:
                    chunks = [first, chunk]
                else:
                    chunks.append(chunk)
                if not incoming.pending and (len(chunk) < RECORD_SIZE or not ssl_object.pending()):
                    break
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            pass
        except ssl.SSLZeroReturnError:
            eof = True
        except ssl.SSLError as exc:
            self._flush_outgoing()
            self._lost(exc)
            return
        if self._outgoing.pending:
            self._flush_outgoing()  # a key update's answer, for one
        protocol = self._protocol
        try:
            if first is not None:
                protocol.data_received(first if chunks is None else b"".join(chunks))
            if eof and self._state == OPEN:
                # close_notify: the client will send nothing more. Like uvloop, the
                # connection then closes whatever eof_received answers.
                protocol.eof_received()
                self.close()
        except Exception as exc:
            self._protocol_error(exc)

    def pause_reading(self) -> None:
        if self._reading:
            self._reading = False
            if self._state == OPEN:
                self._loop.remove_reader(self._fd)

    def resume_reading(self) -> None:
        if not self._reading:
            self._reading = True
            if self._state == OPEN:
                self._loop.add_reader(self._fd, self._readable)
                if self._incoming.pending or self._ssl.pending():
                    # Records read before the pause: they would wait for the next packet.
                    self._loop.call_soon(self._resume_records)

    def _resume_records(self) -> None:
        if self._state == OPEN and self._reading:
            self._records()

    def is_reading(self) -> bool:
        return self._reading and self._state == OPEN

    # Writing

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._state != OPEN or not data:
            return
        try:
            self._ssl.write(data)
        except ssl.SSLError as exc:
            self._lost(exc)
            return
        self._flush_outgoing()

    def writelines(self, parts: Any) -> None:
        self.write(b"".join(parts))

    def _flush_outgoing(self) -> None:
        """Send the ciphertext OpenSSL made; what the socket does not take waits for the
        writer callback."""
        out: bytes | memoryview = self._outgoing.read()
        if self._held:
            out = self._held + out
            self._held = b""
        if not out:
            return
        if not self._pending:
            try:
                sent = _write(self._fd, out)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError as exc:
                self._lost(exc)
                return
            if sent == len(out):
                return
            out = memoryview(out)[sent:]
            self._loop.add_writer(self._fd, self._writable)
            self._writing = True
        self._pending.append(out)
        self._pending_size += len(out)
        if not self._write_paused and self._pending_size > self._high and self._state == OPEN:
            self._write_paused = True
            try:
                self._protocol.pause_writing()
            except Exception as exc:
                self._protocol_error(exc)

    def _writable(self) -> None:
        pending = self._pending
        while pending:
            out = pending[0]
            try:
                sent = _write(self._fd, out)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                self._lost(exc)
                return
            self._pending_size -= sent
            if sent < len(out):
                pending[0] = memoryview(out)[sent:]
                break
            pending.pop(0)
        if not pending:
            self._loop.remove_writer(self._fd)
            self._writing = False
            if self._state == CLOSING:
                self._shut(send_close_notify=True)
                self._loop.call_soon(self._connection_lost, None)
                return
        if self._write_paused and self._pending_size <= self._low and self._state == OPEN:
            self._write_paused = False
            try:
                self._protocol.resume_writing()
            except Exception as exc:
                self._protocol_error(exc)

    def can_write_eof(self) -> bool:
        return False

    def write_eof(self) -> None:
        raise NotImplementedError("TLS connections cannot half-close")

    def get_write_buffer_size(self) -> int:
        return self._pending_size

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._low, self._high

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        if high is None:
            high = HIGH_WATER if low is None else 4 * low
        if low is None:
            low = high // 4
        if not high >= low >= 0:
            raise ValueError(f"high ({high!r}) must be >= low ({low!r}) must be >= 0")
        self._high, self._low = high, low

    # Closing

    def is_closing(self) -> bool:
        return self._state >= CLOSING

    def close(self) -> None:
        """Send what is buffered, then close_notify; connection_lost follows."""
        if self._state != OPEN:
            return
        self._state = CLOSING
        self._loop.remove_reader(self._fd)
        if not self._pending:
            self._shut(send_close_notify=True)
            self._loop.call_soon(self._connection_lost, None)
        else:
            self._timer = self._loop.call_later(SHUTDOWN_TIMEOUT, self._shutdown_timeout)

    def _shutdown_timeout(self) -> None:
        self._timer = None
        if self._state == CLOSING:
            self._lost(None)

    def abort(self) -> None:
        if self._state >= CLOSED:
            return
        if self._state == HANDSHAKE:
            self._fail(ConnectionAbortedError("aborted during the handshake"))
            return
        self._lost(None)

    def _lost(self, exc: BaseException | None) -> None:
        """The connection is gone (an error, an abort, a TCP EOF): close now."""
        if self._state >= CLOSED:
            return
        if self._state == HANDSHAKE:
            self._fail(exc or ConnectionResetError("the client closed during the handshake"))
            return
        self._shut(send_close_notify=False)
        self._loop.call_soon(self._connection_lost, exc)

    def _protocol_error(self, exc: BaseException) -> None:
        self._loop.call_exception_handler(
            {
                "message": "TLS transport: protocol callback failed",
                "exception": exc,
                "transport": self,
                "protocol": self._protocol,
            }
        )
        self._lost(exc)

    def _shut(self, send_close_notify: bool) -> None:
        """Stop watching the socket and close it, after close_notify if asked."""
        prior = self._state
        self._state = CLOSED
        loop = self._loop
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if prior != CLOSING:  # close() stopped reading already
            loop.remove_reader(self._fd)
        if self._writing:
            loop.remove_writer(self._fd)
            self._writing = False
        if send_close_notify:
            # It then waits for the client's close_notify: not awaited. `_ssl` asks
            # OpenSSL twice and raises SSLWantReadError on every close; try/except rather
            # than contextlib.suppress, whose __enter__/__exit__ run as Python code.
            try:  # noqa: SIM105
                self._ssl.shutdown()
            except (ssl.SSLError, ValueError):
                pass
            out = self._held + self._outgoing.read()
            if out:
                try:  # noqa: SIM105
                    _write(self._fd, out)
                except OSError:
                    pass
        self._pending = []
        self._pending_size = 0
        self._held = b""
        self._sock.close()
        self._fd = -1  # the number may be reused at once: read and write it no more

    def _connection_lost(self, exc: BaseException | None) -> None:
        protocol = self._protocol
        self._protocol = None
        if protocol is not None:
            protocol.connection_lost(exc)

    # Information

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "peername":
            try:
                return self._sock.getpeername()
            except OSError:
                return default
        if name == "sockname":
            try:
                return self._sock.getsockname()
            except OSError:
                return default
        if name == "socket":
            return self._sock
        if name == "ssl_object":
            return self._ssl
        if name == "sslcontext":
            return self._ssl.context
        if name == "cipher":
            return self._ssl.cipher()
        if name == "peercert":
            return self._ssl.getpeercert()
        if name == "compression":
            return self._ssl.compression()
        return default

    def get_protocol(self) -> Any:
        return self._protocol

    def set_protocol(self, protocol: Any) -> None:
        self._protocol = protocol
