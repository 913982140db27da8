"""Coexistence onboarding: past chats (``history``) and the contact book
(``smb_app_state_sync``) of a number shared with the WhatsApp Business app.

Meta sends both once, when the number is onboarded, and never again; so nothing here is
dropped, and every id is deterministic (a redelivered webhook yields the same ids).

``history`` values hold chunks (``history[]``: ``metadata {phase, chunk_order, progress}``
and ``threads[]``, or ``errors[]`` when the business declined to share), or, later, the
media of past media messages (``messages[]``). Each chunk gives one
``whatsapp.history.status`` and one ``whatsapp.history.message`` per past message, about
the thread's customer (``threads[].context`` / ``id``), with its direction (the business's
own number in ``from``, or a ``to``: outbound) and its original time. Each
``smb_app_state_sync`` contact change gives one ``whatsapp.contact_book.update``.
"""

from __future__ import annotations

from typing import Final

from wa_bridge.events import CanonicalEvent
from wa_bridge.normalize._content import message_content
from wa_bridge.normalize._context import (
    ChangeContext,
    Handler,
    Json,
    Person,
    items_handler,
    split_value,
    ts,
    unknown_event,
)
from wa_bridge.normalize.bodies import errors_of
from wa_bridge.normalize.bounds import TEXT_LIMITS, cut
from wa_bridge.normalize.identity import build_contact
from wa_bridge.normalize.meta import as_str, epoch_of

__all__ = ["COEXISTENCE_HANDLERS"]

_HISTORY_ITEMS: Final = ("history", "messages")
_THREAD_KEYS: Final = frozenset({"id", "context", "messages"})
_DONE: Final = 100  # metadata.progress when the whole history is synced


