"""Conversations through the real pipeline: the shipped SQL mapping, the built-in SQL CRM,
a real store (SQLite here; the end-to-end scenario runs on PostgreSQL), real normalized
events. What a business sees of each case: when it opened and closed, its touch, FRT,
handling time, FCR, outcome and CSAT; and what the worker keeps to decide them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
from jsonschema import Draft202012Validator
from sqlalchemy import select

from wa_bridge.connectors.sql import SqlCrmConnector
from wa_bridge.errors import InvalidEvent
from wa_bridge.events import CanonicalEvent
from wa_bridge.mapping import load_mapping
from wa_bridge.metrics import sample_values
from wa_bridge.operations import CrmOperation
from wa_bridge.store import SqlStore, open_store
from wa_bridge.store.cases import case_key_for
from wa_bridge.store.tables import cases, contacts, crm_cases, crm_contacts, crm_notes
from wa_bridge.worker.conversations import ConversationOptions, rfc3339
from wa_bridge.worker.pipeline import BatchResult, EventsRefused, Pipeline
from wa_bridge.worker.sweep import check_event

from .conversation_events import (
    AD_URL,
    CTWA_CLID,
    T0,
    at,
    business_status,
    customer_text,
    echo,
    inbox_event,
    inbox_post,
    wamid,
    webhook_events,
)
from .sqlcrm import SAMPLES, SQL_MAPPING

ROOT = Path(__file__).resolve().parents[2]
WA = "5215550001234"
PHONE = "+525550001234"
HOUR = 60.0  # minutes


class Conversation:
    """A pipeline on a fresh store, and what the CRM and the store hold."""

    def __init__(self, store: SqlStore) -> None:
        self.store = store
        self.pipeline = Pipeline(
            store,
            load_mapping(SQL_MAPPING),
            SqlCrmConnector(store),
            conversations=ConversationOptions(window=timedelta(hours=24)),
        )
        self.updates: list[CanonicalEvent] = []

    async def apply(self, *events: CanonicalEvent) -> BatchResult:
        result = await self.pipeline.apply(list(events))
        assert not result.rejected
        return result

    async def rows(self, table: Any, order: Any = None) -> list[dict[str, Any]]:
        async with self.store.engine.connect() as conn:
            stmt = select(table)
            if order is not None:
                stmt = stmt.order_by(order)
            return [dict(r) for r in (await conn.execute(stmt)).mappings()]

    async def crm_cases(self) -> list[dict[str, Any]]:
        return await self.rows(crm_cases, crm_cases.c.opened_at)

    async def cases(self) -> list[dict[str, Any]]:
        return await self.rows(cases, cases.c.opened_at)

    async def notes(self) -> dict[str, dict[str, Any]]:
        return {r["note_key"]: r for r in await self.rows(crm_notes)}


@pytest.fixture
async def conversation(tmp_path: Path) -> AsyncIterator[Conversation]:
    store = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'state.db'}", create=True)
    yield Conversation(store)
    await store.aclose()


def text(n: int, minutes: float, body: str = "hola", **kw: Any) -> list[CanonicalEvent]:
    return webhook_events(customer_text(WA, n, at(minutes), body, **kw))


def status(n: int, value: str, minutes: float) -> list[CanonicalEvent]:
    return webhook_events(business_status(WA, n, value, at(minutes)))


def inbox(kind: str, post_id: str, minutes: float, **fields: Any) -> CanonicalEvent:
    return inbox_event(inbox_post(kind, post_id, at(minutes), WA, **fields))


def the_sale() -> list[list[CanonicalEvent]]:
    """The issue's scenario, batch by batch: an ad click, a bot answer, a handoff, a tag,
    an agent's answer, a conversion, a CSAT, a late tag, and the customer back 30 h later."""
    return [
        text(1, 0, "Hola, vi el anuncio del sofá", ad=True),
        status(2, "sent", 0.2),  # the bot answers at once
        [inbox("handoff", "h1", 1, conversation_id="conv-1", queue="ventas", intents=["sofa"])],
        [inbox("tagged", "t1", 2, conversation_id="conv-1", tags=["sales", "vip"])],
        status(3, "sent", 3),  # the agent answers: FRT 180 s
        status(3, "delivered", 3.5),
        [
            inbox(
                "converted",
                "c1",
                10,
                conversation_id="conv-1",
                value="18999.00",
                currency="MXN",
                agent="ana",
            )
        ],
        [inbox("csat", "s1", 11, conversation_id="conv-1", csat=5)],
        [inbox("tagged", "t2", 12, conversation_id="conv-1", tags=["sofa"])],  # late
        text(4, 30 * HOUR, "¿Ya salió mi pedido?"),
    ]


