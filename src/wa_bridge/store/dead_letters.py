"""Dead letters: one row per event id; a re-failure appends to its history and reopens it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Row, Select, delete, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from wa_bridge.store._rows import record_of
from wa_bridge.store.api import (
    DeadLetter,
    DeadLetterFilter,
    DeadLetterStatus,
    EventOrigin,
    NewDeadLetter,
)
from wa_bridge.store.tables import dead_letters

__all__ = [
    "add_dead_letters",
    "count_dead_letters",
    "count_open",
    "dead_letters_about",
    "get_dead_letter",
    "list_dead_letters",
    "message_id_of",
    "purge_dead_letters",
    "purge_open_dead_letters",
    "set_dead_letter_status",
]

_d = dead_letters.c


def _history_line(letter: NewDeadLetter) -> str:
    return f"{letter.failed_at.isoformat()} {letter.error_class}: {letter.error_message}"


async def add_dead_letters(conn: AsyncConnection, letters: Sequence[NewDeadLetter]) -> list[int]:
    """Insert each letter, or append to the existing one for its event id; return the ids.

    Dead letters are rare, so this is a statement or two per letter.
    """
    ids: list[int] = []
    for letter in letters:
        row = (
            await conn.execute(
                select(_d.id, _d.errors, _d.attempts).where(_d.event_id == letter.event_id)
            )
        ).first()
        common: dict[str, Any] = {
            "error_class": letter.error_class,
            "error_message": letter.error_message,
            "crm_error": letter.crm_error,
            "last_failed_at": letter.failed_at,
            "status": "open",
            "topic": letter.topic,
            "partition": letter.partition,
            "offset": letter.offset,
        }
        if row is None:
            result = await conn.execute(
                insert(dead_letters).returning(_d.id),
                {
                    **common,
                    "message_id": message_id_of(letter.payload),
                    "event_id": letter.event_id,
                    "event_type": letter.event_type,
                    "contact_key": letter.contact_key,
                    "payload": letter.payload,
                    "errors": [_history_line(letter)],
                    "attempts": letter.attempts,
                    "first_failed_at": letter.failed_at,
                },
            )
            ids.append(int(result.scalar_one()))
        else:
            await conn.execute(
                update(dead_letters)
                .where(_d.id == row.id)
                .values(
                    **common,
                    payload=letter.payload,
                    errors=[*(row.errors or []), _history_line(letter)],
                    attempts=row.attempts + letter.attempts,
                )
            )
            ids.append(int(row.id))
    return ids


def message_id_of(payload: bytes) -> str | None:
    """The wamid a stored canonical event is about (``data.message_id``), if any."""
    try:
        event = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    data = event.get("data") if isinstance(event, dict) else None
    found = data.get("message_id") if isinstance(data, dict) else None
    return found[:200] if isinstance(found, str) and found else None


def _to_letter(row: Row[Any]) -> DeadLetter:
    origin = None
    if row.topic is not None:
        origin = EventOrigin(row.topic, int(row.partition or 0), int(row.offset or 0))
    return record_of(
        DeadLetter,
        row,
        id=int(row.id),
        payload=bytes(row.payload),
        errors=tuple(row.errors or ()),
        origin=origin,
    )


async def list_dead_letters(conn: AsyncConnection, flt: DeadLetterFilter) -> list[DeadLetter]:
    """Newest failures first, filtered; at most ``flt.limit``."""
    stmt = _filtered(select(dead_letters), flt)
    stmt = stmt.order_by(_d.last_failed_at.desc(), _d.id.desc()).limit(flt.limit)
    return [_to_letter(row) for row in await conn.execute(stmt)]


async def count_dead_letters(conn: AsyncConnection, flt: DeadLetterFilter) -> int:
    """How many dead letters ``flt`` selects, whatever its ``limit``."""
    stmt = _filtered(select(func.count()).select_from(dead_letters), flt)
    return int((await conn.execute(stmt)).scalar_one())


def _filtered(stmt: Select[Any], flt: DeadLetterFilter) -> Select[Any]:
    if flt.status is not None:
        stmt = stmt.where(_d.status == flt.status)
    if flt.error_class is not None:
        stmt = stmt.where(_d.error_class == flt.error_class)
    if flt.event_type is not None:
        stmt = stmt.where(_d.event_type == flt.event_type)
    if flt.contact_key is not None:
        stmt = stmt.where(_d.contact_key == flt.contact_key)
    if flt.since is not None:
        stmt = stmt.where(_d.last_failed_at >= flt.since)
    if flt.until is not None:
        stmt = stmt.where(_d.last_failed_at < flt.until)
    return stmt


async def get_dead_letter(conn: AsyncConnection, dead_letter_id: int) -> DeadLetter | None:
    row = (await conn.execute(select(dead_letters).where(_d.id == dead_letter_id))).first()
    return None if row is None else _to_letter(row)


async def set_dead_letter_status(
    conn: AsyncConnection, dead_letter_id: int, status: DeadLetterStatus, note: str | None
) -> None:
    values: dict[str, Any] = {"status": status}
    if note is not None:
        values["note"] = note
    await conn.execute(update(dead_letters).where(_d.id == dead_letter_id).values(**values))


async def purge_dead_letters(conn: AsyncConnection, older_than: datetime) -> int:
    """Delete replayed or discarded letters whose last failure is older than ``older_than``."""
    result = await conn.execute(
        delete(dead_letters).where(
            _d.status.in_(["replayed", "discarded"]), _d.last_failed_at < older_than
        )
    )
    return int(result.rowcount)


async def purge_open_dead_letters(conn: AsyncConnection, older_than: datetime) -> int:
    """Delete OPEN letters last failed before ``older_than`` (only with a window set)."""
    result = await conn.execute(
        delete(dead_letters).where(_d.status == "open", _d.last_failed_at < older_than)
    )
    return int(result.rowcount)


async def count_open(conn: AsyncConnection) -> int:
    found = await conn.execute(
        select(func.count()).select_from(dead_letters).where(_d.status == "open")
    )
    return int(found.scalar_one())


async def dead_letters_about(
    conn: AsyncConnection,
    *,
    ids: Sequence[str] = (),
    contact_keys: Sequence[str] = (),
    limit: int = 200,
) -> list[DeadLetter]:
    """Dead letters (any status) of the given event or message ids, or contact keys."""
    clauses = []
    if ids:
        clauses += [_d.event_id.in_(list(ids)), _d.message_id.in_(list(ids))]
    if contact_keys:
        clauses.append(_d.contact_key.in_(list(contact_keys)))
    if not clauses:
        return []
    stmt = select(dead_letters).where(or_(*clauses)).order_by(_d.id).limit(limit)
    return [_to_letter(row) for row in await conn.execute(stmt)]
