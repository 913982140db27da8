"""The forms a CRM may hold one phone number in, for finding its existing records.

A company's CRM keeps numbers as people typed them: ``+54 9 11 2345-6789``,
``(513) 227-1572``, ``+52 1 55 1234 5678``. To find the record of a WhatsApp user by
phone, a connector searches every form of the user's E.164 number (:func:`variants`) and
compares what the CRM answers digit by digit (:func:`same_number`):

- the E.164 number itself, and its variants: **MX** with and without the pre-2019 mobile
  ``1`` (``+52 55…`` / ``+52 1 55…``); **AR** with and without the mobile ``9``
  (``+54 9 11…`` / ``+54 11…``). Brazil's ninth digit is never added or removed: a 12- and
  a 13-digit number may be two people (see :mod:`wa_bridge.normalize.phones`);
- each variant as international digits (``5491123456789``, a number typed with the
  country code but no ``+``) and as national digits (``91123456789``, a number typed
  without the country code; HubSpot's ``hs_searchable_calculated_*`` numbers);
- each variant as dialled at home (:func:`_dialled`): the national format with its trunk
  prefix, with and without it (AR ``011 15-2345-6789`` and ``11 15 2345-6789``, UK
  ``07911 123456``), with the ``00`` international prefix (``0054 9 11 2345 6789``), and
  for Mexico after the prefixes dialled before August 2019 (``01 55 1234 5678`` for a
  long-distance call, ``044`` / ``045`` before a mobile's number, local / long distance):
  a CRM that keeps numbers as typed holds these digits, so a search must ask for them.

A CRM's phone text may hold more than the number: an extension (``+44 7911 123456 ext.
12``, :func:`split_extension`) or a remark (``07911 123456 (mobile)``). :func:`holds_number`
says whether it still names the person (for adopting the record: the digits before the
extension must be the number's, whole); :func:`same_number` only takes a value typed as
the number and nothing else (a field wa-bridge may rewrite in E.164 without losing what
the company added).

Pure and cached; never raises.
"""

from __future__ import annotations

import re
from functools import lru_cache

import phonenumbers

__all__ = ["holds_number", "same_number", "search_digits", "split_extension", "variants"]

_AR_MOBILE = "+549"  # + 10 digits
_MX = "+52"
# Mexico dialled these before the national number until August 2019, when its numbering
# plan dropped them: 01 for a long-distance call, 044 (local) and 045 (long distance) for a
# mobile. phonenumbers' metadata dropped them too, but CRMs keep numbers typed back then.
_FORMER_PREFIXES: dict[str, tuple[str, ...]] = {"MX": ("01", "044", "045")}
_MX_NATIONAL_LEN = 10
# An extension after the number: a marker (ext, ext., extn, extension, x, #, anexo, ramal,
# RFC 3966's ;ext=), then its digits, then at most a remark without digits.
_EXTENSION = re.compile(
    r"(?P<main>.*\d)[\s.()\[\-]*[,;]?\s*(?<![^\W\d_])"
    r"(?:ext(?:ensi[oó]n|n)?|x|anexo|ramal|\#)[\s.:=#]*(?P<ext>\d{1,7})\D*",
    re.IGNORECASE,
)
# A phone value typed as a number only (digits and punctuation): anything else (a remark,
# an extension) is information the company added.
_PLAIN = re.compile(r"[\d\s+\-().\/]*")
_MOBILE_TYPES = frozenset(
    {phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE}
)


@lru_cache(maxsize=16384)
def variants(e164: str) -> tuple[str, ...]:
    """``e164`` and the other E.164 forms of the same WhatsApp number, ``e164`` first.

    ``+5491123456789`` → (``+5491123456789``, ``+541123456789``); ``+525512345678`` →
    (``+525512345678``, ``+5215512345678``); any other number → (``e164``,).
    """
    if not e164.startswith("+") or not e164[1:].isdigit():
        return (e164,)
    national = e164[3:]
    if e164.startswith(_AR_MOBILE) and len(e164) == len(_AR_MOBILE) + 10:
        return (e164, "+54" + e164[4:])
    if e164.startswith("+54") and len(e164) == 3 + 10:
        return (e164, _AR_MOBILE + national)
    if e164.startswith(_MX) and len(e164) == 3 + 10:
        return (e164, "+521" + national)
    if e164.startswith("+521") and len(e164) == 4 + 10:
        return (e164, _MX + e164[4:])
    return (e164,)


def _digits(text: str) -> str:
    return "".join(c for c in text if c.isdigit())


