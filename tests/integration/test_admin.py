"""The admin listener: exact metrics over several workers, the JSON API and its errors,
the token, and traffic that never waits on it. Real processes, real sockets."""

from __future__ import annotations

import socket
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.admin import call, metrics, total
from tests.support.http import get
from tests.support.procs import Proc, free_port, rota, start_backend

TOKEN = "s3cret-token-for-tests-0123456789"


def site(tmp_path: Path, ports: list[int], admin: int, extra: str = "") -> Path:
    servers = ", ".join(
        f'{{ name = "s{i}", host = "127.0.0.1", port = {p} }}' for i, p in enumerate(ports)
    )
    text = f"""
[admin]
bind = "127.0.0.1:{admin}"
{extra}

[health_check]
interval = 0.3
rise = 1

[listeners.web]
bind = "127.0.0.1:0"

[[listeners.web.routes]]
path_prefix = "/app"
pool = "app"

[pools.app]
servers = [{servers}]
"""
    path = tmp_path / "rota.toml"
    path.write_text(text)
    return path


@contextmanager
def admin_lb(
    tmp_path: Path, names: tuple[str, ...] = ("s0", "s1"), *args: str, extra: str = ""
) -> Iterator[tuple[Proc, int, int, list[tuple[Proc, int]]]]:
    backends = [start_backend(name=n) for n in names]
    admin = free_port()
    config = site(tmp_path, [p for _, p in backends], admin, extra)
    lb = rota("lb", "--config", str(config), *args)
    try:
        line = lb.wait_for("rota listening on", timeout=30)
        port = int(line.rsplit(":", 1)[1].split()[0])
        lb.wait_for("rota admin on", timeout=10)
        yield lb, port, admin, backends
    finally:
        lb.stop()
        for p, _ in backends:
            p.stop()


def served_by(port: int, n: int, path: str = "/app") -> Counter[str | None]:
    return Counter(get(port, path).header("x-served-by") for _ in range(n))


