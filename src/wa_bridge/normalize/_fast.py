"""The receiver's fast path: one plain inbound text message, built straight from the body.

Most webhooks Meta sends for a busy number are this shape: one entry, one ``messages``
change, one sender card, one text message from that sender. :func:`text_message` checks
that shape in one pass over the few keys the event needs and builds the event directly,
without the general path's change iterator, context object, card index and per-type
dispatch. Anything else, and anything unusual inside this shape (another key on the
value, the card or the message; a card for someone else; a missing or bad timestamp; a
UTM link to attribute; an id longer than the store keeps), returns None and the caller
takes the general path (:func:`wa_bridge.normalize.to_events.normalize_webhook`), which
also sets aside items with over-long ids (:mod:`wa_bridge.normalize.bounds`): an event
of this path never needs that.

The event is byte for byte the one the general path builds (same keys, same order); the
tests compare both on every sample and on generated variants of this shape.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Final

from wa_bridge.events import CanonicalEvent
from wa_bridge.normalize.bounds import META_ID_LIMITS, TEXT_LIMITS, cut
from wa_bridge.normalize.identity import bsuid_country, contact_key
from wa_bridge.normalize.meta import OBJECT_WABA, epoch_of, rfc3339_from_epoch
from wa_bridge.normalize.phones import country_of, user_e164

__all__ = ["text_message"]

_VALUE_KEYS: Final = frozenset({"messaging_product", "metadata", "contacts", "messages"})
_CARD_KEYS: Final = frozenset({"profile", "wa_id", "user_id", "parent_user_id"})
_PROFILE_KEYS: Final = frozenset({"name", "username"})
_MESSAGE_KEYS: Final = frozenset(
    {"from", "from_user_id", "from_parent_user_id", "id", "timestamp", "type", "text"}
)
# The ids this path reads are each at most this long, or it leaves the body to the
# general path (the shortest of their limits; the event id built from the wamid fits).
_ID_LIMIT: Final = min(
    META_ID_LIMITS[name]
    for name in ("waba_id", "phone_number_id", "message_id", "user_id", "parent_user_id")
)
_NAME_LIMIT: Final = TEXT_LIMITS["profile_name"]
# Meta's epoch seconds as text: up to 11 ASCII digits is always in range (below year 5138),
# so no other check is needed; anything else goes through epoch_of.
_EPOCH_DIGITS: Final = 11


def _str(value: object) -> str | None:
    return value if type(value) is str and value else None


@lru_cache(maxsize=4096)
def _stamp_time(stamp: str) -> str | None:
    """The RFC 3339 time of Meta's epoch text, or None when it is not one: a webhook's
    stamps fall on the last few seconds, so one cache lookup replaces the digit checks,
    ``int`` and the formatting."""
    if stamp.isascii() and stamp.isdigit() and len(stamp) <= _EPOCH_DIGITS:
        return rfc3339_from_epoch(int(stamp))  # the digit count keeps it in range
    epoch = epoch_of(stamp)
    return None if epoch is None else rfc3339_from_epoch(epoch)


@lru_cache(maxsize=65536)
def _sender(wa_id: str) -> tuple[str, str | None] | None:
    """(E.164, country) of a sender's wa_id, or None when it is not a number."""
    phone = user_e164(wa_id)
    return None if phone is None else (phone, country_of(phone))


def _change_value(payload: object) -> tuple[Any, Any] | None:
    """(entry, value) of a body with one entry holding one ``messages`` change."""
    if type(payload) is not dict or payload.get("object") != OBJECT_WABA:
        return None
    entries = payload.get("entry")
    if type(entries) is not list or len(entries) != 1 or type(entry := entries[0]) is not dict:
        return None
    changes = entry.get("changes")
    if type(changes) is not list or len(changes) != 1 or type(change := changes[0]) is not dict:
        return None
    value = change.get("value")
    if change.get("field") != "messages" or type(value) is not dict:
        return None
    if not _VALUE_KEYS.issuperset(value):
        return None
    return entry, value


