"""`/metrics`: the summed snapshot in Prometheus's text exposition format.

prometheus-client writes the format (escaping, `_total`, `_bucket`/`le`, HELP and TYPE
lines) and reads /proc for the `process_*` metrics; rota supplies the numbers through a
custom collector, so nothing on the data path touches the library. docs/admin.md lists
every metric.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from itertools import accumulate

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from rota.instance import Runtime
from rota.observe.metrics import BUCKETS, Snapshot
from rota.pool import Admin, Backend, CheckKey, State

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LE = [*(f"{b:g}" for b in BUCKETS), "+Inf"]


def server_state(backend: Backend) -> str:
    """One word for the API and dashboard: up, down, draining or disabled."""
    if backend.admin is Admin.DISABLED:
        return "disabled"
    if backend.admin is Admin.DRAINING:
        return "draining"
    return "up" if backend.state is State.UP else "down"


def code(status: int) -> str:
    return str(status) if status else "none"  # "none": the client left before any answer


class RotaCollector(Collector):
    """Yields rota's metric families from the latest sum (set before each scrape)."""

    def __init__(
        self,
        runtime: Runtime,
        health: Callable[[], dict[CheckKey, tuple[int, int]]],
        workers: Callable[[], Sequence[int]],
    ) -> None:
        self.runtime = runtime
        self.health = health
        self.workers = workers
        self.snap: Snapshot = {}

    def collect(self) -> Iterator[Metric]:
        snap = self.snap
        requests = CounterMetricFamily(
            "rota_requests",
            "Requests answered, by the status sent to the client (server empty: rota answered)",
            labels=["listener", "pool", "server", "code"],
        )
        for (listener, pool, server, status), n in sorted(snap.get("requests", {}).items()):
            requests.add_metric([listener, pool, server, code(status)], n)
        yield requests
        tcp = CounterMetricFamily(
            "rota_tcp_connections",
            "TCP listeners' connections, ended, by the server they were relayed to",
            labels=["listener", "pool", "server"],
        )
        for key, n in sorted(snap.get("tcp", {}).items()):
            tcp.add_metric(list(key), n)
        yield tcp
        yield self._histogram(
            "rota_request_duration_seconds",
            "From a request's first byte in to its response's last byte out",
            ["listener", "pool"],
            snap.get("duration", {}),
        )
        yield self._histogram(
            "rota_upstream_response_seconds",
            "From the request sent to a server to its response head received",
            ["pool", "server"],
            snap.get("upstream", {}),
        )
        local = CounterMetricFamily(
            "rota_local_responses",
            "Answers rota made itself (errors, 404s, redirects, respond routes)",
            labels=["listener", "code"],
        )
        for (listener, status), n in sorted(snap.get("local", {}).items()):
            local.add_metric([listener, code(status)], n)
        yield local
        yield from self._servers(snap)
        retries = CounterMetricFamily(
            "rota_retries", "Requests sent on to another server", labels=["pool"]
        )
        for pool, n in sorted(snap.get("retries", {}).items()):
            retries.add_metric([pool], n)
        yield retries
        tls = CounterMetricFamily(
            "rota_tls_handshake_failures",
            "TLS handshakes (passthrough: ClientHellos) that failed, by reason",
            labels=["listener", "reason"],
        )
        for (listener, why), n in sorted(snap.get("tls_failures", {}).items()):
            tls.add_metric([listener, why], n)
        yield tls
        yield from self._listeners(snap)
        yield from self._workers()

    def _histogram(
        self,
        name: str,
        doc: str,
        labels: list[str],
        values: dict[tuple[str, str], tuple[list[int], float]],
    ) -> HistogramMetricFamily:
        family = HistogramMetricFamily(name, doc, labels=labels)
        for key, (counts, summed) in sorted(values.items()):
            buckets = list(zip(LE, accumulate(counts), strict=True))
            family.add_metric(list(key), buckets, summed)
        return family

    def _servers(self, snap: Snapshot) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "rota_server_up", "1 if the server passes its health checks", labels=["pool", "server"]
        )
        state = GaugeMetricFamily(
            "rota_server_state",
            "1 for the server's state: up, down, draining or disabled",
            labels=["pool", "server", "state"],
        )
        active = GaugeMetricFamily(
            "rota_server_active_requests",
            "Requests (TCP: connections) in flight to the server, all workers",
            labels=["pool", "server"],
        )
        weight = GaugeMetricFamily(
            "rota_server_weight", "The server's balancing weight", labels=["pool", "server"]
        )
        failures = CounterMetricFamily(
            "rota_upstream_connect_failures",
            "Connections to the server that failed, or closed without an answer",
            labels=["pool", "server"],
        )
        checks = CounterMetricFamily(
            "rota_health_checks",
            "Health check probes, by result (pass or fail)",
            labels=["pool", "server", "result"],
        )
        in_flight = snap.get("active", {})
        failed = snap.get("connect_failures", {})
        results = self.health()
        for pool in self.runtime.pools.values():
            for backend in pool.backends:
                labels = [pool.name, backend.name]
                up.add_metric(labels, 1.0 if backend.state is State.UP else 0.0)
                state.add_metric([*labels, server_state(backend)], 1.0)
                active.add_metric(labels, in_flight.get((pool.name, backend.name), 0))
                weight.add_metric(labels, backend.weight)
                failures.add_metric(labels, failed.get((pool.name, backend.name), 0))
                passed, fails = results.get(backend.check, (0, 0))
                checks.add_metric([*labels, "pass"], passed)
                checks.add_metric([*labels, "fail"], fails)
        yield from (up, state, active, weight, failures, checks)

    def _listeners(self, snap: Snapshot) -> Iterator[Metric]:
        open_now = GaugeMetricFamily(
            "rota_client_connections", "Client connections open now", labels=["listener"]
        )
        accepted = CounterMetricFamily(
            "rota_client_connections", "Client connections accepted", labels=["listener"]
        )
        moved = CounterMetricFamily(
            "rota_bytes",
            "Body bytes from clients (in) and to clients (out); TCP listeners: every byte",
            labels=["listener", "direction"],
        )
        for spec in self.runtime.config.listeners:
            name = spec.name
            open_now.add_metric([name], snap.get("connections", {}).get(name, 0))
            accepted.add_metric([name], snap.get("accepted", {}).get(name, 0))
            for direction in ("in", "out"):
                moved.add_metric([name, direction], snap.get("bytes", {}).get((name, direction), 0))
        yield from (open_now, accepted, moved)

    def _workers(self) -> Iterator[Metric]:
        pids = self.workers()
        count = GaugeMetricFamily("rota_workers", "Worker processes serving traffic")
        count.add_metric([], len(pids))
        yield count
        cpu = CounterMetricFamily(
            "rota_worker_cpu_seconds", "CPU time of each worker process", labels=["worker"]
        )
        memory = GaugeMetricFamily(
            "rota_worker_resident_memory_bytes", "Resident memory of each worker", labels=["worker"]
        )
        for index, pid in enumerate(pids):
            for family in ProcessCollector(pid=_constant(pid), registry=None).collect():
                for sample in family.samples:
                    if sample.name == "process_cpu_seconds_total":
                        cpu.add_metric([str(index)], sample.value)
                    elif sample.name == "process_resident_memory_bytes":
                        memory.add_metric([str(index)], sample.value)
        yield from (cpu, memory)


def _constant(pid: int) -> Callable[[], int]:
    return lambda: pid


class Exposition:
    """A registry with rota's collector and the process_* metrics of this process."""

    def __init__(self, collector: RotaCollector) -> None:
        self.collector = collector
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(collector)
        ProcessCollector(registry=self.registry)

    def render(self, snap: Snapshot) -> bytes:
        self.collector.snap = snap
        return generate_latest(self.registry)
