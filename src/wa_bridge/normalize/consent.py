"""Consent evidence posted to ``POST /consents`` → one canonical ``consent.recorded``. Pure.

A business records opt-in evidence it captured outside WhatsApp (a web form, a point of
sale, an SMS) so the consent ledger can show, for an audit, when and how each customer
agreed to what, with the text they were shown. :class:`ConsentIn` is the posted shape
(it also documents the request body in the OpenAPI file).

- ``id`` is the caller's idempotency key: the canonical id is ``consent:<id>``, so a
  post repeated after a timeout is recorded once (the worker's ledger).
- ``time`` is when the customer gave (or withdrew) it, RFC 3339 with an offset; the
  contact's state is its latest consent by this time, so evidence posted late never
  overrides a later opt-out.
- The contact is keyed like a webhook contact (E.164 phone, else ``bsuid:<user_id>``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from wa_bridge.errors import InvalidEvent
from wa_bridge.events import CanonicalEvent, JsonObject
from wa_bridge.normalize.inbox import (
    MAX_KEY_CHARS,
    MAX_META_ID_CHARS,
    InboxContactIn,
    Key,
    MetaId,
    WabaId,
    posted_contact,
    posted_reasons,
    posted_time,
    refuse_nul,
)
from wa_bridge.normalize.meta import rfc3339

__all__ = ["CONSENT_SOURCE_PREFIX", "ConsentIn", "normalize_consent"]

CONSENT_SOURCE_PREFIX: Final = "consents:"
Word = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[a-z][a-z0-9_]*$")]


class ConsentIn(BaseModel):
    """Consent evidence: who agreed (or withdrew), to what, where, when, having read what.

    No text in it may contain the NUL character (U+0000): the database stores none.
    """

    model_config = ConfigDict(extra="forbid")

    id: Key = Field(
        description="Unique per record: the idempotency key (canonical consent:<id>), at "
        f"most {MAX_KEY_CHARS} characters (the store keeps the keys built from it)."
    )
    contact: InboxContactIn
    status: Literal["opt_in", "opt_out"] = Field(
        default="opt_in", description="Given (opt_in, the default) or withdrawn (opt_out)."
    )
    captured_via: Word = Field(
        description="Where it was captured: web_form, pos, sms, or another word of yours.",
        examples=["web_form"],
    )
    purpose: Word = Field(default="marketing", description="What it allows: marketing, utility, …")
    channel: Word = Field(
        default="whatsapp", description="The channel it allows messages on (whatsapp)."
    )
    text_shown: Annotated[str, Field(min_length=1, max_length=4000)] = Field(
        description="The consent wording the customer saw and accepted.",
        examples=["Acepto recibir ofertas por WhatsApp. Puedo darme de baja con BAJA."],
    )
    time: str = Field(
        description="When the customer gave it, RFC 3339 with an offset.",
        examples=["2026-06-10T16:00:00Z"],
    )
    source: Annotated[str, Field(min_length=1, max_length=200)] | None = Field(
        default=None,
        description="The form, store or system that captured it.",
        examples=["landing/invierno26"],
    )
    phone_number_id: MetaId | None = Field(
        default=None,
        description="The business number (Meta phone_number_id) it is for, at most "
        f"{MAX_META_ID_CHARS} characters.",
    )
    waba_id: WabaId = None


def normalize_consent(raw: object, *, received_at: datetime, recorded_by: str) -> CanonicalEvent:
    """Check posted consent evidence and build its canonical event (``recorded_by``: the
    caller's actor, an admin token's hash). Raises InvalidEvent saying what is wrong."""
    if not isinstance(raw, dict):
        raise InvalidEvent("a consent record must be a JSON object")
    refuse_nul(raw)
    try:
        posted = ConsentIn.model_validate(raw)
    except ValidationError as exc:
        raise InvalidEvent(posted_reasons(exc)) from None
    contact = posted_contact(posted.contact)
    at = posted_time(posted.time)
    data: JsonObject = {
        "contact": contact.to_dict(),
        "status": posted.status,
        "channel": posted.channel,
        "purpose": posted.purpose,
        "captured_via": posted.captured_via,
        "text_shown": posted.text_shown,
        "source": posted.source,
        "timestamp": at,
        "phone_number_id": posted.phone_number_id,
        "recorded_by": recorded_by,
    }
    return CanonicalEvent(
        id="consent:" + posted.id,
        type="consent.recorded",
        source=CONSENT_SOURCE_PREFIX + posted.captured_via,
        time=at,
        data=data,
        subject=contact.key,
        recvtime=rfc3339(received_at),
        wabaid=posted.waba_id,
    )
