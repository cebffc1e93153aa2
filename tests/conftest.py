from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.procs import Proc, start_backend, start_lb, write_config


class Cluster:
    """Backends named a, b, c and a load balancer in front of them."""

    def __init__(self, backends: list[tuple[Proc, int]], lb: Proc, port: int) -> None:
        self.backends = backends
        self.lb = lb
        self.port = port

    def backend_port(self, i: int) -> int:
        return self.backends[i][1]


@pytest.fixture
def backends() -> Iterator[list[tuple[Proc, int]]]:
    started = [start_backend(name=n) for n in ("a", "b", "c")]
    yield started
    for proc, _ in started:
        proc.stop()


@pytest.fixture
def cluster(tmp_path: Path, backends: list[tuple[Proc, int]]) -> Iterator[Cluster]:
    config = write_config(tmp_path / "server_db.json", [p for _, p in backends])
    lb, port = start_lb(config)
    yield Cluster(backends, lb, port)
    lb.stop()
