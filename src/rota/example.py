"""`make run`: three backends and the load balancer from the bundled `server_db.json`,
as child processes of this one. Ctrl-C or SIGTERM stops them all, by PID."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

from rota.config import ConfigError, Mode, load_config

ADMIN = "127.0.0.1:9901"  # the dashboard and metrics of `make run`


def run_example(config_path: Path) -> int:
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        print(f"rota: {exc}", file=sys.stderr)
        return 2
    rota = [sys.executable, "-m", "rota"]
    children: list[subprocess.Popen[bytes]] = []
    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    # One backend per distinct address of every pool (a server may be in two pools).
    servers = {s.address: s for pool in config.pools for s in pool.servers}
    try:
        for b in servers.values():
            children.append(
                subprocess.Popen([*rota, "backend", "--host", b.host, "--port", str(b.port)])
            )
        time.sleep(0.5)
        admin = ["--admin", ADMIN] if config.admin is None else []
        children.append(subprocess.Popen([*rota, "lb", "--config", str(config_path), *admin]))
        time.sleep(0.5)
        http = [spec for spec in config.listeners if spec.protocol is Mode.HTTP]
        url = f"http://{(http or config.listeners)[0].address}/"
        dashboard = config.admin.address if config.admin is not None else ADMIN
        print(
            f"\nrota is up: try\n    curl {url}\n(several times: round robin over "
            f"{len(servers)} backends), and watch it live at http://{dashboard}/ "
            "(metrics: /metrics). Ctrl-C stops everything.\n",
            flush=True,
        )
        while not stopping:
            # A backend may die (or be killed, to watch rota route around it); only the
            # load balancer's exit ends the example.
            if children[-1].poll() is not None:
                print("rota example: the load balancer exited; stopping", file=sys.stderr)
                break
            time.sleep(0.2)
    finally:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 8
        for child in children:
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
    return 0
