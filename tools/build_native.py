"""Compile rota's hot modules with mypyc: `python tools/build_native.py [--clean]`.

Called by `make install`. The extension modules go to src/rota/_compiled/, which
`rota.native` loads from only while the build is current. Without a C compiler or the
Python headers, or if the build fails, it leaves no build behind, says why, and exits 0:
rota then runs as pure Python. Does nothing when the build is current. `--clean` removes it.
"""

from __future__ import annotations

import glob
import importlib.machinery
import importlib.util
import os
import shlex
import shutil
import sys
import sysconfig
import threading
import time
from types import ModuleType

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SRC = os.path.join(ROOT, "src")
WORK = os.path.join(ROOT, "build", "native")  # generated C, objects, mypy's cache
TICK_SECONDS = 15.0


def _load_native_module() -> ModuleType:
    """rota.native without importing the rota package."""
    spec = importlib.util.spec_from_file_location(
        "_rota_native", os.path.join(SRC, "rota", "native.py")
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


native = _load_native_module()


def clean() -> None:
    shutil.rmtree(native.BUILD_DIR, ignore_errors=True)
    shutil.rmtree(WORK, ignore_errors=True)
    # Extension modules next to the sources (the first builds put them there) would shadow
    # the sources whatever rota.native decides: none may stay.
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    pattern = os.path.join(SRC, "**", f"*{suffix}")
    for path in glob.glob(pattern, recursive=True):
        os.remove(path)


def missing_toolchain() -> str | None:
    """Why a C extension cannot be built here, found before mypyc spends its time."""
    compiler = shlex.split(os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc")
    if not compiler or shutil.which(compiler[0]) is None:
        return f"no C compiler ({compiler[0] if compiler else 'CC is empty'} not found)"
    include = sysconfig.get_path("include")
    if not os.path.exists(os.path.join(include, "Python.h")):
        return f"no Python headers ({include}/Python.h not found)"
    return None


def build() -> None:
    from mypyc.build import mypycify
    from setuptools import setup

    # Sources are read after this instant: stamping the build with it means a file saved
    # while the build runs counts as newer than the build, so as stale.
    started = time.time()
    os.chdir(SRC)
    options = [f"--cache-dir={os.path.join(WORK, 'mypy_cache')}"]
    sources = [os.path.relpath(native.source_path(m), SRC) for m in native.COMPILED]
    setup(
        name="rota-native",
        ext_modules=mypycify(
            options + sources, opt_level="3", group_name=native.GROUP, target_dir=WORK
        ),
        script_args=[
            "--quiet",
            "build_ext",
            "--build-temp",
            WORK,
            "--build-lib",
            native.BUILD_DIR,
        ],
    )
    for module in (native.GROUP_MODULE, *native.COMPILED):
        os.utime(native.compiled_path(module), (started, started))


class _Ticker(threading.Thread):
    """A line every TICK_SECONDS while mypyc and the C compiler work silently, so that a
    first `make run` never looks stuck."""

    def __init__(self, started: float) -> None:
        super().__init__(name="build ticker", daemon=True)
        self.started = started
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(TICK_SECONDS):
            elapsed = time.monotonic() - self.started
            print(f"rota: still compiling ({elapsed:.0f} s so far)", flush=True)

    def stop(self) -> None:
        self.done.set()


def main() -> int:
    if sys.argv[1:] == ["--clean"]:
        clean()
        print("rota: compiled modules removed; rota runs as pure Python")
        return 0
    if os.environ.get(native.PURE_ENV, "") not in ("", "0"):
        print(f"rota: {native.PURE_ENV} is set; not compiling")
        return 0
    if native.built():
        return 0
    clean()
    why = missing_toolchain()
    if why is not None:
        print(f"rota: {why}; rota runs as pure Python (docs/performance.md)", file=sys.stderr)
        return 0
    print(
        f"rota: compiling {len(native.COMPILED)} hot modules to C with mypyc, once: about a "
        "minute (a few on a small, busy machine); it halves rota's CPU per request. Later "
        "starts use the build and are instant.",
        flush=True,
    )
    started = time.monotonic()
    ticker = _Ticker(started)
    ticker.start()
    try:
        build()
    except KeyboardInterrupt:
        clean()
        raise
    except BaseException as exc:  # SystemExit from setuptools or mypyc, CompileError, ...
        clean()
        reason = str(exc).splitlines()[-1] if str(exc) else ""
        if len(reason) > 200:
            reason = reason[:200] + "..."
        print(
            f"rota: compiling the hot modules failed ({type(exc).__name__}: {reason}); "
            "rota runs as pure Python (docs/performance.md)",
            file=sys.stderr,
        )
        return 0
    finally:
        ticker.stop()
    print(
        f"rota: compiled {len(native.COMPILED)} hot modules with mypyc "
        f"in {time.monotonic() - started:.0f} s; the next start is instant"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
