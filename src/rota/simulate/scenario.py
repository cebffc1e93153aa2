"""A scenario file (TOML) -> a `Scenario`, every error naming the file, field and line.

    seed = 7
    requests = 200000
    [load]        kind = "poisson" (rate, or schedule), "closed" (clients, think), "replay" (log)
    [health]      interval, rise, fall, passive (the checks a `down` event meets)
    [[servers]]   count or name, weight, service = { dist = ... }, concurrency
    [[policies]]  algorithm and a pool's balancing keys; max_requests for every server
    [[events]]    at, server, action = "slow" (factor) | "down" | "up"

docs/simulate.md has the whole format. A policy is checked as a pool's `algorithm` is
(rota.config.balancing: the same keys, the same messages; a custom class is imported and
built here), so a scenario that loads runs.
"""

from __future__ import annotations

import difflib
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rota.config.balancing import POOL_BALANCING_KEYS, pool_keys
from rota.config.errors import ConfigError
from rota.config.model import BackendSpec, PoolSpec
from rota.config.reader import Reader, field_path, show
from rota.simulate.accesslog import LogError, Recorded, read_log
from rota.simulate.dists import KINDS, Dist
from rota.simulate.locate import line_of

TOP_KEYS = ("seed", "requests", "load", "health", "servers", "policies", "events")
LOAD_KEYS = ("kind", "rate", "schedule", "clients", "think", "log", "speed")
LOAD_KINDS = ("poisson", "closed", "replay")
SERVER_KEYS = ("name", "count", "weight", "service", "concurrency")
DIST_KEYS = ("dist", "mean", "sigma", "value", "values", "log")
POLICY_KEYS = (*POOL_BALANCING_KEYS, "name", "max_requests")
EVENT_KEYS = ("at", "server", "action", "factor")
ACTIONS = ("slow", "down", "up")
HEALTH_KEYS = ("interval", "rise", "fall", "passive")
MAX_REQUESTS = 10**12
MAX_SERVERS = 100_000
MAX_CLIENTS = 1_000_000


class ScenarioError(Exception):
    """`FILE:LINE: FIELD: PROBLEM`, the one line the CLI prints before exiting 2."""

    def __init__(self, source: str, field: str, problem: str, line: int | None = None) -> None:
        self.source = source
        self.field = field
        self.line = line
        self.problem = problem
        where = f"{source}:{line}" if line else source
        super().__init__(f"{where}: {field}: {problem}" if field else f"{where}: {problem}")


@dataclass(frozen=True, slots=True)
class ServerSpec:
    name: str
    weight: int
    service: Dist | None  # None: each request's recorded time (a replay)
    concurrency: int  # parallel slots; more wait in the server's FIFO queue


@dataclass(frozen=True, slots=True)
class LoadSpec:
    kind: str
    rate: float = 0.0  # poisson: arrivals per second (the first step of a schedule)
    schedule: tuple[tuple[float, float], ...] = ()  # poisson: (from time, rate), sorted
    clients: int = 1000  # closed: clients; open: distinct client addresses
    think: Dist | None = None  # closed: time between an answer and the next request
    recorded: Recorded | None = None  # replay
    speed: float = 1.0  # replay: arrivals this many times faster


@dataclass(frozen=True, slots=True)
class HealthModel:
    """Active checks as a pool's `health` (interval, rise, fall) plus passive marking."""

    interval: float = 5.0
    rise: int = 2
    fall: int = 3
    passive: bool = True


@dataclass(frozen=True, slots=True)
class PolicyRun:
    """One policy to compare: its label in the output, and the pool it runs in."""

    label: str
    pool: PoolSpec


@dataclass(frozen=True, slots=True)
class Event:
    at: float
    server: int  # index into Scenario.servers
    action: str
    factor: float = 1.0


@dataclass(frozen=True, slots=True)
class Scenario:
    source: str
    seed: int
    requests: int
    load: LoadSpec
    servers: tuple[ServerSpec, ...]
    policies: tuple[PolicyRun, ...]
    events: tuple[Event, ...] = ()
    health: HealthModel = field(default_factory=HealthModel)


