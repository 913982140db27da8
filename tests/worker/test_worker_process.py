"""A real ``wa-bridge worker`` process: killed with SIGKILL, or drained with SIGTERM.

Both use the built-in SQL CRM on PostgreSQL, so "applied" is one committed transaction
holding the ledger row and the CRM rows together.
"""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from wa_bridge.bus.embedded import free_port
from wa_bridge.store import create_engine
from wa_bridge.worker.runner import open_worker

from .processes import wait_exit, wait_for, worker_process
from .sqlcrm import committed_offsets, crm_state, ledger_count, note_writes, publish, text_events

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

EVENTS = 3000
CONTACTS = 60
BATCH = 50  # small batches: the stream is many transactions, so a signal lands mid-stream
STARTED = 300  # signal the worker once this many events took effect
# The texts are dated June 2026, so their cases' windows have lapsed: a sweep that comes
# round after the first batch (under load it may) publishes one window check per contact
# to the main topic, which the restart then applies on top of the texts. These tests count
# the texts; the sweep has its own (test_sweep.py, and tests/e2e/test_scale_out.py).
NO_SWEEP = {"conversation_sweep_interval_s": 0}


@pytest.fixture
async def ledger_engine(sql_crm_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(sql_crm_url)
    yield engine
    await engine.dispose()


async def _assert_all_once(settings: Any) -> None:
    state = await crm_state(settings.database_url)
    assert state.outcomes == {"applied": EVENTS}
    assert (state.contacts, state.cases, len(state.notes)) == (CONTACTS, CONTACTS, EVENTS)
    writes = await note_writes(settings.database_url)
    assert len(writes) == EVENTS
    assert max(writes.values()) == 1  # no CRM row written twice


async def test_sigkill_mid_batch_then_restart_applies_each_event_once(
    sql_settings_factory: Callable[..., Any], ledger_engine: AsyncEngine, tmp_path: Path
) -> None:
    settings = sql_settings_factory(worker_batch_max=BATCH, **NO_SWEEP)
    await publish(settings, text_events(EVENTS, CONTACTS))
    log = tmp_path / "worker.log"

    async def started() -> bool:
        return await ledger_count(ledger_engine) >= STARTED

    with worker_process(settings, log) as proc:
        await wait_for(started, proc=proc, log_path=log)
        proc.send_signal(signal.SIGKILL)
        assert await wait_exit(proc, 10) == -signal.SIGKILL
    applied = await ledger_count(ledger_engine)
    committed = await committed_offsets(settings)
    assert STARTED <= applied < EVENTS, "the kill must land mid-stream"
    assert committed <= applied  # offsets never run ahead of what took effect

    async with open_worker(sql_settings_factory()) as worker:  # the restart, big batches
        stats = await worker.run_until_idle()
    assert stats.delivered == EVENTS - applied
    assert stats.duplicates == applied - committed  # re-read, skipped by the ledger
    assert stats.dead_lettered == 0
    await _assert_all_once(settings)


async def test_sigterm_drains_commits_what_it_applied_and_exits_0(
    sql_settings_factory: Callable[..., Any], ledger_engine: AsyncEngine, tmp_path: Path
) -> None:
    settings = sql_settings_factory(worker_batch_max=BATCH, shutdown_grace_s=3, **NO_SWEEP)
    await publish(settings, text_events(EVENTS, CONTACTS))
    log = tmp_path / "worker.log"

    async def started() -> bool:
        return await ledger_count(ledger_engine) >= STARTED

    port = free_port()
    with worker_process(settings, log, ["--metrics-port", str(port)]) as proc:
        await wait_for(started, proc=proc, log_path=log)
        async with httpx.AsyncClient() as client:
            metrics = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
        proc.send_signal(signal.SIGTERM)
        # the grace bounds the drain; process teardown (leave group, close) comes on top
        code = await wait_exit(proc, settings.shutdown_grace_s + 5)
    assert code == 0, log.read_text()
    assert "worker_stopped" in log.read_text()
    assert 'wa_bridge_event_outcomes_total{outcome="applied"}' in metrics
    assert "wa_bridge_worker_batch_seconds_count" in metrics
    applied = await ledger_count(ledger_engine)
    assert STARTED <= applied < EVENTS, "the signal must land mid-stream"
    assert await committed_offsets(settings) == applied  # nothing applied is uncommitted

    async with open_worker(sql_settings_factory()) as worker:  # the rest, once
        stats = await worker.run_until_idle()
    # the stopped worker's log, to read on a failure (it goes with the temporary folder)
    assert (stats.delivered, stats.duplicates) == (EVENTS - applied, 0), log.read_text()[-20000:]
    await _assert_all_once(settings)
