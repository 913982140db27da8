"""phones.to_e164 / country_of: one table per country, plus hypothesis invariants."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wa_bridge.normalize.identity import bsuid_country, contact_key
from wa_bridge.normalize.phones import country_of, to_e164, user_e164

CASES = [
    # (country, wa_id or phone as received, E.164 expected, ISO country)
    ("MX", "5215550001234", "+525550001234", "MX"),  # WhatsApp id keeps the old mobile '1'
    ("MX", "525550001234", "+525550001234", "MX"),  # same person, post-2019 form
    ("MX", "+52 1 55 5000 1234", "+525550001234", "MX"),  # shared contact card format
    ("MX", "5213350004321", "+523350004321", "MX"),  # Guadalajara mobile
    ("AR", "5491150007788", "+5491150007788", "AR"),  # mobile: E.164 keeps the 9
    ("AR", "541150007788", "+541150007788", "AR"),  # no 9: fixed line, stays as parsed
    ("BR", "5511950001234", "+5511950001234", "BR"),  # 13 digits, mobile ninth digit
    ("BR", "551150001234", "+551150001234", "BR"),  # 12-digit legacy id: kept, not "fixed"
    ("CO", "573005550123", "+573005550123", "CO"),
    ("CL", "56950001234", "+56950001234", "CL"),
    ("US", "16505551234", "+16505551234", "US"),
    ("ES", "34612345678", "+34612345678", "ES"),
]


@pytest.mark.parametrize(("country", "raw", "e164", "iso"), CASES)
def test_to_e164_per_country(country: str, raw: str, e164: str, iso: str) -> None:
    assert to_e164(raw) == e164, country
    assert country_of(e164) == iso


@pytest.mark.parametrize(
    "raw",
    ["", "abc", "12", "+", "0000000", "999123456789", "55" + "9" * 30, "Y2FwaV9ncm91cDpURVNU"],
)
def test_garbage_gives_none(raw: str) -> None:
    assert to_e164(raw) is None


def test_non_string_gives_none() -> None:
    assert to_e164(5215550001234) is None  # type: ignore[arg-type]  # callers may pass JSON
    assert country_of("525550001234") is None  # not E.164 (no '+')


def test_br_legacy_and_ninth_digit_ids_stay_different_keys() -> None:
    assert to_e164("551150001234") != to_e164("5511950001234")


def test_mx_both_forms_one_contact_key() -> None:
    assert contact_key(to_e164("5215550001234"), None) == contact_key(to_e164("525550001234"), None)


def test_contact_key_prefers_phone_then_bsuid() -> None:
    assert contact_key("+525550001234", "MX.1") == "+525550001234"
    assert contact_key(None, "MX.1") == "bsuid:MX.1"
    assert contact_key(None, None) is None


def test_normalizer_is_cached() -> None:
    assert to_e164.cache_info().maxsize is not None
    to_e164("573005550123")
    hits = to_e164.cache_info().hits
    to_e164("573005550123")
    assert to_e164.cache_info().hits == hits + 1


@pytest.mark.parametrize("raw", ["9800000", "+98 00000"])
def test_a_number_that_does_not_format_to_itself_is_no_key(raw: str) -> None:
    assert to_e164(raw) is None


@given(st.text(alphabet="+0123456789 -()", max_size=20))
def test_idempotent(raw: str) -> None:
    once = to_e164(raw)
    if once is not None:
        assert to_e164(once) == once
        assert once.startswith("+") and once[1:].isdigit()


@given(st.text(max_size=30))
def test_never_raises_on_any_text(raw: str) -> None:
    result = to_e164(raw)
    assert result is None or result.startswith("+")


@given(st.integers(min_value=2_000_000_000, max_value=9_999_999_999))
def test_mx_521_and_52_forms_map_to_one_key(national: int) -> None:
    legacy, modern = to_e164(f"521{national}"), to_e164(f"52{national}")
    assert legacy == modern
    if modern is not None:
        assert country_of(modern) == "MX"


@pytest.mark.parametrize(
    ("user_id", "iso"),
    [("MX.1745503211829374650", "MX"), ("AR.ENT.3301", "AR"), ("<BSUID>", None), ("mx.1", None)],
)
def test_bsuid_country(user_id: str, iso: str | None) -> None:
    assert bsuid_country(user_id) == iso


# --- user identifiers: Argentina's two forms are one key; Brazil's are never guessed ------

USER_CASES = [
    ("AR", "541160002001", "+5491160002001"),  # 9-less, as dialled: the mobile's key
    ("AR", "5491160002001", "+5491160002001"),
    ("AR", "+54 11 6000-2001", "+5491160002001"),
    ("AR", "+54 9 11 6000-2001", "+5491160002001"),
    ("AR", "543516000200", "+5493516000200"),  # Córdoba
    ("AR", "549115000778", "+549115000778"),  # 549 + 9 digits: not a 9-less form, kept
    ("AR", "540112345678", "+540112345678"),  # a trunk 0 is no national number: kept
    ("MX", "5215560002001", "+525560002001"),
    ("BR", "551160007001", "+551160007001"),  # 12 digits stay 12
    ("BR", "5511960007001", "+5511960007001"),
]


@pytest.mark.parametrize(("country", "raw", "key"), USER_CASES)
def test_user_e164_per_country(country: str, raw: str, key: str) -> None:
    assert user_e164(raw) == key, country


def test_the_business_number_keeps_its_form() -> None:
    # the fold is for user ids only: to_e164 (any number) never adds the 9
    assert to_e164("541150000002") == "+541150000002"


@given(st.text(alphabet="+0123456789 -()", max_size=20))
def test_user_e164_idempotent(raw: str) -> None:
    once = user_e164(raw)
    if once is not None:
        assert user_e164(once) == once
        assert to_e164(once) == once  # a key is a plain E.164 number too


@given(st.integers(min_value=1_000_000_000, max_value=8_999_999_999))
def test_ar_9_less_and_549_forms_are_one_key(national: int) -> None:
    without, with_nine = user_e164(f"54{national}"), user_e164(f"549{national}")
    if without is not None and with_nine is not None:
        assert without == with_nine
    if with_nine is not None:
        assert with_nine.startswith("+549") and country_of(with_nine) == "AR"


@given(st.integers(min_value=11, max_value=99), st.integers(10_000_000, 99_999_999))
def test_br_12_and_13_digit_ids_never_fold(ddd: int, number: int) -> None:
    legacy, ninth = user_e164(f"55{ddd}{number}"), user_e164(f"55{ddd}9{number}")
    assert legacy is None or ninth is None or legacy != ninth


def test_a_number_already_in_its_e164_form_is_parsed_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # a sender seen for the first time costs one phonenumbers parse, not three: the
    # fixed-point check and the country read the parse that made the key
    import phonenumbers

    from wa_bridge.normalize import phones

    calls: list[str] = []
    parse = phonenumbers.parse

    def counting(number: str, region: str | None) -> phonenumbers.PhoneNumber:
        calls.append(number)
        return parse(number, region)

    monkeypatch.setattr(phonenumbers, "parse", counting)
    for cached in (phones.to_e164, phones._to_e164, phones.country_of, phones._placed):
        cached.cache_clear()
    assert phones.to_e164("573005550199") == "+573005550199"
    assert phones.country_of("+573005550199") == "CO"
    assert calls == ["+573005550199"]
    calls.clear()
    assert phones._to_e164("+44 (0)20 7946 0958") == "+442079460958"  # trunk 0 dropped
    assert calls == ["+4402079460958", "+442079460958"]  # so checked again