def text_message(payload: object, recvtime: str) -> CanonicalEvent | None:  # noqa: C901
    """The event of a one-text-message webhook, or None for any other body.

    The hot path of the receiver: the checks are written inline (a helper call per field
    cost a quarter of this function's time), in the order the common body passes them.
    """
    found = _change_value(payload)
    if found is None:
        return None
    entry, value = found
    msgs, cards = value.get("messages"), value.get("contacts")
    if type(msgs) is not list or len(msgs) != 1 or type(cards) is not list or len(cards) != 1:
        return None
    msg, card = msgs[0], cards[0]
    if type(msg) is not dict or type(card) is not dict or not _MESSAGE_KEYS.issuperset(msg):
        return None
    if msg.get("type") != "text" or not _CARD_KEYS.issuperset(card):
        return None
    text, wamid, wa_id = msg.get("text"), msg.get("id"), msg.get("from")
    if type(text) is not dict or type(wamid) is not str or type(wa_id) is not str:
        return None
    if not wamid or not wa_id or card.get("wa_id") != wa_id:
        return None
    body = text.get("body")
    if type(body) is str and "utm_" in body:
        return None  # attribution: the general path
    stamp = msg.get("timestamp")
    if type(stamp) is str:
        when = _stamp_time(stamp)  # Meta's usual form
    else:
        epoch = epoch_of(stamp)
        when = None if epoch is None else rfc3339_from_epoch(epoch)
    profile = card.get("profile")
    if when is None or not (profile is None or type(profile) is dict):
        return None
    if profile is None:
        profile = {}
    elif not _PROFILE_KEYS.issuperset(profile):
        return None
    user_id = _str(msg.get("from_user_id")) or _str(card.get("user_id"))
    parent = _str(msg.get("from_parent_user_id")) or _str(card.get("parent_user_id"))
    metadata = value.get("metadata")
    if type(metadata) is not dict:
        metadata = {}
    phone_number_id = _str(metadata.get("phone_number_id"))
    entry_id = entry.get("id")
    if type(entry_id) is int:
        entry_id = str(entry_id)
    elif type(entry_id) is not str:
        entry_id = None
    limit = _ID_LIMIT
    if (
        len(wamid) > limit
        or (user_id is not None and len(user_id) > limit)
        or (parent is not None and len(parent) > limit)
        or (phone_number_id is not None and len(phone_number_id) > limit)
        or (entry_id is not None and len(entry_id) > limit)
    ):
        return None  # the general path sets the item aside, saying why
    # build_contact's rules for an item with a wa_id and no linked numbers, straight
    # into the dict Contact.to_dict gives (no Contact object on this path)
    sender = _sender(wa_id)
    if sender is not None:
        phone, country = sender
        key: str | None = phone
    else:
        phone = None
        country = bsuid_country(user_id) if user_id else None
        key = contact_key(None, user_id)
    name = profile.get("name")
    username = profile.get("username")
    contact = {
        "key": key,
        "phone_e164": phone,
        "wa_id": wa_id,
        "user_id": user_id,
        "parent_user_id": parent,
        "username": username if type(username) is str and username else None,
        "profile_name": cut(name, _NAME_LIMIT) if type(name) is str and name else None,
        "country": country,
    }
    if phone_number_id is not None:
        source = "whatsapp:" + phone_number_id
    else:
        source = "whatsapp:waba:" + (entry_id or "unknown")
    display = metadata.get("display_phone_number")
    data = {
        "phone_number_id": phone_number_id,
        "display_phone_number": display if type(display) is str and display else None,
        "contact": contact,
        "message_id": wamid,
        "message_type": "text",
        "direction": "inbound",
        "timestamp": when,
        "text": {"body": body},
    }
    if type(body) is str and body:
        data["display_text"] = body
    data["raw"] = msg
    return CanonicalEvent(
        "wa:messages:" + wamid,
        "whatsapp.message.received",
        source,
        when,
        data,
        key,
        recvtime,
        entry_id,
    )
