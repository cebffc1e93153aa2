"""Compile rota's hot modules with mypyc, in place: `python tools/build_native.py [--clean]`.

Called by `make install`. Without a C compiler or the Python headers it removes whatever it
built, says so, and exits 0: rota then runs as pure Python, which behaves the same. Skipped
when the compiled modules are newer than their sources. `--clean` removes them.
"""

from __future__ import annotations

import glob
import importlib.machinery
import importlib.util
import os
import shutil
import sys
import time
from types import ModuleType

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SRC = os.path.join(ROOT, "src")
BUILD = os.path.join(ROOT, "build", "native")


def _load_native_module() -> ModuleType:
    """rota.native without importing the rota package (which would load what we rebuild)."""
    spec = importlib.util.spec_from_file_location(
        "_rota_native", os.path.join(SRC, "rota", "native.py")
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


native = _load_native_module()


def built_files() -> list[str]:
    """Every compiled module under src/, listed or not (the list may have changed)."""
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    return glob.glob(os.path.join(SRC, "rota", "**", f"*{suffix}"), recursive=True) + glob.glob(
        os.path.join(SRC, f"{native.GROUP}__mypyc*")
    )


def clean() -> None:
    for path in built_files():
        os.remove(path)
    shutil.rmtree(BUILD, ignore_errors=True)


def up_to_date() -> bool:
    return bool(native.built())


def build() -> bool:
    from mypyc.build import mypycify
    from setuptools import setup

    sources = [os.path.relpath(native.source_path(m), SRC) for m in native.COMPILED]
    os.chdir(SRC)
    setup(
        name="rota-native",
        ext_modules=mypycify(sources, opt_level="3", group_name=native.GROUP, target_dir=BUILD),
        script_args=[
            "--quiet",
            "build_ext",
            "--inplace",
            "--build-temp",
            BUILD,
            "--build-lib",
            BUILD,
        ],
    )
    return True


def main() -> int:
    if sys.argv[1:] == ["--clean"]:
        clean()
        print("rota: compiled modules removed; rota runs as pure Python")
        return 0
    if os.environ.get(native.PURE_ENV, "") not in ("", "0"):
        clean()
        print(f"rota: {native.PURE_ENV} is set; not compiling")
        return 0
    if up_to_date():
        return 0
    clean()
    started = time.monotonic()
    try:
        build()
    except BaseException as exc:  # SystemExit from setuptools, CompileError, ImportError
        clean()
        reason = str(exc).splitlines()[-1] if str(exc) else ""
        if len(reason) > 200:
            reason = reason[:200] + "..."
        print(
            f"rota: could not compile the hot modules ({type(exc).__name__}: {reason}); "
            "rota runs as pure Python, which behaves the same but is slower "
            "(docs/performance.md). A C compiler and the Python headers "
            "(Debian: gcc python3-dev) enable it.",
            file=sys.stderr,
        )
        return 0
    print(
        f"rota: compiled {len(native.COMPILED)} hot modules with mypyc "
        f"in {time.monotonic() - started:.0f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
