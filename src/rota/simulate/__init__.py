"""`rota simulate`: the balancing policies in a discrete-event simulation (docs/simulate.md).

scenario.py (the TOML file, errors naming field and line; locate.py finds the line),
dists.py (service-time models), arrivals.py (open-loop load), accesslog.py (a replay's
log), servers.py (server and request models), health.py (checks in simulated time),
engine.py (the event engine, one policy), results.py (percentiles, the table, JSON),
plots.py (PNGs), progress.py, run.py (the command), real.py (`--real`: the same scenario
on loopback).
"""
