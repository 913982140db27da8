"""What the worker adds around a connector call: the contacts a batch names (#10: a status
for a contact with no CRM record creates the contact first), the events the CRM refused."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import text

from wa_bridge.connectors.base import CrmResult, OpRejected
from wa_bridge.errors import CrmRejected
from wa_bridge.events import CanonicalEvent
from wa_bridge.normalize import normalize_webhook
from wa_bridge.operations import CrmOperation
from wa_bridge.store import create_engine
from wa_bridge.worker.crm_writes import CONTACT_OF_NOTE, refused_events, with_contacts
from wa_bridge.worker.runner import open_worker

from .conftest import FAST_GROUP
from .sqlcrm import RECEIVED_AT, publish, status_body


def status_event(n: int, phone: str | None) -> CanonicalEvent:
    contact = {"key": phone, "phone_e164": phone, "wa_id": phone and phone.lstrip("+")}
    return CanonicalEvent(
        id=f"ev-{n}",
        type="whatsapp.message.status",
        source="waba/1",
        time="2026-06-10T12:00:00Z",
        data={"message_id": f"wamid.{n}", "status": "sent", "contact": contact},
        subject=phone,
        wabaid="1",
    )


def note(n: int, contact_key: str) -> CrmOperation:
    return CrmOperation(
        kind="add_note",
        fields={"message_id": f"wamid.{n}", "status": "sent"},
        event_id=f"ev-{n}",
        contact_key=contact_key,
    )


def test_a_note_of_a_contact_the_batch_does_not_upsert_gets_one_first() -> None:
    upserted = CrmOperation(kind="upsert_contact", fields={}, event_id="ev-1", contact_key="c_a")
    ops = [upserted, note(1, "c_a"), note(2, "c_b"), note(3, "c_b"), note(4, "c_c")]
    events = [status_event(2, "+5215500000002"), status_event(4, None)]
    out = with_contacts(ops, events)
    assert [(op.kind, op.contact_key) for op in out] == [
        ("upsert_contact", "c_a"),
        ("add_note", "c_a"),
        ("upsert_contact", "c_b"),  # before its first note, once
        ("add_note", "c_b"),
        ("add_note", "c_b"),
        ("upsert_contact", "c_c"),
        ("add_note", "c_c"),
    ]
    added_b, added_c = out[2], out[5]
    assert added_b.fields == {"phone_e164": "+5215500000002"}
    assert added_b.write_modes == {"phone_e164": "if_empty"}  # never moves a known contact
    assert added_b.event_id == "ev-2" and added_b.source == CONTACT_OF_NOTE
    assert added_c.fields == {} and added_c.write_modes == {}  # a BSUID-only: the key alone
    assert added_b.idempotency_key != note(2, "c_b").idempotency_key


def test_refused_events_keep_the_first_refusal() -> None:
    ops = [note(1, "c_a"), note(1, "c_a"), note(2, "c_b")]
    first = CrmRejected("refused", status_code=400, crm_error="first")
    second = CrmRejected("refused", status_code=400, crm_error="second")
    results = [OpRejected(first), OpRejected(second), CrmResult("7")]
    assert refused_events(ops, results) == {"ev-1": first}


@pytest.mark.kafka
@pytest.mark.postgres
async def test_the_sql_crm_gets_the_contact_of_a_status_too(
    sql_settings_factory: Callable[..., Any],
) -> None:
    # a template's status before the person ever wrote: the contact exists, with the phone
    settings = sql_settings_factory(kafka_partitions=1)
    events = normalize_webhook(status_body(1, 7, "sent", 1781200001), received_at=RECEIVED_AT)
    async with open_worker(settings, consumer_options=FAST_GROUP) as worker:
        await publish(settings, events)
        stats = await worker.run_until_idle()
    assert stats.dead_lettered == 0
    engine = create_engine(settings.database_url)
    try:
        async with engine.connect() as conn:
            contacts = (await conn.execute(text("SELECT * FROM crm_contacts"))).mappings().all()
            notes = (await conn.execute(text("SELECT contact_key FROM crm_notes"))).all()
    finally:
        await engine.dispose()
    [contact] = contacts
    assert contact["phone_e164"] == "+525500000007"
    assert [n for (n,) in notes] == [contact["contact_key"]]
