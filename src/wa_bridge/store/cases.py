"""The case map: one open case per (contact, business number); a closed case stays closed."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from wa_bridge.store._bulk import column_arrays, insert_arrays, is_postgres, members
from wa_bridge.store.tables import cases

__all__ = ["close_cases", "open_cases"]


def new_case_key() -> str:
    return "k_" + uuid.uuid4().hex


async def open_cases(
    conn: AsyncConnection, items: Sequence[tuple[str, str, datetime]]
) -> list[str]:
    """The open case key of each (contact id, business number, time); opens missing ones.

    One SELECT and one INSERT per batch (from arrays on PostgreSQL). Two workers opening
    the same case at once hit the partial unique index (PostgreSQL and SQLite): the
    loser's transaction fails and its batch is retried, then finds the winner's case.
    """
    c = cases.c
    contact_ids = sorted({cid for cid, _, _ in items})
    open_map: dict[tuple[str, str], str] = {}
    for clause in members(conn, c.contact_id, contact_ids):
        rows = await conn.execute(
            select(c.contact_id, c.business_number, c.case_key).where(clause, c.status == "open")
        )
        for contact_id, number, case_key in rows:
            open_map[(contact_id, number)] = case_key
    new_rows = []
    out = []
    for contact_id, number, at in items:
        key = open_map.get((contact_id, number))
        if key is None:
            key = new_case_key()
            open_map[(contact_id, number)] = key
            new_rows.append(
                {
                    "case_key": key,
                    "contact_id": contact_id,
                    "business_number": number,
                    "status": "open",
                    "opened_at": at,
                }
            )
        out.append(key)
    if new_rows and is_postgres(conn):
        await insert_arrays(conn, cases, column_arrays(new_rows))
    elif new_rows:
        await conn.execute(insert(cases), new_rows)
    return out


async def close_cases(conn: AsyncConnection, case_keys: Sequence[str], at: datetime) -> None:
    """Mark the cases resolved; the next open_cases for that contact opens a new one."""
    for clause in members(conn, cases.c.case_key, list(dict.fromkeys(case_keys))):
        await conn.execute(
            update(cases)
            .where(clause, cases.c.status == "open")
            .values(status="resolved", closed_at=at)
        )
