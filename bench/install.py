"""Installing what the benchmark needs when it is missing: wrk, haproxy and nginx from Debian
packages, matplotlib from PyPI into the running (.venv) Python. matplotlib is deliberately not
a dev dependency, so `make test` stays lean."""

from __future__ import annotations

import importlib
import importlib.util
import os
import shutil
import subprocess
import sys

TOOLS = ("wrk", "haproxy", "nginx")


def find_tool(name: str) -> str | None:
    # Debian puts haproxy and nginx in /usr/sbin, which a non-login PATH may lack.
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin:/sbin")


def ensure_tools() -> dict[str, str]:
    """Paths of wrk, haproxy and nginx, installing them with apt-get if one is missing."""
    missing = [t for t in TOOLS if find_tool(t) is None]
    if missing:
        if os.geteuid() != 0:
            raise SystemExit(
                f"bench: {', '.join(missing)} missing; install with "
                "`sudo apt-get install -y wrk haproxy nginx`"
            )
        print(f"bench: installing {', '.join(missing)} (apt-get)", flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update"], check=True, env=env, timeout=600)
        subprocess.run(["apt-get", "install", "-y", *TOOLS], check=True, env=env, timeout=1200)
    paths = {t: find_tool(t) for t in TOOLS}
    absent = [t for t, p in paths.items() if p is None]
    if absent:
        raise SystemExit(f"bench: still missing after install: {', '.join(absent)}")
    return {t: p for t, p in paths.items() if p is not None}


def ensure_matplotlib() -> None:
    if importlib.util.find_spec("matplotlib") is not None:
        return
    print("bench: installing matplotlib (pip)", flush=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "matplotlib"], check=True, timeout=900
    )
    importlib.invalidate_caches()
