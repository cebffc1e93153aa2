"""The operator's picture: one log line per backend state change. Pure.

    backend 127.0.0.1:5002 DOWN (connection refused; 2/3 up)
    backend 127.0.0.1:5002 UP (2 checks passed; 3/3 up)
    no backend available

The name is the backend's address unless the config named it, in which case the address
follows the name so that the line still says where to look.
"""

from __future__ import annotations

from rota.pool import State

NO_BACKEND = "no backend available"


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