def _dialled(number: phonenumbers.PhoneNumber, international: str) -> set[str]:
    """The digits of ``number`` as dialled: its national format (trunk prefix, AR's ``15``)
    with and without the trunk prefix, ``00`` + its international digits, and the national
    number after the prefixes its country dialled before (MX ``01``, ``044``, ``045``)."""
    out = {"00" + international}
    local = _digits(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL))
    region = phonenumbers.region_code_for_number(number)
    trunk = phonenumbers.ndd_prefix_for_region(region, True) if region else None
    if local:
        out.add(local)
        if trunk and local.startswith(trunk) and len(local) > len(trunk):
            out.add(local[len(trunk) :])
    significant = phonenumbers.national_significant_number(number)
    if region == "MX" and len(significant) == _MX_NATIONAL_LEN:  # not the "1" + 10 form
        out.update(prefix + significant for prefix in _FORMER_PREFIXES[region])
    return out


@lru_cache(maxsize=16384)
def _forms(e164: str) -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
    """(international digits, national digits, dialled digits) of ``e164`` and its
    variants."""
    international: set[str] = set()
    national: set[str] = set()
    dialled: set[str] = set()
    for form in variants(e164):
        digits = _digits(form)
        if not digits:
            continue
        international.add(digits)
        try:
            number = phonenumbers.parse("+" + digits, None)
        except phonenumbers.NumberParseException:
            continue
        significant = phonenumbers.national_significant_number(number)
        if significant:
            national.add(significant)
        dialled |= _dialled(number, digits)
    return frozenset(international), frozenset(national), frozenset(dialled - international)


def search_digits(e164: str) -> tuple[str, ...]:
    """Every digit string a CRM may hold ``e164`` (or a variant of it) as, sorted: the
    international, the national and the dialled digits of each variant."""
    international, national, dialled = _forms(e164)
    return tuple(sorted(international | national | dialled))


def split_extension(stored: str) -> tuple[str, str | None]:
    """(the number, its extension or None) of a CRM's phone text: ``+44 7911 123456 ext.
    12`` → (``+44 7911 123456``, ``12``); ``+1 (415) 555-0100 x7`` → (``+1 (415)
    555-0100``, ``7``). Only an explicit marker makes an extension: trailing digits without
    one stay part of the number."""
    found = _EXTENSION.fullmatch(stored.strip())
    if found is None:
        return stored, None
    return found.group("main"), found.group("ext")


def _is_mobile(e164: str) -> bool:
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return False
    return phonenumbers.number_type(number) in _MOBILE_TYPES


def _same_digits(text: str, e164: str) -> bool:
    digits = _digits(text)
    if not digits:
        return False
    international, national, dialled = _forms(e164)
    if text.startswith("+"):
        return digits in international
    if text.startswith("00"):
        return digits[2:] in international
    return digits in international or digits in national or digits in dialled


def same_number(stored: str, e164: str) -> bool:
    """True when the CRM's ``stored`` phone text is ``e164`` or one of its variants, typed
    as a number and nothing else.

    Digits are compared whole, never by suffix. A value typed with ``+`` (or ``00``) is
    international: its digits must be a variant's, country code included (``+1 551 234
    5678`` is not ``+52 55 1234 5678``, although both have the national digits
    ``5512345678``). A value typed without is compared with the international digits (a
    country code without ``+``) and with the national digits of each variant (``(513)
    227-1572`` is ``+15132271572``): a national number names no country, so that is the
    best a CRM that holds one allows. A national number typed with its trunk prefix (``011
    15-2345-6789``, ``07911 123456``) or a prefix its country dialled before (Mexico's
    ``044 55 1234 5678``) is the same as without. A value with more than the
    number (an extension, a remark: :func:`holds_number`) is not: it holds what the
    company added.
    """
    text = stored.strip()
    return bool(_PLAIN.fullmatch(text)) and _same_digits(text, e164)


def holds_number(stored: str, e164: str) -> bool:
    """True when the CRM's ``stored`` phone text names the person whose WhatsApp number is
    ``e164``: :func:`same_number`, or the number with a remark that holds no digits
    (``07911 123456 (mobile)``), or a mobile number followed by an extension whose number
    before the marker is ``e164`` exactly (``+44 7911 123456 ext. 12``). Digits are never
    compared by prefix: ``+44 7911 12345 ext. 6`` and ``+44 7911 1234567`` are not
    ``+447911123456``; nor is a fixed line's extension (a switchboard's: it names an
    office, not the person).
    """
    main, extension = split_extension(stored)
    if extension is not None and not _is_mobile(e164):
        return False
    return _same_digits(main.strip(), e164)
