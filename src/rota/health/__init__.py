"""Health checks: active probes from a thread per backend, passive mark-down from traffic.

state.py holds the rise/fall machine and the probe schedule (pure), probe.py the one probe
(the only I/O), checker.py the thread per backend, monitor.py the glue to a pool and an
event loop, report.py the log lines.
"""
