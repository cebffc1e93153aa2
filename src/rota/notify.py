"""systemd's readiness protocol (sd_notify), written by hand: one datagram to the
AF_UNIX socket named by $NOTIFY_SOCKET. Without that variable nothing is sent.

`READY=1` once listening; `RELOADING=1` / `READY=1` around a reload; `STOPPING=1` on stop;
after a binary upgrade the new process sends `MAINPID=` (the unit needs `NotifyAccess=all`,
since the new process is not the one systemd started).
"""

from __future__ import annotations

import contextlib
import os
import socket


def notify(*fields: str) -> bool:
    """Send `fields` (e.g. "READY=1") to systemd; False if not run under it."""
    path = os.environ.get("NOTIFY_SOCKET", "")
    if not path:
        return False
    if path.startswith("@"):
        path = "\0" + path[1:]  # an abstract socket
    with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.sendto("\n".join(fields).encode(), path)
        return True
    return False
