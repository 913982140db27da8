"""The worker's pause while the CRM's budget is spent: gauge, /readyz, listeners, log."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import orjson
import pytest

from wa_bridge.clock import ManualClock
from wa_bridge.errors import CrmQuotaExhausted
from wa_bridge.metrics import sample_values
from wa_bridge.ops.probes import probe_app
from wa_bridge.receiver.health import Readiness
from wa_bridge.worker.quota_pause import QuotaPause, quota_pause_reason


def _readyz() -> tuple[str, dict[str, Any]]:
    answer: dict[str, str] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        answer["status"] = status

    body = b"".join(probe_app(is_ready=lambda: True)({"PATH_INFO": "/readyz"}, start_response))
    return answer["status"], orjson.loads(body)


def _paused_until() -> float:
    name = "wa_bridge_worker_paused_until_seconds"
    [(_, value)] = sample_values([name])[name]
    return value


async def test_a_spent_budget_pauses_until_it_is_back_and_says_so() -> None:
    clock = ManualClock()
    pause = QuotaPause(clock)
    heard: list[bool] = []
    pause.listen(heard.append)
    readiness = Readiness()
    readiness.watch("crm_quota", quota_pause_reason)
    assert _readyz()[0].startswith("200") and readiness.reason() is None

    resume_at = clock.now() + timedelta(hours=3)
    error = CrmQuotaExhausted("hubspot: spent", resume_at=resume_at, retry_after_s=10_800)
    waiting = asyncio.create_task(pause.wait_out(error))
    await clock.sleeping()
    assert pause.is_paused and pause.paused_until == resume_at and heard == [True]
    assert _paused_until() == resume_at.timestamp()
    status, body = _readyz()
    assert status.startswith("503") and body["detail"].endswith("resumes at 2026-01-01T03:00:00Z")
    assert readiness.reason() == body["detail"]  # wa-bridge dev's /readyz says the same

    second = asyncio.create_task(pause.wait_out(error))  # another batch meets it: one pause
    await clock.sleeping(2)
    assert heard == [True]
    clock.advance(3 * 3600)
    await asyncio.gather(waiting, second)
    pause.resumed()
    pause.resumed()  # a second batch through: nothing more to say
    assert not pause.is_paused and heard == [True, False] and _paused_until() == 0
    assert _readyz()[0].startswith("200") and readiness.reason() is None


async def test_giving_up_raises_in_the_waiting_batch_and_in_later_ones() -> None:
    clock = ManualClock()
    pause = QuotaPause(clock)
    heard: list[bool] = []
    pause.listen(heard.append)
    error = CrmQuotaExhausted(
        "spent", resume_at=clock.now() + timedelta(days=1), retry_after_s=86_400
    )
    waiting = asyncio.create_task(pause.wait_out(error))
    await clock.sleeping()
    pause.give_up()  # a drain before exit: tomorrow is too late
    with pytest.raises(CrmQuotaExhausted):
        await waiting
    with pytest.raises(CrmQuotaExhausted):
        await pause.wait_out(error)
    assert not pause.is_paused and heard == [True, False] and _paused_until() == 0
