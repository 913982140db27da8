"""The dedup ledger on PostgreSQL and SQLite."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from wa_bridge.store import SqlStore
from wa_bridge.store.tables import processed_events

StoreFactory = Callable[..., Awaitable[SqlStore]]
T0 = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)


async def test_claim_returns_only_new_ids_within_and_across_batches(
    store_url: str, store_factory: StoreFactory
) -> None:
    store = await store_factory(store_url)
    async with store.transaction() as tx:
        assert await tx.claim_events(["a", "b", "a", "c"]) == {"a", "b", "c"}
    async with store.transaction() as tx:
        assert await tx.claim_events(["c", "d", "d", "a"]) == {"d"}
        assert await tx.claim_events([]) == set()


async def test_rolled_back_claim_is_claimable_again(
    store_url: str, store_factory: StoreFactory
) -> None:
    store = await store_factory(store_url)
    try:
        async with store.transaction() as tx:
            assert await tx.claim_events(["x"]) == {"x"}
            raise RuntimeError("crash before commit")
    except RuntimeError:
        pass
    async with store.transaction() as tx:
        assert await tx.claim_events(["x"]) == {"x"}


async def test_outcomes_recorded_last_one_wins(store_url: str, store_factory: StoreFactory) -> None:
    store = await store_factory(store_url)
    async with store.transaction() as tx:
        await tx.claim_events(["e1", "e2", "e3"])
        await tx.set_outcomes([("e1", "applied"), ("e2", "retrying"), ("e2", "dead_lettered")])
    async with store.engine.connect() as conn:
        result = await conn.execute(select(processed_events.c.event_id, processed_events.c.outcome))
        rows: dict[str, Any] = {event_id: outcome for event_id, outcome in result}
    assert rows == {"e1": "applied", "e2": "dead_lettered", "e3": None}


async def test_purge_ledger_keeps_recent_ids(store_url: str, store_factory: StoreFactory) -> None:
    now = [T0 - timedelta(days=20)]
    store = await store_factory(store_url, clock=lambda: now[0])
    async with store.transaction() as tx:
        await tx.claim_events(["old"])
    now[0] = T0
    async with store.transaction() as tx:
        await tx.claim_events(["new"])
    assert await store.purge_ledger(T0 - timedelta(days=14)) == 1
    async with store.transaction() as tx:
        assert await tx.claim_events(["old", "new"]) == {"old"}