class _Loader:
    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.text = text
        self.r = Reader(str(path), {})

    def fail(self, where: str, problem: str) -> ScenarioError:
        return ScenarioError(str(self.path), where, problem, line_of(self.text, where))

    def lift(self, exc: ConfigError) -> ScenarioError:
        return ScenarioError(exc.source, exc.field, exc.problem, line_of(self.text, exc.field))

    def number(self, where: str, value: object, *, positive: bool = True) -> float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            x = float(value)
            if math.isfinite(x) and (x > 0 if positive else x >= 0):
                return x
        low = "> 0" if positive else ">= 0"
        raise self.fail(where, f"expected a number {low}, got {show(value)}")

    def integer(self, where: str, value: object, lo: int, hi: int) -> int:
        try:
            return self.r.integer(where, value, lo, hi)
        except ConfigError as exc:
            raise self.lift(exc) from None

    def section(self, where: str, value: object, keys: tuple[str, ...]) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise self.fail(where, f"expected a table, got {show(value)}")
        for key in value:
            if key not in keys:
                close = difflib.get_close_matches(str(key), keys, n=1)
                hint = (
                    f'did you mean "{close[0]}"?'
                    if close
                    else f"expected one of: {', '.join(keys)}"
                )
                raise self.fail(field_path(where, str(key)), f"unknown field ({hint})")
        return value

    def entries(self, where: str, value: object) -> list[Any]:
        if not isinstance(value, list) or not value:
            raise self.fail(where, f"expected one or more [[{where}]] tables, got {show(value)}")
        return value

    # parts

    def dist(self, where: str, value: object) -> Dist:
        t = self.section(where, value, DIST_KEYS)
        kind = t.get("dist")
        if kind not in KINDS:
            raise self.fail(
                field_path(where, "dist"),
                f"unknown distribution {show(kind)}: expected one of {', '.join(KINDS)}",
            )
        if kind == "constant":
            return Dist("constant", self.number(field_path(where, "value"), t.get("value")))
        if kind == "empirical":
            return self.empirical(where, t)
        mean = self.number(field_path(where, "mean"), t.get("mean"))
        if kind == "lognormal":
            return Dist("lognormal", mean, self.number(field_path(where, "sigma"), t.get("sigma")))
        return Dist("exponential", mean)

    def empirical(self, where: str, t: Mapping[str, Any]) -> Dist:
        if "log" in t:
            values = self.recorded(field_path(where, "log"), t["log"]).services
        else:
            at = field_path(where, "values")
            raw = t.get("values")
            if not isinstance(raw, list) or not raw:
                raise self.fail(at, f"expected a list of seconds (or log = FILE), got {show(raw)}")
            values = tuple(self.number(f"{at}[{i}]", v, positive=False) for i, v in enumerate(raw))
        mean = sum(values) / len(values)
        if mean <= 0:
            raise self.fail(where, "empirical service times average 0: nothing to simulate")
        return Dist("empirical", mean, values=tuple(values))

    def recorded(self, where: str, value: object) -> Recorded:
        if not isinstance(value, str) or not value:
            raise self.fail(where, f"expected the path of a JSON access log, got {show(value)}")
        log = self.path.parent / value
        try:
            return read_log(log)
        except LogError as exc:
            at = f"{log}:{exc.line}: " if exc.line else ""
            raise self.fail(where, f"{at}{exc.problem}") from None

    def load(self, value: object) -> LoadSpec:
        t = self.section("load", value, LOAD_KEYS)
        kind = t.get("kind", "poisson")
        if kind not in LOAD_KINDS:
            raise self.fail(
                "load.kind", f"expected one of {', '.join(LOAD_KINDS)}, got {show(kind)}"
            )
        clients = self.integer("load.clients", t.get("clients", 1000), 1, MAX_CLIENTS)
        if kind == "closed":
            if "think" not in t:
                raise self.fail(
                    "load.think", "missing: a closed loop needs the clients' think time"
                )
            return LoadSpec("closed", clients=clients, think=self.dist("load.think", t["think"]))
        if kind == "replay":
            if "log" not in t:
                raise self.fail("load.log", "missing: the JSON access log to replay")
            speed = self.number("load.speed", t.get("speed", 1.0))
            return LoadSpec(
                "replay", clients=clients, recorded=self.recorded("load.log", t["log"]), speed=speed
            )
        if "schedule" in t:
            return LoadSpec("poisson", clients=clients, schedule=self.schedule(t["schedule"]))
        if "rate" not in t:
            raise self.fail("load.rate", "missing: arrivals per second (or a schedule)")
        return LoadSpec("poisson", rate=self.number("load.rate", t["rate"]), clients=clients)

    def schedule(self, value: object) -> tuple[tuple[float, float], ...]:
        if not isinstance(value, list) or not value:
            raise self.fail(
                "load.schedule", f"expected [{{ at = 0, rate = R }}, ...], got {show(value)}"
            )
        steps: list[tuple[float, float]] = []
        for i, item in enumerate(value):
            at = f"load.schedule[{i}]"
            t = self.section(at, item, ("at", "rate"))
            when = self.number(field_path(at, "at"), t.get("at"), positive=False)
            rate = self.number(field_path(at, "rate"), t.get("rate"), positive=False)
            if steps and when <= steps[-1][0]:
                raise self.fail(field_path(at, "at"), "steps must be in increasing time")
            steps.append((when, rate))
        if steps[0][0] != 0:
            raise self.fail("load.schedule[0].at", "the first step starts at 0")
        if not any(rate > 0 for _, rate in steps):
            raise self.fail("load.schedule", "every rate is 0: no request would ever arrive")
        return tuple(steps)

    def servers(self, value: object, replay: bool) -> tuple[ServerSpec, ...]:
        out: list[ServerSpec] = []
        for i, item in enumerate(self.entries("servers", value)):
            at = f"servers[{i}]"
            t = self.section(at, item, SERVER_KEYS)
            weight = self.integer(field_path(at, "weight"), t.get("weight", 1), 1, 256)
            slots = self.integer(field_path(at, "concurrency"), t.get("concurrency", 1), 1, 100_000)
            if "service" in t:
                service: Dist | None = self.dist(field_path(at, "service"), t["service"])
            elif replay:
                service = None
            else:
                raise self.fail(field_path(at, "service"), "missing: the server's service time")
            if "name" in t and "count" in t:
                raise self.fail(field_path(at, "count"), "give count or name, not both")
            if "count" in t:
                count = self.integer(field_path(at, "count"), t["count"], 1, MAX_SERVERS)
                names = [f"s{len(out) + k + 1}" for k in range(count)]
            else:
                try:
                    names = [self.r.text(field_path(at, "name"), t.get("name"))]
                except ConfigError as exc:
                    raise self.lift(exc) from None
            out.extend(ServerSpec(name, weight, service, slots) for name in names)
            if len(out) > MAX_SERVERS:
                raise self.fail(at, f"more than {MAX_SERVERS} servers")
        seen: set[str] = set()
        for i, server in enumerate(out):
            if server.name in seen:
                raise self.fail("servers", f"two servers named {show(server.name)} (the {i + 1}th)")
            seen.add(server.name)
        return tuple(out)

    def policies(self, value: object, servers: tuple[ServerSpec, ...]) -> tuple[PolicyRun, ...]:
        runs: list[PolicyRun] = []
        for i, item in enumerate(self.entries("policies", value)):
            at = f"policies[{i}]"
            t = self.section(at, item, POLICY_KEYS)
            limit = 0
            if "max_requests" in t:
                limit = self.integer(field_path(at, "max_requests"), t["max_requests"], 1, 10**6)
            try:
                keys = pool_keys(
                    self.r, at, {k: v for k, v in t.items() if k in POOL_BALANCING_KEYS}
                )
                label = self.r.text(field_path(at, "name"), t.get("name", keys["algorithm"]))
            except ConfigError as exc:
                raise self.lift(exc) from None
            if keys["sticky_cookie"] is not None:
                raise self.fail(
                    field_path(at, "sticky"), "not simulated: requests carry no cookies"
                )
            specs = tuple(
                BackendSpec(s.name, "127.0.0.1", 1 + k, s.weight, max_requests=limit or None)
                for k, s in enumerate(servers)
            )
            runs.append(PolicyRun(label, PoolSpec("simulated", specs, **keys)))
        labels = [run.label for run in runs]
        for i, label in enumerate(labels):
            if labels.index(label) != i:
                raise self.fail(
                    f"policies[{i}]", f"a second {show(label)}: give each a different name = ..."
                )
        return tuple(runs)

    def events(self, value: object, servers: tuple[ServerSpec, ...]) -> tuple[Event, ...]:
        if not isinstance(value, list):
            raise self.fail("events", f"expected [[events]] tables, got {show(value)}")
        index = {s.name: k for k, s in enumerate(servers)}
        out: list[Event] = []
        for i, item in enumerate(value):
            at = f"events[{i}]"
            t = self.section(at, item, EVENT_KEYS)
            when = self.number(field_path(at, "at"), t.get("at"), positive=False)
            name = t.get("server")
            if name not in index:
                raise self.fail(field_path(at, "server"), f"no server named {show(name)}")
            action = t.get("action")
            if action not in ACTIONS:
                raise self.fail(
                    field_path(at, "action"),
                    f"expected one of {', '.join(ACTIONS)}, got {show(action)}",
                )
            factor = 1.0
            if action == "slow":
                factor = self.number(field_path(at, "factor"), t.get("factor"))
            elif "factor" in t:
                raise self.fail(field_path(at, "factor"), 'only with action = "slow"')
            out.append(Event(when, index[str(name)], str(action), factor))
        return tuple(sorted(out, key=lambda e: e.at))

    def health(self, value: object) -> HealthModel:
        t = self.section("health", value, HEALTH_KEYS)
        try:
            passive = self.r.boolean("health.passive", t.get("passive", True))
        except ConfigError as exc:
            raise self.lift(exc) from None
        return HealthModel(
            interval=self.number("health.interval", t.get("interval", 5.0)),
            rise=self.integer("health.rise", t.get("rise", 2), 1, 100),
            fall=self.integer("health.fall", t.get("fall", 3), 1, 100),
            passive=passive,
        )


