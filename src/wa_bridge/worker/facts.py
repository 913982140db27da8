"""What the worker reads from a canonical event's data, in one place.

The shapes come from ``schemas/<type>.json`` (written by the normalizer); this module is
the worker's only reader of them, so a schema change touches one file.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Final

from wa_bridge.clock import parse_iso_time
from wa_bridge.errors import InvalidEvent
from wa_bridge.events import INBOX_KINDS, INBOX_TYPE_PREFIX, CanonicalEvent, Contact, InboxKind
from wa_bridge.normalize.decimals import amount_or_none
from wa_bridge.slot_init import slot_init
from wa_bridge.store.api import Identifier, IdentifierKind, IdentityChange

__all__ = [
    "CASE_UPDATED",
    "CUSTOMER_MESSAGE",
    "ECHO",
    "WINDOW_CHECK",
    "InboxFact",
    "StatusFact",
    "WindowCheck",
    "attribution_of",
    "business_of",
    "contact_of",
    "event_time",
    "identity_change_of",
    "inbox_fact_of",
    "phone_number_id_of",
    "status_of",
    "window_check_of",
]

# The conversation events (wa_bridge.worker.conversations): a customer's message opens or
# continues a case; an echo (the business app's own message) only answers in one.
CUSTOMER_MESSAGE: Final = "whatsapp.message.received"
ECHO: Final = "whatsapp.message.echo"
WINDOW_CHECK: Final = "conversation.window.check"
CASE_UPDATED: Final = "conversation.case.updated"


@slot_init
@dataclass(frozen=True, slots=True)
class StatusFact:
    message_id: str
    status: str
    at: datetime


@dataclass(frozen=True, slots=True)
class InboxFact:
    """What an ``inbox.conversation.*`` event tells about its case."""

    kind: InboxKind
    conversation_id: str | None = None
    outcome: str | None = None
    value: Decimal | None = None
    currency: str | None = None
    csat: int | None = None


@dataclass(frozen=True, slots=True)
class WindowCheck:
    """A ``conversation.window.check``: has this case's window lapsed (as of its time)?"""

    case_key: str
    contact_id: str
    business_number: str


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def event_time(event: CanonicalEvent) -> datetime:
    """Meta's event time as an aware datetime (UTC when the string has no offset).

    When ``time`` does not parse, the receipt time (``recvtime``, set by the receiver on
    every event) stands in: it is the closest time we know, and the same on every replay.
    Raises InvalidEvent when neither parses.
    """
    for text in (event.time, event.recvtime):
        moment = parse_iso_time(text)
        if moment is not None:
            return moment
    raise InvalidEvent(
        f"event {event.id} has no readable time (time and recvtime are not ISO 8601); "
        "fix the producer"
    )


def business_of(event: CanonicalEvent) -> str:
    """The scope of a BSUID: the WABA id, else the event source."""
    return event.wabaid or event.source


def phone_number_id_of(event: CanonicalEvent) -> str | None:
    """The business phone number the event is for (``metadata.phone_number_id``)."""
    data = event.data
    direct = _str(data.get("phone_number_id"))
    if direct:
        return direct
    for holder in ("metadata", "business"):
        found = _str(_dict(data.get(holder)).get("phone_number_id"))
        if found:
            return found
    return None


def business_number_of(event: CanonicalEvent) -> str:
    """The business number a case is opened on (phone_number_id, else the WABA)."""
    return phone_number_id_of(event) or business_of(event)


def contact_of(event: CanonicalEvent) -> Contact | None:
    """Who the event is about (``data.contact``; for a change notice, the person as the
    notice leaves them), or None when it names no identifier."""
    raw = event.data.get("contact")
    if not isinstance(raw, dict):
        return None
    contact = Contact.from_dict(raw)
    if not (contact.key or contact.phone_e164 or contact.user_id or contact.parent_user_id):
        return None
    return contact


