"""Field types: check and convert a mapped value to what the CRM field holds.

Each type is a function ``value → FieldValue`` built once per field (with its options:
``max_length``, ``min_length``, ``values``); it raises :class:`BadValue` with the reason
(never the value: the engine adds a masked, truncated copy of it to the message).

- ``string``: text (numbers are accepted as their text), ``min_length``/``max_length``.
- ``int``: an integer, or integer text; ``decimal``: a number or numeric text, by the rules
  every decimal follows (:mod:`wa_bridge.normalize.decimals`: finite, at most 40 characters
  as given and as written out).
- ``bool``: true/false, or the texts true/false/yes/no/1/0.
- ``datetime``: RFC 3339 text with an offset, or epoch seconds → an aware datetime.
- ``enum``: one of ``values``.
- ``phone``: any phone or wa_id text → E.164 (``+5215512345678`` → ``+525512345678``).
- ``email``: one ``@``, a dotted domain, no spaces; the domain is lower-cased.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any, Final

from wa_bridge.mapping.expressions import parse_time
from wa_bridge.normalize.decimals import NotADecimal, parse_decimal
from wa_bridge.normalize.phones import to_e164
from wa_bridge.operations import FieldValue

__all__ = ["TYPE_NAMES", "BadValue", "Coercer", "make_coercer"]

Coercer = Callable[[Any], FieldValue]
TYPE_NAMES: Final = ("string", "int", "decimal", "bool", "datetime", "enum", "phone", "email")

_INT_TEXT = re.compile(r"^[+-]?\d{1,30}$")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s.]+$")
_TRUE = frozenset({"true", "yes", "1"})
_FALSE = frozenset({"false", "no", "0"})


class BadValue(Exception):
    """A value does not fit its field's type; the message says what was expected."""


def _string(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise BadValue("expected text")
    return str(value)


def _int(value: Any) -> int:
    if isinstance(value, bool):
        raise BadValue("expected an integer, got a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and _INT_TEXT.match(value.strip()):
        return int(value)
    if isinstance(value, float | Decimal) and value == value and value % 1 == 0:
        return int(value)
    raise BadValue("expected an integer")


def _decimal(value: Any) -> Decimal:
    try:
        return parse_decimal(value)
    except NotADecimal as exc:
        raise BadValue(f"expected {exc.expected}") from None


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str | int):
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    raise BadValue("expected a boolean (true/false)")


def _datetime(value: Any) -> FieldValue:
    moment = parse_time(value)
    if moment is None:
        raise BadValue("expected an RFC 3339 time with offset or epoch seconds")
    return moment


def _phone(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    e164 = to_e164(value) if isinstance(value, str) else None
    if e164 is None:
        raise BadValue("expected a phone number (E.164 or a wa_id)")
    return e164


def _email(value: Any) -> str:
    if not isinstance(value, str) or len(value) > 254 or not _EMAIL.match(value.strip()):
        raise BadValue("expected an email address")
    local, _, domain = value.strip().rpartition("@")
    return f"{local}@{domain.lower()}"


_BASE: Final[dict[str, Coercer]] = {
    "string": _string,
    "int": _int,
    "decimal": _decimal,
    "bool": _bool,
    "datetime": _datetime,
    "enum": _string,
    "phone": _phone,
    "email": _email,
}


def make_coercer(
    type_name: str,
    *,
    max_length: int | None = None,
    min_length: int | None = None,
    values: Sequence[Any] | None = None,
) -> Coercer:
    """The check for one field; options not given cost nothing per value."""
    base = _BASE[type_name]
    if type_name == "enum" and values is not None:
        allowed = frozenset(str(v) if not isinstance(v, bool) else str(v).lower() for v in values)
        shown = ", ".join(sorted(allowed))

        def enum(value: Any) -> FieldValue:
            text = _string(value)
            if text not in allowed:
                raise BadValue(f"expected one of: {shown}")
            return text

        return enum
    if max_length is None and min_length is None:
        return base
    hi = max_length if max_length is not None else 1 << 30
    lo = min_length or 0

    def sized(value: Any) -> FieldValue:
        out = base(value)
        size = len(out) if isinstance(out, str) else 0
        if size > hi:
            raise BadValue(f"longer than max_length {hi} ({size} characters)")
        if size < lo:
            raise BadValue(f"shorter than min_length {lo} ({size} characters)")
        return out

    return sized
