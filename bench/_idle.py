"""What a worker's batches wait on while its event loop is idle (``bench/worker.py --idle-probe``).

A sampler task wakes every ``period_s``. When it wakes on time (less than ``slack_s``
late), the loop had nothing to run at that moment: the sample is idle, and each batch in
flight is charged to the two innermost ``wa_bridge`` coroutines it is suspended in (the
step, and the helper through which it awaits PostgreSQL or the CRM). A late wake-up means
the loop was busy running Python: a busy sample. Samples are counts, not times (a busy one
spans the whole busy stretch). The report also says when, by tenth of the run, the loop
was idle with no batch in flight. The sampler costs about 1,000 wake-ups a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

__all__ = ["IdleProbe"]


def _wait_site(task: asyncio.Task[Any]) -> str:
    """The two innermost ``wa_bridge`` coroutine frames ``task`` is suspended in (the
    step, and the helper it awaits through), outer first."""
    coro: Any = task.get_coro()
    sites: list[str] = []
    while coro is not None:
        frame = getattr(coro, "cr_frame", None)
        if frame is None:
            break
        name = frame.f_code.co_filename
        if "wa_bridge" in name:
            sites.append(f"{frame.f_code.co_qualname}:{frame.f_lineno}")
        coro = getattr(coro, "cr_await", None)
    return " > ".join(sites[-2:]) or "?"


@dataclass
class IdleProbe:
    tasks: Collection[asyncio.Task[Any]]  # the worker's batches in flight (a live set)
    period_s: float = 0.001
    slack_s: float = 0.0005
    idle: int = 0
    busy: int = 0
    sites: Counter[str] = field(default_factory=Counter)
    in_flight: Counter[int] = field(default_factory=Counter)
    empty_at: list[float] = field(default_factory=list)  # idle, no batch in flight: when
    _task: asyncio.Task[None] | None = None
    _started: float = 0.0

    def start(self) -> None:
        self._started = time.perf_counter()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            due = time.perf_counter() + self.period_s
            await asyncio.sleep(self.period_s)
            if time.perf_counter() - due > self.slack_s:
                self.busy += 1
                continue
            self.idle += 1
            batches = [t for t in self.tasks if not t.done()]
            self.in_flight[len(batches)] += 1
            if not batches:
                self.empty_at.append(time.perf_counter() - self._started)
            for task in batches:
                self.sites[_wait_site(task)] += 1

    def report(self) -> None:
        total = self.idle + self.busy
        if not total:
            return
        print(
            f"   idle probe: {self.idle:,} of {total:,} samples idle ({self.idle / total:.1%}); "
            "batches in flight when idle: "
            + ", ".join(f"{n}: {c / self.idle:.0%}" for n, c in sorted(self.in_flight.items()))
        )
        if self.empty_at:
            end = time.perf_counter() - self._started
            tenths = Counter(min(int(t / end * 10), 9) for t in self.empty_at)
            print(
                "   idle with no batch in flight, by tenth of the run: "
                + " ".join(str(tenths.get(i, 0)) for i in range(10))
            )
        waits = sum(self.sites.values())
        for site, count in self.sites.most_common(12):
            print(f"     {count / max(waits, 1):6.1%}  {site}")