def wait_until(check: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_metrics_count_every_request_exactly_over_two_workers(tmp_path: Path) -> None:
    with admin_lb(tmp_path, ("s0", "s1"), "--workers", "2") as (_lb, port, admin, _):
        served = served_by(port, 120)  # a new connection each: the kernel spreads them
        assert sum(get(port, "/elsewhere").status == 404 for _ in range(7)) == 7
        for _ in range(5):
            with socket.create_connection(("127.0.0.1", port)) as s:
                s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n")
                assert s.recv(100).startswith(b"HTTP/1.1 400")
        wait_until(lambda: total(metrics(admin), "rota_client_connections", listener="web") == 0)
        m = metrics(admin)
        for name in ("s0", "s1"):
            assert total(m, "rota_requests_total", server=name, code="200") == served[name]
        assert total(m, "rota_requests_total", code="200") == 120
        assert total(m, "rota_requests_total", code="404", server="") == 7
        assert total(m, "rota_requests_total", code="400", server="", pool="") == 5
        assert total(m, "rota_local_responses_total", listener="web", code="404") == 7
        assert total(m, "rota_local_responses_total", listener="web", code="400") == 5
        assert total(m, "rota_request_duration_seconds_count", pool="app") == 120
        assert total(m, "rota_request_duration_seconds_count", pool="") == 7
        assert total(m, "rota_client_connections_total", listener="web") == 132
        assert total(m, "rota_bytes_total", listener="web", direction="out") > 0
        assert total(m, "rota_server_up", pool="app") == 2
        assert total(m, "rota_server_weight", pool="app", server="s0") == 1
        assert total(m, "rota_health_checks_total", server="s0", result="pass") >= 1
        assert total(m, "rota_workers") == 2
        assert total(m, "rota_worker_cpu_seconds_total") > 0
        assert total(m, "process_cpu_seconds_total") > 0
        # a second scrape after more traffic: counters only grow, by exactly that much
        served_by(port, 10)
        assert total(metrics(admin), "rota_requests_total", code="200") == 130


def test_drain_stops_new_requests_and_enable_brings_them_back(tmp_path: Path) -> None:
    with admin_lb(tmp_path, ("s0", "s1"), "--workers", "2") as (lb, port, admin, _):
        assert set(served_by(port, 10)) == {"s0", "s1"}
        status, body = call(admin, "POST", "/api/v1/pools/app/servers/s0/drain")
        assert (status, body["admin"]) == (200, "draining")
        time.sleep(0.3)  # the change reaches every worker (within 1 s, by the issue)
        assert served_by(port, 20) == Counter({"s1": 20})
        status, pools = call(admin, "GET", "/api/v1/pools")
        states = {s["name"]: s["state"] for s in pools["pools"][0]["servers"]}
        assert states == {"s0": "draining", "s1": "up"}
        assert call(admin, "POST", "/api/v1/pools/app/servers/s0/enable")[0] == 200
        time.sleep(0.3)
        assert set(served_by(port, 10)) == {"s0", "s1"}
        assert call(admin, "POST", "/api/v1/pools/app/servers/s1/disable")[0] == 200
        time.sleep(0.3)
        assert served_by(port, 10) == Counter({"s0": 10})
        wait_until(
            lambda: "s1 127.0.0.1" in lb.output() and "DISABLED (by the admin API" in lb.output()
        )


def test_weights_added_and_removed_servers(tmp_path: Path) -> None:
    with admin_lb(tmp_path, ("s0",), "--workers", "2") as (_lb, port, admin, _):
        status, body = call(admin, "PUT", "/api/v1/pools/app/servers/s0/weight", {"weight": 5})
        assert (status, body["weight"]) == (200, 5)
        assert total(metrics(admin), "rota_server_weight", server="s0") == 5
        extra, extra_port = start_backend(name="new")
        try:
            status, body = call(
                admin,
                "POST",
                "/api/v1/pools/app/servers",
                {"host": "127.0.0.1", "port": extra_port, "name": "new", "weight": 5},
            )
            assert status == 201, body
            # it takes traffic once its health check passes, in every worker
            wait_until(lambda: "new" in served_by(port, 6))
            config = call(admin, "GET", "/api/v1/config")[1]
            assert [s["name"] for s in config["config"]["pools"][0]["servers"]] == ["s0", "new"]
            assert call(admin, "DELETE", "/api/v1/pools/app/servers/new")[0] == 200
            time.sleep(0.3)
            assert served_by(port, 10) == Counter({"s0": 10})
            status, body = call(admin, "DELETE", "/api/v1/pools/app/servers/s0")
            assert status == 409 and "last server" in body["error"]
        finally:
            extra.stop()


def test_a_server_added_where_nothing_listens_gets_no_traffic(tmp_path: Path) -> None:
    with admin_lb(tmp_path, ("s0",)) as (_lb, port, admin, _):
        dead = free_port()
        body = {"host": "127.0.0.1", "port": dead, "name": "ghost"}
        assert call(admin, "POST", "/api/v1/pools/app/servers", body)[0] == 201
        assert served_by(port, 10) == Counter({"s0": 10})
        servers = call(admin, "GET", "/api/v1/pools")[1]["pools"][0]["servers"]
        assert {s["name"]: s["state"] for s in servers} == {"s0": "up", "ghost": "down"}


def test_bad_admin_requests_get_json_errors(tmp_path: Path) -> None:
    with admin_lb(tmp_path, ("s0",)) as (_lb, port, admin, _):
        cases = [
            ("POST", "/api/v1/pools/nope/servers/s0/drain", None, 404, "no pool"),
            ("POST", "/api/v1/pools/app/servers/zz/drain", None, 404, "no server"),
            ("GET", "/api/v1/nothing", None, 404, "no such endpoint"),
            ("GET", "/api/v1/pools/app/servers/s0/drain", None, 405, "POST"),
            ("PUT", "/api/v1/pools/app/servers/s0/weight", {"weight": 0}, 400, "1-1000"),
            ("PUT", "/api/v1/pools/app/servers/s0/weight", [1], 400, "JSON object"),
            ("POST", "/api/v1/pools/app/servers", {"host": "127.0.0.1"}, 400, "port: missing"),
            ("POST", "/api/v1/pools/app/servers", {"port": 1, "hots": "x"}, 400, "unknown field"),
        ]
        for method, path, body, status, text in cases:
            got, answer = call(admin, method, path, body)
            assert got == status, (method, path, answer)
            assert text in answer["error"], answer
        got, answer = call(admin, "PUT", "/api/v1/pools/app/servers/s0/weight", raw=b"{nope")
        assert got == 400 and "not valid JSON" in answer["error"]
        # and traffic never noticed
        assert served_by(port, 5) == Counter({"s0": 5})


def test_a_token_guards_everything_but_the_page(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    extra = f'token_file = "{token_file}"'
    with admin_lb(tmp_path, ("s0",), extra=extra) as (_lb, port, admin, _):
        assert call(admin, "GET", "/api/v1/pools")[0] == 401
        assert call(admin, "GET", "/metrics", token="wrong-token-wrong-token")[0] == 401
        assert call(admin, "POST", "/api/v1/pools/app/servers/s0/drain")[0] == 401
        assert call(admin, "GET", "/api/v1/pools", token=TOKEN)[0] == 200
        assert total(metrics(admin, token=TOKEN), "rota_workers") == 1
        status, page = call(admin, "GET", "/")
        assert status == 200 and page.lower().startswith("<!doctype html")
        assert served_by(port, 3) == Counter({"s0": 3})  # the drain above was refused


def test_admin_refuses_a_public_address_without_a_token(tmp_path: Path) -> None:
    backend, bport = start_backend(name="s0")
    try:
        config = site(tmp_path, [bport], free_port())
        proc = rota("lb", "--config", str(config), "--admin", "0.0.0.0:9")
        assert proc.popen.wait(timeout=30) == 2
        proc.stop()
        assert "--admin" in proc.output() and "token_file" in proc.output()
    finally:
        backend.stop()


def test_an_admin_flood_does_not_hold_up_traffic(tmp_path: Path) -> None:
    with admin_lb(tmp_path, ("s0", "s1")) as (_lb, port, admin, _):
        stop = threading.Event()
        done = Counter[str]()

        def flood() -> None:
            deadline = time.monotonic() + 10
            while not stop.is_set() and time.monotonic() < deadline:
                try:
                    status, _ = call(admin, "GET", "/metrics")
                    done[str(status)] += 1
                except OSError:
                    done["error"] += 1
                idle = socket.socket()  # and connections that hold a slot and say nothing
                idle.settimeout(1)
                try:
                    idle.connect(("127.0.0.1", admin))
                except OSError:
                    idle.close()

        threads = [threading.Thread(target=flood) for _ in range(8)]
        for t in threads:
            t.start()
        try:
            statuses = Counter(get(port, "/app").status for _ in range(200))
        finally:
            stop.set()
            for t in threads:
                t.join()
        assert statuses == Counter({200: 200})
        assert done["200"] > 0


def test_tcp_listeners_count_connections_and_every_byte(tmp_path: Path) -> None:
    echo = rota_echo()
    admin = free_port()
    config = tmp_path / "tcp.toml"
    config.write_text(
        f"""
[admin]
bind = "127.0.0.1:{admin}"
[listeners.db]
bind = "127.0.0.1:0"
protocol = "tcp"
pool = "db"
[pools.db]
servers = [{{ host = "127.0.0.1", port = {echo[1]}, name = "echo" }}]
"""
    )
    lb = rota("lb", "--config", str(config))
    try:
        line = lb.wait_for("rota listening on", timeout=30)
        port = int(line.rsplit(":", 1)[1].split()[0])
        lb.wait_for("rota admin on")
        payload = b"x" * 100_000
        for _ in range(3):
            with socket.create_connection(("127.0.0.1", port)) as s:
                s.sendall(payload)
                s.shutdown(socket.SHUT_WR)
                got = b""
                while chunk := s.recv(65536):
                    got += chunk
                assert got == payload
        wait_until(lambda: total(metrics(admin), "rota_tcp_connections_total") == 3)
        m = metrics(admin)
        assert total(m, "rota_tcp_connections_total", listener="db", server="echo") == 3
        assert total(m, "rota_bytes_total", listener="db", direction="in") == 300_000
        assert total(m, "rota_bytes_total", listener="db", direction="out") == 300_000
        assert total(m, "rota_client_connections_total", listener="db") == 3
        assert total(m, "rota_requests_total") == 0
    finally:
        lb.stop()
        echo[0].stop()


def rota_echo() -> tuple[Proc, int]:
    proc = Proc([sys.executable, "-m", "tests.support.echo_backend", "--port", "0"])
    line = proc.wait_for("listening on")
    return proc, int(line.rsplit(":", 1)[1])
