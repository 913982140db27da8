"""System calls and context switches of a server process while it is under load.

``perf stat --per-thread`` on the server's threads for the span of the measured wrk run,
divided by the requests wrk completed: how many times a request enters the kernel and
how many times a thread is switched out for it. Unlike a time, neither figure depends on
how fast the VM is; together with the VM's cost of a system call (``bench/_machine.py``)
they say why a ratio to the bare app moves from one VM to the next.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import signal
import subprocess
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["KernelCounts", "count_kernel_entries"]

_EVENTS = ("raw_syscalls:sys_enter", "context-switches")
_TID = re.compile(r"-\d+$")


@dataclass
class KernelCounts:
    """Per thread name (``rdk:broker1``, ``python``…): system calls and context switches."""

    syscalls: Counter[str] = field(default_factory=Counter)
    switches: Counter[str] = field(default_factory=Counter)
    unavailable: str | None = None

    def describe(self, requests: int) -> str:
        if self.unavailable is not None:
            return f"system calls not counted: {self.unavailable}"
        per = max(1, requests)
        threads = ", ".join(
            f"{name} {count / per:.2f}" for name, count in self.syscalls.most_common(4)
        )
        return (
            f"system calls {sum(self.syscalls.values()) / per:.2f} a request ({threads}); "
            f"context switches {sum(self.switches.values()) / per:.2f} a request"
        )


def _parse(text: str) -> KernelCounts:
    counts = KernelCounts()
    for line in text.splitlines():
        parts = line.split(",")
        if len(parts) < 4 or not parts[1].strip().isdigit():
            continue  # comments, "<not counted>" threads
        thread, value, event = _TID.sub("", parts[0].strip()), int(parts[1]), parts[3]
        if event == _EVENTS[0]:
            counts.syscalls[thread] += value
        elif event == _EVENTS[1]:
            counts.switches[thread] += value
    return counts


@contextlib.contextmanager
def count_kernel_entries(pid: int) -> Iterator[KernelCounts]:
    """Count ``pid``'s threads' kernel entries until the block ends; the yielded
    :class:`KernelCounts` is filled then (or says why it could not be)."""
    counts = KernelCounts()
    perf = shutil.which("perf")
    if perf is None:
        counts.unavailable = "perf is not installed (apt-get install linux-perf)"
        yield counts
        return
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "perf.csv"
        cmd = [perf, "stat", "--per-thread", "-x,", "-e", ",".join(_EVENTS)]
        cmd += ["-p", str(pid), "-o", str(out)]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            yield counts
        finally:
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=30)
        found = _parse(out.read_text() if out.exists() else "")
        if not found.syscalls:
            reason = err.decode(errors="replace").strip().splitlines()
            counts.unavailable = reason[-1] if reason else "perf counted nothing"
        else:
            counts.syscalls, counts.switches = found.syscalls, found.switches
