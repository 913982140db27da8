"""What the worker reads from a canonical event's data, in one place.

The shapes come from ``schemas/<type>.json`` (written by the normalizer); this module is
the worker's only reader of them, so a schema change touches one file.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from wa_bridge.errors import InvalidEvent
from wa_bridge.events import CanonicalEvent, Contact
from wa_bridge.store.api import IdentityChange

__all__ = [
    "INBOUND_TYPES",
    "StatusFact",
    "business_of",
    "contact_of",
    "event_time",
    "identity_change_of",
    "phone_number_id_of",
    "status_of",
]

# Events that open (or continue) a conversation case.
INBOUND_TYPES = frozenset({"whatsapp.message.received", "whatsapp.message.echo"})


@dataclass(frozen=True, slots=True)
class StatusFact:
    message_id: str
    status: str
    at: datetime


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
        moment = _parse_time(text)
        if moment is not None:
            return moment
    raise InvalidEvent(
        f"event {event.id} has no readable time (time and recvtime are not ISO 8601); "
        "fix the producer"
    )


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


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
    """A number or BSUID change notice carried by ``event``, if any."""
    data = event.data
    business = business_of(event)
    at = event_time(event)
    if event.type == "whatsapp.user.id_update":
        old = _str(data.get("previous_user_id"))
        new = _str(data.get("current_user_id"))
        if old and new:
            return IdentityChange(business=business, kind="bsuid", old=old, new=new, at=at)
        return None
    system = _dict(data.get("system"))
    kind = _str(system.get("type"))
    contact = _dict(data.get("contact"))
    if kind == "user_changed_number":
        old = _str(contact.get("phone_e164"))
        new = _str(system.get("new_phone_e164"))
        if old and new:
            return IdentityChange(business=business, kind="phone", old=old, new=new, at=at)
    elif kind == "user_changed_user_id":
        old = _str(contact.get("user_id"))
        new = _str(system.get("user_id"))
        if old == new:
            old = None
        if old and new:
            return IdentityChange(business=business, kind="bsuid", old=old, new=new, at=at)
    return None