async def test_the_sale_as_the_business_sees_it(conversation: Conversation) -> None:
    for batch in the_sale():
        await conversation.apply(*batch)
    first, second = await conversation.crm_cases()
    assert first["status"] == "resolved" and second["status"] == "open"
    assert first["channel"] == "whatsapp_ctwa_ad" and second["channel"] == "whatsapp"
    assert first["opened_at"] == at(0) and second["opened_at"] == at(30 * HOUR)
    assert (first["ctwa_clid"], first["source_url"]) == (CTWA_CLID, AD_URL)
    assert (first["utm_source"], first["utm_campaign"]) == ("facebook", "invierno26")
    assert first["ad_id"] == "120000000000000001"
    assert first["queue"] == "ventas" and first["agent"] == "ana"
    assert first["tags"] == ["sofa"]  # the late tag landed here, on the closed case
    assert first["conversation_id"] == "conv-1" and first["handoff_at"] == at(1)
    assert first["frt_s"] == 180 and first["first_response_at"] == at(3)  # a person's answer
    assert (first["outcome"], first["outcome_value"], first["outcome_currency"]) == (
        "won",
        Decimal("18999.0000"),
        "MXN",
    )
    assert first["csat"] == 5 and first["csat_at"] == at(11)
    assert first["closed_at"] == at(10) and first["close_reason"] == "converted"
    assert first["handling_s"] == 600 and first["fcr"] is True
    assert second["ctwa_clid"] is None and second["frt_s"] is None and second["fcr"] is None
    [contact] = await conversation.rows(crm_contacts)
    touch = contact["attributes"]
    assert touch["first_touch_ctwa_clid"] == CTWA_CLID
    assert touch["first_touch_utm_campaign"] == "invierno26"
    assert touch["first_touch_at"].startswith("2026-06-11T15:00:00")
    notes = await conversation.notes()
    assert notes[wamid(WA, 1)]["case_key"] == first["case_key"]
    assert notes[wamid(WA, 1)]["direction"] == "inbound"
    answer = notes[wamid(WA, 3)]  # an API message: an outbound note on the case, once
    assert (answer["direction"], answer["status"]) == ("outbound", "delivered")
    assert answer["case_key"] == first["case_key"]
    assert notes[wamid(WA, 4)]["case_key"] == second["case_key"]


async def test_one_batch_or_one_event_at_a_time_give_the_same_cases(tmp_path: Path) -> None:
    results = []
    everything = [event for batch in the_sale() for event in batch]
    for name, batches in (("one", [everything]), ("each", the_sale())):
        store = await open_store(f"sqlite+aiosqlite:///{tmp_path / name}.db", create=True)
        try:
            conversation = Conversation(store)
            for batch in batches:
                await conversation.apply(*batch)
            got = await conversation.crm_cases()
        finally:
            await store.aclose()
        results.append([{k: v for k, v in r.items() if k != "updated_at"} for r in got])
    assert results[0] == results[1]


async def test_the_window_lapses_on_the_next_message(conversation: Conversation) -> None:
    await conversation.apply(*text(1, 0))
    await conversation.apply(*text(2, 23 * HOUR))  # within the window: the same case
    await conversation.apply(*text(3, 48 * HOUR))  # 25 h after the last: a new one
    first, second = await conversation.cases()
    assert first["status"] == "closed" and first["close_reason"] == "lapsed"
    assert first["closed_at"] == at(47 * HOUR)  # the window's end, not the next message
    assert first["fcr"] is False and first["handling_s"] is None
    assert second["status"] == "open" and second["is_repeat"] is True  # back within 24 h
    crm_first, _ = await conversation.crm_cases()
    assert (crm_first["status"], crm_first["close_reason"]) == ("closed", "lapsed")


