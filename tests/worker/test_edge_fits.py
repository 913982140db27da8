"""What the edges accept, the store keeps: every field of ``POST /inbox/events`` and
``POST /consents`` at the most its model takes, through the worker, on PostgreSQL.

A value an edge accepts but a column cannot hold fails the worker's whole batch (or
dead-letters the event) long after the sender got its 202: nobody can explain that to
them. These tests post, for each event kind, a body with every field at its edge maximum
(the lengths are read from the models' JSON schema, so raising a limit there without
widening the store fails here), apply it through the real Pipeline (the store and the
built-in SQL CRM, ``mappings/sql.yaml``) and read back what was kept.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from wa_bridge.connectors.sql import SqlCrmConnector
from wa_bridge.errors import InvalidEvent
from wa_bridge.events import CanonicalEvent
from wa_bridge.mapping import load_mapping
from wa_bridge.normalize.consent import ConsentIn, normalize_consent
from wa_bridge.normalize.inbox import (
    MAX_CAPTURED_TEXT_CHARS,
    SHORT_TYPES,
    InboxEventIn,
    normalize_inbox_event,
)
from wa_bridge.store import SqlStore, open_store
from wa_bridge.store.tables import (
    cases,
    consents,
    crm_cases,
    crm_consents,
    crm_deals,
    crm_outcomes,
    dead_letters,
    event_traces,
    identities,
    processed_events,
)
from wa_bridge.worker.conversations import ConversationOptions
from wa_bridge.worker.pipeline import Pipeline

from .sqlcrm import SQL_MAPPING

T0 = datetime(2026, 6, 11, 15, 0, tzinfo=UTC)
_INBOX = InboxEventIn.model_json_schema()
_CONSENT = ConsentIn.model_json_schema()
# "ñ" is two bytes in UTF-8, "🦄" four: a column must count characters, not bytes
_WIDE = "ñé🦄"


def _branch(schema: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    """The non-null branch of a property of ``schema`` (a model's JSON schema)."""
    prop = schema["properties"][name]
    for branch in prop.get("anyOf", [prop]):
        if branch.get("type") != "null":
            return branch  # type: ignore[no-any-return]
    raise AssertionError(f"{name} has no non-null branch")


def _max_length(schema: Mapping[str, Any], name: str) -> int:
    return int(_branch(schema, name)["maxLength"])


def _contact_limit(name: str) -> int:
    return _max_length(_INBOX["$defs"]["InboxContactIn"], name)


def longest(size: int, tag: str = "") -> str:
    """``tag`` then multi-byte characters, ``size`` characters in all."""
    body = (_WIDE * size)[: size - len(tag)]
    return tag + body


def padded(text: str, size: int) -> str:
    """``text`` padded with spaces to ``size`` characters (a number the parser still reads)."""
    return text.ljust(size)


def max_contact() -> dict[str, str]:
    """A contact with all three identifiers, each as long as the edge takes."""
    return {
        # one number in two accepted spellings, each padded to the limit
        "phone": padded("+52 55 5000 1234", _contact_limit("phone")),
        "wa_id": padded("5215550001234", _contact_limit("wa_id")),
        "user_id": "MX." + "7" * (_contact_limit("user_id") - 3),
    }


def max_captured() -> dict[str, Any]:
    """``captured`` at its most: every entry, the longest names, values of every kind at
    their extremes, and a text value that brings its ``name: value`` lines to the limit."""
    captured = _branch(_INBOX, "captured")
    name_size = int(captured["propertyNames"]["maxLength"])
    text_size = int(captured["additionalProperties"]["anyOf"][0]["maxLength"])
    extremes: list[Any] = [2**63 - 1, -(2**63), 1.7976931348623157e308, True, None]
    entries = _captured_entries()
    out: dict[str, Any] = {
        longest(name_size, f"{i:02d}"): extremes[i % len(extremes)] for i in range(entries - 1)
    }
    used = len(normalize_inbox_event(_with_captured(out), received_at=T0).data["captured_text"])
    last = MAX_CAPTURED_TEXT_CHARS - used - 1 - (name_size + 2)  # a newline, "name: "
    assert 0 < last <= text_size
    out[longest(name_size, "zz")] = longest(last)
    return out


def _with_captured(captured: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "handoff",
        "id": "probe",
        "time": "2026-06-11T15:00:00Z",
        "phone_number_id": "1",
        "contact": {"wa_id": "5215550001234"},
        "captured": captured,
    }


def max_inbox_post(kind: str, n: int, when: datetime) -> dict[str, Any]:
    """A ``POST /inbox/events`` body with every field at the most the model takes."""
    tags = _branch(_INBOX, "tags")
    intents = _branch(_INBOX, "intents")
    return {
        "type": "inbox.conversation." + kind,
        "id": longest(_max_length(_INBOX, "id"), f"{kind}-{n}-"),
        "time": when.isoformat(timespec="microseconds").replace("+00:00", "Z"),
        "phone_number_id": "4" * _max_length(_INBOX, "phone_number_id"),
        "waba_id": "3" * _max_length(_INBOX, "waba_id"),
        "conversation_id": longest(_max_length(_INBOX, "conversation_id"), "conv-"),
        "contact": max_contact(),
        "agent": longest(_max_length(_INBOX, "agent"), "agent-"),
        "queue": longest(_max_length(_INBOX, "queue"), "queue-"),
        "tags": [longest(tags["items"]["maxLength"], f"{i:02d}") for i in range(tags["maxItems"])],
        # the outcome must be one of the mapping's catalog (an unknown one is dead-lettered
        # on purpose: base.yaml, catalog `outcome`)
        "outcome": "won",
        "value": "-99999999999999.9999" if kind == "resolved" else "99999999999999.9999",
        "currency": "mxn",
        "intents": [
            longest(intents["items"]["maxLength"], f"{i:02d}") for i in range(intents["maxItems"])
        ],
        "captured": max_captured(),
        "reason": longest(_max_length(_INBOX, "reason")),
        "csat": int(_branch(_INBOX, "csat")["maximum"]),
        "note": longest(_max_length(_INBOX, "note")),
    }


def _captured_entries() -> int:
    """The most entries ``captured`` takes (its description says it)."""
    description = _INBOX["properties"]["captured"]["description"]
    return int(description.split("at most ")[1].split(";")[0])


def max_consent_post(n: int, when: datetime, status: str) -> dict[str, Any]:
    """A ``POST /consents`` body with every field at the most the model takes."""
    word = _max_length(_CONSENT, "captured_via")
    return {
        "id": longest(_max_length(_CONSENT, "id"), f"consent-{n}-"),
        "contact": max_contact(),
        "status": status,
        "captured_via": "web_form_" + "x" * (word - 9),
        "purpose": "marketing_" + "y" * (word - 10),
        "channel": "whatsapp_" + "z" * (word - 9),
        "text_shown": longest(_max_length(_CONSENT, "text_shown")),
        "time": when.isoformat().replace("+00:00", "Z"),
        "source": longest(_max_length(_CONSENT, "source"), "landing/"),
        "phone_number_id": "4" * _max_length(_CONSENT, "phone_number_id"),
        "waba_id": "3" * _max_length(_CONSENT, "waba_id"),
    }


class Worker:
    """The real pipeline on a store: the shipped SQL mapping and the built-in SQL CRM."""

    def __init__(self, store: SqlStore) -> None:
        self.store = store
        self.pipeline = Pipeline(
            store,
            load_mapping(SQL_MAPPING),
            SqlCrmConnector(store),
            conversations=ConversationOptions(window=timedelta(hours=24)),
            deals=True,  # the SQL CRM's default (WA_BRIDGE_CRM_DEALS)
        )

    async def apply(self, event: CanonicalEvent, outcome: str = "applied") -> None:
        """Apply ``event`` as a batch of its own; it must take effect (``outcome``: noop
        for an event the mapping sends nothing of)."""
        result = await self.pipeline.apply([event])
        assert not result.rejected, result.rejected
        assert result.outcomes[event.id] == outcome

    async def rows(self, table: Any) -> list[dict[str, Any]]:
        async with self.store.engine.connect() as conn:
            return [dict(r) for r in (await conn.execute(select(table))).mappings()]


KINDS = ("handoff", "assigned", "tagged", "csat", "converted", "resolved")


@pytest.mark.postgres
async def test_every_inbox_field_at_its_edge_maximum_is_kept_on_postgresql(pg_url: str) -> None:
    store = await open_store(pg_url)
    try:
        worker = Worker(store)
        posted = {}
        for n, kind in enumerate(KINDS):
            body = max_inbox_post(kind, n, T0 + timedelta(minutes=n))
            event = normalize_inbox_event(body, received_at=T0)
            await worker.apply(event)
            posted[kind] = (body, event)
        assert await worker.rows(dead_letters) == []
        body = posted["handoff"][0]
        [case] = await worker.rows(cases)
        [crm_case] = await worker.rows(crm_cases)
        assert case["conversation_id"] == crm_case["conversation_id"] == body["conversation_id"]
        assert case["business_number"] == body["phone_number_id"]
        assert case["outcome"] == crm_case["outcome"] == "won"
        assert case["csat"] == crm_case["csat"] == 5
        # converted set it; resolved (no value on the case) left it
        assert case["outcome_value"] == crm_case["outcome_value"] == Decimal(body["value"])
        assert case["outcome_currency"] == crm_case["outcome_currency"] == "MXN"
        assert crm_case["agent"] == body["agent"] and crm_case["queue"] == body["queue"]
        assert crm_case["tags"] == body["tags"]
        assert crm_case["intents"] == body["intents"]
        assert crm_case["captured"] == posted["handoff"][1].data["captured_text"]
        outcomes = {r["outcome_key"]: r for r in await worker.rows(crm_outcomes)}
        for kind in ("converted", "resolved"):
            body, event = posted[kind]
            [row] = [r for key, r in outcomes.items() if key.startswith(event.id + ":")]
            assert row["reason"] == body["reason"]
        [outcome] = [r for r in outcomes.values() if r["value"] is not None]
        assert outcome["value"] == Decimal(posted["converted"][0]["value"])
        [deal] = await worker.rows(crm_deals)
        assert deal["amount"] == Decimal(posted["converted"][0]["value"])
        ids = {e.id for _, e in posted.values()}
        assert ids <= {r["event_id"] for r in await worker.rows(processed_events)}
        assert ids <= {r["event_id"] for r in await worker.rows(event_traces)}
        user_id = max_contact()["user_id"]
        assert user_id in {r["value"] for r in await worker.rows(identities)}
    finally:
        await store.aclose()


@pytest.mark.postgres
async def test_every_consent_field_at_its_edge_maximum_is_kept_on_postgresql(pg_url: str) -> None:
    store = await open_store(pg_url)
    try:
        worker = Worker(store)
        bodies = [
            max_consent_post(n, T0 + timedelta(minutes=n), s)
            for n, s in enumerate(("opt_in", "opt_out"))
        ]
        for body in bodies:
            await worker.apply(normalize_consent(body, received_at=T0, recorded_by="a" * 200))
        assert await worker.rows(dead_letters) == []
        ledger = sorted(await worker.rows(consents), key=lambda r: r["at"])
        assert [r["event_id"] for r in ledger] == ["consent:" + b["id"] for b in bodies]
        for row, body in zip(ledger, bodies, strict=True):
            assert row["text_shown"] == body["text_shown"]
            assert row["source"] == body["source"]
            assert (row["channel"], row["purpose"], row["status"]) == (
                body["channel"],
                body["purpose"],
                body["status"],
            )
            assert row["captured_via"] == body["captured_via"]
        crm = sorted(await worker.rows(crm_consents), key=lambda r: r["occurred_at"])
        assert [r["status"] for r in crm] == ["opt_in", "opt_out"]
        assert all(r["channel"] == bodies[0]["channel"] for r in crm)
        user_id = max_contact()["user_id"]
        assert user_id in {r["value"] for r in await worker.rows(identities)}
    finally:
        await store.aclose()


@pytest.mark.postgres
@pytest.mark.parametrize("time", ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999999Z"])
async def test_the_earliest_and_latest_times_the_inbox_takes_are_kept(
    pg_url: str, time: str
) -> None:
    store = await open_store(pg_url)
    try:
        worker = Worker(store)
        # the second event finds the case the first one opened (its window checked)
        for n, kind in enumerate(("handoff", "csat")):
            body = {**max_inbox_post(kind, n, T0), "time": time}
            await worker.apply(normalize_inbox_event(body, received_at=T0))
        [case] = await worker.rows(cases)
        assert case["opened_at"] == datetime.fromisoformat(time)
    finally:
        await store.aclose()


# --- any accepted post is kept: hypothesis -----------------------------------------------

_OUTCOMES = [None, "won", "converted", "lost", "resolved", "no_response", "spam"]
_NUMBERS = ["5215550001234", "+52 55 5000 1235", "5491123456789", "+57 300 123 4567"]


def _texts(max_size: int, min_size: int = 1) -> st.SearchStrategy[str]:
    """Any text (NUL, surrogates' neighbours, emoji, combining marks) up to ``max_size``."""
    return st.text(st.characters(exclude_categories=("Cs",)), min_size=min_size, max_size=max_size)


def _optional(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


_CAPTURED_VALUES = (
    _texts(1000, 0)
    | st.integers(-(2**64), 2**64)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.booleans()
    | st.none()
)


@st.composite
def inbox_posts(draw: st.DrawFn) -> dict[str, Any]:
    """A body for POST /inbox/events: any values, most within the edge's limits."""
    moment = draw(
        st.datetimes(
            min_value=datetime(1, 1, 2),
            max_value=datetime(9999, 12, 30),
            timezones=st.sampled_from(
                [UTC, timezone(timedelta(hours=-14)), timezone(timedelta(hours=14))]
            ),
        )
    )
    contact: dict[str, Any] = {"wa_id": draw(st.sampled_from(_NUMBERS))}
    user_id = draw(_optional(_texts(128)))
    if user_id is not None:
        contact["user_id"] = user_id
    return {
        "type": draw(st.sampled_from(SHORT_TYPES)),
        "id": draw(_texts(170)),
        "time": moment.isoformat(),
        "phone_number_id": draw(_texts(128)),
        "waba_id": draw(_optional(_texts(128))),
        "conversation_id": draw(_optional(_texts(200))),
        "contact": contact,
        "agent": draw(_optional(_texts(128))),
        "queue": draw(_optional(_texts(128))),
        "tags": draw(_optional(st.lists(_texts(64), min_size=1, max_size=50))),
        "outcome": draw(st.sampled_from(_OUTCOMES)),
        "value": draw(
            _optional(st.decimals(-(10**14) + 1, 10**14 - 1, places=4, allow_nan=False).map(str))
        ),
        "currency": draw(_optional(st.sampled_from(["MXN", "brl", "Cop"]))),
        "intents": draw(_optional(st.lists(_texts(128), max_size=50))),
        "captured": draw(_optional(st.dictionaries(_texts(64), _CAPTURED_VALUES, max_size=50))),
        "reason": draw(_optional(_texts(256))),
        "csat": draw(_optional(st.integers(1, 5))),
        "note": draw(_optional(_texts(2000))),
    }


@pytest.mark.postgres
@settings(
    max_examples=30,  # ~10 s; the fixed-maximum tests above cover each field's limit
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=inbox_posts())
def test_any_post_the_inbox_accepts_is_applied_on_postgresql(
    pg_url: str, body: dict[str, Any]
) -> None:
    body["id"] = f"{next(_SERIAL)}-{body['id']}"  # (the examples share the database)
    try:
        event = normalize_inbox_event(body, received_at=T0)
    except InvalidEvent:
        assume(False)  # refused at the edge with a reason: fine
        return

    async def apply() -> None:
        store = await open_store(pg_url)
        try:
            await Worker(store).apply(event)
        finally:
            await store.aclose()

    asyncio.run(apply())


_SERIAL = itertools.count()
