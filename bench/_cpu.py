"""How much of the benchmark's CPUs other processes used during a run (Linux /proc).

busy time of a CPU set − CPU time of our own processes there = time taken by everyone
else. On a shared 2-core machine that says whether a figure can be trusted.
"""

from __future__ import annotations

import os
import resource
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CpuSnapshot", "Shares"]

_TICK_S = 1.0 / os.sysconf("SC_CLK_TCK")


def _cpu_busy_s(cpus: set[int]) -> float:
    total = 0
    for line in Path("/proc/stat").read_text().splitlines():
        name, *fields = line.split()
        if not name.startswith("cpu") or name == "cpu" or int(name[3:]) not in cpus:
            continue
        values = [int(v) for v in fields]
        idle = values[3] + values[4]  # idle + iowait
        total += sum(values[:8]) - idle  # user..steal (guest time is already in user)
    return total * _TICK_S


def _stat_fields(pid: int) -> list[str]:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rindex(")") + 2 :].split()  # fields after "pid (comm)": state, ppid, …


def _proc_cpu_s(pid: int) -> float:
    fields = _stat_fields(pid)
    return (int(fields[11]) + int(fields[12])) * _TICK_S  # utime, stime


def _live_children_cpu_s(exclude: int) -> float:
    me, total = os.getpid(), 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == exclude:
            continue
        try:
            if int(_stat_fields(int(entry.name))[1]) == me:
                total += _proc_cpu_s(int(entry.name))
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile
    return total


def _reaped_children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass(frozen=True)
class Shares:
    """Shares (0..1) of each CPU set's time in the window."""

    server: float
    server_others: float
    client: float
    client_others: float
    server_cpu_s: float = 0.0  # the server process's own CPU time in the window

    def describe(self) -> str:
        return (
            f"server CPUs: server {self.server:.0%}, others {self.server_others:.0%}; "
            f"client CPUs: wrk/broker {self.client:.0%}, others {self.client_others:.0%}"
        )


@dataclass(frozen=True)
class CpuSnapshot:
    at_s: float
    server_busy_s: float
    client_busy_s: float
    server_s: float
    client_s: float

    @classmethod
    def take(cls, server_cpus: set[int], client_cpus: set[int], server_pid: int) -> CpuSnapshot:
        """Our client-side processes: wrk (reaped children) and live children (Tansu)."""
        return cls(
            at_s=time.monotonic(),
            server_busy_s=_cpu_busy_s(server_cpus),
            client_busy_s=_cpu_busy_s(client_cpus),
            server_s=_proc_cpu_s(server_pid),
            client_s=_reaped_children_cpu_s() + _live_children_cpu_s(exclude=server_pid),
        )

    def shares_until(self, after: CpuSnapshot, n_server: int, n_client: int) -> Shares:
        elapsed = max(1e-9, after.at_s - self.at_s)
        server = after.server_s - self.server_s
        client = after.client_s - self.client_s
        server_others = max(0.0, after.server_busy_s - self.server_busy_s - server)
        client_others = max(0.0, after.client_busy_s - self.client_busy_s - client)
        return Shares(
            server=server / (elapsed * n_server),
            server_others=server_others / (elapsed * n_server),
            client=client / (elapsed * n_client),
            client_others=client_others / (elapsed * n_client),
            server_cpu_s=server,
        )
