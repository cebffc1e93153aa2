"""The one interface every balancing algorithm implements."""

from __future__ import annotations

from collections.abc import Container
from typing import Protocol

from rota.pool import Backend


class Balancer(Protocol):
    def pick(self, exclude: Container[Backend] = ()) -> Backend | None:
        """The next backend that is UP and not in `exclude`, or None if there is none.

        `exclude` holds the backends already tried for this request (retries after a
        refused connection), so a retry never lands on the same backend twice."""
        ...
