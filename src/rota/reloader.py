"""The one way a running rota takes a new configuration: `Reloader.reload_now()`.

SIGHUP, `rota reload` (over the control socket) and the admin API's `POST /api/v1/reload`
all call it. It reads and validates the file the process was started with, then applies it
(`Runtime.apply` in one process; the supervisor's `apply`, which every worker follows, with
`--workers`). Reloads run one at a time, in the order they were asked for; the start-up
holds the same lock, so a reload asked for while rota starts waits until it has started
and never meets half a configuration.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from rota.config.errors import ConfigError
from rota.config.model import Config

log = logging.getLogger("rota")

# Reads and validates the configuration file again; raises ConfigError.
Reload = Callable[[], Config]
# Applies a validated configuration; returns what went wrong, or None.
Apply = Callable[[Config], Awaitable[str | None]]


class Reloader:
    def __init__(self, read: Reload | None, apply: Apply) -> None:
        self.read = read
        self.apply = apply
        self.lock = asyncio.Lock()
        self.count = 0  # reloads applied
        self.bad_file = False  # whether the last reload failed on the file itself

    async def reload_now(self) -> str | None:
        """Reload the configuration file: None once applied, else the error (a bad file
        changes nothing, and is logged on one line naming the file and the field)."""
        if self.read is None:
            return "this process was started without a configuration file to reload"
        async with self.lock:
            self.bad_file = False
            try:
                config = self.read()
            except ConfigError as exc:
                self.bad_file = True
                log.error("reload failed, the running configuration stays: %s", exc)
                return str(exc)
            problem = await self.apply(config)
            if problem is not None:
                log.error("reload: %s", problem)
                return problem
            self.count += 1
            log.info("reloaded %s", config.source)
            return None
