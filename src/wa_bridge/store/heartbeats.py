"""Worker heartbeats: each worker's own figures (lag of its partitions, its CRM requests),
written by its monitor task, read by the console's live figures."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from wa_bridge.store._rows import record_of
from wa_bridge.store._upsert import insert_for
from wa_bridge.store.tables import processed_events, worker_heartbeats

__all__ = ["Heartbeat", "count_since", "events_per_minute", "list_heartbeats", "record_heartbeat"]

_h = worker_heartbeats.c


@dataclass(frozen=True, slots=True)
class Heartbeat:
    worker_id: str
    started_at: datetime
    seen_at: datetime
    figures: dict[str, Any]


async def record_heartbeat(
    conn: AsyncConnection,
    *,
    worker_id: str,
    started_at: datetime,
    now: datetime,
    figures: Mapping[str, Any],
    forget_before: datetime,
) -> None:
    """Upsert this worker's row; drop rows of workers not seen since ``forget_before``."""
    stmt = insert_for(conn, worker_heartbeats).values(
        worker_id=worker_id, started_at=started_at, seen_at=now, figures=dict(figures)
    )
    await conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["worker_id"],
            set_={"seen_at": stmt.excluded.seen_at, "figures": stmt.excluded.figures},
        )
    )
    await conn.execute(delete(worker_heartbeats).where(_h.seen_at < forget_before))


async def list_heartbeats(conn: AsyncConnection) -> list[Heartbeat]:
    rows = await conn.execute(select(worker_heartbeats).order_by(_h.worker_id))
    return [record_of(Heartbeat, r, figures=dict(r.figures or {})) for r in rows]


async def events_per_minute(
    conn: AsyncConnection, *, since: datetime, now: datetime
) -> list[tuple[int, int]]:
    """(minutes ago, events first seen by the ledger in that minute), oldest first."""
    p = processed_events.c
    rows = await conn.execute(select(p.first_seen_at).where(p.first_seen_at >= since))
    counts: dict[int, int] = {}
    for (seen,) in rows:
        ago = int((now - seen).total_seconds() // 60)
        counts[ago] = counts.get(ago, 0) + 1
    span = int((now - since).total_seconds() // 60)
    return [(ago, counts.get(ago, 0)) for ago in range(span, -1, -1)]


async def count_since(conn: AsyncConnection, *, since: datetime) -> int:
    p = processed_events.c
    found = await conn.execute(
        select(func.count()).select_from(processed_events).where(p.first_seen_at >= since)
    )
    return int(found.scalar_one())
