"""The dedup ledger: one row per event id, kept for the retention window (Meta retries ≤ 7 days)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Final

from sqlalchemy import delete, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from wa_bridge.store._bulk import insert_new, is_postgres
from wa_bridge.store._chunks import chunks
from wa_bridge.store._upsert import insert_for
from wa_bridge.store.api import LedgerOutcome
from wa_bridge.store.tables import processed_events

__all__ = ["PROVISIONAL_OUTCOME", "claim_events", "purge_ledger", "set_outcomes"]

# claim_events writes this outcome with the claim (what most claimed events end with), so
# the common case needs no second write; SqlStoreTx corrects it before commit when the
# caller reports another outcome, or none (see SqlStoreTx.set_outcomes).
PROVISIONAL_OUTCOME: Final[LedgerOutcome] = "applied"

_PG_SET_OUTCOMES = text(
    "UPDATE processed_events AS p SET outcome = u.outcome, updated_at = :now "
    "FROM unnest(CAST(:ids AS text[]), CAST(:outcomes AS text[])) AS u(event_id, outcome) "
    "WHERE p.event_id = u.event_id"
)


async def claim_events(
    conn: AsyncConnection,
    event_ids: Sequence[str],
    now: datetime,
    outcome: LedgerOutcome | None = None,
) -> set[str]:
    """Insert the ids (with ``outcome``); return those not seen before.

    A duplicate inside the batch counts once. A concurrent transaction claiming the same
    id blocks here until that one ends (the unique index), so two workers never both treat
    an event as new.
    """
    unique = list(dict.fromkeys(event_ids))
    if not unique:
        return set()
    if is_postgres(conn):
        result = await insert_new(  # a batch's events are new in the usual case
            conn,
            processed_events,
            {
                "event_id": unique,
                "outcome": [outcome] * len(unique),
                "first_seen_at": [now] * len(unique),
                "updated_at": [now] * len(unique),
            },
            "ON CONFLICT (event_id) DO NOTHING RETURNING event_id",
            once=("outcome", "first_seen_at", "updated_at"),
        )
        return set(unique) if result is None else set(result.scalars())
    stmt = (
        insert_for(conn, processed_events)
        .on_conflict_do_nothing(index_elements=["event_id"])
        .returning(processed_events.c.event_id)
    )
    claimed: set[str] = set()
    for part in chunks(unique):
        result = await conn.execute(
            stmt,
            [
                {"event_id": i, "outcome": outcome, "first_seen_at": now, "updated_at": now}
                for i in part
            ],
        )
        claimed.update(result.scalars())
    return claimed


async def set_outcomes(
    conn: AsyncConnection, outcomes: Sequence[tuple[str, LedgerOutcome | None]], now: datetime
) -> None:
    """Record outcomes (the last one given for an id wins); ids not in the ledger are skipped.

    PostgreSQL: one UPDATE joined to the arrays. SQLite: one UPDATE per distinct outcome.
    """
    final = dict(outcomes)
    if not final:
        return
    if is_postgres(conn):
        await conn.execute(
            _PG_SET_OUTCOMES, {"ids": list(final), "outcomes": list(final.values()), "now": now}
        )
        return
    by_outcome: dict[str | None, list[str]] = defaultdict(list)
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
