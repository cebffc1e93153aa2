"""How sick the demo backend's /health is: a switch for demos and tests. Pure.

A backend can be made to fail its health check, or to hang it, without being killed, so
that you can watch rota route around it and bring it back:

    rota backend --port 5002 --health-status 500     # start sick
    rota backend --port 5002 --health-hang           # start hanging
    curl -X POST http://127.0.0.1:5002/control/health -d fail    # /health answers 500
    curl -X POST http://127.0.0.1:5002/control/health -d 503     # /health answers 503
    curl -X POST http://127.0.0.1:5002/control/health -d hang    # /health never answers
    curl -X POST http://127.0.0.1:5002/control/health -d ok      # healthy again
    curl http://127.0.0.1:5002/control/health                    # JSON: mode, recent probes

Only /health changes; every other path keeps answering 200, as a backend whose
dependency died would. The control endpoint also lists when the last probes arrived
(monotonic seconds), which the tests use to measure the gaps between probes.
"""

from __future__ import annotations

import json
from collections import deque
from enum import Enum

CONTROL_PATH = "/control/health"
HEALTH_PATH = "/health"
RECENT_PROBES = 200


class Mode(Enum):
    OK = "ok"
    FAIL = "fail"
    HANG = "hang"


class ControlError(ValueError):
    """A control request we do not understand; its text is the 400 body."""


class Sickness:
    """The /health switch of one backend. Used on the backend's event-loop thread only."""

    __slots__ = ("_probes", "mode", "status")

    def __init__(self, status: int = 200, hang: bool = False) -> None:
        self.mode = Mode.HANG if hang else Mode.OK if 200 <= status <= 399 else Mode.FAIL
        self.status = status
        self._probes: deque[float] = deque(maxlen=RECENT_PROBES)

    def __repr__(self) -> str:
        return f"<Sickness {self.mode.value} status={self.status}>"

    def health(self, now: float) -> int | None:
        """A /health request arrived at `now`: the status to answer, or None to hang."""
        self._probes.append(now)
        if self.mode is Mode.HANG:
            return None
        return self.status

    def control(self, body: bytes) -> None:
        """Apply `ok`, `fail`, `hang` or a status code (e.g. `503`) from a control POST."""
        word = body.strip().decode("ascii", "replace").lower()
        if word == "ok":
            self.mode, self.status = Mode.OK, 200
        elif word == "fail":
            self.mode, self.status = Mode.FAIL, 500
        elif word == "hang":
            self.mode = Mode.HANG
        elif len(word) == 3 and word.isdigit() and 200 <= int(word) <= 599:
            self.status = int(word)
            self.mode = Mode.OK if 200 <= self.status <= 399 else Mode.FAIL
        else:
            raise ControlError(f"expected ok, fail, hang or a status 200-599, got {word!r}\n")

    def report(self) -> bytes:
        """The JSON body of `GET /control/health`."""
        state = {"mode": self.mode.value, "status": self.status, "probes": list(self._probes)}
        return json.dumps(state).encode() + b"\n"
