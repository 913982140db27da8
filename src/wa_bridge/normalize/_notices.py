"""Identity-change notices → ``data.identity_change`` and the person as they are now.

Meta has said "this person is now known by other ids" in several shapes (fixtures README,
"Identity", as corrected by Meta's changelog of 2026-08-11):

- ``system`` messages of type ``user_changed_number`` (``wa_id`` = the new phone, and since
  2026-08 ``user_id`` = the new BSUID and ``previous_user_id``), older ones with only
  ``wa_id`` or ``new_wa_id``, and the legacy names ``customer_changed_number`` /
  ``customer_identity_changed``. ``from`` / ``from_user_id`` name the old identity.
- ``system`` messages of type ``user_changed_user_id``: ``user_id`` / ``parent_user_id``
  new, ``previous_user_id`` / ``previous_parent_user_id`` old, possibly with no ``from``,
  no ``wa_id`` and no ``contacts``.
- ``user_id_update`` items (``user_id: {previous, current}``), should one arrive.

Each becomes one shape the worker reads (``facts.identity_change_of``)::

    identity_change: {notice, kind: "number" | "user_id",
                      previous: {phone_e164, wa_id, user_id, parent_user_id},
                      current:  {phone_e164, wa_id, user_id, parent_user_id}}

and the event's ``contact`` is the person as the notice leaves them (the new phone is the
address to reply to), so the notice lands on the same contact as the messages after it.
A ``kind: number`` notice renews the BSUIDs: Meta regenerates them with a new number.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Literal

from wa_bridge.normalize._context import ChangeContext, Json, Person
from wa_bridge.normalize.meta import as_str
from wa_bridge.normalize.phones import user_e164

__all__ = ["Notice", "id_update_notice", "system_notice"]

NoticeKind = Literal["number", "user_id"]
NUMBER_NOTICES: Final = frozenset(
    {"user_changed_number", "customer_changed_number", "customer_identity_changed"}
)
USER_ID_NOTICES: Final = frozenset({"user_changed_user_id"})


@dataclass(frozen=True, slots=True)
class Ids:
    """One side of a notice: the identifiers as Meta sent them."""

    wa_id: str | None = None
    user_id: str | None = None
    parent_user_id: str | None = None

    def to_dict(self) -> Json:
        return {
            "phone_e164": user_e164(self.wa_id) if self.wa_id else None,
            "wa_id": self.wa_id,
            "user_id": self.user_id,
            "parent_user_id": self.parent_user_id,
        }


@dataclass(frozen=True, slots=True)
class Notice:
    """What a notice tells: the person as it leaves them, and the change itself."""

    person: Person
    identity_change: Json


def _moves(previous: Ids, current: Ids) -> bool:
    """True when ``current`` names an identifier ``previous`` does not have."""
    old, new = previous.to_dict(), current.to_dict()
    return any(new[k] and new[k] != old[k] for k in ("phone_e164", "user_id", "parent_user_id"))


def _notice(
    ctx: ChangeContext,
    card: Json | None,
    notice: str,
    kind: NoticeKind,
    ids: tuple[Ids, Ids],
) -> Notice | None:
    previous, current = ids
    if not _moves(previous, current):
        return None
    person = ctx.person_of(card, current.wa_id, current.user_id, current.parent_user_id)
    change = {
        "notice": notice,
        "kind": kind,
        "previous": previous.to_dict(),
        "current": current.to_dict(),
    }
    return Notice(person, change)


def _from_card(ids: Ids, card: Json | None, new_user_id: str | None) -> Ids:
    """``ids`` completed from the sender card (never with the new BSUID it may carry)."""
    if card is None:
        return ids
    card_user = as_str(card.get("user_id"))
    return Ids(
        wa_id=ids.wa_id or as_str(card.get("wa_id")),
        user_id=ids.user_id or (card_user if card_user != new_user_id else None),
        parent_user_id=ids.parent_user_id or as_str(card.get("parent_user_id")),
    )


def system_notice(ctx: ChangeContext, msg: Json, system: Json) -> Notice | None:
    """The notice a ``system`` message carries, or None (another system message, or one
    whose ids move nothing, such as a security-code ``customer_identity_changed``)."""
    notice = as_str(system.get("type"))
    kind: NoticeKind
    if notice in NUMBER_NOTICES:
        kind = "number"
    elif notice in USER_ID_NOTICES:
        kind = "user_id"
    else:
        return None
    new_user = as_str(system.get("user_id"))
    sender = Ids(
        wa_id=as_str(msg.get("from")) or as_str(system.get("customer")),
        user_id=as_str(system.get("previous_user_id")) or as_str(msg.get("from_user_id")),
        parent_user_id=as_str(system.get("previous_parent_user_id"))
        or as_str(msg.get("from_parent_user_id")),
    )
    card = ctx.card(sender.wa_id, sender.user_id)
    previous = _from_card(sender, card, new_user)
    new_wa_id = as_str(system.get("wa_id")) or as_str(system.get("new_wa_id"))
    new_parent = as_str(system.get("parent_user_id"))
    if kind == "user_id":  # the phone stays; a parent not said to change stays too
        new_wa_id = new_wa_id or previous.wa_id
        if new_parent is None and "previous_parent_user_id" not in system:
            new_parent = previous.parent_user_id
    current = Ids(new_wa_id, new_user, new_parent)
    return _notice(ctx, card, str(notice), kind, (previous, current))


def _pair(raw: object) -> tuple[str | None, str | None]:
    """``{previous, current}`` → both; a plain string is the current id alone."""
    if isinstance(raw, dict):
        return as_str(raw.get("previous")), as_str(raw.get("current"))
    return None, as_str(raw)


def id_update_notice(ctx: ChangeContext, item: dict[str, Any]) -> Notice | None:
    """The notice of a ``user_id_update`` item, or None when its ids move nothing."""
    old_user, new_user = _pair(item.get("user_id"))
    old_parent, new_parent = _pair(item.get("parent_user_id"))
    if not isinstance(item.get("parent_user_id"), dict):
        old_parent = new_parent  # a plain parent id is one the person keeps
    sender = Ids(as_str(item.get("wa_id")), old_user, old_parent)
    card = ctx.card(sender.wa_id, old_user) or ctx.card(None, new_user)
    previous = _from_card(sender, card, new_user)
    current = Ids(previous.wa_id, new_user, new_parent or previous.parent_user_id)
    return _notice(ctx, card, "user_id_update", "user_id", (previous, current))
