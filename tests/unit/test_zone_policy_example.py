"""examples/zone_policy.py through rota's adapter, as the pool of
examples/custom-policy.toml runs it: the client's zone first, else the least loaded."""

from __future__ import annotations

import tomllib

from rota.balancing import make_policy
from rota.config.load import build_config
from rota.config.model import PoolSpec
from rota.http.head import BodyKind, RequestHead
from rota.pool import Admin, Backend, Pool
from tests.support.procs import REPO

ZONE = "examples.zone_policy:ZonePolicy"


def pool() -> Pool:
    data = tomllib.loads((REPO / "examples/custom-policy.toml").read_text())
    data["pools"]["api"]["algorithm"] = ZONE  # importable from the repository's root
    spec: PoolSpec = build_config(data, "custom-policy.toml", {}).pools[0]
    return Pool(spec.servers, spec.name, policy=make_policy(spec))


def head(zone: bytes | None) -> RequestHead:
    fields = [(b"Host", b"api")] + ([(b"X-Zone", zone)] if zone is not None else [])
    return RequestHead(
        b"GET",
        b"/",
        (1, 1),
        fields,
        BodyKind.NONE,
        0,
        b"api",
        True,
        False,
        False,
        False,
        frozenset(),
        False,
    )


def names(p: Pool, zone: bytes | None, n: int) -> list[str]:
    out = []
    for _ in range(n):
        backend: Backend | None = p.policy.pick((), head(zone), b"10.0.0.1")
        out.append(backend.name if backend is not None else "-")
    return out


def test_the_clients_zone_first_shared_in_turn() -> None:
    p = pool()
    assert sorted(names(p, b"eu", 4)) == ["api-eu-1", "api-eu-1", "api-eu-2", "api-eu-2"]
    assert names(p, b"us", 2) == ["api-us-1", "api-us-1"]


def test_the_least_loaded_of_the_zone() -> None:
    p = pool()
    p.get("api-eu-1").active = 3  # type: ignore[union-attr]
    assert names(p, b"eu", 3) == ["api-eu-2"] * 3


def test_no_zone_or_none_up_there_any_zone_then_the_backup() -> None:
    p = pool()
    assert set(names(p, None, 6)) == {"api-eu-1", "api-eu-2", "api-us-1"}
    p.set_admin(p.get("api-us-1"), Admin.DISABLED)  # type: ignore[arg-type]
    assert set(names(p, b"us", 4)) == {"api-eu-1", "api-eu-2"}
    for name in ("api-eu-1", "api-eu-2"):
        p.set_admin(p.get(name), Admin.DISABLED)  # type: ignore[arg-type]
    assert names(p, b"eu", 2) == ["api-spare"] * 2
