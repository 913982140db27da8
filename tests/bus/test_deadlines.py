"""AckDeadlines: one timer fails overdue waits, in order, and leaves finished ones alone."""

from __future__ import annotations

import asyncio

import pytest

from wa_bridge.bus._deadlines import AckDeadlines


async def test_an_unanswered_wait_fails_with_timeout_error() -> None:
    deadlines = AckDeadlines(0.05)
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[None] = loop.create_future()
    deadlines.watch(fut)
    with pytest.raises(TimeoutError):
        await fut


async def test_answered_waits_keep_their_result_and_later_ones_still_expire() -> None:
    deadlines = AckDeadlines(0.05)
    loop = asyncio.get_running_loop()
    answered: asyncio.Future[str] = loop.create_future()
    deadlines.watch(answered)
    answered.set_result("acked")
    late: asyncio.Future[str] = loop.create_future()
    await asyncio.sleep(0.02)
    deadlines.watch(late)  # queued behind the answered one: the timer must re-arm for it
    assert await answered == "acked"
    with pytest.raises(TimeoutError):
        await late
    assert answered.result() == "acked"


async def test_finished_waits_leave_the_queue() -> None:
    deadlines = AckDeadlines(30.0)
    loop = asyncio.get_running_loop()
    for _ in range(100):
        fut: asyncio.Future[None] = loop.create_future()
        deadlines.watch(fut)
        fut.set_result(None)
    assert len(deadlines) == 1  # only the newest, not yet swept


async def test_a_gather_of_unanswered_records_fails_and_its_children_stay_usable() -> None:
    deadlines = AckDeadlines(0.05)
    loop = asyncio.get_running_loop()
    records: list[asyncio.Future[int]] = [loop.create_future() for _ in range(3)]
    acked = asyncio.gather(*records)
    deadlines.watch(acked)
    with pytest.raises(TimeoutError):
        await acked
    for i, record in enumerate(records):  # a late acknowledgement is harmless
        record.set_result(i)
    await asyncio.sleep(0)
