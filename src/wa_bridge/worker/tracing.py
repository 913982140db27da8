"""What the pipeline records per batch besides the ledger: traces, account signals, counts.

:func:`batch_facts` builds, from a batch the pipeline applied, one :class:`EventTrace` per
event (where it was consumed, both times, the outcome, the CRM ids its operations
became) and the :class:`AccountSignal` of each quality or messaging-limit event. The
pipeline writes both with ``tx.record_traces`` in the batch's own transaction;
:func:`count_outcomes` exports the outcomes by event type once it has committed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any, Final

from wa_bridge.connectors.base import CrmResult
from wa_bridge.events import CanonicalEvent
from wa_bridge.log import hash_key
from wa_bridge.metrics import count_event
from wa_bridge.operations import CrmOperation
from wa_bridge.store.api import AccountSignal, EventOrigin, EventTrace, LedgerOutcome
from wa_bridge.worker import facts

__all__ = ["UNLIMITED", "batch_facts", "count_outcomes", "messaging_limit_of", "signal_of"]

# Meta's TIER_UNLIMITED as a number a gauge can hold and an alert can compare.
UNLIMITED: Final = 1_000_000_000
_TIER: Final = re.compile(r"TIER_(\d+)(K?)", re.IGNORECASE)
_QUALITY_WORDS: Final = {
    "GREEN": "GREEN",
    "HIGH": "GREEN",
    "YELLOW": "YELLOW",
    "MEDIUM": "YELLOW",
    "RED": "RED",
    "LOW": "RED",
    "FLAGGED": "RED",
    "UNFLAGGED": "GREEN",
    "UNKNOWN": "UNKNOWN",
}


# A contact's events share one hash: one HMAC per contact while it stays among the ~16k
# most recent ones (the salt is fixed at start-up), not one per event or per batch.
_contact_hash: Final = lru_cache(maxsize=1 << 14)(hash_key)


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text)  # Python ≥ 3.11 reads a trailing "Z"
    except ValueError:
        return None


def messaging_limit_of(tier: str | None) -> int | None:
    """``TIER_10K`` → 10000, ``TIER_UNLIMITED`` → :data:`UNLIMITED`; None if unreadable."""
    if not tier:
        return None
    if tier.upper().endswith("UNLIMITED"):
        return UNLIMITED
    found = _TIER.fullmatch(tier.strip())
    if found is None:
        return None
    return int(found.group(1)) * (1000 if found.group(2) else 1)


def _quality(*words: Any) -> str | None:
    for word in words:
        if isinstance(word, str) and word.upper() in _QUALITY_WORDS:
            return _QUALITY_WORDS[word.upper()]
    return None


_SIGNAL_TYPES: Final = frozenset({"whatsapp.template.quality", "whatsapp.phone_number.quality"})
# Meta's words and names are cut to account_signals' columns, as account events cut theirs
# (wa_bridge.worker.account): the signal still names its template or number
_SUBJECT_CHARS: Final = 200
_LABEL_CHARS: Final = 200
_EVENT_CHARS: Final = 32


def _cut(text: str | None, limit: int) -> str | None:
    return text if text is None or len(text) <= limit else text[:limit]


def signal_of(event: CanonicalEvent, at: datetime) -> AccountSignal | None:
    """The quality / messaging-limit signal a Meta account event carries, if any."""
    data = event.data
    if event.type == "whatsapp.template.quality":
        template = _str(data.get("template_id"))
        if template is None:
            return None
        name = _str(data.get("template_name"))
        language = _str(data.get("language"))
        return AccountSignal(
            scope="template",
            subject=template[:_SUBJECT_CHARS],
            at=at,
            label=_cut(f"{name} ({language})" if name and language else name, _LABEL_CHARS),
            quality=_quality(data.get("new_quality_score")) or "UNKNOWN",
            event=_cut(_str(data.get("new_quality_score")), _EVENT_CHARS),
        )
    if event.type == "whatsapp.phone_number.quality":
        raw_value = data.get("raw")
        raw: dict[str, Any] = raw_value if isinstance(raw_value, dict) else {}
        number = _str(data.get("display_phone_number")) or facts.phone_number_id_of(event)
        if number is None:
            return None
        meta_event = _str(data.get("event"))
        return AccountSignal(
            scope="phone_number",
            subject=number[:_SUBJECT_CHARS],
            at=at,
            quality=_quality(
                raw.get("current_quality_rating"),
                raw.get("quality_rating"),
                meta_event if meta_event in ("FLAGGED", "UNFLAGGED") else None,
            ),
            messaging_limit=messaging_limit_of(_str(data.get("current_limit"))),
            event=_cut(meta_event, _EVENT_CHARS),
        )
    return None


def _crm_ids(
    ops: Sequence[CrmOperation], results: Sequence[CrmResult] | None
) -> dict[str, list[tuple[str, str]]]:
    """Event id → (operation kind, CRM id) of each of its operations, when the connector
    answered one result per operation, in order (else nothing: ids unknown)."""
    out: dict[str, list[tuple[str, str]]] = {}
    if results is None or len(results) != len(ops):
        return out
    for op, result in zip(ops, results, strict=True):
        pair = (op.kind, result.crm_id)
        found = out.setdefault(op.event_id, [])
        if pair not in found:
            found.append(pair)
    return out


def _crm_ids_by_message(
    ops: Sequence[CrmOperation], crm_ids: Mapping[str, list[tuple[str, str]]]
) -> dict[str, list[tuple[str, str]]]:
    """Message id → the (kind, CRM id) of the note written for it in this batch."""
    out: dict[str, list[tuple[str, str]]] = {}
    for op in ops:
        message_id = op.fields.get("message_id")
        if op.kind == "add_note" and isinstance(message_id, str):
            ids = [pair for pair in crm_ids.get(op.event_id, ()) if pair[0] == "add_note"]
            if ids:
                out[message_id] = ids
    return out


def batch_facts(
    events: Sequence[CanonicalEvent],
    outcomes: Mapping[str, LedgerOutcome],
    ops: Sequence[CrmOperation],
    results: Sequence[CrmResult] | None,
    origins: Mapping[str, EventOrigin] | None,
) -> tuple[list[EventTrace], list[AccountSignal]]:
    """One trace per event of ``events`` (those the batch claimed) and their signals.

    The traces carry no time of their own: the store stamps them when it writes them."""
    crm_ids = _crm_ids(ops, results)
    # A status whose write was coalesced into a later status of its message (one write
    # per message per batch) became the same CRM record: the note of its message.
    by_message = _crm_ids_by_message(ops, crm_ids)
    contact_ids = {op.event_id: op.contact_key for op in ops if op.contact_key}
    traces: list[EventTrace] = []
    signals: list[AccountSignal] = []
    for event in events:
        message_id = _str(event.data.get("message_id"))
        event_time = _time(event.time)
        subject = event.subject
        traces.append(
            EventTrace(
                event_id=event.id,
                event_type=event.type,
                outcome=outcomes.get(event.id, "applied"),
                message_id=message_id[:200] if message_id else None,
                contact_id=contact_ids.get(event.id),
                contact_hash=_contact_hash(subject) if subject else None,
                event_time=event_time,
                received_at=_time(event.recvtime),
                origin=origins.get(event.id) if origins else None,
                crm_ids=tuple(crm_ids.get(event.id) or by_message.get(message_id or "") or ()),
            )
        )
        if event.type in _SIGNAL_TYPES:
            signal_time = event_time or _time(event.recvtime)
            signal = signal_of(event, signal_time) if signal_time is not None else None
            if signal is not None:
                signals.append(signal)
    return traces, signals


def count_outcomes(events: Sequence[CanonicalEvent], outcomes: Mapping[str, LedgerOutcome]) -> None:
    """Export each committed event's outcome by type (``wa_bridge_events_total``); an
    event id given twice counts once."""
    counts: dict[tuple[str, str], int] = {}
    for event in {e.id: e for e in events}.values():
        key = (event.type, outcomes.get(event.id, "applied"))
        counts[key] = counts.get(key, 0) + 1
    for (event_type, outcome), count in counts.items():
        count_event(event_type, outcome, count)
