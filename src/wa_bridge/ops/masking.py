"""What a viewer may see of personal data: masked phones, hidden text, names and ids.

Phones show their country code and last two digits (``+52•••••••••78``); message text,
names, usernames, e-mails and BSUIDs show as ``•••``. Operators see events as stored.

Free text that may quote personal data (a CRM's own error message: HubSpot's validation
messages quote the values refused) is masked by :func:`mask_text`: every personal value of
the event it is about, every e-mail address and every run of 7 or more digits.
"""

from __future__ import annotations

import re
from typing import Any, Final

__all__ = ["HIDDEN", "mask_event", "mask_phone", "mask_text"]

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


_EMAIL: Final = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# a phone as people write it: digits with spaces, dots, dashes and brackets (7+ digits),
# standing alone (not inside an id such as 003000000000006AAA or a UUID); not a date
_NUMBER: Final = re.compile(r"(?<![\w.+-])\+?\d(?:[\d\s().-]*\d)?(?![\w])")
_DATE: Final = re.compile(r"\d{4}-\d{2}-\d{2}")
_MIN_DIGITS: Final = 7
_MIN_WORD: Final = 3


def _personal(value: Any, key: str = "") -> list[tuple[str, str]]:
    """(personal value, its masked form) of a JSON value, by key at any depth."""
    if isinstance(value, dict):
        return [pair for k, v in value.items() for pair in _personal(v, str(k))]
    if isinstance(value, list):
        return [pair for v in value for pair in _personal(v, key)]
    if not isinstance(value, str | int) or isinstance(value, bool):
        return []
    text = str(value).strip()
    if key in _PHONE_KEYS:
        return [(text, mask_phone(text))] if len(text) >= _MIN_WORD else []
    if key in _HIDDEN_KEYS:  # the whole value, and each word of a name
        words = [w for w in text.split() if len(w) >= _MIN_WORD]
        return [(w, HIDDEN) for w in (text, *words) if len(w) >= _MIN_WORD]
    return []


def _number(found: re.Match[str]) -> str:
    text = found.group()
    if sum(ch.isdigit() for ch in text) < _MIN_DIGITS or _DATE.match(text):
        return text
    return mask_phone(text)


def mask_text(text: str, event: Any = None) -> str:
    """``text`` with the personal values of ``event`` (a canonical event as JSON), e-mail
    addresses and phone-like numbers masked."""
    for value, masked in sorted(_personal(event), key=lambda p: -len(p[0])):
        text = text.replace(value, masked)
    text = _EMAIL.sub(HIDDEN, text)
    return _NUMBER.sub(_number, text)
