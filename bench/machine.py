"""The machine and the versions of the tools, for the report."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
import sys
from pathlib import Path


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
