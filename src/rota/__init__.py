"""rota: a load balancer for HTTP/1.1 and TCP, written in Python."""

from rota import native

__version__ = "0.1.0"

# Compiled hot modules when built and current, their sources otherwise (rota.native).
native.choose()
