"""Account notices, every one (``account_events``): written by the worker with each batch,
listed by ``wa-bridge account events``.

``account_signals`` (:mod:`wa_bridge.store.traces`) keeps only the latest quality and
messaging limit per subject, for the gauges and alerts; this is the history behind them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from wa_bridge.store._rows import record_of
from wa_bridge.store._upsert import insert_for
from wa_bridge.store.api import AccountEvent, AccountEventScope
from wa_bridge.store.tables import account_events

__all__ = ["list_account_events", "record_account_events"]

_a = account_events.c


async def record_account_events(conn: AsyncConnection, events: Sequence[AccountEvent]) -> None:
    """Append ``events``; one already recorded (a replay) is left as it was. Rare (Meta
    sends a few a day): one multi-row INSERT."""
    rows = list({e.event_id: asdict(e) for e in events}.values())
    if rows:
        stmt = insert_for(conn, account_events).on_conflict_do_nothing(index_elements=["event_id"])
        await conn.execute(stmt, rows)


async def list_account_events(
    conn: AsyncConnection,
    *,
    since: datetime | None = None,
    scope: AccountEventScope | None = None,
    subject: str | None = None,
    limit: int = 100,
) -> list[AccountEvent]:
    """The latest ``limit`` notices matching the filters, oldest first."""
    stmt = select(account_events)
    if since is not None:
        stmt = stmt.where(_a.at >= since)
    if scope is not None:
        stmt = stmt.where(_a.scope == scope)
    if subject is not None:
        stmt = stmt.where(_a.subject == subject)
    rows = await conn.execute(stmt.order_by(_a.at.desc(), _a.id.desc()).limit(limit))
    out = [record_of(AccountEvent, r) for r in rows]
    return out[::-1]
