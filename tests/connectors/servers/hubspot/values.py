"""Property values as HubSpot checks and derives them.

- :func:`national_digits`: ``hs_searchable_calculated_phone_number`` from ``phone`` (the
  national significant number, without the country code, for a number typed with ``+``;
  the digits as typed otherwise). CRM.md: ``+5511999999999`` → ``11999999999``,
  ``513-227-1572`` → ``5132271572``. HubSpot documents neither rule (*unverified*); the
  ``phonenumbers`` library does the splitting.
- :func:`value_error`: the error code HubSpot gives a bad value of a property type.
  ``INVALID_OPTION`` and ``INVALID_EMAIL`` are HubSpot's; the codes for a bad number or
  date are this stand-in's guess (*unverified*).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

import phonenumbers

from .schema import PropertyDef

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")


def digits(text: str) -> str:
    return "".join(c for c in text if c.isdigit())


def national_digits(text: str) -> str:
    """The searchable digits of a phone number: national number if typed with ``+``."""
    raw = text.strip()
    if not raw:
        return ""
    if raw.startswith("+"):
        try:
            number = phonenumbers.parse(raw, None)
        except phonenumbers.NumberParseException:
            return digits(raw)
        return phonenumbers.national_significant_number(number)
    return digits(raw)


def time_ms(value: str) -> float | None:
    """A HubSpot datetime value (ms since the epoch, or ISO 8601; UTC if no zone) in ms."""
    if re.fullmatch(r"-?\d{1,16}", value):
        return float(value)
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp() * 1000


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def value_error(prop: PropertyDef, value: str, *, name: str) -> tuple[str, str] | None:
    """``(code, message)`` if ``value`` is not valid for ``prop``, else None ("" clears)."""
    if value == "":
        return None
    if prop.type == "number" and not _is_number(value):
        return "INVALID_DOUBLE", f"{value!r} is not a valid number for {name}"
    if prop.type in ("datetime", "date") and time_ms(value) is None:
        return "INVALID_DATE", f"{value!r} is not a valid date for {name}"
    if prop.type == "date" and not re.fullmatch(r"\d+", value):
        try:
            date.fromisoformat(value)
        except ValueError:
            return "INVALID_DATE", f"{value!r} is not a valid date for {name}"
    if prop.type == "bool" and value not in ("true", "false"):
        return "INVALID_BOOLEAN", f"{value!r} is not a valid boolean for {name}"
    if prop.type == "enumeration" and prop.options is not None:
        chosen = value.split(";") if prop.field_type == "checkbox" else [value]
        bad = [v for v in chosen if v not in prop.options]
        if bad:
            return "INVALID_OPTION", (
                f"{bad[0]} was not one of the allowed options: "
                + ", ".join(f"[label: {o!r} value: {o!r}]" for o in prop.options)
            )
    if name == "email" and not _EMAIL.match(value):
        return "INVALID_EMAIL", f"Email address {value} is invalid"
    if name == "deal_currency_code" and not _CURRENCY.match(value):
        return "INVALID_OPTION", f"{value} was not one of the allowed options (ISO 4217 codes)"
    return None
