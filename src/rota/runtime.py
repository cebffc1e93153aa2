"""Process-level set-up shared by every command: event loop choice, fd limit, logging."""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import resource
import sys
from collections.abc import Callable
from typing import Final

# glibc's mallopt(3) parameters.
_M_TRIM_THRESHOLD: Final = -1
_M_MMAP_THRESHOLD: Final = -3
# Every read of a body makes a bytes object of up to 256 KiB (uvloop's read size), freed a
# moment later. With glibc's defaults such a block is mmap'ed and munmap'ed, or taken from
# the top of the heap and given back with brk, so every read touches fresh pages: measured
# on a chunked 512 MiB upload, a third of rota's CPU went to page faults and zeroing pages
# (3 brk and 1 mmap/munmap/mremap per read). Kept in the heap and not trimmed below these,
# the blocks are reused warm. What stays is bounded by the peak of the buffers in use.
MMAP_THRESHOLD: Final = 4 << 20
TRIM_THRESHOLD: Final = 64 << 20


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


def tune_malloc() -> bool:
    """Keep the large blocks of body reads in glibc's heap (see MMAP_THRESHOLD); False
    where there is no glibc mallopt (musl, macOS), which changes nothing else."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    mmap = mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
    trim = mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    return bool(mmap == 1 and trim == 1)


def setup_logging(level: int = logging.INFO) -> None:
    """One line per event on stderr, prefixed with the time."""
    logging.basicConfig(
        stream=sys.stderr,
        level=level,
        format="%(asctime)s rota: %(message)s",
        datefmt="%H:%M:%S",
    )
