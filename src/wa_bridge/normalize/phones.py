"""WhatsApp ids and phone strings → E.164, with the LATAM quirks handled in one place.

Decisions (tested per country in ``tests/normalize/test_phones.py``):

- Input is international: a ``wa_id`` has no ``+``; a ``+``, spaces, dashes and brackets
  are ignored ("+52 1 55 2345 6789" from a shared contact card works too).
- **MX**: WhatsApp ids keep the old mobile ``1`` (``521`` + 10 digits). Since 2019 the
  E.164 form has no ``1``, so ``521XXXXXXXXXX`` → ``+52XXXXXXXXXX``; both forms give one key.
- **AR**: mobile ids carry the ``9`` (``549`` + 10 digits) and so does the E.164 form of an
  Argentine mobile, so :func:`to_e164` keeps it, and leaves ``54`` + 10 digits (a fixed
  line for the numbering plan) as parsed. But a *WhatsApp user* identifier in the 9-less
  form (a status ``recipient_id``, an echo ``to``, a number as the business dialled it) is
  the same account as the ``549`` form: Argentine mobile and fixed numbers share no
  national number, so the two forms cannot be two people. :func:`user_e164`, used for
  every user identifier (never for the business's own display number), folds ``54`` + 10
  digits to ``+549`` + 10 digits: the E.164 of the mobile, which is what a CRM should hold.
  The reply address (``wa_id`` as Meta sent it) is never rewritten.
- **BR**: a 12-digit legacy id (no mobile ninth digit) and a 13-digit id are different
  WhatsApp ids; we never add or remove the ninth digit, so they stay different keys.
  Legacy ids fail phonenumbers' "valid" check but pass its "possible" (length) check,
  which is the check used here.
- Anything phonenumbers cannot place in a country, or of impossible length, gives ``None``.
  These functions never raise and are cached (they sit on the receiver's hot path).
"""

from __future__ import annotations

from functools import lru_cache

import phonenumbers

__all__ = ["country_of", "to_e164", "user_e164"]

_KEEP = frozenset("0123456789")
_MAX_INPUT_CHARS = 40
_AR_FIXED_LEN = len("+54") + 10


@lru_cache(maxsize=65536)
def to_e164(raw: str) -> str | None:
    """The E.164 form (``+<digits>``) of a wa_id or phone string, or None if it is not one."""
    if not isinstance(raw, str) or len(raw) > _MAX_INPUT_CHARS:
        return None
    return _to_e164(raw)


@lru_cache(maxsize=65536)  # the mapping checks each event's phone: few distinct numbers
def _to_e164(raw: str) -> str | None:
    digits = "".join(ch for ch in raw if ch in _KEEP)
    if len(digits) == 13 and digits.startswith("521"):
        digits = "52" + digits[3:]  # MX: drop the pre-2019 mobile '1'
    e164 = _format(digits)
    # A key must be a fixed point: formatting may drop a trunk '0' ("+44 (0)20…"), but a
    # result that does not format to itself again (hypothesis found "+9800000") is no key.
    # (When formatting kept the digits, as it nearly always does, this is a cache hit.)
    if e164 is None or _format(e164[1:]) != e164:
        return None
    return e164


@lru_cache(maxsize=65536)
def user_e164(raw: str) -> str | None:
    """The identity key (E.164) of a WhatsApp user's id or phone: :func:`to_e164`, with
    Argentina's 9-less form folded onto the ``+549`` one. Idempotent; never raises."""
    e164 = to_e164(raw)
    if e164 is None or len(e164) != _AR_FIXED_LEN or not e164.startswith("+54"):
        return e164
    if e164[3] in "09":  # national numbers start 1-8; "+549…" here is 549 + 9 digits
        return e164
    mobile = "+549" + e164[3:]
    return mobile if _format(mobile[1:]) == mobile else e164


def _format(digits: str) -> str | None:
    placed = _placed(digits)
    return None if placed is None else placed[0]


@lru_cache(maxsize=65536)
def _placed(digits: str) -> tuple[str, str] | None:
    """(E.164, region) of ``"+" + digits`` when it is a possible number of a known region.

    Cached, so a new number is parsed once, not three times: :func:`to_e164`'s fixed-point
    check of a number whose digits formatting kept, and :func:`country_of` of the key it
    made, read this parse again."""
    if len(digits) < 7 or len(digits) > 15:
        return None
    try:
        parsed = phonenumbers.parse("+" + digits, None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(parsed):
        return None
    region = phonenumbers.region_code_for_number(parsed)
    if region is None or region == "ZZ":
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164), str(region)


@lru_cache(maxsize=65536)
def country_of(e164: str) -> str | None:
    """ISO 3166-1 alpha-2 region of an E.164 number ("MX"), or None if unknown."""
    if not isinstance(e164, str) or not e164.startswith("+"):
        return None
    placed = _placed(e164[1:])  # the same parse as below: a hit after to_e164 made it
    if placed is not None:
        return placed[1]
    try:
        parsed = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return None
    region = phonenumbers.region_code_for_number(parsed)
    if region is None or region == "ZZ":
        return None
    return str(region)
