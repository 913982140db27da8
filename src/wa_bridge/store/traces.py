"""Event traces and account signals: written by the worker with each batch, read by ops.

A trace row is one event's latest step as the worker recorded it (applied, noop, stale,
replayed), with where it was consumed, Meta's time and ours, and the CRM ids it became.
Written in the batch's own transaction, so a trace exists exactly when the effect does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from wa_bridge.store._bulk import insert_new, is_postgres
from wa_bridge.store._chunks import chunks
from wa_bridge.store._rows import record_of
from wa_bridge.store._upsert import insert_for
from wa_bridge.store.api import AccountSignal, EventOrigin, EventTrace
from wa_bridge.store.tables import account_signals, event_traces, identities, processed_events

__all__ = [
    "LedgerEntry",
    "contacts_of_identifier",
    "find_traces",
    "latest_signals",
    "ledger_entries",
    "record_signals",
    "record_traces",
]

_t = event_traces.c
_UPDATED: tuple[str, ...] = ("event_type", "message_id", "contact_id", "contact_hash")
_UPDATED += ("event_time", "received_at", "outcome", "outcome_at", "crm_ids")
_KEPT = ("topic", "partition", "offset", "attempt")  # a replay has no origin: keep the first
_PG_SUFFIX = (
    "ON CONFLICT (event_id) DO UPDATE SET "
    + ", ".join(f'"{c}" = EXCLUDED."{c}"' for c in _UPDATED)
    + ", "
    + ", ".join(f'"{c}" = COALESCE(EXCLUDED."{c}", event_traces."{c}")' for c in _KEPT)
)


_COLUMNS: tuple[str, ...] = ("event_id", "event_type", "message_id", "contact_id")
_COLUMNS += ("contact_hash", "topic", "partition", "offset", "attempt", "event_time")
_COLUMNS += ("received_at", "outcome", "outcome_at", "crm_ids")


def _values(trace: EventTrace, now: datetime) -> tuple[Any, ...]:
    """The row of ``trace``, in the order of ``_COLUMNS`` (crm_ids as pairs: the JSON
    serializer writes a tuple as an array)."""
    origin = trace.origin
    return (
        trace.event_id,
        trace.event_type,
        trace.message_id,
        trace.contact_id,
        trace.contact_hash,
        *(
            (origin.topic, origin.partition, origin.offset, origin.attempt)
            if origin
            else _NO_ORIGIN
        ),
        trace.event_time,
        trace.received_at,
        trace.outcome,
        trace.at or now,
        trace.crm_ids or None,
    )


_NO_ORIGIN: tuple[None, ...] = (None, None, None, None)
# usually one value in a batch: sent once when so (store._bulk)
_ONCE = ("topic", "attempt", "outcome", "outcome_at")


async def record_traces(conn: AsyncConnection, traces: Sequence[EventTrace], now: datetime) -> None:
    """Upsert one row per event (the last trace given for an event id wins); a trace
    without a time gets ``now``."""
    last = {t.event_id: t for t in traces}
    if not last:
        return
    rows = [_values(t, now) for t in last.values()]
    if is_postgres(conn):
        columns = zip(*rows, strict=True)
        # a trace exists already only for an event applied before (a replay, a ledger row
        # pruned before its trace): the plain insert first, the upsert when one does
        await insert_new(
            conn, event_traces, dict(zip(_COLUMNS, columns, strict=True)), _PG_SUFFIX, once=_ONCE
        )
        return
    stmt = insert_for(conn, event_traces)
    upsert = stmt.on_conflict_do_update(
        index_elements=["event_id"],
        set_={
            **{c: stmt.excluded[c] for c in _UPDATED},
            **{c: _coalesce(stmt.excluded[c], _t[c]) for c in _KEPT},
        },
    )
    for part in chunks([dict(zip(_COLUMNS, row, strict=True)) for row in rows], 50):
        await conn.execute(upsert, part)


def _coalesce(new: Any, old: Any) -> Any:
    return func.coalesce(new, old)


def _to_trace(row: Row[Any]) -> EventTrace:
    origin = None
    if row.topic is not None:
        origin = EventOrigin(
            row.topic, int(row.partition or 0), int(row.offset or 0), int(row.attempt or 0)
        )
    return record_of(
        EventTrace,
        row,
        at=row.outcome_at,
        origin=origin,
        crm_ids=tuple((str(k), str(v)) for k, v in (row.crm_ids or ())),
    )


async def find_traces(
    conn: AsyncConnection,
    *,
    ids: Sequence[str] = (),
    contact_ids: Sequence[str] = (),
    contact_hashes: Sequence[str] = (),
    limit: int = 200,
) -> list[EventTrace]:
    """Traces whose event id or message id is in ``ids``, or whose contact is one of
    those given; oldest event first, at most ``limit``."""
    clauses = []
    if ids:
        clauses += [_t.event_id.in_(list(ids)), _t.message_id.in_(list(ids))]
    if contact_ids:
        clauses.append(_t.contact_id.in_(list(contact_ids)))
    if contact_hashes:
        clauses.append(_t.contact_hash.in_(list(contact_hashes)))
    if not clauses:
        return []
    stmt = (
        select(event_traces)
        .where(or_(*clauses))
        .order_by(_t.event_time.desc(), _t.outcome_at.desc())
        .limit(limit)
    )
    rows = [_to_trace(row) for row in await conn.execute(stmt)]
    return rows[::-1]


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """What the dedup ledger says of an event: first seen, outcome and when it was set."""

    event_id: str
    outcome: str | None
    first_seen_at: Any
    updated_at: Any


async def ledger_entries(conn: AsyncConnection, event_ids: Sequence[str]) -> list[LedgerEntry]:
    p = processed_events.c
    out: list[LedgerEntry] = []
    for part in chunks(list(dict.fromkeys(event_ids))):
        rows = await conn.execute(select(processed_events).where(p.event_id.in_(part)))
        out += [record_of(LedgerEntry, r) for r in rows]
    return out


async def contacts_of_identifier(conn: AsyncConnection, kind: str, value: str) -> list[str]:
    """Contact ids an identifier (phone E.164, BSUID) is or was linked to, current first."""
    i = identities.c
    rows = await conn.execute(
        select(i.contact_id, i.is_current)
        .where(i.kind == kind, i.value == value)
        .order_by(i.is_current.desc(), i.linked_at.desc())
    )
    return list(dict.fromkeys(str(r.contact_id) for r in rows))


async def record_signals(conn: AsyncConnection, signals: Sequence[AccountSignal]) -> None:
    """Keep the latest signal per (scope, subject): an older one never replaces a newer."""
    s = account_signals.c
    for signal in signals:  # rare (quality changes): a statement each
        values = {
            "scope": signal.scope,
            "subject": signal.subject,
            "label": signal.label,
            "quality": signal.quality,
            "messaging_limit": signal.messaging_limit,
            "event": signal.event,
            "at": signal.at,
        }
        stmt = insert_for(conn, account_signals).values(**values)
        changed = {
            "label": _coalesce(stmt.excluded.label, s.label),
            "quality": _coalesce(stmt.excluded.quality, s.quality),
            "messaging_limit": _coalesce(stmt.excluded.messaging_limit, s.messaging_limit),
            "event": stmt.excluded.event,
            "at": stmt.excluded.at,
        }
        await conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["scope", "subject"], set_=changed, where=s.at <= stmt.excluded.at
            )
        )


async def latest_signals(conn: AsyncConnection) -> list[AccountSignal]:
    rows = await conn.execute(
        select(account_signals).order_by(account_signals.c.scope, account_signals.c.subject)
    )
    return [
        AccountSignal(
            scope=r.scope,
            subject=r.subject,
            at=r.at,
            label=r.label,
            quality=r.quality,
            messaging_limit=None if r.messaging_limit is None else int(r.messaging_limit),
            event=r.event,
        )
        for r in rows
    ]
