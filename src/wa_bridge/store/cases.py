"""The case map: one open case per (contact, business number); a closed case stays closed.

The worker (``wa_bridge.worker.conversations``) decides when a case opens and closes and
what it measures; this module loads what a batch needs of its contacts' cases and saves
what the worker changed, in the batch's transaction. A new case's key is decided from
state a rolled-back batch leaves as it was (see :func:`case_key_for`), so a batch retried
after a CRM call used the key writes the same one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import fields
from datetime import datetime
from decimal import Decimal
from operator import attrgetter
from typing import Any, Final, cast

from sqlalchemy import Row, and_, bindparam, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from wa_bridge.store._bulk import (
    insert_arrays,
    is_postgres,
    members,
    update_arrays,
)
from wa_bridge.store._chunks import chunks
from wa_bridge.store.api import CaseRecord, CaseSet, FirstTouch
from wa_bridge.store.tables import cases, contacts

__all__ = [
    "case_key_for",
    "first_touches",
    "lapsed_cases",
    "load_cases",
    "save_cases",
    "set_first_touches",
]

_COLUMNS: Final = tuple(f.name for f in fields(CaseRecord))
_KEYED: Final = ("case_key",)


def case_key_for(contact_id: str, business_number: str, opened_before: int) -> str:
    """The key of the case opened for (contact, number) after ``opened_before`` others.

    Deterministic, so a retried batch opens the case under the key its first try may have
    sent to the CRM; the next conversation (one more case counted) gets a new key.
    ``k_`` + 32 hex digits of SHA-256.
    """
    digest = hashlib.sha256(f"{contact_id}|{business_number}|{opened_before}".encode())
    return "k_" + digest.hexdigest()[:32]


_OUTCOME_VALUE: Final = _COLUMNS.index("outcome_value")
if tuple(c.name for c in cases.columns) != _COLUMNS:  # rows are read and written by position
    raise RuntimeError("the cases table and CaseRecord must list the same fields in one order")
_values_of: Final = attrgetter(*_COLUMNS)


def _record(row: Row[Any]) -> CaseRecord:
    values = list(row[: len(_COLUMNS)])  # select(cases, …): the table's columns come first
    value = values[_OUTCOME_VALUE]
    values[_OUTCOME_VALUE] = None if value is None else Decimal(value)
    return CaseRecord(*values)


async def load_cases(
    conn: AsyncConnection, contact_ids: Sequence[str], conversation_ids: Sequence[str] = ()
) -> CaseSet:
    """Each (contact, number)'s count of cases, its open and its latest case, and the
    cases bound to ``conversation_ids``, of the contacts ``contact_ids`` (one SELECT).

    A window over the contact's cases ranks them newest first, so only the rows a batch
    needs are read, however many conversations a contact had.
    """
    c = cases.c
    ids = sorted(set(contact_ids))
    wanted = sorted(set(conversation_ids))
    counts: dict[tuple[str, str], int] = {}
    found: dict[str, CaseRecord] = {}
    pair = (c.contact_id, c.business_number)
    rank = func.row_number().over(partition_by=pair, order_by=(c.opened_at.desc(), c.case_key))
    total = func.count().over(partition_by=pair)
    for clause in members(conn, c.contact_id, ids):
        inner = select(cases, rank.label("rank_"), total.label("total_")).where(clause).subquery()
        keep = [inner.c.rank_ == 1, inner.c.status == "open"]
        if wanted:
            keep.append(inner.c.conversation_id.in_(wanted))
        rows = await conn.execute(select(inner).where(or_(*keep)))
        for row in rows:
            counts[(row.contact_id, row.business_number)] = int(row.total_)
            found[row.case_key] = _record(row)
    return CaseSet(counts=counts, cases=found)


def _row(record: CaseRecord) -> dict[str, Any]:
    # a shallow copy (not dataclasses.asdict, which deep-copies every value): the row is
    # only sent to the database
    return dict(zip(_COLUMNS, _values_of(record), strict=True))


def _arrays(records: Sequence[CaseRecord]) -> dict[str, list[Any]]:
    """Column name → one value per record, for the array statements."""
    columns = zip(*map(_values_of, records), strict=True)
    return {name: list(values) for name, values in zip(_COLUMNS, columns, strict=True)}


async def save_cases(
    conn: AsyncConnection, records: Sequence[CaseRecord], new: Sequence[str]
) -> None:
    """Update the records not keyed in ``new``, then insert those that are (plain INSERT:
    a key or open slot another transaction took fails this one, whose batch is then
    retried)."""
    fresh = set(new)
    if is_postgres(conn):  # one statement each for the whole batch
        kept = [r for r in records if r.case_key not in fresh]
        if kept:
            await update_arrays(conn, cases, "case_key", _arrays(kept))
        # after the updates: a case closed in this batch frees its pair for the new one
        opened = [r for r in records if r.case_key in fresh]
        if opened:
            await insert_arrays(conn, cases, _arrays(opened))
        return
    inserted = [_row(r) for r in records if r.case_key in fresh]
    updated = [_row(r) for r in records if r.case_key not in fresh]
    if updated:
        changed: dict[str, Any] = {
            name: bindparam(f"v_{name}") for name in _COLUMNS if name not in _KEYED
        }
        stmt = update(cases).where(cases.c.case_key == bindparam("k_case_key")).values(changed)
        params = [
            {("k_" if name in _KEYED else "v_") + name: value for name, value in row.items()}
            for row in updated
        ]
        for part in chunks(params, 1000):
            await conn.execute(stmt, list(part))
    # after the updates: a case closed in this batch frees its pair for the new one
    if inserted:
        await conn.execute(insert(cases), inserted)


async def lapsed_cases(conn: AsyncConnection, at: datetime, limit: int = 1000) -> list[CaseRecord]:
    """Open cases whose window ended before ``at``, the longest lapsed first."""
    c = cases.c
    rows = await conn.execute(
        select(cases)
        .where(and_(c.status == "open", c.lapses_at < at))
        .order_by(c.lapses_at)
        .limit(limit)
    )
    return [_record(row) for row in rows]


async def first_touches(conn: AsyncConnection, contact_ids: Sequence[str]) -> set[str]:
    """The contacts that have a first touch."""
    t = contacts.c
    out: set[str] = set()
    for clause in members(conn, t.contact_id, sorted(set(contact_ids))):
        rows = await conn.execute(select(t.contact_id).where(clause, t.first_touch_at.is_not(None)))
        out.update(cast(list[str], rows.scalars().all()))
    return out


async def set_first_touches(conn: AsyncConnection, touches: Sequence[FirstTouch]) -> None:
    """Set each contact's first touch where it has none (a few rows: one UPDATE each)."""
    t = contacts.c
    for touch in touches:
        await conn.execute(
            update(contacts)
            .where(t.contact_id == touch.contact_id, t.first_touch_at.is_(None))
            .values(first_touch=touch.touch, first_touch_at=touch.at)
        )
