"""How long a value from a Meta webhook may be: what the store and the shared mapping keep.

Meta's ids are short in practice (a wamid ~60 characters, phone_number_id, WABA and
template ids ~16 digits, a BSUID ~25) but no spec bounds them. One longer than its column
would fail the worker's whole batch on PostgreSQL, long after Meta got its 200. So:

- an **id** longer than :data:`META_ID_LIMITS` refuses the webhook: the receiver answers
  400 naming the field (:func:`check_ids`), which shows on Meta's side and in our receiver
  outcomes, and nothing is published. The limits leave room for what the store builds
  from an id (``wa:status:<wamid>:<status>:p<hash>``, ``bsuid:<user_id>``,
  ``whatsapp:<phone_number_id>``) in its 200-character key columns.
- a **NUL character** (U+0000, which no PostgreSQL text or JSON column stores) in any
  text of the body becomes U+FFFD (:func:`without_nul`, called by the receiver when the
  body holds ``\u0000``): the message is kept, the mark shows where something was.
- a **free text** is never a reason to refuse a customer's message: a profile name, a
  referral's texts and a status error's title are cut to what the shared mapping takes
  (:data:`TEXT_LIMITS`, :func:`cut`); a referral id too long for it (a cut id would name
  nothing) is left out. The whole item stays in ``data.raw``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from wa_bridge.events import CanonicalEvent
from wa_bridge.normalize.meta import NotAWebhook

__all__ = [
    "META_ID_LIMITS",
    "NUL_STAND_IN",
    "TEXT_LIMITS",
    "check_ids",
    "cut",
    "fits",
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
    "username": 64,  # the shared mapping's username (crm_contacts.username: 100)
    "wa_id": 32,  # the shared mapping's wa_id, crm_contacts.wa_id: 32
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
_WHERE: Final[Mapping[str, str]] = {
    "waba_id": "entry[].id (the WABA id)",
    "phone_number_id": "metadata.phone_number_id",
    "message_id": "a message or status id (wamid)",
    "template_id": "a message_template_id",
    "user_id": "a user_id (BSUID)",
    "parent_user_id": "a parent_user_id",
    "media_id": "a media id",
    "username": "a username",
    "wa_id": "a wa_id",
}
_CONTACT_IDS: Final = ("user_id", "parent_user_id", "username", "wa_id")


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


def check_ids(events: Iterable[CanonicalEvent]) -> None:
    """Raise NotAWebhook (the receiver's 400) naming the first id longer than the store
    keeps; the message never shows the id itself."""
    for event in events:
        data = event.data
        _check("waba_id", event.wabaid)
        _check("phone_number_id", data.get("phone_number_id"))
        _check("message_id", data.get("message_id"))
        _check("template_id", data.get("template_id"))
        media = data.get("media")
        if isinstance(media, dict):
            _check("media_id", media.get("id"))
        _check_contact(data.get("contact"))
        change = data.get("identity_change")
        if isinstance(change, dict):
            _check_contact(change.get("previous"))
            _check_contact(change.get("current"))
        if len(event.id) > _MAX_EVENT_ID:  # any other id the event's id is built from
            raise NotAWebhook(
                f"an id in a {event.type} item is too long: the event id built from it has "
                f"{len(event.id)} characters, more than {_MAX_EVENT_ID}"
            )


def _check_contact(contact: object) -> None:
    if isinstance(contact, dict):
        for name in _CONTACT_IDS:
            _check(name, contact.get(name))


def _check(name: str, value: Any) -> None:
    if isinstance(value, str) and len(value) > META_ID_LIMITS[name]:
        raise NotAWebhook(
            f"{_WHERE[name]} has {len(value)} characters, more than {META_ID_LIMITS[name]}: "
            "more than the store keeps (Meta's ids are far shorter)"
        )