def _count(value: object) -> int | None:
    """Meta's phase / chunk_order / progress: an int, or its digits as a string."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < 10:
        return int(value)
    return None


def _is_outbound(ctx: ChangeContext, msg: Json) -> bool:
    """A past message the business sent: ``to`` is set only on those (Meta's "SMB message
    echo"), and ``from`` is then the business's own number."""
    if msg.get("to") or msg.get("to_user_id"):
        return True
    sender = as_str(msg.get("from"))
    return sender is not None and sender == ctx.display_phone_number


def _thread_person(thread: Json, msg: Json, outbound: bool) -> Person:
    """The customer of a thread: its ``context`` ids, else its ``id`` (a phone), else the
    message's own customer side (``from*`` inbound, ``to*`` outbound)."""
    context = thread.get("context")
    context = context if isinstance(context, dict) else {}
    side = "to" if outbound else "from"
    contact = build_contact(
        wa_id=as_str(context.get("wa_id")) or as_str(thread.get("id")) or as_str(msg.get(side)),
        user_id=as_str(context.get("user_id")) or as_str(msg.get(f"{side}_user_id")),
        parent_user_id=as_str(context.get("parent_user_id"))
        or as_str(msg.get(f"{side}_parent_user_id")),
        username=as_str(context.get("username")),
    )
    return Person(contact)


def _past_message(
    ctx: ChangeContext, msg: object, thread: Json | None, history: Json
) -> CanonicalEvent:
    """One ``whatsapp.history.message``; ``thread`` is None for a media follow-up."""
    wamid = as_str(msg.get("id")) if isinstance(msg, dict) else None
    if not isinstance(msg, dict) or wamid is None:
        return unknown_event(ctx, msg)
    kind = as_str(msg.get("type"))
    outbound = _is_outbound(ctx, msg)
    if thread is not None:
        person = _thread_person(thread, msg, outbound)
    else:
        side = "to" if outbound else "from"
        ids = (msg.get(side), msg.get(f"{side}_user_id"), msg.get(f"{side}_parent_user_id"))
        person = ctx.person(as_str(ids[0]), as_str(ids[1]), as_str(ids[2]))
    epoch = epoch_of(msg.get("timestamp"))
    data = ctx.base(person.contact)
    data["message_id"] = wamid
    data["message_type"] = kind
    data["direction"] = "outbound" if outbound else "inbound"
    data["timestamp"] = ts(epoch)
    data.update(message_content(msg, kind, inbound=not outbound))
    context = msg.get("history_context")
    status = as_str(context.get("status")) if isinstance(context, dict) else None
    data["history"] = {**history, "status": status.lower() if status else None}
    if thread is not None:
        extra = {k: v for k, v in thread.items() if k not in _THREAD_KEYS}
        data["thread"] = {"id": thread.get("id"), "context": thread.get("context"), **extra}
    data["raw"] = msg
    ctx.keep_extra(data, person.card_extra)
    prefix = "history" if thread is not None else "history.media"
    contact = person.contact
    return ctx.event("whatsapp.history.message", f"wa:{prefix}:{wamid}", epoch, contact, data)


def _chunk(ctx: ChangeContext, item: object, out: list[CanonicalEvent]) -> None:
    """A ``history[]`` item: its past messages, then its ``whatsapp.history.status``."""
    if not isinstance(item, dict):
        out.append(unknown_event(ctx, item))
        return
    metadata = item.get("metadata")
    metadata = metadata if isinstance(metadata, dict) else {}
    history: Json = {
        "part": "chunk",
        "phase": _count(metadata.get("phase")),
        "chunk_order": _count(metadata.get("chunk_order")),
        "progress": _count(metadata.get("progress")),
    }
    threads = item.get("threads")
    threads = threads if isinstance(threads, list) else []
    message_ids: list[str | None] = []
    for thread in threads:
        messages = thread.get("messages") if isinstance(thread, dict) else None
        if not isinstance(thread, dict) or not isinstance(messages, list):
            out.append(unknown_event(ctx, thread))
            continue
        for msg in messages:
            event = _past_message(ctx, msg, thread, history)
            out.append(event)
            message_ids.append(event.data.get("message_id"))
    out.append(_chunk_status(ctx, item, history, len(threads), message_ids))


def _chunk_status(
    ctx: ChangeContext, item: Json, history: Json, threads: int, message_ids: list[str | None]
) -> CanonicalEvent:
    data = ctx.base(None)
    data.update({k: v for k, v in history.items() if k != "part"})
    data["thread_count"] = threads
    data["message_count"] = len(message_ids)
    data["is_complete"] = history["progress"] == _DONE
    errors = errors_of(item.get("errors"))
    if errors:
        data["errors"] = errors
    data["raw"] = {k: v for k, v in item.items() if k != "threads"}  # messages: their events
    ctx.keep_extra(data)
    key = {"phone_number_id": ctx.phone_number_id, "item": data["raw"], "ids": message_ids}
    event_id = ctx.hashed_id("history.status", key)
    return ctx.event("whatsapp.history.status", event_id, None, None, data)


def _history(ctx: ChangeContext, out: list[CanonicalEvent]) -> None:
    parts = split_value(ctx.change.value, _HISTORY_ITEMS)
    ctx.value_extra = parts.extra
    for key in parts.item_keys:
        for item in ctx.change.value[key]:
            if key == "history":
                _chunk(ctx, item, out)
            else:  # the media of a past media message, sent after its chunk
                out.append(_past_message(ctx, item, None, {"part": "media"}))
    if parts.leftover is not None:
        out.append(unknown_event(ctx, parts.leftover))


def _contact_book(ctx: ChangeContext, item: object) -> CanonicalEvent:
    """One ``state_sync[]`` item of type ``contact``: the business added, edited
    (``action: add``) or removed (``remove``) a contact in its WhatsApp Business app."""
    entry = item.get("contact") if isinstance(item, dict) else None
    if not isinstance(item, dict) or item.get("type") != "contact" or not isinstance(entry, dict):
        return unknown_event(ctx, item)
    phone = as_str(entry.get("phone_number"))
    # The book's phone is as the business stored it, not an address Meta gave us to reply
    # to: it names the person (phone_e164) but is not their wa_id. Their name in the book
    # is the business's label, not their WhatsApp profile name.
    person = ctx.person_of(
        None,
        None,
        as_str(entry.get("user_id")),
        as_str(entry.get("parent_user_id")),
        linked=(phone,) if phone else (),
    )
    metadata = item.get("metadata")
    epoch = epoch_of(metadata.get("timestamp")) if isinstance(metadata, dict) else None
    full_name, first_name = as_str(entry.get("full_name")), as_str(entry.get("first_name"))
    data = ctx.base(person.contact)
    data.update(
        action=as_str(item.get("action")),
        name=cut(full_name or first_name, TEXT_LIMITS["profile_name"]),
        full_name=full_name,
        first_name=first_name,
        phone_number=phone,
        timestamp=ts(epoch),
        raw=item,
    )
    ctx.keep_extra(data)
    event_id = ctx.hashed_id("contact_book", item)
    return ctx.event("whatsapp.contact_book.update", event_id, epoch, person.contact, data)


COEXISTENCE_HANDLERS: Final[dict[str, Handler]] = {
    "history": _history,
    "smb_app_state_sync": items_handler(("state_sync",), {"state_sync": _contact_book}),
}
