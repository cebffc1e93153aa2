"""Process-level set-up shared by every command: event loop choice, fd limit, logging."""

from __future__ import annotations

import asyncio
import logging
import os
import resource
import sys
from collections.abc import Callable


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    """uvloop when installed (about 2x the throughput of the default loop), else asyncio's.
    `ROTA_LOOP=asyncio` picks asyncio's anyway: to compare the two (bench.tls does)."""
    if os.environ.get("ROTA_LOOP") == "asyncio":
        return asyncio.new_event_loop
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop
    return uvloop.new_event_loop


def raise_fd_limit() -> int:
    """Lift the soft open-files limit to the hard one: each client connection costs one fd
    and each backend connection another, and the usual soft default of 1024 is too few."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    return soft


def setup_logging(level: int = logging.INFO) -> None:
    """One line per event on stderr, prefixed with the time."""
    logging.basicConfig(
        stream=sys.stderr,
        level=level,
        format="%(asctime)s rota: %(message)s",
        datefmt="%H:%M:%S",
    )