def status_of(event: CanonicalEvent) -> StatusFact | None:
    if event.type != "whatsapp.message.status":
        return None
    data = event.data
    message_id = _str(data.get("message_id")) or _str(data.get("id"))
    status = _str(data.get("status"))
    if message_id is None or status is None:
        return None
    return StatusFact(message_id=message_id, status=status.lower(), at=event_time(event))


def identity_change_of(event: CanonicalEvent) -> IdentityChange | None:
    """The identity-change notice ``event`` carries (``data.identity_change``, written by
    the normalizer for every shape Meta has sent), if any."""
    data = event.data
    raw = data.get("identity_change")
    if not isinstance(raw, dict):
        return _legacy_identity_change(event)
    previous = _identifiers(raw.get("previous"))
    current = _identifiers(raw.get("current"))
    if not current:
        return None
    return IdentityChange(
        business=business_of(event),
        previous=previous,
        current=current,
        at=event_time(event),
        renews_bsuids=raw.get("kind") == "number",
    )


_ID_FIELDS: tuple[tuple[IdentifierKind, str], ...] = (
    ("bsuid", "user_id"),
    ("parent_bsuid", "parent_user_id"),
    ("phone", "phone_e164"),
)


def _identifiers(raw: Any) -> tuple[Identifier, ...]:
    side = _dict(raw)
    return tuple((kind, value) for kind, name in _ID_FIELDS if (value := _str(side.get(name))))


def _legacy_identity_change(event: CanonicalEvent) -> IdentityChange | None:
    """Events normalized before ``data.identity_change`` existed (still in a retry topic or
    a dead letter): the number and BSUID changes they could express."""
    data = event.data
    if "system" not in data and event.type != "whatsapp.user.id_update":
        return None  # most events: neither shape below (the checks cost ~1 µs an event)
    contact = _dict(data.get("contact"))
    system = _dict(data.get("system"))
    if event.type == "whatsapp.user.id_update":
        old, new, kind = data.get("previous_user_id"), data.get("current_user_id"), "bsuid"
    elif system.get("type") == "user_changed_number":
        old, new, kind = contact.get("phone_e164"), system.get("new_phone_e164"), "phone"
    elif system.get("type") == "user_changed_user_id":
        old, new, kind = contact.get("user_id"), system.get("user_id"), "bsuid"
    else:
        return None
    old, new = _str(old), _str(new)
    if not (old and new) or old == new:
        return None
    moved: IdentifierKind = "phone" if kind == "phone" else "bsuid"
    return IdentityChange(
        business=business_of(event),
        previous=((moved, old),),
        current=((moved, new),),
        at=event_time(event),
        renews_bsuids=moved == "phone",
    )


def inbox_fact_of(event: CanonicalEvent) -> InboxFact | None:
    """The case facts of an inbox event (schemas/inbox.conversation.*.json), else None."""
    kind = event.type.removeprefix(INBOX_TYPE_PREFIX)
    if kind == event.type or kind not in INBOX_KINDS:
        return None
    data = event.data
    csat = data.get("csat")
    return InboxFact(
        kind=kind,
        conversation_id=_str(data.get("conversation_id")),
        outcome=_str(data.get("outcome")),
        value=amount_or_none(data.get("value")),
        currency=_str(data.get("currency")),
        csat=csat if isinstance(csat, int) and not isinstance(csat, bool) else None,
    )


def attribution_of(event: CanonicalEvent) -> dict[str, Any] | None:
    """Where a customer's message came from (``data.attribution``: a click-to-WhatsApp
    referral or a UTM link in its text), else None."""
    if event.type != CUSTOMER_MESSAGE:
        return None
    found = event.data.get("attribution")
    return found if isinstance(found, dict) and found else None


def window_check_of(event: CanonicalEvent) -> WindowCheck | None:
    if event.type != WINDOW_CHECK:
        return None
    data = event.data
    case_key, contact_id = _str(data.get("case_key")), _str(data.get("contact_id"))
    number = _str(data.get("business_number"))
    if case_key is None or contact_id is None or number is None:
        return None
    return WindowCheck(case_key=case_key, contact_id=contact_id, business_number=number)
