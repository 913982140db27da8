"""What every event of one change shares: source, times, sender cards, id helpers."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from wa_bridge.events import CanonicalEvent, Contact, EventType
from wa_bridge.normalize.bounds import TEXT_LIMITS, cut
from wa_bridge.normalize.identity import build_contact
from wa_bridge.normalize.meta import Change, as_str, epoch_of, item_hash, rfc3339_from_epoch

__all__ = [
    "ChangeContext",
    "Handler",
    "ItemHandler",
    "Json",
    "Person",
    "items_handler",
    "split_value",
    "ts",
    "unknown_event",
]

Json = dict[str, Any]

# The keys of a sender card (value.contacts[]) and of its profile that we model.
_CARD_KEYS: Final = frozenset({"profile", "wa_id", "user_id", "parent_user_id"})
_PROFILE_KEYS: Final = frozenset({"name", "username"})
# The keys of a value every field shares; item lists are per field.
_VALUE_KEYS: Final = frozenset({"messaging_product", "metadata", "contacts"})
# The lists whose items a sender card can describe (for the one-card, one-item pairing).
_ITEM_LISTS: Final = (
    "messages",
    "statuses",
    "message_echoes",
    "user_preferences",
    "user_id_update",
)


@dataclass(frozen=True, slots=True)
class Person:
    """Who an item names, and the keys of their sender card we do not model."""

    contact: Contact | None
    card_extra: Json = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ValueParts:
    """A value split by what becomes of each key (see :func:`split_value`)."""

    item_keys: tuple[str, ...]  # item lists present: one event per item
    extra: Json  # keys we do not model: kept on every event's raw_extra.value
    leftover: Json | None  # the value without its modelled item lists, if something is unknown


def split_value(value: Json, item_keys: tuple[str, ...]) -> ValueParts:
    """Split a known field's ``value``: its item lists, the keys we keep on each event, and
    what becomes a ``whatsapp.unknown`` (an unknown item array, a known list that is not a
    list, or a value with no item list at all: then the whole value)."""
    present = tuple(k for k in item_keys if isinstance(value.get(k), list))
    extra: Json = {}
    unknown = False
    for key, item in value.items():
        if key in present or key in _VALUE_KEYS:
            continue
        if key in item_keys or isinstance(item, list):
            unknown = True
        else:
            extra[key] = item
    if not present:
        return ValueParts((), {}, value)
    leftover = {k: v for k, v in value.items() if k not in present} if unknown else None
    return ValueParts(present, extra, leftover)


class ChangeContext:
    """What every event of one change shares."""

    __slots__ = (
        "_index",
        "_sole_card",
        "change",
        "display_phone_number",
        "phone_number_id",
        "recvtime",
        "source",
        "value_extra",
    )

    def __init__(self, change: Change, recvtime: str) -> None:
        self.change = change
        self.recvtime = recvtime
        metadata = change.value.get("metadata")
        if not isinstance(metadata, dict):
            metadata = {}
        self.phone_number_id = as_str(metadata.get("phone_number_id"))
        self.display_phone_number = as_str(metadata.get("display_phone_number"))
        if self.phone_number_id is not None:
            self.source = "whatsapp:" + self.phone_number_id
        else:
            self.source = "whatsapp:waba:" + (change.entry_id or "unknown")
        self._index: dict[str, Json] | None = None
        self._sole_card: Json | None = None
        self.value_extra: Json = {}  # set by the field's handler (split_value)

    def _contacts_index(self) -> dict[str, Json]:
        if self._index is None:
            self._index = {}
            cards = self.change.value.get("contacts")
            cards = [c for c in cards if isinstance(c, dict)] if isinstance(cards, list) else []
            for card in cards:
                wa_id, user_id = as_str(card.get("wa_id")), as_str(card.get("user_id"))
                if wa_id:
                    self._index.setdefault("w:" + wa_id, card)
                if user_id:
                    self._index.setdefault("u:" + user_id, card)
            # One card beside one status and nothing else: the card describes its recipient
            # (Meta's "recipient_id beside a contacts[].wa_id"), even if the ids differ.
            items = [self.change.value.get(k) for k in _ITEM_LISTS]
            count = sum(len(i) for i in items if isinstance(i, list))
            statuses = self.change.value.get("statuses")
            is_one_status = count == 1 and isinstance(statuses, list) and len(statuses) == 1
            if len(cards) == 1 and is_one_status:
                self._sole_card = cards[0]
        return self._index

    def card(self, wa_id: str | None, user_id: str | None) -> Json | None:
        """The sender card (``value.contacts[]``) of the person with these ids, if any."""
        index = self._contacts_index()
        card = index.get("w:" + wa_id) if wa_id else None
        if card is None and user_id:
            card = index.get("u:" + user_id)
        if card is None and wa_id and not user_id:
            card = self._sole_card
        return card

    def person(
        self,
        wa_id: str | None,
        user_id: str | None,
        parent: str | None,
        *,
        linked: tuple[str, ...] = (),
    ) -> Person:
        """The person an item names, completed from their sender card.

        A card's ``wa_id`` other than the item's (a card found by the item's BSUID, or the
        only card beside the only status) is the same person's number: it goes to
        ``linked_phones``. ``linked`` adds numbers the item itself pairs with the person.
        """
        card = self.card(wa_id, user_id)
        if card is not None:
            card_wa_id = as_str(card.get("wa_id"))
            if card_wa_id and wa_id and card_wa_id != wa_id:
                linked = (*linked, card_wa_id)
            wa_id = wa_id or card_wa_id
            user_id = user_id or as_str(card.get("user_id"))
            parent = parent or as_str(card.get("parent_user_id"))
        return self.person_of(card, wa_id, user_id, parent, linked=linked)

    def person_of(
        self,
        card: Json | None,
        wa_id: str | None,
        user_id: str | None,
        parent: str | None,
        *,
        linked: tuple[str, ...] = (),
    ) -> Person:
        """A person with exactly these ids, and the profile and unmodelled keys of ``card``."""
        profile = card.get("profile") if card is not None else None
        if not isinstance(profile, dict):
            profile = {}
        extra = {k: v for k, v in (card or {}).items() if k not in _CARD_KEYS}
        profile_extra = {k: v for k, v in profile.items() if k not in _PROFILE_KEYS}
        if profile_extra:
            extra["profile"] = profile_extra
        contact = build_contact(
            wa_id=wa_id,
            user_id=user_id,
            parent_user_id=parent,
            username=as_str(profile.get("username")),
            profile_name=cut(as_str(profile.get("name")), TEXT_LIMITS["profile_name"]),
            linked=linked,
        )
        return Person(contact, extra)

    def contact(self, wa_id: str | None, user_id: str | None, parent: str | None) -> Contact | None:
        """The contact of :meth:`person`."""
        return self.person(wa_id, user_id, parent).contact

    def event(
        self, kind: EventType, event_id: str, epoch: int | None, contact: Contact | None, data: Json
    ) -> CanonicalEvent:
        if epoch is None:
            epoch = self.change.entry_time
        return CanonicalEvent(
            id=event_id,
            type=kind,
            source=self.source,
            time=rfc3339_from_epoch(epoch) if epoch is not None else self.recvtime,
            data=data,
            subject=contact.key if contact is not None else None,
            recvtime=self.recvtime,
            wabaid=self.change.entry_id,
        )

    def hashed_id(self, prefix: str, item: object) -> str:
        return f"wa:{prefix}:{item_hash(self.change.field, self.change.entry_id, item)}"

    def base(self, contact: Contact | None) -> Json:
        return {
            "phone_number_id": self.phone_number_id,
            "display_phone_number": self.display_phone_number,
            "contact": contact.to_dict() if contact is not None else None,
        }

    def keep_extra(self, data: Json, card_extra: Json | None = None) -> None:
        """Put the keys of the value and of the sender card we do not model on
        ``data.raw_extra`` (``{value, contact}``, each only when there is one)."""
        extra: Json = {}
        if self.value_extra:
            extra["value"] = self.value_extra
        if card_extra:
            extra["contact"] = card_extra
        if extra:
            data["raw_extra"] = extra


def ts(epoch: int | None) -> str | None:
    return rfc3339_from_epoch(epoch) if epoch is not None else None


def unknown_event(ctx: ChangeContext, raw: object) -> CanonicalEvent:
    epoch = epoch_of(raw.get("timestamp")) if isinstance(raw, dict) else None
    data = {"field": ctx.change.field, "raw": raw}
    return ctx.event("whatsapp.unknown", ctx.hashed_id("unknown", raw), epoch, None, data)


Handler = Callable[["ChangeContext", list[CanonicalEvent]], None]
ItemHandler = Callable[["ChangeContext", object], CanonicalEvent]


def items_handler(items: tuple[str, ...], each: Mapping[str, ItemHandler]) -> Handler:
    """A handler for a field whose value holds item lists: one event per item in payload
    order, the value's keys we do not model kept on each event (``raw_extra.value``), and
    what we cannot read (an unknown item array, no item list at all) as whatsapp.unknown."""

    def handle(ctx: ChangeContext, out: list[CanonicalEvent]) -> None:
        parts = split_value(ctx.change.value, items)
        ctx.value_extra = parts.extra
        for key in parts.item_keys:
            out.extend(each[key](ctx, item) for item in ctx.change.value[key])
        if parts.leftover is not None:
            out.append(unknown_event(ctx, parts.leftover))

    return handle
