"""The dedup ledger: one row per event id, kept for the retention window (Meta retries ≤ 7 days)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncConnection

from wa_bridge.store._chunks import chunks
from wa_bridge.store._upsert import insert_for
from wa_bridge.store.api import LedgerOutcome
from wa_bridge.store.tables import processed_events

__all__ = ["claim_events", "purge_ledger", "set_outcomes"]


async def claim_events(conn: AsyncConnection, event_ids: Sequence[str], now: datetime) -> set[str]:
    """Insert the ids; return those not seen before (a duplicate inside the batch counts once)."""
    unique = list(dict.fromkeys(event_ids))
    if not unique:
        return set()
    stmt = (
        insert_for(conn, processed_events)
        .on_conflict_do_nothing(index_elements=["event_id"])
        .returning(processed_events.c.event_id)
    )
    claimed: set[str] = set()
    for part in chunks(unique):
        result = await conn.execute(
            stmt, [{"event_id": i, "first_seen_at": now, "updated_at": now} for i in part]
        )
        claimed.update(result.scalars())
    return claimed


async def set_outcomes(
    conn: AsyncConnection, outcomes: Sequence[tuple[str, LedgerOutcome]], now: datetime
) -> None:
    """One UPDATE per distinct outcome (the last outcome given for an id wins)."""
    final = dict(outcomes)
    by_outcome: dict[str, list[str]] = defaultdict(list)
    for event_id, outcome in final.items():
        by_outcome[outcome].append(event_id)
    for name, ids in by_outcome.items():
        for part in chunks(ids):
            await conn.execute(
                update(processed_events)
                .where(processed_events.c.event_id.in_(part))
                .values(outcome=name, updated_at=now)
            )


async def purge_ledger(conn: AsyncConnection, older_than: datetime) -> int:
    """Delete ledger rows first seen before ``older_than``; return how many."""
    result = await conn.execute(
        delete(processed_events).where(processed_events.c.first_seen_at < older_than)
    )
    return int(result.rowcount)
