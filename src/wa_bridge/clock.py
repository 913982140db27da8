"""Time, injected: one :class:`Clock` protocol, the system clock and a manual clock.

Code that reads the time or waits takes a ``Clock`` (default :data:`SYSTEM_CLOCK`), so
backoff, retry due times, retention and dead-letter times can be tested without
sleeping: a test passes a :class:`ManualClock` and moves it with :meth:`~ManualClock.advance`.

- ``now()``: the wall-clock time, an aware UTC datetime. Use it for what is stored or
  shared between processes (failure times, retry due times in record headers).
- ``monotonic()``: seconds that only go forward. Use it for durations.
- ``sleep(seconds)``: wait ``seconds`` of this clock's time.

Deadlines on I/O (``asyncio.timeout``) stay on the event loop's own time: they bound how
long we wait for the outside world, which a manual clock does not move.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from datetime import UTC, datetime, timedelta
from typing import Final, Protocol

__all__ = [
    "SYSTEM_CLOCK",
    "Clock",
    "ManualClock",
    "SystemClock",
    "epoch_ms",
    "parse_iso_time",
    "sleep_unless_stopped",
]


class Clock(Protocol):
    """Where time comes from. ``sleep`` may be cancelled like ``asyncio.sleep``."""

    def now(self) -> datetime:
        """The current wall-clock time (aware, UTC)."""
        ...

    def monotonic(self) -> float:
        """Seconds from an arbitrary start; never goes backwards."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Return after ``seconds`` of this clock's time (at once when ``seconds <= 0``)."""
        ...


def epoch_ms(clock: Clock) -> int:
    """``clock.now()`` in milliseconds since the Unix epoch (Kafka's unit for times)."""
    return int(clock.now().timestamp() * 1000)


async def sleep_unless_stopped(clock: Clock, seconds: float, stop: asyncio.Event) -> None:
    """Sleep ``seconds`` on ``clock``; return early when ``stop`` is set."""
    nap = asyncio.ensure_future(clock.sleep(seconds))
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({nap, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in (nap, stopped):
            waiter.cancel()
        await asyncio.gather(nap, stopped, return_exceptions=True)


def parse_iso_time(text: str | None) -> datetime | None:
    """``text`` as an aware datetime (ISO 8601; no zone is UTC), or None when empty or
    not ISO 8601."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class SystemClock:
    """The real time: ``datetime.now(UTC)``, ``time.monotonic``, ``asyncio.sleep``."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    def __repr__(self) -> str:
        return "SystemClock()"


SYSTEM_CLOCK: Final = SystemClock()


class ManualClock:
    """A clock that moves only when told to (tests).

    ``sleep`` waits until :meth:`advance` moves the clock past the sleeper's deadline;
    :meth:`sleeping` waits until some task is asleep on this clock, so a test can advance
    it at the right moment without polling.
    """

    def __init__(self, start: datetime = datetime(2026, 1, 1, tzinfo=UTC)) -> None:
        if start.tzinfo is None:
            raise ValueError("a ManualClock starts at an aware datetime")
        self._now = start.astimezone(UTC)
        self._monotonic = 0.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._changed = asyncio.Event()

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._monotonic

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        wake = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._monotonic + seconds, next(self._order), wake))
        self._changed.set()
        await wake

    def advance(self, seconds: float) -> None:
        """Move the clock forward; wake every sleeper whose deadline has come."""
        if seconds < 0:
            raise ValueError("time does not go backwards")
        self._monotonic += seconds
        self._now += timedelta(seconds=seconds)
        while self._sleepers and self._sleepers[0][0] <= self._monotonic:
            _, _, wake = heapq.heappop(self._sleepers)
            if not wake.done():
                wake.set_result(None)

    @property
    def sleepers(self) -> int:
        """How many tasks are asleep on this clock now."""
        return sum(not wake.done() for _, _, wake in self._sleepers)

    async def sleeping(self, count: int = 1) -> None:
        """Return once at least ``count`` tasks are asleep on this clock."""
        while self.sleepers < count:
            self._changed.clear()
            await self._changed.wait()

    def __repr__(self) -> str:
        return f"ManualClock(now={self._now.isoformat()}, monotonic={self._monotonic})"
