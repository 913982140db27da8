"""How fast this VM is, in two figures printed beside every benchmark's own.

These 2-core VMs differ by 2x in plain Python speed (10M additions at module level: 0.62 s
on the fastest seen, 1.39 s on the slowest), and a system call can be slow: a ``getppid``
took 560-850 ns on the VM of 2026-12-08 04:21 UTC. A figure only compares with one taken
on a VM of the same kind. The receiver's ratio to the bare app depends on the second more
than the bare app does: its request crosses three threads (event loop, delivery-report
poller, librdkafka's broker thread) where the bare app's stays in one, so it makes more
system calls and context switches per request (``bench/README.md``).
"""

from __future__ import annotations

import os
import time

__all__ = ["describe"]

_ADDITIONS = 2_000_000
_SYSCALLS = 100_000


def _best(runs: int, work: object) -> float:
    best = float("inf")
    for _ in range(runs):
        t0 = time.perf_counter()
        work()  # type: ignore[operator]
        best = min(best, time.perf_counter() - t0)
    return best


# at module level, as `python3 -c "s=0\nfor i in range(10_000_000): s+=i"` runs it (the
# figures quoted in bench/README.md): names in a dict, slower than a function's locals
_ADD_CODE = compile(f"s = 0\nfor i in range({_ADDITIONS}):\n    s += i\n", "<additions>", "exec")


def _add() -> None:
    exec(_ADD_CODE, {})  # our own constant code


def _syscall() -> None:
    getppid = os.getppid
    for _ in range(_SYSCALLS):
        getppid()


def describe() -> str:
    """One line: seconds for 10M Python additions (0.62 on the fastest VM seen, 1.39 on
    the slowest) and ns per system call (getppid), each the best of three."""
    loop_s = _best(3, _add) * (10_000_000 / _ADDITIONS)
    syscall_ns = _best(3, _syscall) / _SYSCALLS * 1e9
    return f"machine: 10M additions {loop_s:.2f} s, a system call (getppid) {syscall_ns:.0f} ns"


if __name__ == "__main__":
    print(describe())
