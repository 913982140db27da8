"""The Clock seam: the system clock, and the manual clock tests use instead of sleeping."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from wa_bridge.clock import SYSTEM_CLOCK, Clock, ManualClock, epoch_ms

START = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)


async def test_the_system_clock_is_aware_and_monotonic() -> None:
    clock: Clock = SYSTEM_CLOCK
    before = clock.monotonic()
    await clock.sleep(0)
    assert clock.now().tzinfo is UTC
    assert clock.monotonic() >= before
    assert abs(epoch_ms(clock) - datetime.now(UTC).timestamp() * 1000) < 5000


async def test_a_manual_sleeper_wakes_only_when_the_clock_passes_its_deadline() -> None:
    clock = ManualClock(START)
    woke: list[float] = []

    async def nap(seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append(clock.monotonic())

    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(nap(5))
        tasks.create_task(nap(2))
        await clock.sleeping(2)
        clock.advance(1)
        await asyncio.sleep(0)
        assert woke == []
        clock.advance(1)
        await asyncio.sleep(0)
        assert woke == [2]
        clock.advance(10)
    assert woke == [2, 12]
    assert clock.now() == START + timedelta(seconds=12)
    assert epoch_ms(clock) == int(START.timestamp() * 1000) + 12_000


async def test_a_cancelled_manual_sleep_is_forgotten() -> None:
    clock = ManualClock(START)
    task = asyncio.create_task(clock.sleep(1))
    await clock.sleeping()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert clock.sleepers == 0
    clock.advance(2)  # waking a cancelled sleeper must not raise


def test_a_manual_clock_never_goes_back_and_needs_an_aware_start() -> None:
    with pytest.raises(ValueError):
        ManualClock(datetime(2026, 1, 1))
    with pytest.raises(ValueError):
        ManualClock(START).advance(-1)
