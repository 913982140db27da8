"""The sweep closes cases nobody writes to again, through the bus and a real worker.

A customer writes (their message is two days old by the wall clock); nothing follows. The
sweep (the task ``wa-bridge worker`` runs beside the consumer) finds the lapsed case and
publishes a ``conversation.window.check`` keyed like the contact's events; the worker
applies it after anything of that contact already on the bus and closes the case in the
state and in the SQL CRM, once, however many sweeps ask.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from wa_bridge.bus.record_producer import build_producer
from wa_bridge.clock import ManualClock
from wa_bridge.settings import Settings
from wa_bridge.store import create_engine
from wa_bridge.store.tables import cases, crm_cases
from wa_bridge.worker.runner import open_worker
from wa_bridge.worker.sweep import SweepOptions, run_sweep, sweep_once

from .conversation_events import customer_text, webhook_events
from .sqlcrm import publish

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

WA = "5215550009876"


async def _rows(url: str, table: object) -> list[dict[str, object]]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return [dict(r) for r in (await conn.execute(select(table))).mappings()]  # type: ignore[call-overload]  # a Table
    finally:
        await engine.dispose()


async def test_the_sweep_closes_a_lapsed_case_once_through_the_bus(
    sql_settings_factory: Callable[..., Settings], sql_crm_url: str
) -> None:
    settings = sql_settings_factory(conversation_sweep_interval_s=60)
    written = datetime.now(UTC) - timedelta(days=2)
    await publish(settings, webhook_events(customer_text(WA, 1, written, "hola")))
    async with open_worker(settings) as worker:
        await worker.run_until_idle()
        [case] = await _rows(sql_crm_url, cases)
        assert case["status"] == "open"
        store = worker.processor.pipeline.store
        producer = build_producer(settings)
        await producer.start()
        try:
            sent: dict[str, str] = {}
            now = datetime.now(UTC)
            assert await sweep_once(store, producer, settings.kafka_topic, now, sent) == 1
            assert await sweep_once(store, producer, settings.kafka_topic, now, sent) == 0
            # another worker's sweep (its own memory) asks again: the ledger applies it once
            assert await sweep_once(store, producer, settings.kafka_topic, now, {}) == 1
        finally:
            await producer.stop()
        stats = await worker.run_until_idle()
    # since start: the message and one check applied, the second check a duplicate
    assert (stats.delivered, stats.duplicates, stats.dead_lettered) == (2, 1, 0)
    [case] = await _rows(sql_crm_url, cases)
    assert (case["status"], case["close_reason"]) == ("closed", "lapsed")
    assert case["closed_at"] == written.replace(microsecond=0) + timedelta(days=1)
    [crm_case] = await _rows(sql_crm_url, crm_cases)
    assert (crm_case["status"], crm_case["close_reason"]) == ("closed", "lapsed")


async def test_the_sweep_task_runs_every_interval_until_stopped(
    sql_settings_factory: Callable[..., Settings], sql_crm_url: str
) -> None:
    settings = sql_settings_factory()
    await publish(
        settings, webhook_events(customer_text(WA, 1, datetime(2026, 1, 1, tzinfo=UTC), "x"))
    )
    clock = ManualClock(datetime(2026, 1, 3, tzinfo=UTC))
    stop = asyncio.Event()
    async with open_worker(settings) as worker:
        await worker.run_until_idle()
        store = worker.processor.pipeline.store
        producer = build_producer(settings)
        await producer.start()
        try:
            options = SweepOptions(interval_s=300, topic=settings.kafka_topic)
            task = asyncio.create_task(run_sweep(store, producer, options, stop, clock=clock))
            await clock.sleeping(1)  # swept once, now waiting for the next round
            stop.set()
            await asyncio.wait_for(task, timeout=5)
        finally:
            await producer.stop()
        await worker.run_until_idle()
    [case] = await _rows(sql_crm_url, cases)
    assert case["status"] == "closed"
    off = SweepOptions(interval_s=0, topic=settings.kafka_topic)
    await asyncio.wait_for(run_sweep(store, producer, off, asyncio.Event()), timeout=1)
