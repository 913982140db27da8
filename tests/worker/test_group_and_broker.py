"""Two workers sharing a group through a rebalance; the broker lost and restarted."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from wa_bridge.bus.embedded import EmbeddedBroker
from wa_bridge.settings import Settings
from wa_bridge.store import create_engine
from wa_bridge.worker.loop import Worker
from wa_bridge.worker.runner import open_worker

from .processes import wait_for
from .sqlcrm import (
    crm_state,
    ledger_count,
    note_order,
    note_writes,
    order_breaks,
    publish,
    sql_settings,
    text_events,
)

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


@pytest.fixture
async def ledger_engine(sql_crm_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(sql_crm_url)
    yield engine
    await engine.dispose()


class Running:
    """A worker running ``run(stop)`` in a task, until :meth:`stop` (graceful: the round
    in flight finishes and commits, then the consumer leaves the group)."""

    def __init__(self, settings: Settings) -> None:
        self._cm = open_worker(settings)
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.worker: Worker | None = None

    async def start(self) -> Worker:
        self.worker = await self._cm.__aenter__()
        self._task = asyncio.create_task(self.worker.run(self._stop))
        return self.worker

    async def stop(self) -> None:
        if self._task is None:
            return
        self._stop.set()
        task, self._task = self._task, None
        try:
            await task
        finally:
            await self._cm.__aexit__(None, None, None)


@contextlib.asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[Worker]:
    runner = Running(settings)
    try:
        yield await runner.start()
    finally:
        await runner.stop()


def _reached(engine: AsyncEngine, n: int) -> Callable[[], Any]:
    async def check() -> bool:
        return await ledger_count(engine) >= n

    return check


async def _assert_once_in_order(settings: Settings, engine: AsyncEngine, total: int) -> None:
    state = await crm_state(settings.database_url)
    assert state.outcomes == {"applied": total}
    assert len(state.notes) == total
    writes = await note_writes(settings.database_url)
    assert max(writes.values()) == 1
    assert order_breaks(await note_order(engine)) == []


@pytest.mark.serial  # timings under load: alone, after the parallel part (scripts/test)
async def test_rebalance_mid_stream_applies_once_in_contact_order(
    sql_settings_factory: Callable[..., Any], ledger_engine: AsyncEngine
) -> None:
    settings = sql_settings_factory(kafka_partitions=4, worker_batch_max=50)
    events = text_events(3000, contacts=40)
    chunks = [events[:1000], events[1000:2000], events[2000:]]
    first, second = Running(settings), Running(settings)
    try:
        a = await first.start()
        await publish(settings, chunks[0])
        await wait_for(_reached(ledger_engine, 200))
        b = await second.start()
        await publish(settings, chunks[1])  # B joined while A is consuming
        await wait_for(_reached(ledger_engine, 1200))
        await first.stop()  # A leaves gracefully mid-stream: B takes all partitions
        await publish(settings, chunks[2])
        await wait_for(_reached(ledger_engine, 3000))
    finally:
        await first.stop()
        await second.stop()
    assert a.stats.delivered > 0 and b.stats.delivered > 0
    assert a.stats.delivered + b.stats.delivered == 3000
    assert a.stats.dead_lettered + b.stats.dead_lettered == 0
    await _assert_once_in_order(settings, ledger_engine, 3000)


@pytest.mark.serial  # timings under load: alone, after the parallel part (scripts/test)
async def test_broker_restart_then_meta_retries_apply_once(
    sql_crm_url: str, ledger_engine: AsyncEngine, tmp_path: Path
) -> None:
    broker = EmbeddedBroker(log_path=tmp_path / "tansu.log")
    await broker.astart()
    try:
        # a small cap: the worker holds few records ahead, so most must come from the
        # restarted broker (with the default cap it may hold all 2,000 before the stop)
        settings = sql_settings(
            broker.bootstrap,
            "wa.restart",
            sql_crm_url,
            worker_batch_max=50,
            worker_partition_cap=100,
        )
        events = text_events(2000, contacts=30)
        await publish(settings, events)
        async with running(settings) as worker:
            await wait_for(_reached(ledger_engine, 300))
            await broker.astop()  # memory storage: topics, records and offsets are gone
            before = await ledger_count(ledger_engine)
            await broker.astart()
            await publish(settings, events)  # Meta retries what it got no 200 for
            await wait_for(_reached(ledger_engine, 2000), timeout_s=40)
        assert before < 2000, "the broker must stop mid-stream"
        assert worker.stats.delivered == 2000
        assert worker.stats.duplicates > 0  # re-read after the restart, skipped by the ledger
        assert worker.stats.dead_lettered == 0
    finally:
        await broker.astop()
    await _assert_once_in_order(settings, ledger_engine, 2000)
