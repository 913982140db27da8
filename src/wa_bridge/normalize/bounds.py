"""How long a value from a Meta webhook may be: what the store and the shared mapping keep.

Meta's ids are short in practice (a wamid ~60 characters, phone_number_id, WABA and
template ids ~16 digits, a BSUID ~25) but no spec bounds them. One longer than its column
failed the worker's whole batch on PostgreSQL, long after Meta got its 200. So:

- an item with an **id** longer than :data:`META_ID_LIMITS` is kept as a
  ``whatsapp.unknown`` event (:func:`within_bounds`), as the normalizer keeps any item it
  cannot read: never dropped, never a reason to refuse the rest of the webhook (a 400
  would make Meta send it all again, the valid items too, and give up on it in the end).
  Its ``data`` holds the item (``raw``) and ``refused``, the reason; the worker traces it
  (``event_traces``) and nothing of it reaches the CRM. The limits leave room for what the store
  builds from an id (``wa:status:<wamid>:<status>:p<hash>``, ``bsuid:<user_id>``,
  ``whatsapp:<phone_number_id>``) in its 200-character key columns.
- a **NUL character** (U+0000, which no PostgreSQL text or JSON column stores) in any
  text of the body becomes U+FFFD (:func:`without_nul`, called by the receiver when the
  body holds ``\\u0000``): the message is kept, the mark shows where something was.
- a **free text** is never a reason to set an item aside: a profile name, a referral's
  texts and a status error's title are cut to what the shared mapping takes
  (:data:`TEXT_LIMITS`, :func:`cut`); a referral id too long for it (a cut id would name
  nothing) is left out. The whole item stays in ``data.raw``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any, Final

from wa_bridge.events import CanonicalEvent

__all__ = [
    "META_ID_LIMITS",
    "NUL_STAND_IN",
    "TEXT_LIMITS",
    "cut",
    "fits",
    "within_bounds",
    "without_nul",
]

META_ID_LIMITS: Final[Mapping[str, int]] = {
    "waba_id": 128,  # identities.business (a BSUID's scope), account_events.subject: 200
    "phone_number_id": 128,  # cases.business_number: 200, also as whatsapp:<id>
    "message_id": 128,  # message_statuses, crm_notes (its key), event ids: 200
    "template_id": 128,  # account_signals.subject: 200; wa:template.*:<id>:… ids
    "user_id": 128,  # identities.value: 200; bsuid:<user_id> as a contact key
    "parent_user_id": 128,
    "media_id": 128,  # the shared mapping's media_id (crm_notes.media_id: 200)
}
# What the shared mapping (mappings/base.yaml, fragments/contact.yaml) takes of each text.
TEXT_LIMITS: Final[Mapping[str, int]] = {
    "profile_name": 256,
    "error_title": 256,  # status_error is "<code>: <title>", at most 512
    "error_code": 64,
    "ctwa_clid": 512,
    "source_url": 2048,
    "source_id": 64,
    "source_type": 32,
    "headline": 512,
    "utm": 200,
}
_MAX_EVENT_ID: Final = 200  # processed_events.event_id and every other event id column
_MAX_SOURCE: Final = 200
_WHERE: Final[Mapping[str, str]] = {
    "waba_id": "entry[].id (the WABA id)",
    "phone_number_id": "metadata.phone_number_id",
    "message_id": "a message or status id (wamid)",
    "template_id": "a message_template_id",
    "user_id": "a user_id (BSUID)",
    "parent_user_id": "a parent_user_id",
    "media_id": "a media id",
}
# (a contact's wa_id and username land in no column of ours: the shared mapping bounds
# them, 32 and 64, for the CRM; a group's placeholder ids are longer than a phone number)
_CONTACT_IDS: Final = ("user_id", "parent_user_id")


NUL_STAND_IN: Final = "\ufffd"


def without_nul(value: Any) -> Any:
    """``value`` (parsed JSON) with every U+0000 in its texts and names made U+FFFD."""
    if isinstance(value, str):
        return value.replace("\x00", NUL_STAND_IN) if "\x00" in value else value
    if isinstance(value, dict):
        return {without_nul(k): without_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [without_nul(item) for item in value]
    return value


def cut(text: str | None, limit: int) -> str | None:
    """``text``'s first ``limit`` characters (None stays None)."""
    return text if text is None or len(text) <= limit else text[:limit]


def fits(text: str | None, limit: int) -> str | None:
    """``text`` when it has at most ``limit`` characters, else None."""
    return text if text is None or len(text) <= limit else None


def within_bounds(events: list[CanonicalEvent]) -> list[CanonicalEvent]:
    """``events`` with each one holding an id longer than the store keeps made a
    ``whatsapp.unknown`` event that says why (the list itself when none does: the usual
    case costs a few dict reads an event)."""
    reasons = [_overlong(event) for event in events]
    if not any(reasons):
        return events
    return [
        event if reason is None else _set_aside(event, reason)
        for event, reason in zip(events, reasons, strict=True)
    ]


def _overlong(event: CanonicalEvent) -> str | None:
    """Why ``event`` cannot be kept as it is (never showing the id), or None."""
    data = event.data
    media = data.get("media")
    change = data.get("identity_change")
    found = (
        _check("waba_id", event.wabaid)
        or _check("phone_number_id", data.get("phone_number_id"))
        or _check("message_id", data.get("message_id"))
        or _check("template_id", data.get("template_id"))
        or (_check("media_id", media.get("id")) if isinstance(media, dict) else None)
        or _check_contact(data.get("contact"))
        or (_check_contact(change.get("previous")) if isinstance(change, dict) else None)
        or (_check_contact(change.get("current")) if isinstance(change, dict) else None)
    )
    if found is None and len(event.id) > _MAX_EVENT_ID:  # any other id it is built from
        found = (
            f"an id in it is too long: the event id built from it has {len(event.id)} "
            f"characters, more than {_MAX_EVENT_ID}"
        )
    return found


def _set_aside(event: CanonicalEvent, reason: str) -> CanonicalEvent:
    digest = hashlib.sha256(event.id.encode()).hexdigest()[:32]
    wabaid = event.wabaid
    return CanonicalEvent(
        id=f"wa:unknown:{digest}",
        type="whatsapp.unknown",
        source=event.source[:_MAX_SOURCE],
        time=event.time,
        data={
            "field": event.type,
            "refused": f"{event.type}: {reason}",
            "raw": event.data.get("raw"),
        },
        recvtime=event.recvtime,
        wabaid=wabaid if wabaid is None or len(wabaid) <= META_ID_LIMITS["waba_id"] else None,
    )


def _check_contact(contact: object) -> str | None:
    if not isinstance(contact, dict):
        return None
    for name in _CONTACT_IDS:
        found = _check(name, contact.get(name))
        if found is not None:
            return found
    return None


def _check(name: str, value: Any) -> str | None:
    if isinstance(value, str) and len(value) > META_ID_LIMITS[name]:
        return (
            f"{_WHERE[name]} has {len(value)} characters, more than the {META_ID_LIMITS[name]} "
            "the store keeps (Meta's ids are far shorter)"
        )
    return None
