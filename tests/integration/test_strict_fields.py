"""Field names with "_" and chunk extensions, through `rota lb` to a recording backend.

The backend must never see `Transfer_Encoding` or `X_Forwarded_For` (WSGI would read them as
framing and forwarding fields); a 64 KiB chunk extension is answered 400 and the connection
closed, while a normal chunked upload and another client are served meanwhile.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.support.http import Client, get
from tests.support.procs import Proc, start_lb, write_config

_HEAD = b"POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"


@dataclass
class Rig:
    lb_port: int
    backend_port: int


def _records(port: int) -> list[dict[str, Any]]:
    with Client(port, timeout=5) as c:
        records: list[dict[str, Any]] = json.loads(c.request("GET", "/__records").body)
    return records


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    tmp = tmp_path_factory.mktemp("strict")
    backend = Proc([sys.executable, "-m", "tests.support.recording_backend"])
    backend_port = int(backend.wait_for("recording backend listening on").rsplit(":", 1)[1])
    config = write_config(tmp / "db.json", [backend_port], health_check={"type": "tcp"})
    lb, lb_port = start_lb(config)
    try:
        yield Rig(lb_port, backend_port)
    finally:
        lb.stop()
        backend.stop()


def test_underscore_fields_never_reach_the_backend(rig: Rig) -> None:
    with Client(rig.backend_port, timeout=5) as c:
        c.request("GET", "/__reset")
    with Client(rig.lb_port, timeout=5) as c:
        c.send(
            b"POST /u HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
            b"Transfer_Encoding: chunked\r\nX_Forwarded_For: 6.6.6.6\r\nX-Kept: yes\r\n\r\n"
            b"hello"
        )
        assert c.read_response().status == 200
    [record] = _records(rig.backend_port)
    names = [name.lower() for name, _ in record["fields"]]
    assert "transfer_encoding" not in names and "x_forwarded_for" not in names
    assert "6.6.6.6" not in record["head"]
    assert record["body"] == "hello" and record["complete"]
    assert ["X-Kept", "yes"] in record["fields"]
    assert ["X-Forwarded-For", "127.0.0.1"] in record["fields"]


def test_64k_chunk_extension_is_refused_and_others_are_served(rig: Rig) -> None:
    with Client(rig.backend_port, timeout=5) as c:
        c.request("GET", "/__reset")
    with Client(rig.lb_port, timeout=5) as bad:
        # The head and the start of the extension first, so the head goes on before rota
        # sees the extension grow; then the rest in pieces.
        bad.send(_HEAD + b"5;x=")
        errors: list[BaseException] = []

        def trickle() -> None:
            try:
                for _ in range(16):
                    bad.send(b"a" * 4096)
                bad.send(b"\r\nhello\r\n0\r\n\r\n")
            except OSError as exc:  # rota may close before all of it is sent
                errors.append(exc)

        sender = threading.Thread(target=trickle)
        sender.start()
        # Meanwhile another client uploads normally, and a third one just GETs.
        with Client(rig.lb_port, timeout=5) as good:
            good.send(_HEAD + b"5;name=value\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
            assert good.read_response().status == 200
        assert get(rig.lb_port, "/other").status == 200
        response = bad.read_response()
        sender.join(timeout=5)
        assert response.status == 400
        assert bad.closed_by_peer()
    records = _records(rig.backend_port)
    uploads = [r for r in records if r["target"] == "/up"]
    # The good upload arrived whole; the refused one at most as a head, never complete.
    assert [r["body"] for r in uploads if r["complete"]] == ["hello world"]
    assert len(uploads) <= 2


def test_64k_chunk_extension_in_one_write(rig: Rig) -> None:
    with Client(rig.lb_port, timeout=5) as c:
        c.send(_HEAD + b"5;x=" + b"a" * 65536 + b"\r\nhello\r\n0\r\n\r\n")
        assert c.read_response().status == 400
        assert c.closed_by_peer()
    assert get(rig.lb_port, "/after").status == 200
