"""What a viewer may see of personal data: masked phones, hidden text, names and ids.

Phones show their country code and last two digits (``+52•••••••••78``); message text,
names, usernames, e-mails and BSUIDs show as ``•••``. Operators see events as stored.
"""

from __future__ import annotations

from typing import Any, Final

__all__ = ["HIDDEN", "mask_event", "mask_phone"]

HIDDEN: Final = "•••"
_PHONE_KEYS: Final = frozenset(
    {
        "phone_e164",
        "wa_id",
        "from",
        "to",
        "recipient_id",
        "phone",
        "phone_number",
        "subject",
        "key",
        "contact_key",
        "linked_phones",
        "display_phone_number_customer",
    }
)
_HIDDEN_KEYS: Final = frozenset(
    {
        "text",
        "body",
        "caption",
        "name",
        "profile_name",
        "username",
        "email",
        "user_id",
        "parent_user_id",
        "from_user_id",
        "recipient_user_id",
        "parent_recipient_user_id",
        "formatted_name",
        "first_name",
        "last_name",
        "address",
        "emails",
        "phones",
        "urls",
    }
)


def mask_phone(value: str) -> str:
    """``+5215512345678`` → ``+52•••••••••78``; a ``bsuid:…`` key → ``bsuid:•••``."""
    if value.startswith("bsuid:"):
        return "bsuid:" + HIDDEN
    digits = [ch for ch in value if ch.isdigit()]
    if len(digits) < 6:
        return HIDDEN
    head = "+" + "".join(digits[:2]) if value.startswith("+") else "".join(digits[:2])
    return head + "•" * (len(digits) - 4) + "".join(digits[-2:])


def mask_event(value: Any, key: str = "") -> Any:
    """A copy of a JSON value with personal data masked (by key, at any depth)."""
    if isinstance(value, dict):
        return {k: mask_event(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_event(v, key) for v in value]
    if value is None or (isinstance(value, bool | int | float) and key not in _PHONE_KEYS):
        return value
    if key in _PHONE_KEYS:
        return mask_phone(str(value))
    if key in _HIDDEN_KEYS:
        return HIDDEN
    return value
