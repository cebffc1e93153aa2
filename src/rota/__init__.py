"""rota: a load balancer for HTTP/1.1 and TCP, written in Python."""

__version__ = "0.1.0"
