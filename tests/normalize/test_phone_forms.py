"""phone_forms: the forms a CRM holds a number in, one table per country, plus invariants."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wa_bridge.normalize.phone_forms import (
    holds_number,
    same_number,
    search_digits,
    split_extension,
    variants,
)
from wa_bridge.normalize.phones import user_e164

VARIANTS = [
    ("+5491123456789", ("+5491123456789", "+541123456789")),  # AR: with and without the 9
    ("+541123456789", ("+541123456789", "+5491123456789")),
    ("+525512345678", ("+525512345678", "+5215512345678")),  # MX: without and with the 1
    ("+5215512345678", ("+5215512345678", "+525512345678")),
    ("+5511999990001", ("+5511999990001",)),  # BR: the ninth digit is never guessed
    ("+551199990001", ("+551199990001",)),
    ("+15132271572", ("+15132271572",)),
    ("not a phone", ("not a phone",)),
]


@pytest.mark.parametrize(("e164", "expected"), VARIANTS)
def test_variants(e164: str, expected: tuple[str, ...]) -> None:
    assert variants(e164) == expected


def test_search_digits_hold_international_and_national_forms() -> None:
    assert search_digits("+5491123456789") == (
        "00541123456789",  # dialled with 00
        "005491123456789",
        "0111523456789",  # the national format: trunk 0, area, 15
        "01123456789",  # the 9-less variant's: trunk 0, area
        "111523456789",  # without the trunk 0
        "1123456789",
        "541123456789",
        "5491123456789",
        "91123456789",
    )
    assert search_digits("+525512345678") == (
        "005215512345678",
        "00525512345678",
        "015512345678",  # dialled before August 2019: 01 (long distance),
        "0445512345678",  # 044 (a mobile, local), 045 (a mobile, long distance)
        "0455512345678",
        "15512345678",
        "5215512345678",
        "525512345678",
        "5512345678",
    )
    assert search_digits("+15132271572") == ("0015132271572", "15132271572", "5132271572")
    assert search_digits("+447911123456") == (
        "00447911123456",
        "07911123456",
        "447911123456",
        "7911123456",
    )


STORED = [
    # (as a company typed it, the WhatsApp user's E.164, same person?)
    ("+54 9 11 2345-6789", "+5491123456789", True),  # with +, spaces and dashes
    ("+54 11 2345-6789", "+5491123456789", True),  # AR without the 9
    ("11 2345-6789", "+5491123456789", True),  # AR national, no 9
    ("911 2345 6789", "+5491123456789", True),  # AR national with the 9
    ("5491123456789", "+5491123456789", True),  # country code without +
    ("(513) 227-1572", "+15132271572", True),  # US national format
    ("513.227.1572", "+15132271572", True),
    ("+1 513 227 1572", "+15132271572", True),
    ("+52 1 55 1234 5678", "+525512345678", True),  # MX with the old mobile 1
    ("+52 55 1234 5678", "+525512345678", True),
    ("55 1234 5678", "+525512345678", True),  # MX national
    ("0052 55 1234 5678", "+525512345678", True),  # 00 international prefix
    ("01 55 1234 5678", "+525512345678", True),  # MX before 2019: long distance
    ("044 55 1234 5678", "+5215512345678", True),  # a mobile, local
    ("045 (33) 1234-5678", "+523312345678", True),  # a mobile, long distance
    ("044 1 55 1234 5678", "+525512345678", False),  # never with the mobile 1 as well
    ("01 55 1234 5679", "+525512345678", False),  # one digit apart
    ("044 11 2345 6789", "+5491123456789", False),  # only Mexico dialled these
    ("0054 9 11 2345 6789", "+5491123456789", True),
    ("011 15-2345-6789", "+5491123456789", True),  # AR national format: trunk 0 and 15
    ("11 15 2345-6789", "+5491123456789", True),  # the same without the trunk 0
    ("011 2345-6789", "+5491123456789", True),  # trunk 0, no 9
    ("07911 123456", "+447911123456", True),  # UK national format: trunk 0
    ("011 15-2345-6780", "+5491123456789", False),  # one digit apart
    ("+55 11 99999-0001", "+5511999990001", True),
    ("+5511999990001", "+5511999990001", True),
    ("+55 11 9999-0001", "+5511999990001", False),  # BR 12 digits: maybe someone else
    ("+1 551 234 5678", "+525512345678", False),  # same national digits, other country
    ("+52 55 1234 5679", "+525512345678", False),  # one digit apart
    ("2271572", "+15132271572", False),  # a suffix is not the number
    ("", "+15132271572", False),
    ("n/a", "+15132271572", False),
    # more than the number: the company's (holds_number decides whether it is the person)
    ("+44 7911 123456 ext. 12", "+447911123456", False),
    ("07911 123456 (mobile)", "+447911123456", False),
]


@pytest.mark.parametrize(("stored", "e164", "same"), STORED)
def test_same_number(stored: str, e164: str, same: bool) -> None:
    assert same_number(stored, e164) is same


EXTENSIONS = [
    ("+44 7911 123456 ext. 12", ("+44 7911 123456", "12")),
    ("+1 (415) 555-0100 x7", ("+1 (415) 555-0100", "7")),
    ("+1 415 555 0100;ext=7", ("+1 415 555 0100", "7")),
    ("+1 415 555 0100 (x7)", ("+1 415 555 0100", "7")),
    ("+56 2 2345 6789 anexo 201", ("+56 2 2345 6789", "201")),
    ("+55 11 99999-0001 ramal 3", ("+55 11 99999-0001", "3")),
    ("07911 123456 (mobile)", ("07911 123456 (mobile)", None)),  # a remark, no extension
    ("+44 7911 12345612", ("+44 7911 12345612", None)),  # digits without a marker
    ("Alexander 555 0100", ("Alexander 555 0100", None)),  # an x inside a word
]


@pytest.mark.parametrize(("stored", "parts"), EXTENSIONS)
def test_split_extension(stored: str, parts: tuple[str, str | None]) -> None:
    assert split_extension(stored) == parts


HELD = [
    # (as a company typed it, the WhatsApp user's E.164, that person's record?)
    ("+44 7911 123456 ext. 12", "+447911123456", True),  # a mobile with an extension
    ("+1 (415) 555-0100 x7", "+14155550100", True),  # US: fixed line or mobile
    ("07911 123456 ext. 12", "+447911123456", True),  # national format
    ("+52 1 55 1234 5678 ext 3", "+525512345678", True),  # a variant, then an extension
    ("07911 123456 (mobile)", "+447911123456", True),  # a remark without digits
    ("Mobile: +44 7911 123456", "+447911123456", True),
    ("+54 9 11 2345-6789", "+5491123456789", True),  # the bare number too
    ("+44 7911 12345 ext. 6", "+447911123456", False),  # every digit shared, number apart
    ("+44 7911 1234567", "+447911123456", False),  # a prefix of longer digits
    ("+1 (415) 555-01007", "+14155550100", False),
    ("07911 123456 (mobile 2)", "+447911123456", False),  # a remark with digits
    ("+44 7911 123457 ext. 12", "+447911123456", False),  # another number's extension
    ("+44 20 7946 0018 ext. 3", "+442079460018", False),  # a switchboard's extension
]


@pytest.mark.parametrize(("stored", "e164", "held"), HELD)
def test_holds_number(stored: str, e164: str, held: bool) -> None:
    assert holds_number(stored, e164) is held


@given(st.from_regex(r"\+(1|52|521|54|549|55|56|57)[0-9]{9,10}", fullmatch=True))
def test_every_variant_finds_the_others(raw: str) -> None:
    e164 = user_e164(raw)
    if e164 is None:
        return
    forms = variants(e164)
    assert forms[0] == e164 and len(set(forms)) == len(forms)
    for form in forms:
        assert same_number(form, e164)  # each variant, as typed with +
        assert same_number(form.lstrip("+"), e164)  # and without
        assert set(variants(form)) == set(forms)  # the relation is symmetric
        assert set(search_digits(form)) == set(search_digits(e164))
