"""The consent ledger as the worker keeps it: which events are consent, and what changed.

Three kinds of event give or withdraw consent, each appended to the ledger
(``store.consent``) as one row:

- Meta's ``whatsapp.user.preferences`` (marketing ``stop`` / ``resume``);
- a customer's own message (``whatsapp.message.received``, a text) that is exactly one
  of the configured keywords (``consent_keywords``: per language, ``stop`` and ``start``
  words; case, accents, surrounding spaces and trailing punctuation are ignored, so
  "Baja." and "BAJA" both opt out). Echoes, statuses, imported history and anything the
  business sent never count: only the customer's own words do;
- ``consent.recorded``: evidence posted to ``POST /consents`` (a web form, a POS…).

A contact's state is its latest row by the time the consent was given. When an event's
row is that latest one, the worker maps a ``consent.changed`` event for it (the mapping
writes the state and its date to the CRM); evidence that arrives after a later change is
kept in the ledger and changes nothing in the CRM.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Final, Literal

from wa_bridge.events import CanonicalEvent
from wa_bridge.store.consent import ConsentRecord, ConsentStatus
from wa_bridge.worker import facts

if TYPE_CHECKING:
    from wa_bridge.settings import Settings

__all__ = [
    "CONSENT_CHANGED",
    "ConsentChange",
    "ConsentOptions",
    "changed_event",
    "consents_of",
    "keyword_key",
]

CONSENT_CHANGED: Final = "consent.changed"
CONSENT_SOURCE: Final = "wa-bridge:worker"
_PREFERENCES: Final = {"stop": "opt_out", "resume": "opt_in"}
_KEYWORD_STATUS: Final[Mapping[str, ConsentStatus]] = {"stop": "opt_out", "start": "opt_in"}
_EDGES: Final = re.compile(r"^[\s\W_]+|[\s\W_]+$")
_MAX_KEYWORD_CHARS: Final = 40  # a longer message is a sentence, never a keyword


def keyword_key(text: str) -> str:
    """A text as keywords are compared: no accents, case-folded, no edge punctuation."""
    if text.isascii():  # NFKD leaves ASCII as it is, and it has no combining marks
        plain = text
    else:
        plain = unicodedata.normalize("NFKD", text)
        plain = "".join(c for c in plain if not unicodedata.combining(c))
    return _EDGES.sub("", plain.casefold())


@dataclass(frozen=True, slots=True)
class ConsentOptions:
    """The keywords (as :func:`keyword_key` gives them) → (status, language)."""

    keywords: Mapping[str, tuple[ConsentStatus, str]] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Settings) -> ConsentOptions:
        return cls.of(settings.consent_keywords)

    @classmethod
    def of(
        cls, by_language: Mapping[str, Mapping[Literal["stop", "start"], Sequence[str]]]
    ) -> ConsentOptions:
        keywords: dict[str, tuple[ConsentStatus, str]] = {}
        for language, kinds in by_language.items():
            for kind, words in kinds.items():
                status = _KEYWORD_STATUS[kind]
                for word in words:
                    key = keyword_key(word)
                    if key:
                        keywords.setdefault(key, (status, language))
        return cls(keywords)


@dataclass(frozen=True, slots=True)
class ConsentChange:
    """A consent event of the batch: its ledger row, and the event that gave it."""

    record: ConsentRecord
    trigger: CanonicalEvent


def consents_of(
    events: Sequence[CanonicalEvent],
    contact_ids: Mapping[str, str],
    options: ConsentOptions,
    now: datetime,
) -> list[ConsentChange]:
    """The batch's consent events, as ledger rows (``contact_ids``: event id → contact)."""
    out: list[ConsentChange] = []
    for event in events:
        contact_id = contact_ids.get(event.id)
        if contact_id is None:
            continue
        record = _record(event, contact_id, options, now)
        if record is not None:
            out.append(ConsentChange(record, event))
    return out


def _record(
    event: CanonicalEvent, contact_id: str, options: ConsentOptions, now: datetime
) -> ConsentRecord | None:
    # (each event's time is read only for a consent event: the conversations step before
    # this one has read every contact's event's time already, and refused a bad one)
    data = event.data
    if event.type == "whatsapp.user.preferences":
        status = _PREFERENCES.get(str(data.get("value")))
        if data.get("category") != "marketing_messages" or status is None:
            return None
        return ConsentRecord(
            event.id,
            contact_id,
            "opt_out" if status == "opt_out" else "opt_in",
            facts.event_time(event),
            evidence=f"whatsapp user_preferences {data.get('value')}",
            captured_via="whatsapp_preferences",
            source="meta",
            recorded_by=CONSENT_SOURCE,
            recorded_at=now,
        )
    if event.type == facts.CUSTOMER_MESSAGE:
        return _keyword(event, contact_id, options, now)
    if event.type == "consent.recorded":
        return ConsentRecord(
            event.id,
            contact_id,
            "opt_out" if data.get("status") == "opt_out" else "opt_in",
            facts.event_time(event),
            channel=str(data.get("channel") or "whatsapp"),
            purpose=str(data.get("purpose") or "marketing"),
            evidence=f"{data.get('captured_via')} {data.get('source') or ''}".strip(),
            captured_via=_text(data.get("captured_via")),
            text_shown=_text(data.get("text_shown")),
            source=_text(data.get("source")),
            recorded_by=_text(data.get("recorded_by")),
            recorded_at=now,
        )
    return None


def _keyword(
    event: CanonicalEvent,
    contact_id: str,
    options: ConsentOptions,
    now: datetime,
) -> ConsentRecord | None:
    data = event.data
    text = data.get("text")
    body = text.get("body") if isinstance(text, dict) else None
    if data.get("message_type") != "text" or not isinstance(body, str):
        return None
    if not options.keywords or len(body) > _MAX_KEYWORD_CHARS:
        return None
    key = keyword_key(body)
    found = options.keywords.get(key)
    if found is None:
        return None
    status, language = found
    return ConsentRecord(
        event.id,
        contact_id,
        status,
        facts.event_time(event),
        evidence=f"keyword {key!r} ({language})",
        captured_via="whatsapp_keyword",
        text_shown=None,
        source=language,
        recorded_by=CONSENT_SOURCE,
        recorded_at=now,
    )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def changed_event(change: ConsentChange) -> CanonicalEvent:
    """The ``consent.changed`` event the mapping turns into the CRM's consent state."""
    r, trigger = change.record, change.trigger
    evidence = f"{r.captured_via}: {r.evidence or '-'} (event {trigger.id})"
    return CanonicalEvent(
        id=f"{trigger.id}#consent",
        type="consent.changed",
        source=CONSENT_SOURCE,
        time=trigger.time,
        data={
            "contact_id": r.contact_id,
            "status": r.status,
            "channel": r.channel,
            "purpose": r.purpose,
            "captured_via": r.captured_via or "unknown",
            "text_shown": r.text_shown,
            "source": r.source,
            "timestamp": r.at.isoformat().replace("+00:00", "Z"),
            "evidence": evidence[:512],
        },
        subject=trigger.subject,
        recvtime=trigger.recvtime,
        wabaid=trigger.wabaid,
    )
