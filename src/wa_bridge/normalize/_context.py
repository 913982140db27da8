"""What every event of one change shares: source, times, sender cards, id helpers."""

from __future__ import annotations

from typing import Any

from wa_bridge.events import CanonicalEvent, Contact, EventType
from wa_bridge.normalize.identity import build_contact
from wa_bridge.normalize.meta import Change, as_str, epoch_of, item_hash, rfc3339_from_epoch

__all__ = ["ChangeContext", "Json", "ts", "unknown_event"]

Json = dict[str, Any]


class ChangeContext:
    """What every event of one change shares."""

    __slots__ = (
        "_index",
        "change",
        "display_phone_number",
        "phone_number_id",
        "recvtime",
        "source",
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

    def _contacts_index(self) -> dict[str, Json]:
        if self._index is None:
            self._index = {}
            cards = self.change.value.get("contacts")
            for card in cards if isinstance(cards, list) else ():
                if not isinstance(card, dict):
                    continue
                wa_id, user_id = as_str(card.get("wa_id")), as_str(card.get("user_id"))
                if wa_id:
                    self._index.setdefault("w:" + wa_id, card)
                if user_id:
                    self._index.setdefault("u:" + user_id, card)
        return self._index

    def contact(self, wa_id: str | None, user_id: str | None, parent: str | None) -> Contact | None:
        """The person an item names, completed from ``value.contacts`` (the sender cards)."""
        index = self._contacts_index()
        card = (index.get("w:" + wa_id) if wa_id else None) or (
            index.get("u:" + user_id) if user_id else None
        )
        profile: object = None
        if card is not None:
            wa_id = wa_id or as_str(card.get("wa_id"))
            user_id = user_id or as_str(card.get("user_id"))
            parent = parent or as_str(card.get("parent_user_id"))
            profile = card.get("profile")
        if not isinstance(profile, dict):
            profile = {}
        return build_contact(
            wa_id=wa_id,
            user_id=user_id,
            parent_user_id=parent,
            username=as_str(profile.get("username")),
            profile_name=as_str(profile.get("name")),
        )

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


def ts(epoch: int | None) -> str | None:
    return rfc3339_from_epoch(epoch) if epoch is not None else None


def unknown_event(ctx: ChangeContext, raw: object) -> CanonicalEvent:
    epoch = epoch_of(raw.get("timestamp")) if isinstance(raw, dict) else None
    data = {"field": ctx.change.field, "raw": raw}
    return ctx.event("whatsapp.unknown", ctx.hashed_id("unknown", raw), epoch, None, data)