async def test_the_sweep_closes_a_case_nobody_writes_to_again(conversation: Conversation) -> None:
    await conversation.apply(*text(1, 0))
    assert await conversation.store.lapsed_cases(at(23 * HOUR)) == []
    [lapsed] = await conversation.store.lapsed_cases(at(25 * HOUR))
    check = check_event(lapsed, at(25 * HOUR))
    assert check.subject == PHONE  # keyed like the contact's events: applied in order
    result = await conversation.apply(check)
    assert result.outcomes[check.id] == "applied"
    [case] = await conversation.cases()
    assert (case["status"], case["close_reason"], case["closed_at"]) == (
        "closed",
        "lapsed",
        at(24 * HOUR),
    )
    assert (await conversation.crm_cases())[0]["status"] == "closed"
    assert (await conversation.apply(check)).outcomes[check.id] == "noop"  # once
    # a check sent before the customer wrote again finds the case alive: nothing changes
    await conversation.apply(*text(2, 26 * HOUR))
    async with conversation.store.transaction() as tx:
        loaded = await tx.load_cases([lapsed.contact_id])
    [alive] = [c for c in loaded.cases.values() if c.status == "open"]
    seen_before = dataclasses.replace(alive, lapses_at=at(26 * HOUR + 1))
    await conversation.apply(check_event(seen_before, at(27 * HOUR)))
    assert [c["status"] for c in await conversation.cases()] == ["closed", "open"]


async def test_echoes_answer_but_never_open_or_extend_the_window(
    conversation: Conversation,
) -> None:
    await conversation.apply(*webhook_events(echo(WA, 1, at(0), "¡Hola! ¿Le ayudo?")))
    assert await conversation.cases() == []
    assert (await conversation.notes())[wamid(WA, 1)]["case_key"] is None
    await conversation.apply(*text(2, 1))
    await conversation.apply(*webhook_events(echo(WA, 3, at(5), "Claro, le cotizo")))
    await conversation.apply(*webhook_events(echo(WA, 4, at(23.9 * HOUR), "¿Sigue ahí?")))
    [case] = await conversation.cases()
    assert case["frt_s"] == 240 and case["lapses_at"] == at(1 + 24 * HOUR)
    notes = await conversation.notes()
    assert notes[wamid(WA, 3)]["direction"] == "outbound"
    assert notes[wamid(WA, 3)]["body"] == "Claro, le cotizo"
    assert notes[wamid(WA, 3)]["case_key"] == case["case_key"]


async def test_late_and_repeated_inbox_events_never_reopen_or_duplicate(
    conversation: Conversation,
) -> None:
    await conversation.apply(*text(1, 0))
    await conversation.apply(inbox("resolved", "r1", 5, outcome="resolved"))
    await conversation.apply(inbox("resolved", "r2", 6))  # repeated, another id
    await conversation.apply(inbox("assigned", "a1", 7, agent="luis"))  # late
    await conversation.apply(inbox("csat", "s1", 8, csat=4))
    [case] = await conversation.crm_cases()
    assert (case["status"], case["closed_at"], case["agent"], case["csat"]) == (
        "resolved",
        at(5),
        "luis",
        4,
    )
    assert case["outcome"] == "resolved" and case["handling_s"] == 300
    # an inbox conversation nobody knew, days later: a new conversation, not the old case
    await conversation.apply(inbox("assigned", "a2", 72 * HOUR, agent="eva", conversation_id="x9"))
    old, new = await conversation.crm_cases()
    assert (old["agent"], new["agent"], new["status"]) == ("luis", "eva", "open")
    assert new["conversation_id"] == "x9"
    [_, tracked] = await conversation.cases()
    assert tracked["opened_by"] == "inbox" and tracked["first_inbound_at"] is None


