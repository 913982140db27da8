"""Batches larger than one IN chunk, and the PostgreSQL planner setting the batches rely on."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text

from wa_bridge.events import Contact
from wa_bridge.store._chunks import IN_CHUNK
from wa_bridge.store.api import CaseRecord
from wa_bridge.store.cases import case_key_for

from ._helpers import T0, StoreFactory

N = IN_CHUNK + 7  # SQLite splits its IN lists here; PostgreSQL sends one array


def _case(key: str, contact_id: str) -> CaseRecord:
    return CaseRecord(key, contact_id, "n1", "open", T0, lapses_at=T0 + timedelta(days=1))


def _contact(i: int) -> Contact:
    phone = f"+1555{i:07d}"
    return Contact(key=phone, phone_e164=phone, wa_id=phone[1:], user_id=f"US.{i}")


async def test_batch_larger_than_one_chunk(store_url: str, store_factory: StoreFactory) -> None:
    store = await store_factory(store_url)
    ids = [f"e{i}" for i in range(N)]
    items = [("waba-1", _contact(i)) for i in range(N)]
    async with store.transaction() as tx:
        assert await tx.claim_events(ids) == set(ids)
        first = await tx.resolve_contacts(items)
        contact_ids = [c or "" for c in first]
        cases = [_case(case_key_for(c, "n1", 0), c) for c in contact_ids]
        await tx.save_cases(cases, [c.case_key for c in cases])
        moved = await tx.advance_statuses([(f"m{i}", "read", T0) for i in range(N)])
    assert len(set(first)) == N and None not in first
    assert len({c.case_key for c in cases}) == N and all(moved)
    async with store.transaction() as tx:
        assert await tx.claim_events([*ids, "new"]) == {"new"}
        assert await tx.resolve_contacts(items) == first
        loaded = await tx.load_cases(contact_ids)
        assert loaded.cases == {c.case_key: c for c in cases}
        assert await tx.seen_messages([f"m{i}" for i in range(N)]) == {f"m{i}" for i in range(N)}
        assert (
            await tx.advance_statuses([(f"m{i}", "delivered", T0) for i in range(N)]) == [False] * N
        )
        for case in cases:
            case.status = "closed"
        await tx.save_cases(cases, [])
    async with store.transaction() as tx:
        loaded = await tx.load_cases(contact_ids)
    assert set(loaded.counts.values()) == {1}
    assert {c.status for c in loaded.cases.values()} == {"closed"}


@pytest.mark.postgres
async def test_postgres_plans_each_batch_for_its_own_arrays(
    pg_url: str, store_factory: StoreFactory
) -> None:
    # A generic plan guesses 10 elements per array parameter; with thousands it chose a
    # nested loop over identities per id (0.4 s a batch). See wa_bridge.store.db.
    store = await store_factory(pg_url)
    async with store.engine.connect() as conn:
        assert (await conn.execute(text("SHOW plan_cache_mode"))).scalar() == "force_custom_plan"
