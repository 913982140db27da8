"""``data.display_text``: one readable line for any message, as a CRM note shows it.

Built from the message's normalized keys (``bodies.message_body``), so an inbound message,
an echo and a past (history) message of one type read alike. A text is its body, untouched;
every other type is a short composed line (labels in English, the user's words as sent),
cut at :data:`MAX_COMPOSED_CHARS` so it fits every shipped mapping's note body. Never raises:
a missing or odd part reads as less, not as an error.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import orjson

from wa_bridge.normalize._context import Json
from wa_bridge.normalize.bodies import message_body
from wa_bridge.normalize.meta import as_str

__all__ = ["MAX_COMPOSED_CHARS", "display_text"]

MAX_COMPOSED_CHARS: Final = 1800  # below the shortest shipped note body (rest.yaml: 2000)
_MAX_ITEMS: Final = 20  # order items, flow answers, cards listed before "…"
_MEDIA_LABELS: Final = {
    "image": "Image",
    "video": "Video",
    "audio": "Audio",
    "document": "Document",
    "sticker": "Sticker",
}


def _obj(data: Json, key: str) -> Json:
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def _scalar(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return repr(value)
    try:
        return orjson.dumps(value, default=str).decode()
    except TypeError:  # orjson.JSONEncodeError: an int past 64 bits deep inside
        return str(value)


def _pairs(obj: Json, skip: frozenset[str] = frozenset()) -> str:
    parts = [f"{k}: {_scalar(v)}" for k, v in obj.items() if k not in skip]
    if len(parts) > _MAX_ITEMS:
        parts = [*parts[:_MAX_ITEMS], "…"]
    return ", ".join(parts)


def _with_id(label: str, text: str | None, ident: str | None, id_name: str = "id") -> str:
    out = f"{label}: {text}" if text else label
    return f"{out} ({id_name} {ident})" if ident else out


def _text(data: Json) -> str | None:
    return as_str(_obj(data, "text").get("body"))


def _media(data: Json) -> str | None:
    media = _obj(data, "media")
    kind = as_str(media.get("type")) or "media"
    label = _MEDIA_LABELS.get(kind, kind)
    if kind == "audio" and media.get("voice") is True:
        label = "Voice note"
    elif kind == "sticker" and media.get("animated") is True:
        label = "Animated sticker"
    filename = as_str(media.get("filename"))
    head = f"[{label} {filename}]" if filename else f"[{label}]"
    caption, media_id = as_str(media.get("caption")), as_str(media.get("id"))
    text = f"{head} {caption}" if caption else head
    return f"{text} (media id {media_id})" if media_id else text


def _location(data: Json) -> str | None:
    location = _obj(data, "location")
    place = ", ".join(p for k in ("name", "address") if (p := as_str(location.get(k))))
    link = as_str(location.get("maps_url")) or as_str(location.get("url"))
    parts = [p for p in (place, link) if p]
    return "Location: " + " — ".join(parts) if parts else "Location"


def _card(card: object) -> str:
    if not isinstance(card, dict):
        return "?"
    name = card.get("name")
    names = name if isinstance(name, dict) else {}
    full = as_str(names.get("formatted_name")) or " ".join(
        p for k in ("first_name", "last_name") if (p := as_str(names.get(k)))
    )
    reach: list[str] = []
    for key, inner in (("phones", "phone"), ("emails", "email")):
        entries = card.get(key)
        for entry in entries if isinstance(entries, list) else ():
            if isinstance(entry, dict) and (
                value := as_str(entry.get(inner)) or as_str(entry.get("wa_id"))
            ):
                reach.append(value)
    if card.get("origin") == "contact_request":  # the sender's own details, not a third party
        own = ", ".join([full, *reach] if full else reach)
        return f"Own contact info: {own}" if own else "Own contact info"
    text = full or "(no name)"
    return f"Contact card: {text} ({', '.join(reach)})" if reach else f"Contact card: {text}"


def _contacts(data: Json) -> str | None:
    cards = data.get("shared_contacts")
    if not isinstance(cards, list) or not cards:
        return "Contact card"
    shown = [_card(c) for c in cards[:_MAX_ITEMS]]
    if len(cards) > _MAX_ITEMS:
        shown.append("…")
    return "; ".join(shown)


def _interactive(data: Json) -> str | None:
    reply = _obj(data, "interactive")
    kind = as_str(reply.get("type"))
    if kind == "button_reply":
        return _with_id("Button reply", as_str(reply.get("title")), as_str(reply.get("id")))
    if kind == "list_reply":
        title = " – ".join(p for k in ("title", "description") if (p := as_str(reply.get(k))))
        return _with_id("List reply", title, as_str(reply.get("id")))
    if kind == "nfm_reply":
        response = reply.get("response")
        if isinstance(response, dict):
            answers = _pairs(response, frozenset({"flow_token"}))
            return f"Flow response: {answers}" if answers else "Flow response"
        return "Flow response"
    inner = reply.get("reply")
    answers = _pairs(inner) if isinstance(inner, dict) else ""
    label = f"Interactive reply ({kind})" if kind else "Interactive reply"
    return f"{label}: {answers}" if answers else label


def _button(data: Json) -> str | None:
    button = _obj(data, "button")
    return _with_id(
        "Quick reply", as_str(button.get("text")), as_str(button.get("payload")), "payload"
    )


def _reaction(data: Json) -> str | None:
    reaction = _obj(data, "reaction")
    target = as_str(reaction.get("message_id")) or "?"
    if reaction.get("removed") is True:
        return f"Reaction removed from message {target}"
    return f"Reaction {_scalar(reaction.get('emoji'))} to message {target}"


def _order_item(item: object) -> str:
    if not isinstance(item, dict):
        return "?"
    qty, sku = _scalar(item.get("quantity")), _scalar(item.get("product_retailer_id"))
    price, currency = item.get("item_price"), as_str(item.get("currency"))
    priced = (
        f" at {_scalar(price)}" + (f" {currency}" if currency else "") if price is not None else ""
    )
    return f"{qty} × {sku}{priced}"


def _order(data: Json) -> str | None:
    order = _obj(data, "order")
    catalog = as_str(order.get("catalog_id"))
    head = f"Order (catalog {catalog})" if catalog else "Order"
    items = order.get("product_items")
    items = items if isinstance(items, list) else []
    listed = [_order_item(i) for i in items[:_MAX_ITEMS]] + (
        ["…"] if len(items) > _MAX_ITEMS else []
    )
    text = f"{head}: {', '.join(listed)}" if listed else head
    if order.get("total") is not None:
        text += f"; total {_scalar(order['total'])} {order.get('currency') or ''}".rstrip()
    note = as_str(order.get("text"))
    return f"{text}. Note: {note}" if note else text


def _problem(data: Json) -> str | None:
    errors = data.get("errors")
    first = errors[0] if isinstance(errors, list) and errors else {}
    if not isinstance(first, dict):
        return None
    return as_str(first.get("title")) or as_str(first.get("details"))


def _unsupported(data: Json) -> str | None:
    inner = as_str(_obj(data, "unsupported").get("type"))
    label = f"Unsupported message ({inner})" if inner else "Unsupported message"
    problem = _problem(data)
    return f"{label}: {problem}" if problem else label


def _edit(data: Json) -> str | None:
    edit = _obj(data, "edit")
    target = as_str(edit.get("original_message_id")) or "?"
    message = edit.get("message")
    if not isinstance(message, dict):
        return f"Edited message {target}"
    kind = as_str(message.get("type"))
    inner = None if kind == "edit" else display_text(kind, message_body(message, kind))
    return f"Edited message {target}: {inner}" if inner else f"Edited message {target}"


def _revoke(data: Json) -> str | None:
    target = as_str(_obj(data, "revoke").get("original_message_id")) or "?"
    return f"Deleted message {target}"


def _system(data: Json) -> str | None:
    system = _obj(data, "system")
    body = as_str(system.get("body"))
    if body:
        return f"System: {body}"
    kind = as_str(system.get("type"))
    return f"System notice ({kind})" if kind else "System notice"


_BY_KIND: Final[dict[str, Callable[[Json], str | None]]] = {
    **dict.fromkeys(_MEDIA_LABELS, _media),
    "location": _location,
    "contacts": _contacts,
    "interactive": _interactive,
    "button": _button,
    "reaction": _reaction,
    "order": _order,
    "unsupported": _unsupported,
    "unknown": _unsupported,
    "edit": _edit,
    "revoke": _revoke,
    "system": _system,
}


def _fallback(kind: str | None, data: Json) -> str | None:
    if kind == "media_placeholder":  # a past media message whose file comes later, if ever
        return "[Media not synced]"
    if kind is None:
        return None
    problem = _problem(data)
    return f"[{kind} message]: {problem}" if problem else f"[{kind} message]"


def display_text(kind: str | None, data: Json) -> str | None:
    """The readable line of a message of type ``kind`` whose normalized keys are ``data``;
    None for a text without a body or a message without a type."""
    if kind == "text":
        return _text(data)
    render = _BY_KIND.get(kind) if kind is not None else None
    text = render(data) if render is not None else _fallback(kind, data)
    if text is not None and len(text) > MAX_COMPOSED_CHARS:
        text = text[: MAX_COMPOSED_CHARS - 1] + "…"
    return text