async def test_a_resolution_after_the_window_lapsed_resolves_the_case(
    conversation: Conversation,
) -> None:
    await conversation.apply(*text(1, 0))
    await conversation.apply(*text(2, 25 * HOUR))  # the first case lapsed, a second opened
    await conversation.apply(inbox("resolved", "r1", 26 * HOUR, conversation_id="c-2"))
    first, second = await conversation.cases()
    assert first["status"] == "closed" and second["status"] == "resolved"
    # a late resolution naming the first conversation, which nothing had bound yet: the
    # latest case is bound to c-2, so a conversation id unknown to it is a new one
    assert second["conversation_id"] == "c-2"


async def test_a_status_note_stays_on_the_case_it_was_first_seen_in(
    conversation: Conversation,
) -> None:
    await conversation.apply(*text(1, 0))
    await conversation.apply(*status(2, "sent", 1))
    await conversation.apply(*text(3, 30 * HOUR))  # a new case
    await conversation.apply(*status(2, "read", 30 * HOUR + 1))  # read a day later
    first, second = await conversation.crm_cases()
    note = (await conversation.notes())[wamid(WA, 2)]
    assert note["case_key"] == first["case_key"] and note["status"] == "read"
    assert first["frt_s"] == 60 and second["frt_s"] is None  # a late read answers nothing


async def test_past_chats_become_notes_with_no_case_and_no_frt(
    conversation: Conversation,
) -> None:
    body = orjson.loads((SAMPLES / "history_mx.json").read_bytes())
    events = webhook_events(body)
    history = [e for e in events if e.type == "whatsapp.history.message"]
    assert history
    await conversation.apply(*events)
    notes = await conversation.notes()
    imported = [notes[str(e.data["message_id"])] for e in history]
    assert all(n["case_key"] is None for n in imported)
    assert {n["direction"] for n in imported} == {"inbound", "outbound"}
    assert all(n["attributes"]["imported_from"] == "whatsapp_history" for n in imported)
    assert "read" in {n["status"] for n in imported}
    assert await conversation.cases() == []
    assert {r["first_touch"] for r in await conversation.rows(contacts)} == {None}
    # the same chats again (Meta redelivered the webhook): nothing new
    before = await conversation.notes()
    await conversation.apply(*webhook_events(body))
    assert await conversation.notes() == before


async def test_the_contact_book_names_a_contact_only_where_it_has_no_name(
    conversation: Conversation,
) -> None:
    book = webhook_events(orjson.loads((SAMPLES / "contact_book_br.json").read_bytes()))
    named = [e for e in book if e.type == "whatsapp.contact_book.update" and e.data.get("name")]
    assert named
    await conversation.apply(*book)
    rows = {r["phone_e164"]: r["name"] for r in await conversation.rows(crm_contacts)}
    event = named[0]
    phone = event.data["contact"]["phone_e164"]
    assert rows[phone] == event.data["name"]


async def test_case_updates_match_their_schema_and_the_figures_reach_the_metrics(
    conversation: Conversation,
) -> None:
    schema = orjson.loads((ROOT / "schemas/conversation.case.updated.json").read_bytes())
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    seen: list[CanonicalEvent] = []
    mapper = conversation.pipeline.mapper

    class Recording:
        match_order = ("key", "phone", "email")

        def apply(self, event: CanonicalEvent) -> list[CrmOperation]:
            if event.type == "conversation.case.updated":
                seen.append(event)
            return mapper.apply(event)

    conversation.pipeline.mapper = Recording()  # the real mapping, observed
    names = [
        "wa_bridge_conversations_opened_total",
        "wa_bridge_conversations_closed_total",
        "wa_bridge_conversation_first_response_seconds_count",
        "wa_bridge_conversation_handling_seconds_sum",
        "wa_bridge_conversation_csat_sum",
    ]
    before = _totals(names)
    for batch in the_sale():
        await conversation.apply(*batch)
    assert seen
    for event in seen:
        errors = [e.message for e in validator.iter_errors(orjson.loads(event.to_json()))]
        assert not errors, errors
    assert any("first_touch" in e.data for e in seen)
    delta = {name: _totals(names)[name] - before[name] for name in names}
    assert delta == {
        "wa_bridge_conversations_opened_total": 2,
        "wa_bridge_conversations_closed_total": 1,
        "wa_bridge_conversation_first_response_seconds_count": 1,
        "wa_bridge_conversation_handling_seconds_sum": 600,
        "wa_bridge_conversation_csat_sum": 5,
    }


