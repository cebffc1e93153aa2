"""The event engine: one policy, one scenario, simulated time. Pure (no I/O, no wall clock).

The policy runs unchanged inside a real `rota.pool.Pool` whose clock (and the policy's) is
the simulation's, and is called as the proxy calls it (`rota.proxy.exchange`):

- on arrival, `policy.pick(tried, head, client_ip)` (through `Pool.pick` when servers have
  `max_requests`), then `backend.active += 1` and `policy.started(backend)`;
- when the answer is complete, the request's `Outcome` fields are stamped (end, status,
  finished), then `Pool.ended(backend, outcome)`, as the proxy calls it: `backend.active
  -= 1`, the policy's `ended`, and a waiting request woken if the server has a limit;
- a refused connection (a server that is down) costs the client nothing: `ended` hears an
  attempt that never ended (`End.OPEN`, the penalty p2c counts), the server joins `tried`
  and the next pick follows at the same instant; a request lost with its server is sent to
  the next one the same way (a GET, idempotent), or answered 502 if none is left;
- with no server to take it, the request waits in the pool's queue if some server is only
  full (`queue_timeout`), else it is answered 503 at once.

Events live in one binary heap of `(time, seq, kind, obj)` tuples (`seq` orders equal
times, so a run is deterministic). Open-loop arrivals are not in the heap: the next one is
compared with the heap's top, which halves the heap traffic. A request's completion event
carries its `ticket`; a request whose server died and that was sent elsewhere has a new
ticket, so its stale event is skipped without searching the heap.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from heapq import heappop, heappush
from math import inf
from typing import Any

from rota.balancing import CustomPolicy, make_policy
from rota.config.model import HealthSpec
from rota.http.head import BodyKind, RequestHead
from rota.outcome import End, Outcome
from rota.pool import Backend, Pool
from rota.simulate.arrivals import arrivals
from rota.simulate.health import Checker, Health
from rota.simulate.results import Result
from rota.simulate.scenario import Event, PolicyRun, Scenario
from rota.simulate.servers import SimRequest, SimServer

DONE = 0  # a service ends: obj is the SimRequest
CLIENT = 1  # a closed-loop client sends its next request: obj is its index
TIMEOUT = 2  # a request's wait in the pool's queue ends: obj is its Held
EVENT = 3  # a scenario event: obj is the Event
PROBE = 4  # a health check probes a server: obj is its Checker

# What a custom policy sees of every simulated request: a bodiless HTTP/1.1 GET of /.
SIMULATED_HEAD = RequestHead(
    b"GET",
    b"/",
    (1, 1),
    [],
    BodyKind.NONE,
    0,
    b"simulated",
    True,
    False,
    False,
    False,
    frozenset(),
    False,
)
SAMPLES = 400  # in-flight samples per run, for the plot
PROGRESS_EVERY = 8192  # arrivals between progress calls

Progress = Callable[[int], None]


class Clock:
    """Simulated time; `time` is what the pool and the policy call for `now`."""

    __slots__ = ("now",)

    def __init__(self) -> None:
        self.now = 0.0

    def time(self) -> float:
        return self.now


class Held:
    """A request in the pool's queue: `Pool.wake` calls `resume` (rota.pool.Waiter)."""

    __slots__ = ("deadline", "req", "sim", "waiting")

    def __init__(self, sim: Simulation, req: SimRequest) -> None:
        self.sim = sim
        self.req = req
        self.waiting = False
        self.deadline = 0.0

    def resume(self) -> None:
        if self.waiting:
            self.waiting = False
            self.sim.dispatch(self.req)


def client_ips(n: int) -> list[bytes]:
    return [b"10.%d.%d.%d" % (k >> 16 & 255, k >> 8 & 255, k & 255) for k in range(n)]


