"""normalize_inbox_event: posted inbox events → canonical events, and the 400 reasons."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from wa_bridge.errors import InvalidEvent
from wa_bridge.events import CanonicalEvent
from wa_bridge.normalize.inbox import SHORT_TYPES, normalize_inbox_event

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
RECEIVED_AT = datetime(2026, 6, 10, 16, 0, 5, tzinfo=UTC)
PNID = "106540352242922"

# The minimal valid body of each type (each also a sample for the schema tests).
MINIMAL: dict[str, dict[str, Any]] = {
    "assigned": {"agent": "agent-7"},
    "tagged": {"tags": ["pricing", "vip"]},
    "resolved": {"outcome": "lost", "reason": "complaint", "agent": "agent-7"},
    "converted": {"outcome": "converted", "value": "1249.90"},
    "csat": {"csat": 5},
    "handoff": {},
}


def posted(kind: str = "resolved", **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": kind,
        "id": f"evt-{kind}-1",
        "time": "2026-06-10T11:00:00-05:00",
        "phone_number_id": PNID,
        "waba_id": "102290129340398",
        "conversation_id": "conv-1",
        "contact": {"phone": "+52 1 55 1234 5678"},
        **MINIMAL.get(kind, {}),
    }
    body.update(changes)
    return body


def normalize(body: object) -> CanonicalEvent:
    return normalize_inbox_event(body, received_at=RECEIVED_AT)


def reason(body: object) -> str:
    with pytest.raises(InvalidEvent) as caught:
        normalize(body)
    return str(caught.value)


@cache
def validator(event_type: str) -> Draft202012Validator:
    schema = orjson.loads((SCHEMAS / f"{event_type}.json").read_bytes())
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def schema_errors(event: CanonicalEvent) -> list[str]:
    doc = orjson.loads(event.to_json())
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator(event.type).iter_errors(doc)]


@pytest.mark.parametrize("kind", SHORT_TYPES)
def test_each_type_builds_a_canonical_event_valid_against_its_schema(kind: str) -> None:
    event = normalize(posted(kind))
    assert event.type == f"inbox.conversation.{kind}"
    assert event.id == f"inbox:evt-{kind}-1"
    assert event.source == f"inbox:{PNID}"
    assert event.subject == "+525512345678"
    assert event.wabaid == "102290129340398"
    assert event.time == "2026-06-10T16:00:00Z"  # stored in UTC
    assert event.recvtime == "2026-06-10T16:00:05Z"
    assert event.data["phone_number_id"] == PNID
    assert event.data["conversation_id"] == "conv-1"
    assert event.data["contact"]["key"] == "+525512345678"
    assert schema_errors(event) == []


def test_data_carries_every_posted_field() -> None:
    body = posted(
        "converted",
        agent="agent-9",
        tags=["sales"],
        reason="promo",
        csat=4,
        note="called back",
        value=1249.9,
    )
    data = normalize(body).data
    assert {
        k: data[k] for k in ("agent", "tags", "outcome", "value", "reason", "csat", "note")
    } == {
        "agent": "agent-9",
        "tags": ["sales"],
        "outcome": "converted",
        "value": "1249.9",
        "reason": "promo",
        "csat": 4,
        "note": "called back",
    }


def test_a_handoff_keeps_the_queue_the_intents_and_the_captured_data() -> None:
    body = posted(
        "handoff",
        queue="ventas",
        intents=["comprar", "envio"],
        captured={"talla": "M", "cantidad": 2, "regalo": True, "nota": None, "peso": 1.5},
    )
    event = normalize(body)
    assert not schema_errors(event)
    data = event.data
    assert (data["queue"], data["intents"]) == ("ventas", ["comprar", "envio"])
    assert data["captured"] == {
        "talla": "M",
        "cantidad": 2,
        "regalo": True,
        "nota": None,
        "peso": 1.5,
    }
    assert data["captured_text"] == "talla: M\ncantidad: 2\nregalo: yes\nnota: -\npeso: 1.5"


def test_a_conversion_carries_its_currency_in_upper_case() -> None:
    event = normalize(posted("converted", currency="mxn"))
    assert (event.data["value"], event.data["currency"]) == ("1249.90", "MXN")
    assert not schema_errors(event)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"currency": "pesos"}, "currency: must be a 3-letter ISO 4217 currency code"),
        ({"currency": 484}, "currency: must be a 3-letter ISO 4217 currency code"),
        ({"captured": {"x": {"nested": 1}}}, "captured.x"),
        ({"captured": {f"k{i}": i for i in range(51)}}, "captured: must have at most 50 entries"),
        ({"captured": {"x": float("nan")}}, "captured.x"),
        ({"intents": ["x" * 129]}, "intents.0: must have at most 128 characters"),
        ({"queue": ""}, "queue: must have at least 1 character"),
    ],
)
def test_bad_handoff_and_conversion_fields_are_refused(
    changes: dict[str, Any], expected: str
) -> None:
    assert expected in reason(posted("handoff", **changes))


def test_short_and_full_type_names_give_the_same_event() -> None:
    short = normalize(posted("csat"))
    full = normalize(posted("csat", type="inbox.conversation.csat"))
    assert short.to_dict() == full.to_dict()


def test_the_posted_id_is_the_idempotency_key() -> None:
    first = normalize(posted())
    again = normalize_inbox_event(posted(), received_at=datetime(2026, 6, 11, tzinfo=UTC))
    assert first.id == again.id == "inbox:evt-resolved-1"
    assert first.recvtime != again.recvtime
    assert normalize(posted(id="evt-2")).id == "inbox:evt-2"


@pytest.mark.parametrize(
    "contact",
    [
        {"phone": "+52 1 55 1234 5678"},
        {"phone": "+52 55 1234 5678"},
        {"phone": "525512345678"},
        {"wa_id": "5215512345678"},
        {"wa_id": "5215512345678", "phone": "+52 (55) 1234-5678"},
    ],
)
def test_mexican_numbers_with_and_without_the_1_share_one_key(contact: dict[str, str]) -> None:
    event = normalize(posted(contact=contact))
    assert event.subject == "+525512345678"
    assert event.data["contact"]["country"] == "MX"


@pytest.mark.parametrize(
    "contact",
    [
        {"phone": "+54 11 6000-2001"},
        {"phone": "+54 9 11 6000-2001"},
        {"wa_id": "5491160002001", "phone": "+54 11 6000 2001"},
    ],
)
def test_argentine_numbers_with_and_without_the_9_share_one_key(contact: dict[str, str]) -> None:
    assert normalize(posted(contact=contact)).subject == "+5491160002001"


def test_wa_id_is_kept_exactly_as_sent() -> None:
    contact = normalize(posted(contact={"wa_id": "5215512345678"})).data["contact"]
    assert contact["wa_id"] == "5215512345678"
    assert contact["phone_e164"] == "+525512345678"


def test_a_bsuid_only_contact_is_keyed_by_bsuid() -> None:
    event = normalize(posted(contact={"user_id": "AR.1745503211829374650"}))
    assert event.subject == "bsuid:AR.1745503211829374650"
    contact = event.data["contact"]
    assert contact["phone_e164"] is None and contact["country"] == "AR"
    assert schema_errors(event) == []


def test_phone_wins_the_key_over_the_bsuid_and_both_are_kept() -> None:
    contact = normalize(
        posted(contact={"phone": "+5491123456789", "user_id": "AR.1745503211829374650"})
    ).data["contact"]
    assert contact["key"] == "+5491123456789"
    assert contact["user_id"] == "AR.1745503211829374650"


def test_value_travels_as_plain_decimal_text() -> None:
    assert normalize(posted("converted", value="1249.90")).data["value"] == "1249.90"
    assert normalize(posted("converted", value=1000)).data["value"] == "1000"
    assert normalize(posted("converted", value="1E+3")).data["value"] == "1000"
    assert normalize(posted("converted", value=None)).data["value"] is None


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (posted("assigned", agent=None), "agent: is required for assigned"),
        (posted("tagged", tags=None), "tags: at least one tag is required for tagged"),
        (posted("tagged", tags=[]), "tags: at least one tag is required for tagged"),
        (posted("tagged", tags=["ok", ""]), "tags.1: must have at least 1 character"),
        (posted("csat", csat=None), "csat: a score from 1 to 5 is required for csat"),
        (posted("csat", csat=6), "csat: must be less than or equal to 5"),
        (posted("csat", csat=0), "csat: must be greater than or equal to 1"),
        (posted("csat", csat="4"), "csat: must be a valid integer"),
        (posted("csat", csat=True), "csat: must be a valid integer"),
        (posted(type="reopened"), "type: must be one of assigned, tagged, resolved"),
        (posted(type="inbox.conversation.closed"), "type: must be one of"),
        (posted(time="2026-06-10T16:00:00"), "time: must be RFC 3339 with an offset"),
        (posted(time="2026-06-10 16:00"), "time: must be RFC 3339 with an offset"),
        (posted(time="1781100000"), "time: must be RFC 3339 with an offset"),
        (posted(time="2026-02-30T16:00:00Z"), "time: is not a real date and time"),
        (posted(id=""), "id: must have at least 1 character"),
        (posted(id=17), "id: must be a valid string"),
        (posted(contact={}), "contact: needs at least one of phone, wa_id or user_id"),
        (posted(contact={"phone": "12"}), "contact.phone: is not an international phone number"),
        (posted(contact={"name": "x"}), "contact.name: is not a known field"),
        (
            posted(contact={"phone": "+525512345678", "wa_id": "5491123456789"}),
            "contact: phone and wa_id name two different numbers",
        ),
        (posted(value="1,249.90"), "value: must be a decimal number such as 1249.90"),
        (posted(value="NaN"), "value: must be a finite decimal number"),
        (posted(value=True), "value: must be a decimal number, as a string or a number"),
        (posted(value=1e300), "value: must be at most 40 digits long"),
        # Counted, not written out: these were a MemoryError and a 100 MB string.
        (posted(value="0e-999999999999"), "value: must be at most 40 digits long"),
        (posted(value="1e100000000"), "value: must be at most 40 digits long"),
        (posted(value=False), "value: must be a decimal number, as a string or a number, not a"),
        # cases.outcome_value is NUMERIC(18, 4): PostgreSQL refused this mid-batch
        (posted(value="100000000000000"), "value: must be less than 100000000000000 (10^14)"),
        (posted(value=-1e14), "value: must be less than 100000000000000 (10^14) in magnitude"),
        # what the store keeps of the ids (worker/test_edge_fits.py): these failed the batch
        (posted(id="x" * 181), "id: must have at most 180 characters"),
        (posted(phone_number_id="1" * 129), "phone_number_id: must have at most 128 characters"),
        (posted(waba_id="1" * 129), "waba_id: must have at most 128 characters"),
        # an integer past 64 bits made the event unserializable (a 500, not a reason)
        (posted("handoff", captured={"n": 2**63}), "captured.n: must be an integer within 64 bits"),
        (posted("handoff", captured={"n": -(2**63) - 1}), "captured.n: must be an integer within"),
        # the case's captured text (base.yaml: max_length 4096) dead-lettered the event
        (
            posted("handoff", captured={f"k{i}": "x" * 1000 for i in range(5)}),
            "captured: as name: value lines it must have at most 4096 characters, not 5024",
        ),
        # no PostgreSQL text or JSON column stores U+0000: it failed the worker's batch
        (posted("assigned", agent="ana\x00"), "agent: must not contain the NUL character"),
        (posted(conversation_id="c\x00"), "conversation_id: must not contain the NUL"),
        (posted("tagged", tags=["ok", "\x00"]), "tags.1: must not contain the NUL character"),
        (posted("handoff", captured={"k": "\x00"}), "captured.k: must not contain the NUL"),
        (posted("handoff", captured={"k\x00": 1}), "captured: must not contain the NUL"),
        (posted(contact={"user_id": "MX.\x00"}), "contact.user_id: must not contain the NUL"),
        # in UTC before year 1 / after 9999: an OverflowError (a 500, not a reason)
        (posted(time="0001-01-01T00:00:00+01:00"), "time: is out of range"),
        (posted(time="9999-12-31T23:00:00-01:00"), "time: is out of range"),
        (posted(csat_score=4), "csat_score: is not a known field"),
        ([posted()], "an inbox event must be a JSON object, not an array"),
        ("resolved", "an inbox event must be a JSON object, not a string"),
        (None, "an inbox event must be a JSON object, not null"),
    ],
)
def test_bad_events_are_refused_with_a_reason(body: object, expected: str) -> None:
    assert expected in reason(body)


def test_every_missing_required_field_is_named() -> None:
    assert reason({"type": "resolved"}) == (
        "id: is required; time: is required; phone_number_id: is required; contact: is required"
    )


def test_reasons_never_echo_what_was_posted() -> None:
    # A phone typed into the wrong field must not come back in an error (or a log line).
    message = reason(posted(contact={"phone": "Mariana López 55 1234"}, agent=5512345678))
    assert "Mariana" not in message and "5512345678" not in message and "1234" not in message


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=20,
)
FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from([*SHORT_TYPES, "inbox.conversation.csat", "x"]) | JSON,
        "id": st.text(max_size=5) | JSON,
        "time": st.sampled_from(["2026-06-10T16:00:00Z", "2026-06-10T16:00:00+99:00"]) | JSON,
        "phone_number_id": st.just(PNID) | JSON,
        "contact": st.fixed_dictionaries(
            {},
            optional={
                "phone": st.text(alphabet="+0123456789 -", max_size=18) | JSON,
                "wa_id": st.text(alphabet="0123456789", max_size=16),
                "user_id": st.text(max_size=20) | JSON,
            },
        )
        | JSON,
        "tags": st.lists(st.text(max_size=5), max_size=3) | JSON,
        "agent": JSON,
        "csat": st.integers(-2, 8) | JSON,
        "value": st.decimals(allow_nan=True).map(str) | JSON,
    },
)


@settings(max_examples=300, deadline=None)
@given(FIELDS | JSON)
def test_any_body_gives_an_event_or_invalid_event_never_another_error(body: object) -> None:
    try:
        event = normalize(body)
    except InvalidEvent as exc:
        assert str(exc)
        return
    assert schema_errors(event) == []
