"""The case map: one open case per (contact, business number); a closed case stays closed.

A new case's key is decided from state a rolled-back batch leaves as it was (see
:func:`case_key_for`), so a batch retried after a CRM call used the key writes the same one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import case, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from wa_bridge.store._bulk import column_arrays, insert_arrays, is_postgres, members
from wa_bridge.store.tables import cases

__all__ = ["case_key_for", "close_cases", "current_cases", "open_cases"]


def case_key_for(contact_id: str, business_number: str, opened_before: int) -> str:
    """The key of the case opened for (contact, number) after ``opened_before`` others.

    Deterministic, so a retried batch opens the case under the key its first try may have
    sent to the CRM; the next conversation (one more case counted) gets a new key.
    ``k_`` + 32 hex digits of SHA-256.
    """
    digest = hashlib.sha256(f"{contact_id}|{business_number}|{opened_before}".encode())
    return "k_" + digest.hexdigest()[:32]


async def open_cases(
    conn: AsyncConnection, items: Sequence[tuple[str, str, datetime]]
) -> list[str]:
    """The open case key of each (contact id, business number, time); opens missing ones.

    One SELECT (open case and case count per pair) and one INSERT per batch (from arrays
    on PostgreSQL). Two workers opening the same case at once mint the same key: the
    loser's transaction fails on the key (or the partial unique index) and its batch is
    retried, then finds the winner's case.
    """
    c = cases.c
    contact_ids = sorted({cid for cid, _, _ in items})
    open_map: dict[tuple[str, str], str] = {}
    counts: dict[tuple[str, str], int] = {}
    open_key = func.max(case((c.status == "open", c.case_key), else_=None))
    for clause in members(conn, c.contact_id, contact_ids):
        rows = await conn.execute(
            select(c.contact_id, c.business_number, func.count(), open_key)
            .where(clause)
            .group_by(c.contact_id, c.business_number)
        )
        for contact_id, number, count, case_key in rows:
            counts[(contact_id, number)] = int(count)
            if case_key is not None:
                open_map[(contact_id, number)] = case_key
    new_rows = []
    out = []
    for contact_id, number, at in items:
        key = open_map.get((contact_id, number))
        if key is None:
            key = case_key_for(contact_id, number, counts.get((contact_id, number), 0))
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
