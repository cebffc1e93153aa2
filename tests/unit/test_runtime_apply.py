"""Runtime.apply on pools, without listeners: what a reload keeps and what it replaces."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from rota.balancing import First, RoundRobin
from rota.config.model import BackendSpec, Config, PoolSpec
from rota.instance import Runtime
from rota.pool import State


def config(algorithm: str = "round_robin", *servers: BackendSpec) -> Config:
    servers = servers or (BackendSpec("a", "127.0.0.1", 5001), BackendSpec("b", "127.0.0.1", 5002))
    return Config(listeners=(), pools=(PoolSpec("app", servers, algorithm),))


def test_apply_keeps_an_unchanged_policy_and_server_state_and_replaces_a_changed_one() -> None:
    async def scenario() -> None:
        runtime = Runtime(config(), asyncio.get_running_loop(), listen=False)
        pool = runtime.pools["app"]
        policy = pool.policy
        a = pool.backends[0]
        pool.set_state(a, State.DOWN, "refused")
        await runtime.apply(config())
        assert pool.policy is policy  # unchanged: its state (the cursor) goes on
        assert pool.backends[0] is a and a.state is State.DOWN  # no new rise needed
        await runtime.apply(config("first"))
        assert isinstance(pool.policy, First)
        assert pool.policy.pick([], None, b"") is pool.backends[1]  # a is still DOWN
        await runtime.apply(config("round_robin"))
        assert isinstance(pool.policy, RoundRobin)

    asyncio.run(scenario())


def test_apply_adds_removes_and_updates_servers_by_id() -> None:
    async def scenario() -> None:
        runtime = Runtime(config(), asyncio.get_running_loop(), listen=False)
        pool = runtime.pools["app"]
        b = pool.backends[1]
        new = config(
            "round_robin",
            BackendSpec("b", "127.0.0.1", 5002, weight=3, backup=True),
            BackendSpec("c", "127.0.0.1", 5003),
        )
        await runtime.apply(new)
        assert [s.id for s in pool.backends] == ["b", "c"]
        assert pool.backends[0] is b and b.weight == 3 and b.backup
        assert pool.get("a") is None and pool.get("c") is not None
        # A server whose address changes is a new server.
        moved = replace(new.pools[0], servers=(BackendSpec("b", "127.0.0.1", 6002),))
        await runtime.apply(replace(new, pools=(moved,)))
        assert pool.backends[0] is not b and pool.backends[0].port == 6002

    asyncio.run(scenario())
