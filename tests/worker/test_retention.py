"""The worker's retention job purges on its interval and stops with the worker."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import structlog
from sqlalchemy import text

from wa_bridge.clock import ManualClock
from wa_bridge.settings import Settings
from wa_bridge.store import open_store
from wa_bridge.worker.retention import RetentionOptions, run_retention

NOW = datetime(2026, 11, 1, tzinfo=UTC)


async def test_retention_purges_expired_ids_then_stops(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'state.db'}"
    old = await open_store(url, create=True, clock=lambda: NOW - timedelta(days=30))
    async with old.transaction() as tx:
        await tx.claim_events(["wa:old"])
    await old.aclose()
    store = await open_store(url, clock=lambda: NOW)
    try:
        async with store.transaction() as tx:
            await tx.claim_events(["wa:new"])
        options = RetentionOptions.from_settings(
            Settings(retention_interval_s=60, dedup_retention_days=14)
        )
        stop = asyncio.Event()
        clock = ManualClock(NOW)
        job = asyncio.create_task(run_retention(store, options, stop, clock=clock))
        async with asyncio.timeout(5):
            await clock.sleeping()  # purged once, waiting for the interval
            clock.advance(60)
            await clock.sleeping()  # purged again
        stop.set()
        await asyncio.wait_for(job, timeout=2)
        async with store.transaction() as tx:
            fresh = await tx.claim_events(["wa:old", "wa:new"])
    finally:
        await store.aclose()
    assert fresh == {"wa:old"}  # forgotten; the recent id is still deduplicated


async def test_interval_zero_turns_it_off(tmp_path: Path) -> None:
    store = await open_store(f"sqlite+aiosqlite:///{tmp_path / 's.db'}", create=True)
    try:
        stop = asyncio.Event()  # never set: an enabled job would run forever
        await asyncio.wait_for(
            run_retention(
                store, RetentionOptions.from_settings(Settings(retention_interval_s=0)), stop
            ),
            timeout=1,
        )
    finally:
        await store.aclose()


async def test_a_failed_round_is_logged_with_its_traceback_and_the_next_one_runs(
    tmp_path: Path,
) -> None:
    store = await open_store(f"sqlite+aiosqlite:///{tmp_path / 's.db'}", create=True)
    try:
        async with store.engine.begin() as conn:  # every purge now fails: no ledger
            await conn.execute(text("DROP TABLE processed_events"))
        options = RetentionOptions.from_settings(Settings(retention_interval_s=60))
        stop = asyncio.Event()
        clock = ManualClock(NOW)
        with structlog.testing.capture_logs() as logs:
            job = asyncio.create_task(run_retention(store, options, stop, clock=clock))
            async with asyncio.timeout(5):
                await clock.sleeping()  # the first round failed, the job waits for the next
                clock.advance(60)
                await clock.sleeping()  # the second round ran (and failed) too
            stop.set()
            await asyncio.wait_for(job, timeout=2)
    finally:
        await store.aclose()
    failures = [e for e in logs if e["event"] == "retention_failed"]
    assert len(failures) == 2
    assert all(isinstance(e["exc_info"], Exception) for e in failures)
    assert failures[0]["error_class"] == type(failures[0]["exc_info"]).__name__
