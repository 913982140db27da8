"""Meta webhook body → canonical events, one per item, in payload order.

Routing is on ``changes[].field`` first, then on the lists inside ``value``. Anything inside
a well-formed envelope that is not modelled here becomes ``whatsapp.unknown`` with the raw
object: never dropped, never an error. Ids are deterministic (see ``_id``), so a Meta retry
of the same webhook yields the same ids.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Final

from wa_bridge.events import CanonicalEvent, EventType
from wa_bridge.normalize._account import ACCOUNT_HANDLERS
from wa_bridge.normalize._coexistence import COEXISTENCE_HANDLERS
from wa_bridge.normalize._content import message_content
from wa_bridge.normalize._context import (
    ChangeContext,
    Handler,
    ItemHandler,
    Json,
    Person,
    items_handler,
    ts,
    unknown_event,
)
from wa_bridge.normalize._fast import text_message
from wa_bridge.normalize._notices import system_notice
from wa_bridge.normalize.bodies import errors_of, request_phones
from wa_bridge.normalize.bounds import within_bounds
from wa_bridge.normalize.meta import as_str, epoch_of, iter_changes, rfc3339

__all__ = ["STATUSES", "normalize_webhook"]

STATUSES: Final = frozenset({"sent", "delivered", "read", "played", "failed", "deleted", "warning"})
_MESSAGES_ITEMS: Final = ("messages", "statuses", "errors")
_ECHOES_ITEMS: Final = ("message_echoes",)


def _message(ctx: ChangeContext, msg: object, *, echo: bool) -> CanonicalEvent:
    wamid = as_str(msg.get("id")) if isinstance(msg, dict) else None
    if not isinstance(msg, dict) or wamid is None:
        return unknown_event(ctx, msg)
    kind = as_str(msg.get("type"))
    person, change = _sender(ctx, msg, kind, echo=echo)
    contact = person.contact
    epoch = epoch_of(msg.get("timestamp"))
    data = ctx.base(contact)
    data["message_id"] = wamid
    data["message_type"] = kind
    data["direction"] = "outbound" if echo else "inbound"
    data["timestamp"] = ts(epoch)
    group_id = as_str(msg.get("group_id"))
    if group_id is not None:
        data["group_id"] = group_id
    data.update(message_content(msg, kind, inbound=not echo))
    if change is not None:
        data["identity_change"] = change
    data["raw"] = msg
    ctx.keep_extra(data, person.card_extra)
    prefix = "echo" if echo else ctx.change.field
    event_id = f"wa:{prefix}:{wamid}"
    kind_out: EventType = "whatsapp.message.echo" if echo else "whatsapp.message.received"
    return ctx.event(kind_out, event_id, epoch, contact, data)


def _sender(
    ctx: ChangeContext, msg: Json, kind: str | None, *, echo: bool
) -> tuple[Person, Json | None]:
    """Who a message is about (the customer; for an echo, its recipient), and the identity
    change it announces, if it is such a notice (then the person is who they are now)."""
    if echo:
        who = (msg.get("to"), msg.get("to_user_id"), msg.get("to_parent_user_id"))
    else:
        who = (msg.get("from"), msg.get("from_user_id"), msg.get("from_parent_user_id"))
    system = msg.get("system")
    if kind == "system" and isinstance(system, dict) and not echo:
        notice = system_notice(ctx, msg, system)
        if notice is not None:
            return notice.person, notice.identity_change
    linked = request_phones(msg) if kind == "contacts" and not echo else ()
    return ctx.person(as_str(who[0]), as_str(who[1]), as_str(who[2]), linked=linked), None


def _conversation(raw: object) -> Json | None:
    if not isinstance(raw, dict):
        return None
    origin = raw.get("origin")
    return {
        "id": raw.get("id"),
        "origin": origin.get("type") if isinstance(origin, dict) else None,
        "expiration": ts(epoch_of(raw.get("expiration_timestamp"))),
    }


def _status_who(st: Json) -> tuple[object, object, object, str | None]:
    """(wa_id, user_id, parent_user_id, group participant or None) of a status' recipient."""
    participant = st.get("recipient_participant_id") or st.get("recipient_participant_user_id")
    if st.get("recipient_type") == "group" or participant:
        return (
            st.get("recipient_participant_id"),
            st.get("recipient_participant_user_id"),
            st.get("recipient_participant_parent_user_id"),
            str(participant) if participant else "",
        )
    parent = st.get("recipient_parent_user_id") or st.get("parent_recipient_user_id")
    return st.get("recipient_id"), st.get("recipient_user_id"), parent, None


