"""rota's hot modules compiled to C with mypyc, and the way back to pure Python.

`make install` compiles the modules in `COMPILED` with mypyc (`tools/build_native.py`) when
a C compiler and the Python headers are present; the extension modules land next to their
sources and Python's import system prefers them. Without a compiler nothing is built and
rota runs as the plain Python it is: the two behave the same and the test suite runs on
both (docs/performance.md has what compiling buys).

`choose()` runs when `rota` is imported and loads every module of the list from its source
instead when

- `ROTA_PURE_PYTHON=1` is set (to compare, or to rule the compiler out), or
- any compiled module is older than its source: an edited checkout must not run stale code.

It is all or nothing: compiled modules call each other's native classes directly, so one
module from source and another compiled would not fit together.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import os
import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType

# The modules a request goes through; everything here must stay mypy --strict clean.
COMPILED = (
    "rota.balancing.base",
    "rota.balancing.round_robin",
    "rota.config.model",
    "rota.http.headers",
    "rota.http.request",
    "rota.http.rules",
    "rota.pool",
    "rota.proxy.batching",
    "rota.proxy.client",
    "rota.proxy.context",
    "rota.proxy.exchange",
    "rota.proxy.upstream",
)

PURE_ENV = "ROTA_PURE_PYTHON"
GROUP = "rota_native"  # mypyc's shared library of the group: <site>/rota_native__mypyc.*.so

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
_EXTENSION_SUFFIX = importlib.machinery.EXTENSION_SUFFIXES[0]


def source_path(module: str) -> str:
    """`rota.http.rules` -> .../rota/http/rules.py"""
    return os.path.join(_PACKAGE_DIR, *module.split(".")[1:]) + ".py"


def extension_path(module: str) -> str:
    """`rota.http.rules` -> .../rota/http/rules.cpython-311-x86_64-linux-gnu.so"""
    return source_path(module)[: -len(".py")] + _EXTENSION_SUFFIX


def _mtime(path: str) -> float | None:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return None


def group_path() -> str:
    """The library holding the code of all compiled modules, next to the package."""
    return os.path.join(os.path.dirname(_PACKAGE_DIR), f"{GROUP}__mypyc{_EXTENSION_SUFFIX}")


def stale_modules() -> list[str]:
    """Compiled modules whose source changed after they were built (all of them when this
    list changed: the group library was built for another one)."""
    group = _mtime(group_path())
    if group is not None and group < (_mtime(__file__) or 0.0):
        return [m for m in COMPILED if os.path.exists(extension_path(m))] or [GROUP]
    stale = []
    for module in COMPILED:
        built = _mtime(extension_path(module))
        if built is not None and built < (_mtime(source_path(module)) or 0.0):
            stale.append(module)
    return stale


def built() -> bool:
    """Every module of the list has a compiled module, and none is stale."""
    paths = [group_path(), *map(extension_path, COMPILED)]
    return all(map(os.path.exists, paths)) and not stale_modules()


def compiled_modules() -> list[str]:
    """The modules of the list that are loaded (or would load) compiled in this process."""
    return [
        module
        for module in COMPILED
        if (loaded := sys.modules.get(module)) is not None
        and (loaded.__file__ or "").endswith(_EXTENSION_SUFFIX)
    ]


def describe() -> str:
    """One line for `rota --version` and reports: what runs, compiled or not."""
    for module in COMPILED:
        importlib.import_module(module)
    done = compiled_modules()
    if not done:
        return "pure Python"
    return f"{len(done)} of {len(COMPILED)} hot modules compiled with mypyc"


class _SourceFinder:
    """A meta path finder that loads the listed modules from their .py files."""

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> ModuleSpec | None:
        if fullname not in COMPILED:
            return None
        return importlib.util.spec_from_file_location(fullname, source_path(fullname))


def choose() -> None:
    """Load the compiled modules, unless asked not to or they are stale (see above)."""
    if any(isinstance(finder, _SourceFinder) for finder in sys.meta_path):
        return
    if os.environ.get(PURE_ENV, "") not in ("", "0"):
        sys.meta_path.insert(0, _SourceFinder())
        return
    stale = stale_modules()
    if stale:
        print(
            f"rota: {len(stale)} compiled module(s) older than their source "
            f"({', '.join(stale)}); running pure Python. `make install` rebuilds them.",
            file=sys.stderr,
        )
        sys.meta_path.insert(0, _SourceFinder())
