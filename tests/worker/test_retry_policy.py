"""The retry policy on its own: in-place retries wait on the injected clock."""

from __future__ import annotations

import asyncio

import pytest

from wa_bridge.clock import ManualClock
from wa_bridge.errors import CrmRateLimited, CrmRejected
from wa_bridge.worker.retry import retry_in_place


async def test_in_place_retries_wait_retry_after_on_the_clock() -> None:
    clock = ManualClock()
    calls: list[float] = []

    async def call() -> str:
        calls.append(clock.monotonic())
        if len(calls) < 3:
            raise CrmRateLimited("429", retry_after_s=7)
        return "done"

    async with asyncio.timeout(5):
        task = asyncio.create_task(retry_in_place(call, attempts=3, clock=clock))
        await clock.sleeping()
        clock.advance(7)
        await clock.sleeping()
        clock.advance(7)
        assert await task == "done"
    assert calls == [0, 7, 14]


async def test_a_permanent_error_is_not_retried() -> None:
    calls = 0

    async def call() -> None:
        nonlocal calls
        calls += 1
        raise CrmRejected("400", status_code=400, crm_error="bad")

    with pytest.raises(CrmRejected):
        await retry_in_place(call, attempts=3, clock=ManualClock())
    assert calls == 1
