"""CPU time and memory of a process tree, read from /proc (Linux only).

A load balancer may be several processes (rota --workers N: a supervisor and worker children;
nginx: a master and a worker), so every figure is summed over the process and all its
descendants, found by walking /proc for parent PIDs.
"""

from __future__ import annotations

import os


def parse_stat(text: str) -> tuple[int, int]:
    """Return (ppid, utime + stime in clock ticks) from the text of /proc/PID/stat.

    The command name (field 2) is in parentheses and may itself contain spaces or ')', so
    the fields are counted from the last ')'; see proc(5) for the field numbers.
    """
    rest = text[text.rindex(")") + 2 :].split()
    # rest[0] is field 3 (state); ppid is field 4, utime 14, stime 15.
    return int(rest[1]), int(rest[11]) + int(rest[12])


def parse_status_kib(text: str, key: str) -> int:
    """Return the value in KiB of a `Key:   123 kB` line of /proc/PID/status, 0 if absent."""
    prefix = key + ":"
    for line in text.splitlines():
        if line.startswith(prefix):
            return int(line.split()[1])
    return 0


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            return f.read()
    except OSError:  # the process exited between listing and reading
        return None


def tree_pids(root: int) -> list[int]:
    """The PID `root` and all its live descendants (root first)."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        text = _read(f"/proc/{entry.name}/stat")
        if text is None:
            continue
        ppid, _ = parse_stat(text)
        children.setdefault(ppid, []).append(int(entry.name))
    found: list[int] = []
    todo = [root]
    while todo:
        pid = todo.pop()
        if pid in found:
            continue
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def tree_cpu_ticks(root: int) -> dict[int, int]:
    """utime + stime (clock ticks) of every live process of the tree, by PID."""
    ticks: dict[int, int] = {}
    for pid in tree_pids(root):
        text = _read(f"/proc/{pid}/stat")
        if text is not None:
            ticks[pid] = parse_stat(text)[1]
    return ticks


def cpu_seconds_between(before: dict[int, int], after: dict[int, int]) -> float:
    """CPU seconds the tree used between two tree_cpu_ticks() snapshots.

    A process born in between counts from zero. One that died in between is lost, which is
    fine here: load balancers keep their workers for the whole run.
    """
    ticks = sum(t - before.get(pid, 0) for pid, t in after.items())
    return ticks / os.sysconf("SC_CLK_TCK")


def tree_status_kib(root: int, key: str) -> int:
    """Sum of a /proc/PID/status field (VmRSS, VmHWM) over the tree, in KiB."""
    total = 0
    for pid in tree_pids(root):
        text = _read(f"/proc/{pid}/status")
        if text is not None:
            total += parse_status_kib(text, key)
    return total


def pid_alive(pid: int) -> bool:
    text = _read(f"/proc/{pid}/stat")
    if text is None:
        return False
    # A zombie has exited; it only waits for its parent to reap it.
    return text[text.rindex(")") + 2] != "Z"


def parse_cpu_busy_ticks(proc_stat: str) -> int:
    """Busy clock ticks of all CPUs from the `cpu` line of /proc/stat: everything but idle,
    iowait and softirq (guest time is already inside user and nice).

    softirq is left out because loopback packet processing runs there and is charged to no
    process: it is mostly the benchmark's own traffic, not another job's.
    """
    for line in proc_stat.splitlines():
        if line.startswith("cpu "):
            values = [int(v) for v in line.split()[1:]]
            user, nice, system, _idle, _iowait, irq, _softirq, steal = values[:8]
            return user + nice + system + irq + steal
    raise ValueError("no cpu line in /proc/stat")


def machine_busy_seconds() -> float:
    """CPU seconds all CPUs of the machine have been busy since boot."""
    text = _read("/proc/stat") or ""
    return parse_cpu_busy_ticks(text) / os.sysconf("SC_CLK_TCK")
