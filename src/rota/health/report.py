"""The operator's picture: one log line per backend state change. Pure.

    backend 127.0.0.1:5002 DOWN (connection refused; 2/3 up)
    backend 127.0.0.1:5002 DOWN (GET /health -> 404; 2/3 up)
    backend 127.0.0.1:5002 UP (2 checks passed; 3/3 up)
    no backend available

The name is the backend's address unless the config named it, in which case the address
follows the name so that the line still says where to look.

When every server of a pool is DOWN because each answers its probe with the same status
(not a 5xx), the servers are most likely fine and the check is wrong for them
(`python -m http.server` answers 404 on `/health`): one more line says which setting
changes it (`advice`).
"""

from __future__ import annotations

from collections.abc import Sequence

from rota.config.model import HealthSpec
from rota.pool import State

NO_BACKEND = "no backend available"
# An HTTP probe's answer, as probe.py writes it: "GET /health -> 404".
ANSWERED = " -> "


def probe_answer(path: str, status: int) -> str:
    """How a probe's answer reads in a transition line: `GET /health -> 404`."""
    return f"GET {path}{ANSWERED}{status}"


def transition_lines(
    name: str, address: str, state: State, reason: str, up: int, total: int
) -> tuple[str, ...]:
    """The line(s) to log after a backend changed to `state`; `up` counts the backends UP
    after the change."""
    who = name if name == address else f"{name} {address}"
    detail = f"{reason}; {up}/{total} up" if reason else f"{up}/{total} up"
    line = f"backend {who} {state.value} ({detail})"
    if state is State.DOWN and up == 0:
        return (line, NO_BACKEND)
    return (line,)


def advice(pool: str, reasons: Sequence[str], health: HealthSpec, seed: bool) -> str | None:
    """One line for a pool whose servers are all DOWN, when each was taken out by the same
    answer to its probe, not a 5xx (`reasons`: why each server went DOWN). None otherwise:
    servers that refuse connections, time out or answer 5xx are down indeed, and different
    answers are not one mistake in the check. `seed`: the config is the seed's shape (one pool, its
    `health_check` at the top level)."""
    if not reasons or len(set(reasons)) != 1 or ANSWERED not in reasons[0]:
        return None
    if reasons[0].rpartition(ANSWERED)[2].startswith("5"):
        return None  # a 5xx is a server saying it is sick: the check is doing its job
    where = "health_check" if seed else f"pools.{pool}.health_check"
    whose = "every server" if seed else f"every server of pool {pool}"
    wanted = (
        str(health.status_min)
        if health.status_min == health.status_max
        else f"{health.status_min}-{health.status_max}"
    )
    return (
        f"{whose} answers its health check with {reasons[0]}: if {health.path} is not "
        f"their health endpoint, set {where}.path (--health-check-path) to a path they "
        f'answer with {wanted}, or {where}.type = "tcp" (--health-check-type tcp) to check '
        "only that they accept connections"
    )