def _status(ctx: ChangeContext, st: object) -> CanonicalEvent:
    if not isinstance(st, dict):
        return unknown_event(ctx, st)
    wamid, status = as_str(st.get("id")), as_str(st.get("status"))
    if wamid is None or status not in STATUSES:
        return unknown_event(ctx, st)
    wa_id, user_id, parent, participant = _status_who(st)
    person = ctx.person(as_str(wa_id), as_str(user_id), as_str(parent))
    contact = person.contact
    epoch = epoch_of(st.get("timestamp"))
    data = ctx.base(contact)
    data.update(message_id=wamid, status=status, timestamp=ts(epoch))
    data["recipient_type"] = as_str(st.get("recipient_type")) or "individual"
    if participant is not None:
        data["group_id"] = as_str(st.get("recipient_id"))
    conversation = _conversation(st.get("conversation"))
    if conversation is not None:
        data["conversation"] = conversation
        data["conversation_id"] = conversation["id"]
    for key in ("pricing", "biz_opaque_callback_data"):
        if key in st:
            data[key] = st[key]
    errors = errors_of(st.get("errors"))
    if errors:
        data["errors"] = errors
    data["raw"] = st
    ctx.keep_extra(data, person.card_extra)
    if participant is None:
        event_id = f"wa:status:{wamid}:{status}"
    else:  # a group status per participant; the participant id is hashed, not shown
        digest = hashlib.sha256(participant.encode()).hexdigest()[:16]
        event_id = f"wa:status:{wamid}:{status}:p{digest}"
    return ctx.event("whatsapp.message.status", event_id, epoch, contact, data)


def _value_error(ctx: ChangeContext, err: object) -> CanonicalEvent:
    if not isinstance(err, dict):
        return unknown_event(ctx, err)
    data = ctx.base(None)
    data.update(errors_of([err])[0])
    data["field"] = ctx.change.field
    data["raw"] = err
    ctx.keep_extra(data)
    return ctx.event("whatsapp.error", ctx.hashed_id("error", err), None, None, data)


_HANDLERS_OF_ITEMS: Final[dict[str, ItemHandler]] = {
    "messages": lambda c, m: _message(c, m, echo=False),
    "statuses": _status,
    "errors": _value_error,
}


_HANDLERS: Final[dict[str, Handler]] = {
    "messages": items_handler(_MESSAGES_ITEMS, _HANDLERS_OF_ITEMS),
    "smb_message_echoes": items_handler(
        _ECHOES_ITEMS, {"message_echoes": lambda c, m: _message(c, m, echo=True)}
    ),
    **ACCOUNT_HANDLERS,
    **COEXISTENCE_HANDLERS,
}


def normalize_webhook(payload: object, *, received_at: datetime | str) -> list[CanonicalEvent]:
    """Canonical events of one webhook body (as ``orjson.loads`` gave it), in payload order.

    Raises :class:`~wa_bridge.normalize.meta.NotAWebhook` (an ``InvalidEvent``) when the
    envelope is not a WhatsApp Business Account webhook; the message says what is wrong. An
    item with an id longer than the store keeps is a ``whatsapp.unknown`` event saying so
    (:mod:`wa_bridge.normalize.bounds`).
    Pure: no I/O. ``received_at`` becomes every event's ``recvtime`` (a string is taken
    as that RFC 3339 text already: the receiver's :func:`~wa_bridge.normalize.meta.rfc3339_now`).
    """
    recvtime = received_at if isinstance(received_at, str) else rfc3339(received_at)
    fast = text_message(payload, recvtime)  # the common one-text webhook, or None
    if fast is not None:
        return [fast]  # its ids are within bounds, or it would have left the body to us
    return within_bounds(normalize_changes(payload, recvtime))


def normalize_changes(payload: object, recvtime: str) -> list[CanonicalEvent]:
    """:func:`normalize_webhook` without its one-text fast path (the general path)."""
    out: list[CanonicalEvent] = []
    for change in iter_changes(payload):
        ctx = ChangeContext(change, recvtime)
        handler = _HANDLERS.get(change.field)
        if handler is None:
            out.append(unknown_event(ctx, change.value))
        else:
            handler(ctx, out)
    return out
