"""The case map: one open case per (contact, business number); a closed case stays closed."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from wa_bridge.store._bulk import column_arrays, insert_arrays, is_postgres, members
from wa_bridge.store.tables import cases

__all__ = ["close_cases", "current_cases", "open_cases"]


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


async def current_cases(
    conn: AsyncConnection, items: Sequence[tuple[str, str, datetime]]
) -> list[str]:
    """For events that may follow a resolution (resolved, converted, CSAT): the open case,
    else the most recently opened closed one, else a new open case.

    So a CSAT that arrives after ``resolved`` lands on the conversation it rates instead of
    opening an empty case.
    """
    c = cases.c
    contact_ids = sorted({cid for cid, _, _ in items})
    best: dict[tuple[str, str], tuple[bool, datetime, str]] = {}
    for clause in members(conn, c.contact_id, contact_ids):
        rows = await conn.execute(
            select(c.contact_id, c.business_number, c.case_key, c.status, c.opened_at).where(clause)
        )
        for contact_id, number, case_key, status, opened_at in rows:
            rank = (status == "open", opened_at, case_key)
            seen = best.get((contact_id, number))
            if seen is None or rank > seen:
                best[(contact_id, number)] = rank
    missing = [item for item in items if (item[0], item[1]) not in best]
    opened = dict(
        zip(((m[0], m[1]) for m in missing), await open_cases(conn, missing), strict=True)
    )
    return [
        best[(cid, number)][2] if (cid, number) in best else opened[(cid, number)]
        for cid, number, _ in items
    ]
