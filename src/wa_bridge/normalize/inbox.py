"""An event posted by the agents' inbox → one canonical ``inbox.conversation.*`` event. Pure.

The inbox posts conversation events (assigned, handoff, tagged, resolved, converted,
CSAT) to ``POST /inbox/events``. :class:`InboxEventIn` is the posted shape (it also documents the
request body in the OpenAPI file); :func:`normalize_inbox_event` checks it, per type, and
raises :class:`~wa_bridge.errors.InvalidEvent` with a reason the client can act on.

Decisions:

- ``id`` is the client's idempotency key: the canonical id is ``inbox:<id>``, so a post
  repeated after a timeout takes effect once in the CRM (the worker's ledger).
- No text may hold the NUL character (U+0000): PostgreSQL stores none.
- Every length and range here is one the store holds (``tests/worker/test_edge_fits.py``
  posts each field at its most): ``id`` at most 180 characters (the keys built from it
  fit the store's 200), ``phone_number_id`` and ``waba_id`` at most 128 (Meta's ids),
  ``captured`` integers within 64 bits and its text (below) at most 4096 characters (the
  shared mapping's field). A time in UTC before year 1 or after 9999 is refused.
- ``type`` may be the full ``inbox.conversation.resolved`` or the short ``resolved``.
- ``time`` must be RFC 3339 with an offset; it is stored in UTC (``...Z``).
- The contact is keyed like a webhook contact (E.164 phone, else ``bsuid:<user_id>``);
  ``phone`` may be in any international format and an MX ``521…`` gives the same key as
  ``52…``. ``wa_id`` (the reply address) is kept exactly as sent.
- ``value`` (a decimal as a string or a JSON number, below 10^14 in magnitude: the most
  a case keeps) travels as a plain decimal string, so no float rounding reaches the CRM;
  ``currency`` is an ISO 4217 code, upper case.
- ``conversation_id`` is the inbox's own id of the conversation: the worker binds it to
  the case, and later events naming it land on that case (a late one never reopens it).
- ``handoff`` (a bot hands the conversation to a person) may carry the bot's ``intents``
  and the data it ``captured`` (name → text, number or boolean), kept on the case; the
  data also travels as ``captured_text``, one ``name: value`` line each, for a CRM field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Final, cast

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    ValidationError,
    WithJsonSchema,
)

from wa_bridge.errors import InvalidEvent
from wa_bridge.events import (
    INBOX_KINDS,
    INBOX_TYPE_PREFIX,
    CanonicalEvent,
    Contact,
    EventType,
    JsonObject,
)
from wa_bridge.normalize.bounds import META_ID_LIMITS
from wa_bridge.normalize.decimals import parse_amount, plain_text
from wa_bridge.normalize.identity import bsuid_country, contact_key
from wa_bridge.normalize.meta import rfc3339
from wa_bridge.normalize.phones import country_of, user_e164

__all__ = [
    "INBOX_TYPE_PREFIX",
    "MAX_CAPTURED_TEXT_CHARS",
    "MAX_KEY_CHARS",
    "MAX_META_ID_CHARS",
    "SHORT_TYPES",
    "InboxContactIn",
    "InboxEventIn",
    "Key",
    "MetaId",
    "WabaId",
    "normalize_inbox_event",
    "posted_contact",
    "posted_reasons",
    "posted_time",
    "refuse_nul",
]

SHORT_TYPES: Final = INBOX_KINDS
# The store keeps event ids and the CRM keys built from them (``inbox:<id>:<n>``,
# ``consent:<id>:2000``) in 200 characters: an id of at most 180 leaves room for both.
MAX_KEY_CHARS: Final = 180
# Meta's ids (phone_number_id, WABA id, BSUID): what a webhook may carry of them too
MAX_META_ID_CHARS: Final = META_ID_LIMITS["phone_number_id"]
# What the shared mapping sends as the case's ``captured`` (base.yaml: max_length 4096).
MAX_CAPTURED_TEXT_CHARS: Final = 4096
_MAX_TEXT_CHARS: Final = 2000
_MAX_TAGS: Final = 50
_MAX_CAPTURED: Final = 50
_INT64: Final = (-(2**63), 2**63 - 1)
_CURRENCY: Final = re.compile(r"^[A-Za-z]{3}$")
_RFC3339: Final = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$"
)


def _decimal_text(value: object) -> str:
    """A decimal posted as a string or JSON number → plain decimal text (``"1249.90"``);
    raises NotADecimal (a ValueError: pydantic reports its message for the field)."""
    return plain_text(parse_amount(value))


def _currency(value: object) -> str:
    if not isinstance(value, str) or not _CURRENCY.match(value):
        raise ValueError("must be a 3-letter ISO 4217 currency code such as MXN")
    return value.upper()


def _captured(value: object) -> object:
    if not isinstance(value, dict):
        return value  # pydantic says what is wrong
    if len(value) > _MAX_CAPTURED:
        raise ValueError(f"must have at most {_MAX_CAPTURED} entries")
    return value


def _captured_value(value: object) -> object:
    # an event is JSON of 64-bit integers (orjson); a larger one would pass as a float, its
    # digits lost
    if (
        isinstance(value, int)
        and not isinstance(value, bool)
        and not _INT64[0] <= value <= _INT64[1]
    ):
        raise ValueError("must be an integer within 64 bits (send a longer number as text)")
    return value


def _captured_fits(value: dict[str, object]) -> dict[str, object]:
    # the case's text of it (``_captured_text``) must fit the mapping's field
    size = len(_captured_text(value) or "")
    if size > MAX_CAPTURED_TEXT_CHARS:
        raise ValueError(
            f"as name: value lines it must have at most {MAX_CAPTURED_TEXT_CHARS} characters,"
            f" not {size}"
        )
    return value


Text = Annotated[str, Field(min_length=1, max_length=_MAX_TEXT_CHARS)]
Currency = Annotated[
    str,
    BeforeValidator(_currency),
    WithJsonSchema({"type": "string", "pattern": "^[A-Za-z]{3}$", "examples": ["MXN"]}),
]
Short = Annotated[str, Field(min_length=1, max_length=128)]
CapturedValue = (
    Annotated[str, Field(max_length=1000)]
    | StrictInt
    | Annotated[float, Field(allow_inf_nan=False)]
    | bool
    | None
)
Captured = Annotated[
    dict[
        Annotated[str, Field(min_length=1, max_length=64)],
        Annotated[CapturedValue, BeforeValidator(_captured_value)],
    ],
    BeforeValidator(_captured),
    AfterValidator(_captured_fits),
]
Ident = Annotated[str, Field(min_length=1, max_length=200)]
Key = Annotated[str, Field(min_length=1, max_length=MAX_KEY_CHARS)]
MetaId = Annotated[str, Field(min_length=1, max_length=MAX_META_ID_CHARS)]
# The posted ``waba_id`` of an inbox event or a consent record (optional; its one wording).
WabaId = Annotated[
    MetaId | None,
    Field(
        description="WhatsApp Business Account id: the scope of a BSUID, at most "
        f"{MAX_META_ID_CHARS} characters."
    ),
]
DecimalText = Annotated[
    str,
    BeforeValidator(_decimal_text),
    WithJsonSchema(
        {"anyOf": [{"type": "string", "pattern": r"^-?\d+(\.\d+)?$"}, {"type": "number"}]}
    ),
]


class InboxContactIn(BaseModel):
    """Who the conversation is with: at least one of ``phone``, ``wa_id``, ``user_id``."""

    model_config = ConfigDict(extra="forbid")

    phone: Annotated[str, Field(max_length=40, examples=["+52 55 1234 5678"])] | None = None
    wa_id: Annotated[str, Field(max_length=40, examples=["5215512345678"])] | None = None
    user_id: Annotated[str, Field(max_length=128, examples=["MX.1745503211829374650"])] | None = (
        None
    )


class InboxEventIn(BaseModel):
    """One event posted by the agents' inbox (``POST /inbox/events`` takes one or a list).

    No text in it may contain the NUL character (U+0000): the database stores none.
    """

    model_config = ConfigDict(extra="forbid")

    type: str = Field(
        description="inbox.conversation.<x> or the short <x>: " + ", ".join(SHORT_TYPES),
        examples=["inbox.conversation.resolved", "resolved"],
    )
    id: Key = Field(
        description="Unique per event: the idempotency key (canonical inbox:<id>), at most "
        f"{MAX_KEY_CHARS} characters (the store keeps the keys built from it)."
    )
    time: str = Field(
        description="When it happened in the inbox, RFC 3339 with an offset.",
        examples=["2026-06-10T16:00:00Z"],
    )
    phone_number_id: MetaId = Field(
        description="The business number (Meta phone_number_id), at most "
        f"{MAX_META_ID_CHARS} characters."
    )
    waba_id: WabaId = None
    conversation_id: Ident | None = Field(
        default=None,
        description="The inbox's own id of the conversation: later events naming it land "
        "on the same case.",
    )
    contact: InboxContactIn
    agent: Short | None = Field(default=None, description="Required for assigned.")
    queue: Short | None = Field(default=None, description="The queue (team) handling it.")
    tags: (
        Annotated[list[Annotated[str, Field(min_length=1, max_length=64)]], Field(max_length=50)]
        | None
    ) = Field(default=None, description="Required (non-empty) for tagged.")
    outcome: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    value: DecimalText | None = Field(
        default=None,
        description="A decimal, as a string or a number, below 10^14 in magnitude "
        "(kept to 4 decimal places).",
        examples=["1249.90"],
    )
    currency: Currency | None = Field(
        default=None, description="ISO 4217 code of value (converted)."
    )
    intents: Annotated[list[Short], Field(max_length=_MAX_TAGS)] | None = Field(
        default=None, description="handoff: what the bot understood the customer wants."
    )
    captured: Captured | None = Field(
        default=None,
        description="handoff: what the bot asked the customer for, name → value "
        f"(at most {_MAX_CAPTURED}; integers within 64 bits). The case keeps it as one "
        f"`name: value` line each: at most {MAX_CAPTURED_TEXT_CHARS} characters in all.",
    )
    reason: Annotated[str, Field(min_length=1, max_length=256)] | None = None
    csat: Annotated[StrictInt, Field(ge=1, le=5)] | None = Field(
        default=None, description="Satisfaction score 1-5; required for csat."
    )
    note: Text | None = None


def normalize_inbox_event(raw: object, *, received_at: datetime) -> CanonicalEvent:
    """Check one posted inbox event and build its canonical event.

    Raises InvalidEvent (message: which field, what is wrong) for anything not accepted.
    """
    posted = _parse(raw)
    event_type = _event_type(posted.type)
    _check_per_type(event_type, posted)
    contact = _contact(posted.contact)
    data: JsonObject = {
        "conversation_id": posted.conversation_id,
        "phone_number_id": posted.phone_number_id,
        "contact": contact.to_dict(),
        "agent": posted.agent,
        "queue": posted.queue,
        "tags": list(posted.tags) if posted.tags is not None else None,
        "outcome": posted.outcome,
        "value": posted.value,
        "currency": posted.currency,
        "reason": posted.reason,
        "csat": posted.csat,
        "intents": list(posted.intents) if posted.intents is not None else None,
        "captured": dict(posted.captured) if posted.captured is not None else None,
        "captured_text": _captured_text(posted.captured),
        "note": posted.note,
    }
    return CanonicalEvent(
        id="inbox:" + posted.id,
        type=event_type,
        source="inbox:" + posted.phone_number_id,
        time=_utc_time(posted.time),
        data=data,
        subject=contact.key,
        recvtime=rfc3339(received_at),
        wabaid=posted.waba_id,
    )


def _captured_text(captured: Mapping[str, object] | None) -> str | None:
    """``name: value`` per entry, one a line (booleans as yes / no, null as -)."""
    if not captured:
        return None
    lines = []
    for name, value in captured.items():
        if isinstance(value, bool):
            shown = "yes" if value else "no"
        else:
            shown = "-" if value is None else str(value)
        lines.append(f"{name}: {shown}")
    return "\n".join(lines)


def _parse(raw: object) -> InboxEventIn:
    if not isinstance(raw, dict):
        raise InvalidEvent(f"an inbox event must be a JSON object, not {_json_kind(raw)}")
    refuse_nul(raw)
    try:
        return InboxEventIn.model_validate(raw)
    except ValidationError as exc:
        raise InvalidEvent(_reasons(exc)) from None


def _reasons(exc: ValidationError) -> str:
    """``field: message`` per error; the offending input is never echoed (it may be PII)."""
    parts = []
    for err in exc.errors(include_url=False, include_input=False, include_context=False):
        where = ".".join(str(p) for p in err["loc"]) or "event"
        if err["type"] == "missing":
            message = "is required"
        elif err["type"] == "extra_forbidden":
            message = "is not a known field"
        else:
            message = err["msg"].removeprefix("Value error, ")
            message = message.replace("Input should be", "must be")
            message = message.replace("String should have", "must have")
            message = message.replace("List should have", "must have")
        parts.append(f"{where}: {message}")
    return "; ".join(parts)


# What a JSON value that is not an object is, in an error message (first match; else a number).
_JSON_KINDS: Final = (
    (type(None), "null"),
    (list, "an array"),
    (bool, "a boolean"),
    (str, "a string"),
)


def _json_kind(raw: object) -> str:
    return next((kind for cls, kind in _JSON_KINDS if isinstance(raw, cls)), "a number")


def _event_type(posted: str) -> EventType:
    short = posted.removeprefix(INBOX_TYPE_PREFIX)
    if short not in SHORT_TYPES:
        raise InvalidEvent(
            "type: must be one of " + ", ".join(SHORT_TYPES) + " (or inbox.conversation.<that>)"
        )
    return cast(EventType, INBOX_TYPE_PREFIX + short)


def _check_per_type(event_type: EventType, posted: InboxEventIn) -> None:
    short = event_type.removeprefix(INBOX_TYPE_PREFIX)
    if short == "assigned" and posted.agent is None:
        raise InvalidEvent("agent: is required for assigned")
    if short == "tagged" and not posted.tags:
        raise InvalidEvent("tags: at least one tag is required for tagged")
    if short == "csat" and posted.csat is None:
        raise InvalidEvent("csat: a score from 1 to 5 is required for csat")


def _contact(posted: InboxContactIn) -> Contact:
    phone = _phone("contact.phone", posted.phone) if posted.phone else None
    from_wa_id = _phone("contact.wa_id", posted.wa_id) if posted.wa_id else None
    if phone and from_wa_id and phone != from_wa_id:
        raise InvalidEvent("contact: phone and wa_id name two different numbers")
    phone_e164 = phone or from_wa_id
    user_id = posted.user_id or None
    key = contact_key(phone_e164, user_id)
    if key is None:
        raise InvalidEvent("contact: needs at least one of phone, wa_id or user_id")
    if phone_e164 is not None:
        country = country_of(phone_e164)
    else:
        country = bsuid_country(user_id) if user_id else None
    return Contact(
        key=key,
        phone_e164=phone_e164,
        wa_id=posted.wa_id or None,
        user_id=user_id,
        country=country,
    )


def _phone(field: str, raw: str) -> str:
    e164 = user_e164(raw)
    if e164 is None:
        raise InvalidEvent(f"{field}: is not an international phone number")
    return e164


def _utc_time(posted: str) -> str:
    if not _RFC3339.match(posted):
        raise InvalidEvent("time: must be RFC 3339 with an offset, e.g. 2026-06-10T16:00:00Z")
    try:
        moment = datetime.fromisoformat(posted.upper())
        utc = moment.astimezone(UTC)  # 0001-01-01T00:00:00+01:00 is before year 1
    except ValueError:
        raise InvalidEvent("time: is not a real date and time") from None
    except OverflowError:
        raise InvalidEvent("time: is out of range (in UTC before year 1 or after 9999)") from None
    return rfc3339(utc)


def _nul_at(value: object, where: str) -> str | None:
    """The path of the first text in ``value`` (a name or a string) holding U+0000."""
    if isinstance(value, str):
        return where if "\x00" in value else None
    if isinstance(value, dict):
        for name, item in value.items():
            path = f"{where}.{name}" if where else str(name)
            if isinstance(name, str) and "\x00" in name:
                return where or "event"
            found = _nul_at(item, path)
            if found is not None:
                return found
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found = _nul_at(item, f"{where}.{i}")
            if found is not None:
                return found
    return None


def refuse_nul(raw: object) -> None:
    """Raise InvalidEvent naming the first field whose text holds the NUL character: no
    PostgreSQL text or JSON column can store it (it failed the worker's batch)."""
    where = _nul_at(raw, "")
    if where is not None:
        raise InvalidEvent(f"{where}: must not contain the NUL character (U+0000)")


# The posted shapes other endpoints share (POST /consents): the contact, the time, and
# what was wrong with a body.
def posted_contact(posted: InboxContactIn) -> Contact:
    """The canonical contact of a posted one; raises InvalidEvent when it names nobody."""
    return _contact(posted)


def posted_time(text: str) -> str:
    """An RFC 3339 time with an offset, in UTC (``...Z``); raises InvalidEvent."""
    return _utc_time(text)


def posted_reasons(exc: ValidationError) -> str:
    """``field: message`` per error, never echoing the input."""
    return _reasons(exc)
