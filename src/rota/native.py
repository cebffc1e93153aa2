"""rota's hot modules compiled to C with mypyc, used only when the build is current.

`make install` compiles the modules in `COMPILED` with mypyc (`tools/build_native.py`) when
a C compiler and the Python headers are present. The extension modules go to `_compiled/`
inside this package, away from the sources: nothing imports them by accident (an older
checkout, a renamed module). `choose()`, run when `rota` is imported, puts a finder in
front of the import system that loads them, only if

- every listed module and the library they share are built,
- none is older than its source, and the build is not older than this list, and
- `ROTA_PURE_PYTHON` is not set (to compare, or to rule the compiler out).

Otherwise rota runs as the plain Python it is (with a line on stderr when a build exists
but is stale or incomplete). It is all or nothing: compiled modules call each other's
native classes directly, so one module from source and another compiled would not fit.

Both builds run the same code for well-typed callers, and `make test` runs the whole suite
on each. Compiled code differs only where a caller breaks the annotations: it checks
argument and return types at run time (a `bytearray` where `bytes` is annotated raises
TypeError), refuses attributes a class does not declare, and reads `Final` constants as C
values that patching the module does not change.
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
    "rota.balancing.custom",  # its CustomPolicy subclasses the native Policy
    "rota.balancing.first",
    "rota.balancing.hash",
    "rota.balancing.least_requests",
    "rota.balancing.p2c",
    "rota.balancing.random",
    "rota.balancing.round_robin",
    "rota.balancing.tiers",
    "rota.config.model",
    "rota.http.body_start",
    "rota.http.charsets",
    "rota.http.chunks",
    "rota.http.edits",
    "rota.http.forward",
    "rota.http.head",
    "rota.http.headers",
    "rota.http.local",
    "rota.http.request",
    "rota.http.routing",
    "rota.http.rules",
    "rota.http.trailers",
    "rota.observe.access_log",
    "rota.observe.log_format",
    "rota.observe.metrics",
    "rota.outcome",
    "rota.pool",
    "rota.proxy.accepted",
    "rota.proxy.batching",
    "rota.proxy.client",
    "rota.proxy.context",
    "rota.proxy.exchange",
    "rota.proxy.listener",
    "rota.proxy.server",
    "rota.proxy.upstream",
    "rota.tls.transport",
)

PURE_ENV = "ROTA_PURE_PYTHON"
GROUP = "rota_native"
GROUP_MODULE = f"{GROUP}__mypyc"  # mypyc's library holding the code of all of them

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
BUILD_DIR = os.path.join(_PACKAGE_DIR, "_compiled")
_EXTENSION_SUFFIX = importlib.machinery.EXTENSION_SUFFIXES[0]


def source_path(module: str) -> str:
    """`rota.http.rules` -> .../rota/http/rules.py"""
    return os.path.join(_PACKAGE_DIR, *module.split(".")[1:]) + ".py"


def compiled_path(module: str) -> str:
    """`rota.http.rules` -> .../rota/_compiled/rota/http/rules.cpython-311-x86_64-linux-gnu.so"""
    return os.path.join(BUILD_DIR, *module.split(".")) + _EXTENSION_SUFFIX


def _mtime(path: str) -> float | None:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return None


def stale_modules() -> list[str]:
    """Built modules whose source is newer or gone; all of them when the build is older
    than this list (it was built for another one)."""
    built = [m for m in COMPILED if os.path.exists(compiled_path(m))]
    group = _mtime(compiled_path(GROUP_MODULE))
    if group is not None and group < (_mtime(__file__) or 0.0):
        return built or [GROUP_MODULE]
    stale = []
    for module in built:
        source = _mtime(source_path(module))
        if source is None or (_mtime(compiled_path(module)) or 0.0) < source:
            stale.append(module)
    return stale


def built() -> bool:
    """Every module of the list and the group library are built, and none is stale."""
    paths = [compiled_path(m) for m in (GROUP_MODULE, *COMPILED)]
    return all(map(os.path.exists, paths)) and not stale_modules()


def compiled_modules() -> list[str]:
    """The modules of the list that this process loaded compiled."""
    return [
        module
        for module in COMPILED
        if (loaded := sys.modules.get(module)) is not None
        and (loaded.__file__ or "").startswith(BUILD_DIR)
    ]


def describe() -> str:
    """One line for `rota --version` and reports: what runs, compiled or not."""
    for module in COMPILED:
        importlib.import_module(module)
    done = compiled_modules()
    if not done:
        return "pure Python"
    return f"{len(done)} of {len(COMPILED)} hot modules compiled with mypyc"


class _CompiledFinder:
    """A meta path finder that loads the listed modules from the build."""

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> ModuleSpec | None:
        if fullname != GROUP_MODULE and fullname not in COMPILED:
            return None
        location = compiled_path(fullname)
        loader = importlib.machinery.ExtensionFileLoader(fullname, location)
        return importlib.util.spec_from_file_location(fullname, location, loader=loader)


def choose() -> None:
    """Load the compiled modules if the build is current and wanted (see above)."""
    if any(isinstance(finder, _CompiledFinder) for finder in sys.meta_path):
        return
    if os.environ.get(PURE_ENV, "") not in ("", "0"):
        return
    if built():
        sys.meta_path.insert(0, _CompiledFinder())
        return
    stale = stale_modules()
    if stale or any(os.path.exists(compiled_path(m)) for m in (GROUP_MODULE, *COMPILED)):
        what = f"older than their source ({', '.join(stale)})" if stale else "incomplete"
        print(
            f"rota: the compiled modules are {what}; running pure Python. "
            "`make install` rebuilds them.",
            file=sys.stderr,
        )
