"""The contact key known at receipt, and building a :class:`Contact` from webhook fields.

The key is the E.164 phone when there is one, else ``bsuid:<user_id>``; ``None`` when the
item names nobody. Identity across events (BSUID ↔ phone links, changes) is resolved in
the worker's identity graph, not here.
"""

from __future__ import annotations

from wa_bridge.events import Contact
from wa_bridge.normalize.phones import country_of, user_e164

__all__ = ["bsuid_country", "build_contact", "contact_key"]


def contact_key(phone_e164: str | None, user_id: str | None) -> str | None:
    """``phone_e164`` if known, else ``"bsuid:" + user_id``, else None."""
    if phone_e164:
        return phone_e164
    if user_id:
        return "bsuid:" + user_id
    return None


def bsuid_country(user_id: str) -> str | None:
    """The ISO country a BSUID starts with (``"MX.1745…"`` → ``"MX"``), if it has one."""
    prefix, dot, _ = user_id.partition(".")
    if dot and len(prefix) == 2 and prefix.isascii() and prefix.isupper():
        return prefix
    return None


def build_contact(
    *,
    wa_id: str | None,
    user_id: str | None,
    parent_user_id: str | None = None,
    username: str | None = None,
    profile_name: str | None = None,
    linked: tuple[str, ...] = (),
) -> Contact | None:
    """A Contact from the identifiers an item carries; None when it has no id at all.

    ``linked`` are more numbers (wa_ids or phone strings) the payload pairs with this
    person (a ``contact_request`` card, a BR 12/13-digit pair); the first one is the phone
    when ``wa_id`` gives none. Every number is keyed with :func:`user_e164`.
    """
    phone = user_e164(wa_id) if wa_id else None
    others: list[str] = []
    for raw in linked:
        other = user_e164(raw)
        if other is not None and other != phone and other not in others:
            others.append(other)
    if phone is None and others:
        phone = others.pop(0)
    if phone is None and not wa_id and not user_id:
        return None
    if phone is not None:
        country = country_of(phone)
    else:  # a username user without a shared phone: the BSUID names the country
        country = bsuid_country(user_id) if user_id else None
    return Contact(
        key=contact_key(phone, user_id),
        phone_e164=phone,
        wa_id=wa_id,
        user_id=user_id,
        parent_user_id=parent_user_id,
        username=username,
        profile_name=profile_name,
        country=country,
        linked_phones=tuple(others),
    )
