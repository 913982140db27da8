"""Follow messages end to end: ``wa-bridge trace`` and the console's trace page.

A query is a wamid (or an event id), a contact key (E.164 phone, ``bsuid:…``, or our
``c_…`` contact id) or a phone as typed. A phone is looked up by its E.164 form in the
identity graph and by its keyed hash in the traces; it is never shown back in full.
For every event found, the steps: received (Meta's time and ours), published (topic,
partition, offset), claimed by the worker, failures and retries, dead-lettered, replays
and discards (from the audit log), applied (with the CRM record ids).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final, Literal

import orjson

from wa_bridge.log import hash_key
from wa_bridge.normalize.phones import user_e164
from wa_bridge.ops.masking import mask_phone
from wa_bridge.store.api import DeadLetter, EventTrace, Store
from wa_bridge.store.audit import AuditEntry, AuditFilter

__all__ = ["EventTimeline", "QueryKind", "Step", "TraceReport", "classify", "trace"]

QueryKind = Literal["message", "phone", "bsuid", "contact"]
_PHONE_CHARS: Final = frozenset("+0123456789 -().")


@dataclass(frozen=True, slots=True)
class Step:
    """One thing that happened to an event; ``at`` None when the time is unknown."""

    at: datetime | None
    what: str  # received | published | claimed | failed | dead_lettered | replay | ...
    detail: str = ""


@dataclass(slots=True)
class EventTimeline:
    event_id: str
    event_type: str
    message_id: str | None
    status: str  # applied | replayed | noop | stale | dead-lettered (open) | in flight ...
    steps: list[Step] = field(default_factory=list)
    crm_ids: tuple[tuple[str, str], ...] = ()
    dead_letter_id: int | None = None


@dataclass(frozen=True, slots=True)
class TraceReport:
    query_kind: QueryKind
    shown_as: str  # the query as it may be displayed (a phone masked)
    contact_ids: tuple[str, ...]
    events: list[EventTimeline]


def classify(query: str) -> tuple[QueryKind, str]:
    """What the query names, and its normalized value (a phone in E.164)."""
    q = query.strip()
    if q.startswith("bsuid:"):
        return "bsuid", q
    if q.startswith("c_"):
        return "contact", q
    if q and set(q) <= _PHONE_CHARS and sum(ch.isdigit() for ch in q) >= 7:
        e164 = user_e164(q)
        if e164 is not None:
            return "phone", e164
    return "message", q


def _time(text: object) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


async def trace(store: Store, query: str, *, limit: int = 200) -> TraceReport:
    """Everything the store knows about the query's events, oldest event first."""
    kind, value = classify(query)
    ops = store.ops
    ids: list[str] = []
    contact_ids: list[str] = []
    hashes: list[str] = []
    keys: list[str] = []
    if kind == "message":
        ids = [value]
    elif kind == "contact":
        contact_ids = [value]
    else:
        found = await ops.contacts_of_identifier(kind, value.removeprefix("bsuid:"))
        contact_ids, hashes, keys = found, [hash_key(value)], [value]
    traces = await ops.find_traces(
        ids=ids, contact_ids=contact_ids, contact_hashes=hashes, limit=limit
    )
    letters = await ops.dead_letters_about(ids=ids, contact_keys=keys, limit=limit)
    if kind == "contact" and traces:  # dead letters keep the key at receipt: via hashes
        letters += await ops.dead_letters_about(ids=[t.event_id for t in traces], limit=limit)
    timelines = await _timelines(store, traces, letters)
    shown = mask_phone(value) if kind in ("phone", "bsuid") else value
    return TraceReport(kind, shown, tuple(contact_ids), timelines)


