"""The one set of rules for a decimal given as a string or a JSON number."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wa_bridge.normalize.decimals import (
    MAX_AMOUNT,
    MAX_DECIMAL_CHARS,
    NotADecimal,
    amount_or_none,
    decimal_or_none,
    parse_amount,
    parse_decimal,
    plain_text,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1249.90", Decimal("1249.90")),  # the trailing zero is kept
        ("  1249.90\n", Decimal("1249.90")),  # stripped
        ("   " + "1" * 38 + "   ", Decimal("1" * 38)),  # stripped before it is counted
        ("-3", Decimal("-3")),
        ("+5", Decimal("5")),
        (".5", Decimal("0.5")),
        ("1E+3", Decimal("1E+3")),
        (7, Decimal("7")),
        (-12, Decimal("-12")),
        (0.1, Decimal("0.1")),  # repr: the shortest text that reads back as the float
        (349.5, Decimal("349.5")),
        (1e16, Decimal("1E+16")),
        (Decimal("12.50"), Decimal("12.50")),
        ("1" * MAX_DECIMAL_CHARS, Decimal("1" * MAX_DECIMAL_CHARS)),
        (int("9" * MAX_DECIMAL_CHARS), Decimal("9" * MAX_DECIMAL_CHARS)),
        ("0E+100", Decimal("0E+100")),  # zero is "0" written out, whatever its exponent
    ],
)
def test_accepted(value: object, expected: Decimal) -> None:
    number = parse_decimal(value)
    assert number == expected
    assert str(number) == str(expected)  # the same Decimal, not only an equal one
    assert decimal_or_none(value) == expected


# (value, what the message says was expected)
REFUSED: list[Any] = [
    (True, "a decimal number, as a string or a number, not a boolean"),
    (False, "a decimal number, as a string or a number, not a boolean"),
    (None, "a decimal number, as a string or a number"),
    ([1], "a decimal number, as a string or a number"),
    (b"12", "a decimal number, as a string or a number"),
    ("", "a decimal number such as 1249.90"),
    ("   ", "a decimal number such as 1249.90"),
    ("1,249.90", "a decimal number such as 1249.90"),
    ("twelve", "a decimal number such as 1249.90"),
    ("NaN", "a finite decimal number"),
    ("-Infinity", "a finite decimal number"),
    (float("inf"), "a finite decimal number"),
    (float("nan"), "a finite decimal number"),
    (Decimal("NaN"), "a finite decimal number"),
    ("1" * (MAX_DECIMAL_CHARS + 1), "at most 40 characters"),
    (" " + "1" * (MAX_DECIMAL_CHARS + 1) + " ", "at most 40 characters"),
    (int("9" * (MAX_DECIMAL_CHARS + 1)), "at most 40 characters"),
    pytest.param(10**5000, "at most 40 characters", id="10**5000"),  # str() refuses it
    ("1e40", "at most 40 digits long"),  # 41 digits written out
    ("-" + "1" * 39 + "0", "at most 40 characters"),  # 41 characters with the sign
    ("1e999999", "at most 40 digits long"),
    ("1e-50", "at most 40 digits long"),  # 0.000…01 written out
    ("0E-100", "at most 40 digits long"),
    (1e300, "at most 40 digits long"),
    (Decimal("1E+999999"), "at most 40 digits long"),
]


@pytest.mark.parametrize(("value", "expected"), REFUSED)
def test_refused_with_the_reason(value: object, expected: str) -> None:
    with pytest.raises(NotADecimal) as caught:
        parse_decimal(value)
    assert caught.value.expected == expected
    assert str(caught.value) == f"must be {expected}"
    assert isinstance(caught.value, ValueError)  # pydantic reports it as the field's error
    assert decimal_or_none(value) is None


def test_the_limit_counts_the_written_out_form_with_point_and_sign() -> None:
    assert plain_text(parse_decimal("1e39")) == "1" + "0" * 39  # 40 digits
    assert parse_decimal("-" + "1" * 39) == Decimal("-" + "1" * 39)  # 40 with the sign
    assert plain_text(parse_decimal("1e-38")) == "0." + "0" * 37 + "1"  # 40 with "0."
    with pytest.raises(NotADecimal, match="at most 40 digits long"):
        parse_decimal("-1e39")
    with pytest.raises(NotADecimal, match="at most 40 digits long"):
        parse_decimal("1e-39")


def test_messages_never_echo_the_value() -> None:
    for value in ("+52 55 1234 5678", "5512345678" * 5, "Mariana"):
        with pytest.raises(NotADecimal) as caught:
            parse_decimal(value)
        assert "1234" not in str(caught.value) and "Mariana" not in str(caught.value)


@pytest.mark.parametrize("text", ["1e999999999999999999", "0e-999999999999", "-9E+99999999"])
def test_an_exponent_bomb_is_refused_without_writing_it_out(text: str) -> None:
    # Written out, each is 100 MB or more: the inbox used to write them out to measure them
    # (a MemoryError for the first two). The length is now counted from the exponent.
    with pytest.raises(NotADecimal, match="at most 40 digits long"):
        parse_decimal(text)


def test_plain_text_writes_the_digits_out() -> None:
    assert plain_text(parse_decimal("1E+3")) == "1000"
    assert plain_text(parse_decimal("1249.90")) == "1249.90"
    assert plain_text(parse_decimal(0.1)) == "0.1"
    assert plain_text(parse_decimal("-0")) == "-0"


NUMBERS = st.decimals(allow_nan=False, allow_infinity=False) | st.builds(
    lambda digits, exponent: Decimal(f"{digits}E{exponent}"),
    st.text("0123456789", min_size=1, max_size=12),
    st.integers(-60, 60),
)


@given(NUMBERS)
def test_accepted_exactly_when_short_as_given_and_written_out(number: Decimal) -> None:
    text = str(number)
    fits = len(text) <= MAX_DECIMAL_CHARS and len(format(number, "f")) <= MAX_DECIMAL_CHARS
    assert (decimal_or_none(text) is not None) == fits
    if fits:
        assert plain_text(parse_decimal(text)) == format(number, "f")


@pytest.mark.parametrize(
    "value",
    ["99999999999999.9999", "-99999999999999.9999", 10**14 - 1, "0.00001", "1E+13", 0],
)
def test_an_amount_below_ten_to_the_fourteenth_is_taken(value: object) -> None:
    assert parse_amount(value) == parse_decimal(value)
    assert amount_or_none(value) == parse_decimal(value)


@pytest.mark.parametrize("value", ["100000000000000", "-100000000000000", 1e14, "1E+14", 10**20])
def test_an_amount_of_ten_to_the_fourteenth_or_more_is_refused(value: object) -> None:
    with pytest.raises(NotADecimal, match=r"^must be less than 100000000000000 \(10\^14\)"):
        parse_amount(value)
    assert amount_or_none(value) is None
    assert parse_decimal(value) == Decimal(value if not isinstance(value, float) else repr(value))


def test_an_amount_is_refused_for_the_decimal_rules_first() -> None:
    with pytest.raises(NotADecimal, match=r"^must be a finite decimal number$"):
        parse_amount("NaN")
    assert amount_or_none(True) is None


def test_the_amount_bound_is_what_the_tables_keep() -> None:
    """MAX_AMOUNT is the first value a NUMERIC(18, 4) column cannot hold."""
    from sqlalchemy import Numeric

    from wa_bridge.store.tables import cases, crm_cases, crm_outcomes

    for column in (cases.c.outcome_value, crm_cases.c.outcome_value, crm_outcomes.c.value):
        assert isinstance(column.type, Numeric)
        precision, scale = column.type.precision, column.type.scale
        assert precision is not None and scale is not None
        assert Decimal(10) ** (precision - scale) == MAX_AMOUNT, column
