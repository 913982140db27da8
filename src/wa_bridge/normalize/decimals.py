"""A decimal number given as a string or a JSON number: the one set of rules. Pure.

Every place that reads such a value (an order item's quantity and price, the inbox's
``value``, the worker's outcome value, a mapping's ``decimal`` field) parses it here, so a
value taken at the edge is never refused, or read differently, further down.

The rules:

- text is stripped; an int is written out; a float is read as its shortest round-trip
  text (``repr``: ``0.1`` is ``0.1``, not ``0.1000000000000000055…``); a Decimal is taken
  as it is. A bool, None or anything else is refused.
- the text is at most :data:`MAX_DECIMAL_CHARS` characters and reads as a Python
  ``Decimal`` (``1249.90``, ``-3``, ``1E+3``, ``.5``);
- the number is finite (no NaN, no Infinity);
- written out in plain digits (``format(number, "f")``) it is at most
  :data:`MAX_DECIMAL_CHARS` characters too: ``1e999999`` is short until written out, and
  no CRM field or database column holds it. The length is counted, never written out.

An *amount* (the inbox's ``value``, the outcome value the worker keeps on a case) must
also be below :data:`MAX_AMOUNT` in magnitude (:func:`parse_amount`): our tables keep it as
``NUMERIC(18, 4)``, 14 digits before the point, and PostgreSQL refuses a larger one in the
middle of a batch. Digits past the fourth decimal place are rounded there.

A refusal raises :class:`NotADecimal`, a ``ValueError`` whose message says what was
expected (``must be a finite decimal number``) and never echoes the value.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Final

__all__ = [
    "MAX_AMOUNT",
    "MAX_DECIMAL_CHARS",
    "NotADecimal",
    "amount_or_none",
    "decimal_or_none",
    "parse_amount",
    "parse_decimal",
    "plain_text",
]

MAX_DECIMAL_CHARS: Final = 40  # also the most digits (and point and sign) written out
# An amount's bound: store.tables keeps amounts as NUMERIC(18, 4) (tests/store check it).
MAX_AMOUNT: Final = Decimal(10) ** 14
_MAX_INT_BITS: Final = 4 * MAX_DECIMAL_CHARS  # more bits than this: more digits than the limit


class NotADecimal(ValueError):
    """A value is not a decimal number these rules accept.

    ``expected`` is what it should have been (``a finite decimal number``); the message is
    ``must be <expected>``. Callers that phrase errors their own way use ``expected``.
    """

    def __init__(self, expected: str) -> None:
        super().__init__(f"must be {expected}")
        self.expected = expected


_NOT_A_NUMBER: Final = "a decimal number, as a string or a number"
_NOT_A_BOOLEAN: Final = "a decimal number, as a string or a number, not a boolean"
_BAD_SYNTAX: Final = "a decimal number such as 1249.90"
_NOT_FINITE: Final = "a finite decimal number"
_TOO_MANY_CHARS: Final = f"at most {MAX_DECIMAL_CHARS} characters"
_TOO_MANY_DIGITS: Final = f"at most {MAX_DECIMAL_CHARS} digits long"
_TOO_LARGE: Final = "less than 100000000000000 (10^14) in magnitude"


def parse_decimal(value: object) -> Decimal:
    """``value`` (str, int, float or Decimal) as a finite Decimal; raises NotADecimal.

    The Decimal is the one the text reads as (``"1E+3"`` stays ``Decimal("1E+3")``; use
    :func:`plain_text` for ``"1000"``).
    """
    number = _number(_text(value))
    if not number.is_finite():
        raise NotADecimal(_NOT_FINITE)
    if _plain_length(number) > MAX_DECIMAL_CHARS:
        raise NotADecimal(_TOO_MANY_DIGITS)
    return number


def decimal_or_none(value: object) -> Decimal | None:
    """:func:`parse_decimal`, or None for a value it refuses (for readers that skip it)."""
    return _or_none(parse_decimal, value)


def parse_amount(value: object) -> Decimal:
    """:func:`parse_decimal`, and below :data:`MAX_AMOUNT` in magnitude; raises NotADecimal."""
    number = parse_decimal(value)
    if abs(number) >= MAX_AMOUNT:
        raise NotADecimal(_TOO_LARGE)
    return number


def amount_or_none(value: object) -> Decimal | None:
    """:func:`parse_amount`, or None for a value it refuses."""
    return _or_none(parse_amount, value)


def _or_none(parse: Callable[[object], Decimal], value: object) -> Decimal | None:
    try:
        return parse(value)
    except NotADecimal:
        return None


def plain_text(number: Decimal) -> str:
    """A parsed number in plain digits, as posted (``"1249.90"``, ``"1000"`` for 1E+3)."""
    return format(number, "f")


def _text(value: object) -> str:
    if isinstance(value, str):
        text = value.strip()
    elif isinstance(value, bool):
        raise NotADecimal(_NOT_A_BOOLEAN)
    elif isinstance(value, float):
        text = repr(value)
    elif isinstance(value, int):
        if value.bit_length() > _MAX_INT_BITS:  # str() of a huge int is slow, or refused
            raise NotADecimal(_TOO_MANY_CHARS)
        text = str(value)
    elif isinstance(value, Decimal):
        text = str(value)
    else:
        raise NotADecimal(_NOT_A_NUMBER)
    if len(text) > MAX_DECIMAL_CHARS:
        raise NotADecimal(_TOO_MANY_CHARS)
    return text


def _number(text: str) -> Decimal:
    try:
        return Decimal(text)
    except InvalidOperation:
        raise NotADecimal(_BAD_SYNTAX) from None


def _plain_length(number: Decimal) -> int:
    """``len(format(number, "f"))``, counted: ``1E+999999999`` would be a gigabyte."""
    sign, digits, exponent = number.as_tuple()
    assert isinstance(exponent, int)  # finite: the caller checked
    if exponent >= 0:
        size = 1 if number.is_zero() else len(digits) + exponent
    elif len(digits) > -exponent:
        size = len(digits) + 1  # the point inside the digits
    else:
        size = 2 - exponent  # "0." then zeros, then the digits
    return size + sign
