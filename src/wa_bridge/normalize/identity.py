"""The contact key known at receipt, and building a :class:`Contact` from webhook fields.

The key is the E.164 phone when there is one, else ``bsuid:<user_id>``; ``None`` when the
item names nobody. Identity across events (BSUID ↔ phone links, changes) is resolved in
the worker's identity graph, not here.
"""

from __future__ import annotations

from wa_bridge.events import Contact
from wa_bridge.normalize.phones import country_of, to_e164

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
) -> Contact | None:
    """A Contact from the identifiers an item carries; None when it has neither id."""
    if not wa_id and not user_id:
        return None
    phone = to_e164(wa_id) if wa_id else None
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
    )
