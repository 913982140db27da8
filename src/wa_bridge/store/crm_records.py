"""Table ``crm_records``: the persisted :class:`~wa_bridge.store.book.RecordBook`.

One SELECT loads a batch's book (every kind of record of the batch's keys, for one CRM
instance); one upsert (plus a DELETE per kind of forgotten records, which are rare)
saves its changes in the batch's transaction, and each adoption of an existing CRM
record is written to ``identity_events`` as ``crm_matched`` (the rule, the CRM id, the
number of candidates and the ids of those not adopted: no personal data;
:mod:`wa_bridge.store.adoptions`). Arrays on PostgreSQL, portable Core on
SQLite, like the rest of the store.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from wa_bridge.store._bulk import column_arrays, insert_arrays, is_postgres, members
from wa_bridge.store._chunks import chunks
from wa_bridge.store._upsert import insert_for
from wa_bridge.store.adoptions import adoption_detail
from wa_bridge.store.book import KnownRecord, MatchKind, RecordBook
from wa_bridge.store.tables import crm_records, identity_events

__all__ = ["load_book", "save_book"]

_UPDATED = ("crm_id", "match", "filled", "written", "updated_at")
_PG_UPSERT = "ON CONFLICT (crm, key, kind) DO UPDATE SET " + ", ".join(
    f'"{name}" = EXCLUDED."{name}"' for name in _UPDATED
)


def _match(value: Any) -> MatchKind:
    matches: dict[str, MatchKind] = {"key": "key", "phone": "phone", "email": "email"}
    return matches.get(str(value), "created")


def _known(row: Any) -> KnownRecord:
    filled = row.filled if isinstance(row.filled, list) else []
    written = row.written if isinstance(row.written, dict) else {}
    return KnownRecord(
        crm_id=str(row.crm_id),
        match=_match(row.match),
        filled=frozenset(str(f) for f in filled),
        written={str(k): str(v) for k, v in written.items()},
    )


async def load_book(conn: AsyncConnection, crm: str, keys: Sequence[str]) -> RecordBook:
    """The book of CRM instance ``crm`` for ``keys`` (every kind of record they have)."""
    t = crm_records.c
    wanted = sorted(set(keys))
    known: list[tuple[str, str, KnownRecord]] = []
    for clause in members(conn, t.key, wanted):
        rows = await conn.execute(
            select(t.kind, t.key, t.crm_id, t.match, t.filled, t.written).where(
                t.crm == crm, clause
            )
        )
        known.extend((str(row.kind), str(row.key), _known(row)) for row in rows)
    return RecordBook(crm, known)


async def save_book(conn: AsyncConnection, book: RecordBook, now: datetime) -> None:
    """Write ``book``'s changes (remembered and forgotten records, adoptions)."""
    changed, forgotten = book.changes()
    decisions = [
        {
            "contact_id": d.key,
            "decision": "crm_matched",
            "kinds": d.rule,
            "detail": adoption_detail(d.kind, d.crm_id, d.candidates, d.others),
            "at": now,
        }
        for d in book.decisions()
    ]
    if decisions:
        await conn.execute(insert(identity_events), decisions)
    t = crm_records.c
    by_kind: dict[str, list[str]] = defaultdict(list)
    for kind, key in forgotten:
        by_kind[kind].append(key)
    for kind, keys in by_kind.items():
        for part in chunks(keys):
            await conn.execute(
                delete(crm_records).where(t.crm == book.crm, t.kind == kind, t.key.in_(part))
            )
    if not changed:
        return
    rows = [
        {
            "crm": book.crm,
            "key": key,
            "kind": kind,
            "crm_id": record.crm_id,
            "match": record.match,
            "filled": sorted(record.filled),
            "written": dict(sorted(record.written.items())),
            "updated_at": now,
        }
        for kind, key, record in changed
    ]
    if is_postgres(conn):
        await insert_arrays(conn, crm_records, column_arrays(rows), _PG_UPSERT)
        return
    stmt = insert_for(conn, crm_records)
    stmt = stmt.on_conflict_do_update(
        index_elements=["crm", "key", "kind"],
        set_={name: stmt.excluded[name] for name in _UPDATED},
    )
    for batch in chunks(rows, 1000):
        await conn.execute(stmt, list(batch))
