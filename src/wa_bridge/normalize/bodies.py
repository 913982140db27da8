"""Type-specific parts of a message (inbound or echo) → the ``data`` keys of its event.

Lenient by design: a missing or odd type-specific object is skipped (the whole message is
kept in ``data.raw`` anyway), never an error.
"""

from __future__ import annotations

from typing import Any, Final

import orjson

from wa_bridge.normalize._order import order_of
from wa_bridge.normalize.bounds import TEXT_LIMITS, cut
from wa_bridge.normalize.meta import as_str
from wa_bridge.normalize.phones import user_e164

__all__ = ["AD_KEYS", "MEDIA_TYPES", "context_of", "errors_of", "message_body", "request_phones"]

MEDIA_TYPES: Final = frozenset({"image", "video", "audio", "document", "sticker"})
_MEDIA_KEYS: Final = (
    "id",
    "mime_type",
    "sha256",
    "caption",
    "filename",
    "url",
    "voice",
    "animated",
)
_LOCATION_KEYS: Final = ("latitude", "longitude", "name", "address", "url")
# The referral keys that say where a click-to-WhatsApp user came from (data.attribution).
AD_KEYS: Final = (
    "ctwa_clid",
    "source_type",
    "source_id",
    "source_url",
    "headline",
    "body",
    "media_type",
)
_REFERRAL_KEYS: Final = (*AD_KEYS, "image_url", "video_url", "thumbnail_url", "welcome_message")
_PASSTHROUGH_TYPES: Final = frozenset({"unsupported", "unknown", "edit", "revoke"})
Json = dict[str, Any]


def _pick(obj: Json, keys: tuple[str, ...]) -> Json:
    return {k: obj[k] for k in keys if k in obj}


def errors_of(raw: object) -> list[Json]:
    """Meta error objects → ``[{code, title, message, details, href}]`` (non-objects skipped)."""
    if not isinstance(raw, list):
        return []
    out: list[Json] = []
    for err in raw:
        if not isinstance(err, dict):
            continue
        error_data = err.get("error_data")
        details = error_data.get("details") if isinstance(error_data, dict) else None
        if details is None:
            details = err.get("details")  # the legacy shape: {code, title, details}
        code, title = err.get("code"), err.get("title")
        out.append(
            {
                # cut to what a note's status_error ("<code>: <title>") takes
                "code": cut(code, TEXT_LIMITS["error_code"]) if isinstance(code, str) else code,
                "title": cut(title, TEXT_LIMITS["error_title"])
                if isinstance(title, str)
                else title,
                "message": err.get("message"),
                "details": details,
                "href": err.get("href"),
            }
        )
    return out


def context_of(raw: object) -> Json | None:
    """``context`` → ``{from, id, forwarded, frequently_forwarded, referred_product}``."""
    if not isinstance(raw, dict):
        return None
    return {
        "from": raw.get("from"),
        "id": raw.get("id"),
        "forwarded": raw.get("forwarded") is True,
        "frequently_forwarded": raw.get("frequently_forwarded") is True,
        "referred_product": raw.get("referred_product"),
    }


def _interactive(obj: Json) -> Json:
    kind = obj.get("type")
    out: Json = {"type": kind}
    reply = obj.get(kind) if isinstance(kind, str) else None
    if not isinstance(reply, dict):
        return out
    if kind in ("button_reply", "list_reply"):
        out.update(_pick(reply, ("id", "title", "description")))
    elif kind == "nfm_reply":
        out.update(_pick(reply, ("name", "body")))
        response = reply.get("response_json")
        out["response"] = _decode_json(response)
    else:
        out["reply"] = reply
    return out


def _decode_json(text: object) -> object:
    if not isinstance(text, str):
        return text
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text  # keep what Meta sent rather than lose it


def _coordinate(value: object) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        return None  # not a number (bool, text, NaN)
    return repr(value)


def _location(obj: Json) -> Json:
    """Meta's keys, plus ``maps_url`` (a coordinates link) when both coordinates are there."""
    out = _pick(obj, _LOCATION_KEYS)
    lat, long = _coordinate(obj.get("latitude")), _coordinate(obj.get("longitude"))
    if lat is not None and long is not None:
        out["maps_url"] = f"https://maps.google.com/?q={lat},{long}"
    return out


def _reaction(obj: Json) -> Json:
    emoji = obj.get("emoji")
    return {"message_id": obj.get("message_id"), "emoji": emoji or None, "removed": not emoji}


def _system(obj: Json) -> Json:
    """Every key Meta sent (all identity fields included), plus the new number's E.164."""
    out = dict(obj)
    new_wa_id = as_str(obj.get("wa_id")) or as_str(obj.get("new_wa_id"))
    if new_wa_id is not None:
        out["new_phone_e164"] = user_e164(new_wa_id)
    return out


def request_phones(msg: Json) -> tuple[str, ...]:
    """The numbers of the ``contact_request`` cards of a ``contacts`` message: the sender
    answering a REQUEST_CONTACT_INFO button with their OWN number. Cards of any other
    origin describe someone else and are never read here."""
    cards = msg.get("contacts")
    out: list[str] = []
    for card in cards if isinstance(cards, list) else ():
        if not isinstance(card, dict) or card.get("origin") != "contact_request":
            continue
        phones = card.get("phones")
        for entry in phones if isinstance(phones, list) else ():
            if isinstance(entry, dict):
                number = as_str(entry.get("wa_id")) or as_str(entry.get("phone"))
                if number is not None:
                    out.append(number)
    return tuple(out)


def _typed_body(kind: str, obj: Json) -> Json:
    if kind == "text":
        return {"text": {"body": obj.get("body")}}
    if kind in MEDIA_TYPES:
        return {"media": {"type": kind, **_pick(obj, _MEDIA_KEYS)}}
    if kind == "location":
        return {"location": _location(obj)}
    if kind == "order":
        return {"order": order_of(obj)}
    if kind == "interactive":
        return {"interactive": _interactive(obj)}
    if kind == "button":
        return {"button": {"payload": obj.get("payload"), "text": obj.get("text")}}
    if kind == "reaction":
        return {"reaction": _reaction(obj)}
    if kind == "system":
        return {"system": _system(obj)}
    if kind in _PASSTHROUGH_TYPES:
        return {kind: obj}
    return {"content": obj}  # a type Meta added later: kept whole, under a fixed key


def message_body(msg: Json, kind: str | None) -> Json:
    """The type-specific keys of a message's event data (may be empty)."""
    out: Json = {}
    if kind == "contacts":
        cards = msg.get("contacts")
        if isinstance(cards, list):
            out["shared_contacts"] = cards
    elif kind is not None:
        obj = msg.get(kind)
        if isinstance(obj, dict):
            out.update(_typed_body(kind, obj))
    context = context_of(msg.get("context"))
    if context is not None:
        out["context"] = context
    referral = msg.get("referral")
    if isinstance(referral, dict):
        out["referral"] = _pick(referral, _REFERRAL_KEYS)
    errors = errors_of(msg.get("errors"))
    if errors:
        out["errors"] = errors
    identity = msg.get("identity")
    if isinstance(identity, dict):
        out["identity"] = identity
    return out
