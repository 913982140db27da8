"""Where an inbound message came from: ``data.attribution``.

From a click-to-WhatsApp ``referral`` (Meta's ad or post fields, and the UTM parameters of
its ``source_url``), else from the first link with UTM parameters in the message's text.
Pure parsing: which touch counts (first on the contact, last on the case) is the worker's
call. Cheap on the hot path: a text is searched for links only when it holds ``utm_``.
Each value is at most what the shared mapping takes (:data:`~wa_bridge.normalize.bounds.
TEXT_LIMITS`): a text (the URL, the headline, a UTM value) is cut there, an id (the click
id, the ad's id and type) longer than that is left out; the referral is whole in ``raw``.
"""

from __future__ import annotations

import re
from typing import Final, Literal
from urllib.parse import parse_qs, urlsplit

from wa_bridge.normalize._context import Json
from wa_bridge.normalize.bodies import AD_KEYS
from wa_bridge.normalize.bounds import TEXT_LIMITS, cut, fits
from wa_bridge.normalize.meta import as_str

__all__ = ["UTM_KEYS", "attribution_of", "utms_of"]

AttributionOrigin = Literal["referral", "text_link"]
UTM_KEYS: Final = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
_LINK: Final = re.compile(r"(?:https?://|www\.)[^\s<>\"'`]+", re.IGNORECASE)
_TRAILING: Final = ".,;:!?)]}»\"'"
# how each value is bounded: a text is cut, an id left out when too long
_CUT: Final = frozenset({"source_url", "headline"})
_LEFT_OUT: Final = frozenset({"ctwa_clid", "source_id", "source_type"})


def utms_of(url: str) -> Json:
    """The UTM parameters of ``url``'s query (each key present, None when absent)."""
    try:
        query = urlsplit(url).query
    except ValueError:  # an invalid IPv6 netloc and the like
        query = ""
    params = parse_qs(query) if "utm_" in query else {}
    limit = TEXT_LIMITS["utm"]
    return {
        key: cut(params[key][0].strip() or None, limit) if key in params else None
        for key in UTM_KEYS
    }


def _has_utm(utms: Json) -> bool:
    return any(utms[key] is not None for key in UTM_KEYS)


def _link_with_utms(text: str) -> tuple[str, Json] | None:
    for match in _LINK.finditer(text):
        url = match.group(0).rstrip(_TRAILING)
        utms = utms_of(url)
        if _has_utm(utms):
            return url, utms
    return None


def _text(value: object) -> str | None:
    """A string as sent, a number as its digits (an id Meta once sent unquoted), else None."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def _attribution(origin: AttributionOrigin, fields: Json, utms: Json) -> Json:
    out: Json = {"origin": origin}
    for key in AD_KEYS:
        value = _text(fields.get(key))
        if key in _CUT:
            value = cut(value, TEXT_LIMITS[key])
        elif key in _LEFT_OUT:
            value = fits(value, TEXT_LIMITS[key])
        out[key] = value
    out.update(utms)
    return out


def attribution_of(referral: object, text: object) -> Json | None:
    """``data.attribution`` of an inbound message with this ``referral`` object and text
    body, or None when there is neither a referral nor a link with UTM parameters."""
    if isinstance(referral, dict) and referral:
        url = as_str(referral.get("source_url"))
        utms = utms_of(url) if url else dict.fromkeys(UTM_KEYS)
        return _attribution("referral", referral, utms)
    if isinstance(text, str) and "utm_" in text:
        found = _link_with_utms(text)
        if found is not None:
            url, utms = found
            return _attribution("text_link", {"source_url": url}, utms)
    return None
