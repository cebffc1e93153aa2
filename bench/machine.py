"""The machine and the versions of the tools, for the report; and the refusal to measure a
compiled build of rota that would not run (`require_current_build`)."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import platform
import subprocess
import sys
from pathlib import Path
from types import ModuleType


def _first_line(argv: list[str]) -> str:
    """First non-empty output line of a version command (some print to stderr)."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unavailable ({exc})"
    for line in (done.stdout + "\n" + done.stderr).splitlines():
        if line.strip():
            return line.strip()
    return "unknown"


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info() -> dict[str, str]:
    return {
        "nproc": str(len(os.sched_getaffinity(0))),
        "CPU": cpu_model(),
        "kernel": f"{platform.system()} {platform.release()}",
        "python": sys.version.split()[0],
        # The interpreter's build matters (a PGO+LTO build, as Debian's, runs rota's Python
        # noticeably faster than a plain --enable-shared one): say which one ran.
        "python binary": os.path.realpath(sys.executable),
    }


def rota_version(repo: Path) -> str:
    try:
        version = importlib.metadata.version("rota")
    except importlib.metadata.PackageNotFoundError:
        version = "not installed"
    commit = _first_line(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"])
    dirty = subprocess.run(
        ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    ).stdout.strip()
    return f"{version} (git {commit}{', with uncommitted changes' if dirty else ''})"


def tool_versions(repo: Path, rota_bin: Path) -> dict[str, str]:
    return {
        "wrk": _first_line(["wrk", "-v"]).split(" Copyright")[0],
        "haproxy": _first_line(["haproxy", "-v"]).split(" - ")[0],
        "nginx": _first_line(["nginx", "-v"]),
        "rota": rota_version(repo),
        # Compiled with mypyc or pure Python (rota.native): the build changes rota's figures.
        "rota build": _first_line([str(rota_bin), "--version"]),
    }


# How many module names a refusal lists before it says how many more there are.
_NAMED = 6


def native_of(src: Path) -> ModuleType | None:
    """The `rota.native` of the source tree `src` (the directory holding `rota/`), loaded
    from its file without importing that tree's rota, so that its `built()` and
    `stale_modules()` speak of that tree's build; None for a tree without one (rota before
    it had compiled modules)."""
    path = src / "rota" / "native.py"
    spec = importlib.util.spec_from_file_location(f"_bench_native_{abs(hash(path))}", path)
    if not path.is_file() or spec is None or spec.loader is None:
        return None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _imported_native() -> ModuleType:
    import rota.native

    return rota.native


def _names(modules: list[str]) -> str:
    more = len(modules) - _NAMED
    return ", ".join(modules[:_NAMED]) + (f" and {more} more" if more > 0 else "")


def build_problem(src: Path | None = None) -> str | None:
    """Why the figures of rota from source tree `src` (default: the rota this Python imports,
    which is what a bench's `rota` processes run, with its interpreter and PYTHONPATH) would
    not be those of its compiled build; None when they would be, or when pure Python is the
    only build or chosen (ROTA_PURE_PYTHON=1).

    rota.native loads a build only when it is complete and newer than every source;
    otherwise rota prints one line on stderr, which a bench's output hides, and runs as pure
    Python: a before/after of a compiled module would silently compare pure Python."""
    native = _imported_native() if src is None else native_of(src)
    if native is None:
        return None
    if os.environ.get(native.PURE_ENV, "") not in ("", "0"):
        return None
    modules = [native.GROUP_MODULE, *native.COMPILED]
    missing = [m for m in modules if not os.path.exists(native.compiled_path(m))]
    if len(missing) == len(modules) or native.built():
        return None  # never built (no compiler): pure Python is what this tree runs
    stale = native.stale_modules()
    what = []
    if stale:
        what.append(f"older than their source ({_names(stale)})")
    if missing:
        what.append(f"incomplete (missing {_names(missing)})")
    return (
        f"rota's compiled modules in {native.BUILD_DIR} are {' and '.join(what)}, so rota "
        "would run as pure Python. Rebuild them with `make install` (or `python "
        "tools/build_native.py`) in that checkout, or set ROTA_PURE_PYTHON=1 to measure pure "
        "Python on purpose."
    )


def require_current_build(prog: str, *srcs: Path) -> None:
    """Exit before measuring anything when a build a bench would run is stale or incomplete
    (build_problem); `srcs`: the source trees it runs rota from, none for the rota this
    Python imports. Every bench that measures rota calls it first thing in its main."""
    problems = [p for p in map(build_problem, srcs or (None,)) if p is not None]
    if problems:
        raise SystemExit("\n".join(f"{prog}: {p}" for p in problems))
