"""The one interface every balancing policy implements.

A policy is a plain object with no I/O (the same class runs in the proxy and in tests): the
pool tells it its backends (`update`, on every membership or weight change and whenever a
backend's `up` flips), the data path
asks it to `pick` one per request (HTTP) or connection (TCP), and tells it when work on a
backend starts and ends (`started`, `ended`: the feedback that load-aware policies need).

`pick` sees the request head (None for TCP) and the client's address, which is what hashing
policies key on. `tried` holds the backends already tried for this request (retries after a
refused connection), so a retry never lands on the same backend twice.
"""

from __future__ import annotations

from collections.abc import Container
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rota.http.head import RequestHead
    from rota.outcome import Outcome
    from rota.pool import Backend


class Policy:
    """Base class: subclasses override `pick` and whichever hooks they need."""

    __slots__ = ()

    def update(self, backends: tuple[Backend, ...]) -> None:
        """The pool's backends, in config order, after any change."""

    def pick(
        self, tried: Container[Backend], head: RequestHead | None, client_ip: bytes
    ) -> Backend | None:
        """A backend that is `up` and not in `tried`, or None if there is none."""
        raise NotImplementedError

    def started(self, backend: Backend) -> None:
        """An exchange (or TCP connection) was sent to `backend`."""

    def ended(self, backend: Backend, outcome: Outcome) -> None:
        """That exchange ended; `outcome` says how, with its status and times."""
