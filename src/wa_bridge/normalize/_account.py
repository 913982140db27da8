"""Handlers for the non-message fields we model: templates, phone number, account, user.

Each ``value`` of the template/phone/account fields is one item (one event); the user fields
carry a list of items (one event each). Odd shapes become ``whatsapp.unknown``.
"""

from __future__ import annotations

from typing import Final

from wa_bridge.events import CanonicalEvent, EventType
from wa_bridge.normalize._context import (
    ChangeContext,
    Handler,
    Json,
    items_handler,
    ts,
    unknown_event,
)
from wa_bridge.normalize._notices import id_update_notice
from wa_bridge.normalize.meta import as_str, epoch_of

__all__ = ["ACCOUNT_HANDLERS"]

_TEMPLATE_KEYS: Final = {
    "whatsapp.template.status": ("event", "reason", "message_template_category", "other_info"),
    "whatsapp.template.quality": ("previous_quality_score", "new_quality_score"),
    "whatsapp.template.category": ("previous_category", "new_category", "correct_category"),
}
# the value that tells two notices about one template apart (part of the event id)
_TEMPLATE_ID_PART: Final = {
    "whatsapp.template.status": "event",
    "whatsapp.template.quality": "new_quality_score",
    "whatsapp.template.category": "new_category",
}


def _template_id(value: Json) -> str | None:
    raw = value.get("message_template_id")
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int | str) and str(raw):
        return str(raw)
    return None


def _template(kind: EventType) -> Handler:
    def handle(ctx: ChangeContext, out: list[CanonicalEvent]) -> None:
        value = ctx.change.value
        template_id = _template_id(value)
        data: Json = {
            "template_id": template_id,
            "template_name": value.get("message_template_name"),
            "language": value.get("message_template_language"),
        }
        for key in _TEMPLATE_KEYS[kind]:
            data[key] = value.get(key)
        if kind == "whatsapp.template.category":
            stamp = epoch_of(value.get("category_update_timestamp"))
            data["category_update_time"] = ts(stamp)
        data["raw"] = value
        part = as_str(value.get(_TEMPLATE_ID_PART[kind]))
        entry_time = ctx.change.entry_time
        if template_id and part and entry_time is not None:
            event_id = f"wa:{kind[len('whatsapp.') :]}:{template_id}:{part}:{entry_time}"
        else:
            event_id = ctx.hashed_id(kind[len("whatsapp.") :], value)
        out.append(ctx.event(kind, event_id, None, None, data))

    return handle


def _whole_value(kind: EventType, keys: tuple[str, ...]) -> Handler:
    def handle(ctx: ChangeContext, out: list[CanonicalEvent]) -> None:
        value = ctx.change.value
        data: Json = {key: value.get(key) for key in keys}
        data["raw"] = value
        event_id = ctx.hashed_id(kind[len("whatsapp.") :], value)
        out.append(ctx.event(kind, event_id, None, None, data))

    return handle


def _preference(ctx: ChangeContext, item: object) -> CanonicalEvent:
    if not isinstance(item, dict):
        return unknown_event(ctx, item)
    person = ctx.person(
        as_str(item.get("wa_id")), as_str(item.get("user_id")), as_str(item.get("parent_user_id"))
    )
    contact = person.contact
    epoch = epoch_of(item.get("timestamp"))
    data = ctx.base(contact)
    data.update(
        category=item.get("category"),
        value=item.get("value"),
        detail=item.get("detail"),
        timestamp=ts(epoch),
        raw=item,
    )
    ctx.keep_extra(data, person.card_extra)
    event_id = ctx.hashed_id("user.preferences", item)
    return ctx.event("whatsapp.user.preferences", event_id, epoch, contact, data)


def _id_update(ctx: ChangeContext, item: object) -> CanonicalEvent:
    if not isinstance(item, dict):
        return unknown_event(ctx, item)
    ids = item.get("user_id")
    if isinstance(ids, dict):
        previous, current = as_str(ids.get("previous")), as_str(ids.get("current"))
    else:  # a plain string: only the new id is known
        previous, current = None, as_str(ids)
    notice = id_update_notice(ctx, item)
    if notice is not None:
        person = notice.person
    else:
        person = ctx.person(as_str(item.get("wa_id")), current, as_str(item.get("parent_user_id")))
    epoch = epoch_of(item.get("timestamp"))
    data = ctx.base(person.contact)
    data.update(
        previous_user_id=previous,
        current_user_id=current,
        detail=item.get("detail"),
        timestamp=ts(epoch),
    )
    if notice is not None:
        data["identity_change"] = notice.identity_change
    data["raw"] = item
    ctx.keep_extra(data, person.card_extra)
    event_id = ctx.hashed_id("user.id_update", item)
    return ctx.event("whatsapp.user.id_update", event_id, epoch, person.contact, data)


ACCOUNT_HANDLERS: Final[dict[str, Handler]] = {
    "message_template_status_update": _template("whatsapp.template.status"),
    "message_template_quality_update": _template("whatsapp.template.quality"),
    "template_category_update": _template("whatsapp.template.category"),
    "phone_number_quality_update": _whole_value(
        "whatsapp.phone_number.quality",
        (
            "display_phone_number",
            "event",
            "current_limit",
            "old_limit",
            "max_daily_conversations_per_business",
        ),
    ),
    "account_update": _whole_value("whatsapp.account.update", ("event", "phone_number")),
    "user_preferences": items_handler(("user_preferences",), {"user_preferences": _preference}),
    "user_id_update": items_handler(("user_id_update",), {"user_id_update": _id_update}),
}
