"""Side-by-side benchmarks of rota against HAProxy, nginx and direct-to-backend.

Run with `make bench` (full) or `make bench-quick` (smoke test); see bench/run.py.
"""
