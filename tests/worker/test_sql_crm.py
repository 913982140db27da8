"""Real normalized events through the worker into the built-in SQL CRM (in-transaction path).

Uses mappings/sql.yaml, so the connector writes with ``apply_in`` inside the worker's
store transaction: ledger and CRM rows commit together.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from wa_bridge.worker.runner import open_worker

from .sqlcrm import crm_state, note_writes, publish, sample_events, status_events, text_events

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

SAMPLES = (
    "text_mx.json",
    "batch_multi.json",
    "bsuid_only_ar.json",
    "button_and_referral_mx.json",
    "echo_co.json",
    "media_br.json",
    "statuses_br.json",
    "user_updates.json",
    "account_batch.json",
    "unknown_fields.json",
    "system_ar.json",
)


async def test_sample_webhooks_become_contacts_cases_and_notes(
    sql_settings_factory: Callable[..., Any],
) -> None:
    settings = sql_settings_factory()
    events = [e for name in SAMPLES for e in sample_events(name)]
    async with open_worker(settings) as worker:
        await publish(settings, events)
        stats = await worker.run_until_idle()
    state = await crm_state(settings.database_url)
    assert stats.dead_lettered == 0, state
    assert stats.delivered + stats.duplicates + stats.stale == len(events)
    assert sum(state.outcomes.values()) == len({e.id for e in events})

    (text_mx,) = sample_events("text_mx.json")
    note = state.notes[str(text_mx.data["message_id"])]
    assert note["direction"] == "inbound"
    assert note["message_type"] == "text"
    assert note["body"] == text_mx.data["text"]["body"]
    assert note["case_key"] and note["contact_key"]

    statuses = {n: state.notes[n]["status"] for n in state.notes if "TEST00090" in n}
    assert sorted(statuses.values()) == ["failed", "played", "read"]
    failed = next(r for r in state.notes.values() if r["status"] == "failed")
    assert failed["status_error"] == "131026: Message undeliverable"
    assert state.contacts >= 5
    assert state.cases >= 5
    writes = await note_writes(settings.database_url)
    assert set(writes) == set(state.notes)


async def test_text_messages_land_once_each_with_a_case_per_contact(
    sql_settings_factory: Callable[..., Any],
) -> None:
    settings = sql_settings_factory()
    events = text_events(60, contacts=7)
    async with open_worker(settings) as worker:
        await publish(settings, events * 3)  # Meta retried every webhook twice
        stats = await worker.run_until_idle()
    assert (stats.delivered, stats.duplicates, stats.dead_lettered) == (60, 120, 0)
    state = await crm_state(settings.database_url)
    assert (state.contacts, state.cases, len(state.notes)) == (7, 7, 60)
    assert state.outcomes == {"applied": 60}
    writes = await note_writes(settings.database_url)
    assert len(writes) == 60 and max(writes.values()) == 1


async def test_statuses_out_of_order_end_at_read_and_each_lands_once(
    sql_settings_factory: Callable[..., Any],
) -> None:
    settings = sql_settings_factory(kafka_partitions=1)
    messages = text_events(3, contacts=1)
    # read, then delivered, then sent: arrival order is the reverse of Meta's order
    late_first = [("read", 30), ("delivered", 20), ("sent", 10)]
    statuses = [
        e
        for n in range(3)
        for status, at in late_first
        for e in status_events(n, 0, status, 1781200000 + at + n)
    ]
    async with open_worker(settings) as worker:
        await publish(settings, messages)
        await worker.run_until_idle()
        await publish(settings, statuses * 5)  # and every status webhook 5 times
        stats = await worker.run_until_idle()
    state = await crm_state(settings.database_url)
    assert (stats.delivered, stats.stale, stats.dead_lettered) == (6, 6, 0)
    assert stats.duplicates == 4 * 9
    assert [state.notes[str(m.data["message_id"])]["status"] for m in messages] == ["read"] * 3
    assert state.outcomes == {"applied": 3 + 3, "stale": 6}
    assert len(state.notes) == 3
    writes = await note_writes(settings.database_url)
    assert sorted(writes.values()) == [2, 2, 2]  # the message, then its read status
