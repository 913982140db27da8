"""A large batch's ledger claim and traces go in by plain INSERT, falling back to the upsert
when a row exists already (store._bulk.insert_new): the tables end as the upsert leaves them.

Batches here are PLAIN_INSERT_FROM rows or more, so the plain insert is tried; the
smaller batches of the other store tests take the upsert at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, select

from wa_bridge.store import SqlStore
from wa_bridge.store._bulk import PLAIN_INSERT_FROM
from wa_bridge.store.api import EventOrigin, EventTrace, LedgerOutcome
from wa_bridge.store.tables import processed_events
from wa_bridge.store.traces import find_traces

StoreFactory = Callable[..., Awaitable[SqlStore]]
T0 = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)
N = PLAIN_INSERT_FROM + 50


def _ids(start: int, stop: int) -> list[str]:
    return [f"wa:messages:wamid.{i:05d}" for i in range(start, stop)]


async def _ledger(store: SqlStore) -> dict[str, Any]:
    p = processed_events.c
    async with store.engine.connect() as conn:
        rows = await conn.execute(select(p.event_id, p.outcome, p.first_seen_at))
        return {r.event_id: (r.outcome, r.first_seen_at) for r in rows}


async def test_a_large_claim_of_new_events_claims_them_all(
    store_url: str, store_factory: StoreFactory
) -> None:
    store = await store_factory(store_url, clock=lambda: T0)
    ids = _ids(0, N)
    async with store.transaction() as tx:
        assert await tx.claim_events([*ids, ids[3]]) == set(ids)
    assert set(await _ledger(store)) == set(ids)


async def test_a_large_claim_with_one_known_event_claims_only_the_others(
    store_url: str, store_factory: StoreFactory
) -> None:
    now = [T0]
    store = await store_factory(store_url, clock=lambda: now[0])
    ids = _ids(0, N)
    known = ids[N // 2]  # mid-batch: the plain insert has written rows before it fails
    async with store.transaction() as tx:
        assert await tx.claim_events([known]) == {known}
        await tx.set_outcomes([(known, "dead_lettered")])
    now[0] = T0 + timedelta(hours=1)
    async with store.transaction() as tx:
        assert await tx.claim_events(ids) == set(ids) - {known}
    ledger = await _ledger(store)
    assert set(ledger) == set(ids)
    assert ledger[known] == ("dead_lettered", T0)  # the earlier claim is untouched
    assert ledger[ids[0]][1] == T0 + timedelta(hours=1)


class _Crash(Exception):
    pass


@pytest.mark.postgres
@pytest.mark.parametrize("first_commits", [True, False])
async def test_a_concurrent_large_claim_waits_for_the_other_and_claims_what_it_left(
    pg_url: str, store_factory: StoreFactory, first_commits: bool
) -> None:
    # two workers during a rebalance: the second claim blocks on the first one's rows and
    # takes only what the first did not commit (all of it when the first rolled back)
    first, second = await store_factory(pg_url), await store_factory(pg_url)
    mine, theirs = _ids(0, N), _ids(N - 40, 2 * N)

    async def claim_second() -> set[str]:
        async with second.transaction() as tx2:
            return await tx2.claim_events(theirs)

    waiting: asyncio.Task[set[str]] | None = None
    try:
        async with first.transaction() as tx1:
            assert await tx1.claim_events(mine) == set(mine)
            waiting = asyncio.create_task(claim_second())
            await asyncio.sleep(0.3)
            assert not waiting.done()  # blocked on the rows the first claim holds
            if not first_commits:
                raise _Crash
    except _Crash:
        pass
    assert waiting is not None
    claimed = await asyncio.wait_for(waiting, 10)
    assert claimed == (set(theirs) - set(mine) if first_commits else set(theirs))
    expected = set(mine) | set(theirs) if first_commits else set(theirs)
    assert set(await _ledger(first)) == expected


def _trace(event_id: str, outcome: LedgerOutcome, origin: EventOrigin | None) -> EventTrace:
    return EventTrace(
        event_id=event_id,
        event_type="whatsapp.message.received",
        outcome=outcome,
        message_id=event_id.rsplit(":", 1)[1],
        contact_id="c_1",
        origin=origin,
        crm_ids=(("add_note", event_id),),
    )


async def test_large_traces_with_one_existing_update_it_and_insert_the_rest(
    store_url: str, store_factory: StoreFactory
) -> None:
    store = await store_factory(store_url, clock=lambda: T0)
    ids = _ids(0, N)
    known = ids[-1]
    consumed = EventOrigin("wa.events", 3, 41, 0)
    async with store.transaction() as tx:
        await tx.record_traces([_trace(known, "dead_lettered", consumed)])
    origins = {i: EventOrigin("wa.events", 1, n, 0) for n, i in enumerate(ids)}
    later = [_trace(i, "applied", origins[i]) for i in ids]
    later[-1] = _trace(known, "replayed", None)  # a replay has no origin: the first is kept
    async with store.transaction() as tx:
        await tx.record_traces(later)
    async with store.engine.connect() as conn:
        found = {t.event_id: t for t in await find_traces(conn, ids=ids, limit=2 * N)}
    assert set(found) == set(ids)
    assert (found[known].outcome, found[known].origin) == ("replayed", consumed)
    assert (found[ids[0]].outcome, found[ids[0]].origin) == ("applied", origins[ids[0]])
    assert found[ids[0]].crm_ids == (("add_note", ids[0]),)


@pytest.mark.postgres
async def test_postgres_takes_the_upsert_only_when_a_row_exists(
    pg_url: str, store_factory: StoreFactory
) -> None:
    # the point of the plain insert: no ON CONFLICT (speculative insertion) for new rows
    store = await store_factory(pg_url)
    sent: list[str] = []

    def record(*args: Any) -> None:
        statement = str(args[2])
        if statement.startswith("INSERT INTO"):
            sent.append(statement)

    event.listen(store.engine.sync_engine, "before_cursor_execute", record)
    ids = _ids(0, N)
    async with store.transaction() as tx:
        await tx.claim_events(ids)
    assert [("processed_events" in s, "ON CONFLICT" in s) for s in sent] == [(True, False)]
    sent.clear()
    async with store.transaction() as tx:
        await tx.claim_events(_ids(N - 1, 2 * N))  # one known: plain, then the upsert
    assert [("ON CONFLICT" in s) for s in sent] == [False, True]
    sent.clear()
    async with store.transaction() as tx:
        await tx.claim_events(_ids(3 * N, 3 * N + PLAIN_INSERT_FROM - 1))  # small: upsert
    assert [("ON CONFLICT" in s) for s in sent] == [True]
