"""Message statuses only move forward: sent < delivered < read < played; failed is terminal."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Final

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from wa_bridge.store._bulk import column_arrays, insert_arrays, is_postgres, members
from wa_bridge.store._chunks import chunks
from wa_bridge.store._upsert import insert_for
from wa_bridge.store.tables import message_statuses

__all__ = ["STATUS_RANKS", "advance_statuses", "status_ranks"]

STATUS_RANKS: Final = {"sent": 1, "delivered": 2, "read": 3, "played": 4, "failed": 5}
TERMINAL_RANK: Final = STATUS_RANKS["failed"]


async def status_ranks(conn: AsyncConnection, message_ids: Sequence[str]) -> dict[str, int]:
    """The recorded rank of each message of ``message_ids`` that has a status (one SELECT)."""
    m = message_statuses.c
    ranks: dict[str, int] = {}
    for clause in members(conn, m.message_id, sorted(set(message_ids))):
        rows = await conn.execute(select(m.message_id, m.rank).where(clause))
        ranks.update({mid: rank for mid, rank in rows})
    return ranks


async def advance_statuses(
    conn: AsyncConnection,
    items: Sequence[tuple[str, str, datetime]],
    recorded: Mapping[str, int] | None = None,
) -> list[bool]:
    """True for each (message id, status, time) that moves its message forward.

    An unknown status never moves anything (rank 0). ``recorded``: the ranks of the items'
    messages as :func:`status_ranks` read them earlier in this transaction (a message not
    in it has none); without it, one SELECT. Then one multi-row upsert, which never moves a
    status back whatever another transaction wrote meanwhile.
    """
    if recorded is None:
        recorded = await status_ranks(conn, [mid for mid, _, _ in items])
    ranks = dict(recorded)
    changed: dict[str, dict[str, object]] = {}
    out: list[bool] = []
    for message_id, status, at in items:
        rank = STATUS_RANKS.get(status, 0)
        current = ranks.get(message_id, 0)
        moves = rank > current and current != TERMINAL_RANK
        if moves:
            ranks[message_id] = rank
            changed[message_id] = {
                "message_id": message_id,
                "status": status,
                "rank": rank,
                "updated_at": at,
            }
        out.append(moves)
    if changed and is_postgres(conn):
        await insert_arrays(
            conn,
            message_statuses,
            column_arrays(list(changed.values())),
            "ON CONFLICT (message_id) DO UPDATE SET status = EXCLUDED.status, "
            "rank = EXCLUDED.rank, updated_at = EXCLUDED.updated_at "
            "WHERE message_statuses.rank < EXCLUDED.rank",  # never go back
        )
    elif changed:
        stmt = insert_for(conn, message_statuses)
        stmt = stmt.on_conflict_do_update(
            index_elements=["message_id"],
            set_={
                "status": stmt.excluded.status,
                "rank": stmt.excluded.rank,
                "updated_at": stmt.excluded.updated_at,
            },
            # a concurrent writer may have moved further: never go back
            where=message_statuses.c.rank < stmt.excluded.rank,
        )
        for batch in chunks(list(changed.values()), 2000):
            await conn.execute(stmt, list(batch))
    return out