async def _timelines(
    store: Store, traces: Sequence[EventTrace], letters: Sequence[DeadLetter]
) -> list[EventTimeline]:
    by_id: dict[str, EventTimeline] = {}
    traced = {t.event_id: t for t in traces}
    lettered = {d.event_id: d for d in letters}
    event_ids = list(dict.fromkeys([*traced, *lettered]))
    ledger = {e.event_id: e for e in await store.ops.ledger_entries(event_ids)}
    audit = await _audit_of(store, [d.id for d in lettered.values()])
    for event_id in event_ids:
        t, d = traced.get(event_id), lettered.get(event_id)
        line = EventTimeline(
            event_id=event_id,
            event_type=(t.event_type if t else d.event_type if d else "unknown"),
            message_id=(t.message_id if t else d.message_id if d else None),
            status=_status(t, d, ledger.get(event_id)),
            crm_ids=t.crm_ids if t else (),
            dead_letter_id=d.id if d else None,
        )
        line.steps += _received(t, d)
        entry = ledger.get(event_id)
        if entry is not None:
            line.steps.append(Step(entry.first_seen_at, "claimed", "first seen by the worker"))
        if d is not None:
            line.steps += _failures(d)
            line.steps += [
                Step(a.at, a.action.removeprefix("dlq."), f"{a.detail} (by {a.actor}, {a.role})")
                for a in audit.get(d.id, ())
            ]
        if t is not None:
            detail = ", ".join(f"{kind} {crm_id}" for kind, crm_id in t.crm_ids)
            if t.origin is not None and t.origin.attempt:
                detail = f"after retry level {t.origin.attempt}; " + detail
            line.steps.append(Step(t.at, t.outcome, detail.strip("; ")))
        line.steps.sort(key=lambda s: (s.at is None, s.at or datetime.max))
        by_id[event_id] = line
    return sorted(by_id.values(), key=_first_time)


def _first_time(line: EventTimeline) -> tuple[bool, datetime]:
    times = [s.at for s in line.steps if s.at is not None]
    return (not times, min(times) if times else datetime.max)


def _received(t: EventTrace | None, d: DeadLetter | None) -> list[Step]:
    meta_time, our_time, origin = None, None, None
    if t is not None:
        meta_time, our_time, origin = t.event_time, t.received_at, t.origin
    if d is not None:
        try:
            raw = orjson.loads(d.payload)
        except orjson.JSONDecodeError:
            raw = {}
        if isinstance(raw, dict):
            meta_time = meta_time or _time(raw.get("time"))
            our_time = our_time or _time(raw.get("recvtime"))
        origin = origin or d.origin
    steps = []
    if meta_time or our_time:
        ours = f"{our_time:%Y-%m-%d %H:%M:%S.%f}"[:-3] + "Z" if our_time else "unknown"
        steps.append(
            Step(our_time or meta_time, "received", f"Meta's time {meta_time}; ours {ours}")
        )
    if origin is not None:
        steps.append(
            Step(
                our_time,
                "published",
                f"{origin.topic} partition {origin.partition} offset {origin.offset}",
            )
        )
    return steps


def _failures(d: DeadLetter) -> list[Step]:
    steps = []
    for line in d.errors:
        when, _, why = line.partition(" ")
        steps.append(Step(_time(when), "failed", why))
    crm = f"; CRM said: {d.crm_error}" if d.crm_error else ""
    steps.append(
        Step(
            d.first_failed_at,
            "dead_lettered",
            f"dead letter {d.id} ({d.status}): {d.error_class}: {d.error_message}{crm}",
        )
    )
    return steps


def _status(t: EventTrace | None, d: DeadLetter | None, entry: object) -> str:
    if d is not None and d.status == "open":
        return "dead-lettered (open)"
    if t is not None:
        return t.outcome
    if d is not None:
        return f"dead letter {d.status}"
    return "in flight (not applied yet)"


async def _audit_of(store: Store, dead_letter_ids: Sequence[int]) -> dict[int, list[AuditEntry]]:
    if not dead_letter_ids:
        return {}
    targets = [f"dead_letter:{i}" for i in dead_letter_ids]
    rows = await store.ops.list_audit(AuditFilter(targets=targets, limit=1000))
    out: dict[int, list[AuditEntry]] = {}
    for row in rows:
        if row.action in ("dlq.replay", "dlq.discard"):
            out.setdefault(int(row.target.split(":", 1)[1]), []).append(row)
    return out