class Simulation:
    """One run of one policy over a scenario. `run()` once."""

    def __init__(
        self, scenario: Scenario, run: PolicyRun, progress: Progress | None = None
    ) -> None:
        self.scenario = scenario
        self.progress = progress
        seed = scenario.seed
        self.clock = clock = Clock()
        self.arrival_rng = random.Random(f"{seed}/arrivals")
        service_rng = random.Random(f"{seed}/service")
        self.think_rng = random.Random(f"{seed}/think")
        probe_rng = random.Random(f"{seed}/probes")
        # A custom class's own draws from the random module repeat too (rota.simulate.run).
        policy = make_policy(run.pool, clock.time, random.Random(f"{seed}/policy"))
        health = HealthSpec(interval=scenario.health.interval)
        self.pool = pool = Pool(run.pool.servers, run.pool.name, health, policy, clock=clock.time)
        pool.queue_timeout = run.pool.queue_timeout
        self.policy = policy
        # What `ended` hears, filled in just before each call: the fields an Exchange holds
        # at that moment in the proxy. One object for the run, not one per request (no
        # policy keeps it past the call: p2c reads its times, a custom class its status).
        self.outcome = Outcome("simulated", 0.0)
        # Built-ins get no head, as for a TCP connection (nothing to hash but the client's
        # address); a custom class gets a GET of /, which its `request` fields read.
        self.head = SIMULATED_HEAD if isinstance(policy, CustomPolicy) else None
        self.servers: list[SimServer] = []
        self.by_backend: dict[Backend, SimServer] = {}
        for k, (spec, backend) in enumerate(zip(scenario.servers, pool.backends, strict=True)):
            draw = spec.service.sampler(service_rng) if spec.service is not None else None
            server = SimServer(k, spec.name, spec.concurrency, draw)
            server.backend = backend
            self.servers.append(server)
            self.by_backend[backend] = server
        self.result = Result(run.label, tuple(s.name for s in self.servers))
        self.result.served = [0] * len(self.servers)
        self.heap: list[tuple[float, int, int, Any]] = []
        self.seq = 0
        self.open = 0  # requests arrived and not ended
        self.think = self._think_sampler()
        self.health: Health | None = None
        if any(e.action == "down" for e in scenario.events):
            # Checks change nothing while every server answers them, so a scenario without
            # a `down` runs none (its probes would all pass).
            self.health = Health(scenario.health, pool, self.servers, probe_rng, self._probe_at)
        for event in scenario.events:
            self._push(event.at, EVENT, event)

    def _probe_at(self, at: float, checker: Checker) -> None:
        self._push(at, PROBE, checker)

    def _push(self, at: float, kind: int, obj: object) -> int:
        self.seq += 1
        heappush(self.heap, (at, self.seq, kind, obj))
        return self.seq

    # the run

    def run(self) -> Result:
        scenario = self.scenario
        load = scenario.load
        result = self.result
        clock = self.clock
        heap = self.heap
        remaining = scenario.requests
        closed = load.kind == "closed"
        ips = client_ips(load.clients)
        n_ips = len(ips)
        draw = self.arrival_rng.random
        recorded = load.recorded.services if load.recorded is not None else None
        every = max(1, remaining // SAMPLES)
        progress = self.progress
        arrived = 0
        if closed:
            think = self.think
            for c in range(load.clients):
                self._push(think(), CLIENT, c)
            stream = None
            next_t = inf
        else:
            stream = arrivals(load, self.arrival_rng)
            next_t = next(stream, inf)
        dispatch = self.dispatch
        complete = self._complete
        # Until every request has ended and no more can arrive (an open loop's arrivals may
        # run out first: a log, or a schedule ending at rate 0; probes never stop).
        while self.open or (remaining and (closed or next_t < inf)):
            if heap and heap[0][0] <= next_t:
                t, seq, kind, obj = heappop(heap)
                clock.now = t
                if kind == DONE:
                    if obj.ticket == seq:
                        complete(obj)
                    continue
                if kind != CLIENT:
                    self._other(kind, obj, t)
                    continue
                if not remaining:
                    continue
                ip = ips[obj]
                client: int = obj
                service = 0.0
            elif next_t < inf and stream is not None:
                t = next_t
                clock.now = t
                ip = ips[int(draw() * n_ips)]
                client = -1
                service = recorded[arrived] if recorded is not None else 0.0
                next_t = next(stream, inf) if remaining > 1 else inf
            else:
                break  # nothing left that can happen (a log or schedule ran out)
            remaining -= 1
            arrived += 1
            if arrived == 1:
                result.first = t
            if arrived % every == 0:
                result.times.append(t)
                result.in_flight.append([b.active for b in self.pool.backends])
            if progress is not None and arrived % PROGRESS_EVERY == 0:
                progress(arrived)
            req = SimRequest(t, ip, client, service)
            self.open += 1
            dispatch(req)
        if progress is not None:
            progress(arrived)
        return result

    def _think_sampler(self) -> Callable[[], float]:
        think = self.scenario.load.think
        if think is None:
            return lambda: 0.0
        return think.sampler(self.think_rng)

    # one request

    def dispatch(self, req: SimRequest) -> None:
        """Pick a server and send the request there: `Exchange._pick`, in simulated time."""
        pool = self.pool
        policy = self.policy
        head = self.head
        while True:
            if pool.plain:
                backend = policy.pick(req.tried, head, req.client_ip)
            else:
                backend = pool.pick(req.tried, head, req.client_ip)
            if backend is None:
                self._none_left(req)
                return
            req.attempt = backend
            backend.active += 1
            policy.started(backend)
            server = self.by_backend[backend]
            if server.alive:
                if server.free:
                    server.free -= 1
                    self._serve(server, req)
                else:
                    server.queue.append(req)
                return
            self._lost(server, req, "connection refused")

    def _serve(self, server: SimServer, req: SimRequest) -> None:
        draw = server.draw
        service = (draw() if draw is not None else req.service) * server.factor
        self.seq += 1
        req.ticket = self.seq
        heappush(self.heap, (self.clock.now + service, self.seq, DONE, req))
        server.serving.add(req)

    def _complete(self, req: SimRequest) -> None:
        backend = req.attempt
        if backend is None:
            return
        server = self.by_backend[backend]
        server.serving.discard(req)
        queue = server.queue
        if queue:
            self._serve(server, queue.popleft())
        else:
            server.free += 1
        now = self.clock.now
        outcome = self.outcome
        outcome.backend = backend
        outcome.started = req.started
        outcome.end = End.COMPLETE
        outcome.status = 200
        outcome.finished = now
        req.attempt = None
        self.pool.ended(backend, outcome)
        result = self.result
        result.latencies.append(now - req.started)
        result.served[server.index] += 1
        result.last = now
        self.open -= 1
        if req.client >= 0:
            self._push(now + self.think(), CLIENT, req.client)

    def _release(self, req: SimRequest, end: End, status: int) -> None:
        """`Exchange._release_attempt`: the in-flight count, the policy's feedback, a wake.
        `end` OPEN: an attempt that failed before any answer (the exchange goes on)."""
        backend = req.attempt
        if backend is not None:
            req.attempt = None
            outcome = self.outcome
            outcome.backend = backend
            outcome.started = req.started
            outcome.end = end
            outcome.status = status
            outcome.finished = 0.0 if end is End.OPEN else self.clock.now
            self.pool.ended(backend, outcome)

    def _ended(self, req: SimRequest) -> None:
        self.open -= 1
        if req.client >= 0:
            self._push(self.clock.now + self.think(), CLIENT, req.client)

    def _none_left(self, req: SimRequest) -> None:
        pool = self.pool
        if pool.queue_timeout > 0 and pool.anyone_full(req.tried):
            held = req.held
            if not isinstance(held, Held):
                held = req.held = Held(self, req)
                self.result.queued += 1
            held.waiting = True
            held.deadline = self.clock.now + pool.queue_timeout
            pool.waiting.append(held)
            self._push(held.deadline, TIMEOUT, held)
            return
        self._fail(req, 502 if req.lost else 503)

    def _fail(self, req: SimRequest, status: int) -> None:
        self._release(req, End.LOCAL, status)
        if status == 503:
            self.result.rejected += 1
        else:
            self.result.failed += 1
        self.result.last = self.clock.now
        self._ended(req)

    def _lost(self, server: SimServer, req: SimRequest, reason: str) -> None:
        """The attempt on `server` failed (refused, or lost with it): the passive check
        hears of it, the server joins `tried`, and the caller picks again."""
        backend = server.backend
        if backend is None:
            return
        if self.health is not None:
            self.health.passive(server, reason, self.clock.now)
        req.tried += (backend,)
        self._release(req, End.OPEN, 0)
        self.result.retried += 1

    # other events

    def _other(self, kind: int, obj: object, now: float) -> None:
        if kind == PROBE and isinstance(obj, Checker) and self.health is not None:
            self.health.probe(obj, now)
        elif kind == EVENT and isinstance(obj, Event):
            self._event(obj)
        elif kind == TIMEOUT and isinstance(obj, Held) and obj.waiting and obj.deadline == now:
            obj.waiting = False
            self.pool.waiting.remove(obj)
            self._fail(obj.req, 503)  # no server had room within queue_timeout

    def _event(self, event: Event) -> None:
        server = self.servers[event.server]
        if event.action == "slow":
            server.factor = event.factor
        elif event.action == "up":
            server.alive = True
            server.factor = 1.0
        else:
            self._die(server)

    def _die(self, server: SimServer) -> None:
        """The server stops: connections refused from now on; what it held is lost."""
        server.alive = False
        victims = sorted(server.serving, key=lambda r: r.ticket) + list(server.queue)
        server.serving.clear()
        server.queue.clear()
        server.free = server.slots
        for req in victims:
            req.ticket = -1
            self._lost(server, req, "closed without answer")
            req.lost = True  # none left now: a bad gateway (502), not an unavailable one
            self.dispatch(req)
