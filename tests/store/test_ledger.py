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


async def _outcomes(store: SqlStore) -> dict[str, Any]:
    async with store.engine.connect() as conn:
        result = await conn.execute(select(processed_events.c.event_id, processed_events.c.outcome))
        return {event_id: outcome for event_id, outcome in result}


async def test_outcomes_over_several_calls_keep_the_last(
    store_url: str, store_factory: StoreFactory
) -> None:
    # the claim writes a provisional outcome; every later report must still win
    store = await store_factory(store_url)
    async with store.transaction() as tx:
        await tx.claim_events(["e1", "e2", "e3", "e4"])
        await tx.set_outcomes([("e1", "applied")])
        await tx.set_outcomes([("e1", "dead_lettered"), ("e2", "retrying")])
        await tx.set_outcomes([("e2", "applied"), ("e3", "noop")])
    assert await _outcomes(store) == {
        "e1": "dead_lettered",
        "e2": "applied",
        "e3": "noop",
        "e4": None,
    }


async def test_outcome_of_an_event_claimed_earlier_is_updated(
    store_url: str, store_factory: StoreFactory
) -> None:
    store = await store_factory(store_url)
    async with store.transaction() as tx:
        await tx.claim_events(["r1", "r2"])
        await tx.set_outcomes([("r1", "dead_lettered"), ("r2", "applied")])
    async with store.transaction() as tx:  # a replay: not claimed in this transaction
        assert await tx.claim_events(["r1"]) == set()
        await tx.set_outcomes([("r1", "applied"), ("r2", "replayed")])
    assert await _outcomes(store) == {"r1": "applied", "r2": "replayed"}


async def test_rolled_back_outcomes_leave_no_trace(
    store_url: str, store_factory: StoreFactory
) -> None:
    store = await store_factory(store_url)
    async with store.transaction() as tx:
        await tx.claim_events(["k1"])
    try:
        async with store.transaction() as tx:
            await tx.claim_events(["k2"])
            await tx.set_outcomes([("k1", "replayed"), ("k2", "applied")])
            raise RuntimeError("crash before commit")
    except RuntimeError:
        pass
    assert await _outcomes(store) == {"k1": None}
