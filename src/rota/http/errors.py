"""Errors of the HTTP layer. Each carries the status a server should answer with, so the
proxy turns any of them into a response in one place (`rota.proxy.responses`)."""


class ProtocolError(Exception):
    """The peer broke HTTP (or a limit). `status` is the response to send before closing."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason
