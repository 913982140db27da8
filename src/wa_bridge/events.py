"""Canonical events: the contract between the receiver half and the worker half.

A canonical event is a CloudEvents 1.0 event in structured JSON mode. The attributes are
the standard ones plus two extensions:

- ``recvtime``: when wa-bridge received the webhook (for lag). ``time`` is always Meta's
  event time (for order and SLAs); never show ``recvtime`` as the message time.
- ``wabaid``: the WhatsApp Business Account id (``entry[].id``), the scope of a BSUID.

``data`` is a JSON object whose shape is fixed per ``type`` by ``schemas/<type>.json``.
Every event's data carries ``contact`` (see :class:`Contact`) when the item names a person.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Final, Literal, cast, get_args

import orjson

from wa_bridge.slot_init import slot_init

__all__ = [
    "EVENT_TYPES",
    "INBOX_KINDS",
    "INBOX_TYPE_PREFIX",
    "SPECVERSION",
    "CanonicalEvent",
    "Contact",
    "EventType",
    "InboxKind",
    "JsonObject",
]

SPECVERSION: Final = "1.0"

EventType = Literal[
    "whatsapp.message.received",
    "whatsapp.message.status",
    "whatsapp.message.echo",
    "whatsapp.template.status",
    "whatsapp.template.quality",
    "whatsapp.template.category",
    "whatsapp.phone_number.quality",
    "whatsapp.account.update",
    "whatsapp.user.preferences",
    "whatsapp.user.id_update",
    "whatsapp.history.message",
    "whatsapp.history.status",
    "whatsapp.contact_book.update",
    "whatsapp.error",
    "whatsapp.unknown",
    "inbox.conversation.assigned",
    "inbox.conversation.tagged",
    "inbox.conversation.resolved",
    "inbox.conversation.converted",
    "inbox.conversation.csat",
    "inbox.conversation.handoff",
    # made by the worker (wa_bridge.worker.conversations), never by Meta or the inbox:
    # the check that a case's window lapsed, sent through the bus in order with the
    # contact's events, and a case's state as it changed, mapped like any event
    "conversation.window.check",
    "conversation.case.updated",
    # consent evidence recorded through POST /consents (a web form, a POS, an SMS…), and
    # the worker's word that a contact's consent state changed (wa_bridge.worker.consent)
    "consent.recorded",
    "consent.changed",
]
EVENT_TYPES: Final[tuple[str, ...]] = get_args(EventType)
_KNOWN_TYPES: Final = frozenset(EVENT_TYPES)  # one hash per decoded event, not a scan

# The inbox's events: ``inbox.conversation.<kind>``, posted with the short kind or in full
# (POST /inbox/events) and read back by the worker's case facts.
INBOX_TYPE_PREFIX: Final = "inbox.conversation."
InboxKind = Literal["assigned", "tagged", "resolved", "converted", "csat", "handoff"]
INBOX_KINDS: Final[tuple[InboxKind, ...]] = get_args(InboxKind)
if {INBOX_TYPE_PREFIX + kind for kind in INBOX_KINDS} != {
    t for t in EVENT_TYPES if t.startswith(INBOX_TYPE_PREFIX)
}:  # pragma: no cover - a definition error, caught at import
    raise AssertionError("InboxKind and EventType's inbox.conversation.* types differ")

# JSON data as it travels inside an event; the schemas in schemas/ give it its shape.
JsonObject = dict[str, Any]


@slot_init
@dataclass(frozen=True, slots=True)
class Contact:
    """Who an event is about, as far as the webhook tells.

    ``key`` is the best identifier known at receipt: the E.164 phone when there is one,
    else ``bsuid:<user_id>``. ``wa_id`` (or ``user_id``) is the address to reply to,
    exactly as Meta sent it: never normalize it. Identity across events is resolved in the
    worker, not here.

    ``linked_phones`` are further E.164 phones the same payload says are this person's (a
    Brazilian 12-digit ``recipient_id`` beside the 13-digit ``contacts[].wa_id``, the phone
    of a ``contact_request`` card that differs from ``from``). In JSON the key is present
    only when there is one.
    """

    key: str | None
    phone_e164: str | None = None
    wa_id: str | None = None
    user_id: str | None = None
    parent_user_id: str | None = None
    username: str | None = None
    profile_name: str | None = None
    country: str | None = None
    linked_phones: tuple[str, ...] = ()

    def to_dict(self) -> JsonObject:
        out: JsonObject = {name: getattr(self, name) for name in _CONTACT_IDS}
        if self.linked_phones:
            out["linked_phones"] = list(self.linked_phones)
        return out

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Contact:
        # positional, in field order (checked at import): built once or twice per event,
        # where a keyword dict splat took twice as long
        get = raw.get
        linked = get("linked_phones")
        return cls(
            get("key"),
            get("phone_e164"),
            get("wa_id"),
            get("user_id"),
            get("parent_user_id"),
            get("username"),
            get("profile_name"),
            get("country"),
            tuple(p for p in linked if isinstance(p, str) and p)
            if isinstance(linked, list)
            else (),
        )


# A contact's fields as its JSON names them, in order: all but ``linked_phones`` (a list,
# and left out when empty).
_CONTACT_IDS: Final = tuple(f.name for f in fields(Contact) if f.name != "linked_phones")
_FROM_DICT_ORDER: Final = (
    "key",
    "phone_e164",
    "wa_id",
    "user_id",
    "parent_user_id",
    "username",
    "profile_name",
    "country",
)
if _FROM_DICT_ORDER != _CONTACT_IDS:
    raise RuntimeError("Contact's fields changed: update Contact.from_dict, which is positional")


@slot_init
@dataclass(frozen=True, slots=True)
class CanonicalEvent:
    """One CloudEvents 1.0 event. ``id`` is deterministic: the idempotency key downstream."""

    id: str
    type: EventType
    source: str
    time: str
    data: JsonObject = field(repr=False)
    subject: str | None = field(default=None, repr=False)
    recvtime: str | None = None
    wabaid: str | None = None
    specversion: str = SPECVERSION
    datacontenttype: str = "application/json"

    @property
    def contact_key(self) -> str | None:
        """The Kafka key: the contact key known at receipt (``subject``)."""
        return self.subject

    def to_dict(self) -> JsonObject:
        out: JsonObject = {
            "specversion": self.specversion,
            "id": self.id,
            "type": self.type,
            "source": self.source,
            "time": self.time,
            "datacontenttype": self.datacontenttype,
        }
        if self.subject is not None:
            out["subject"] = self.subject
        if self.recvtime is not None:
            out["recvtime"] = self.recvtime
        if self.wabaid is not None:
            out["wabaid"] = self.wabaid
        out["data"] = self.data
        return out

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> CanonicalEvent:
        """Build an event from its structured-JSON form; raises KeyError/TypeError if bad."""
        event_type = raw["type"]
        if not isinstance(event_type, str) or event_type not in _KNOWN_TYPES:
            raise ValueError(f"unknown event type {event_type!r}")
        data = raw.get("data")
        if not isinstance(data, dict):
            raise TypeError("event data must be a JSON object")
        get = raw.get
        return cls(
            _text(raw["id"]),
            cast(EventType, event_type),
            _text(raw["source"]),
            _text(raw["time"]),
            data,
            get("subject"),
            get("recvtime"),
            get("wabaid"),
            _text(get("specversion", SPECVERSION)),
            _text(get("datacontenttype", "application/json")),
        )

    @classmethod
    def from_json(cls, payload: bytes | str) -> CanonicalEvent:
        raw = orjson.loads(payload)
        if not isinstance(raw, dict):
            raise TypeError("a canonical event is a JSON object")
        return cls.from_dict(raw)


def _text(value: Any) -> str:
    """``str(value)``, without the call when it is text already (most of the time)."""
    return value if type(value) is str else str(value)