def _totals(names: list[str]) -> dict[str, float]:
    return {name: sum(v for _, v in samples) for name, samples in sample_values(names).items()}


async def test_a_batch_that_fails_leaves_no_case_and_the_next_gets_the_same_key(
    conversation: Conversation,
) -> None:
    first = text(1, 0)
    poisoned = CanonicalEvent(
        id="bad",
        type="inbox.conversation.csat",
        source="inbox:x",
        time=T0.isoformat(),
        data={"csat": "great", "phone_number_id": "400000000000001", "contact": {"key": PHONE}},
        subject=PHONE,
    )
    with pytest.raises(EventsRefused):
        await conversation.pipeline.apply([*first, poisoned])
    assert await conversation.cases() == []  # nothing of the batch committed
    await conversation.apply(*first)
    [case] = await conversation.cases()
    [contact] = await conversation.rows(contacts)
    assert case["case_key"] == case_key_for(contact["contact_id"], "400000000000001", 0)


async def test_a_case_from_before_windows_were_tracked_lapses_too(
    conversation: Conversation,
) -> None:
    await conversation.apply(*text(1, 0))
    async with conversation.store.engine.begin() as conn:  # as migration 0007 found it
        await conn.execute(cases.update().values(lapses_at=None, last_inbound_at=None))
    await conversation.apply(*text(2, 25 * HOUR))
    first, second = await conversation.cases()
    assert (first["status"], first["closed_at"]) == ("closed", at(24 * HOUR))
    assert second["status"] == "open"


@pytest.mark.postgres
async def test_the_largest_amount_the_inbox_takes_is_kept_on_postgresql(pg_url: str) -> None:
    """cases.outcome_value is NUMERIC(18, 4): an inbox value of 10^14 was taken, then made
    PostgreSQL fail the worker's batch. The inbox refuses it now, with the reason, and the
    largest value it takes is kept exactly, in the store and in the SQL CRM."""
    with pytest.raises(InvalidEvent, match=r"value: must be less than 100000000000000"):
        inbox("converted", "c0", 10, conversation_id="conv-1", value="100000000000000")
    store = await open_store(pg_url, create=True)
    try:
        conversation = Conversation(store)
        await conversation.apply(*text(1, 0))
        largest = "99999999999999.9999"
        await conversation.apply(
            inbox("converted", "c1", 10, conversation_id="conv-1", value=largest, currency="MXN")
        )
        [case], [crm_case] = await conversation.cases(), await conversation.crm_cases()
        assert case["outcome_value"] == crm_case["outcome_value"] == Decimal(largest)
    finally:
        await store.aclose()


def test_case_times_are_written_in_utc_whatever_zone_they_came_in() -> None:
    # rfc3339 is cached: equal moments in other zones share an entry, and must still
    # come out as the one UTC text
    utc = datetime(2026, 6, 11, 17, 46, 40, 123000, tzinfo=UTC)
    cdmx = utc.astimezone(timezone(timedelta(hours=-6)))
    assert rfc3339(cdmx) == rfc3339(utc) == "2026-06-11T17:46:40.123000Z"
    assert rfc3339(utc.replace(microsecond=0)) == "2026-06-11T17:46:40Z"
    assert rfc3339(None) is None
    assert rfc3339(utc.replace(tzinfo=None)) == "2026-06-11T17:46:40.123000Z"  # naive: UTC
    # 1:30 twice the night New York's clocks go back: equal and alike in hash (only fold
    # differs), an hour apart
    first = datetime(2026, 11, 1, 1, 30, tzinfo=ZoneInfo("America/New_York"))
    assert rfc3339(first) == "2026-11-01T05:30:00Z"
    assert rfc3339(first.replace(fold=1)) == "2026-11-01T06:30:00Z"