def load_scenario(path: Path) -> Scenario:
    """Read and check a scenario. Raises ScenarioError naming the file, field and line."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(
            str(path), "", f"cannot read: {getattr(exc, 'strerror', None) or exc}"
        ) from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = getattr(exc, "lineno", None)
        raise ScenarioError(str(path), "", f"not valid TOML: {exc}", line) from None
    loader = _Loader(path, text)
    top = loader.section("", raw, TOP_KEYS)
    seed = loader.integer("seed", top.get("seed", 1), 0, 2**63 - 1)
    if "load" not in top:
        raise loader.fail("load", "missing: a [load] table")
    load = loader.load(top["load"])
    servers = loader.servers(top.get("servers"), load.kind == "replay")
    if load.kind == "replay" and load.recorded is not None:
        default = len(load.recorded.arrivals)
        requests = loader.integer("requests", top.get("requests", default), 1, MAX_REQUESTS)
        requests = min(requests, default)
    elif "requests" not in top:
        raise loader.fail("requests", "missing: how many arrivals to simulate")
    else:
        requests = loader.integer("requests", top["requests"], 1, MAX_REQUESTS)
    return Scenario(
        source=str(path),
        seed=seed,
        requests=requests,
        load=load,
        servers=servers,
        policies=loader.policies(top.get("policies"), servers),
        events=loader.events(top.get("events", []), servers),
        health=loader.health(top.get("health", {})),
    )
