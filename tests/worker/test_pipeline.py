"""The pipeline on its own: one batch, one transaction, the REST CRM contract server.

A real SQLite store and the REST connector against the contract server (``crm``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from wa_bridge.events import CanonicalEvent
from wa_bridge.settings import Settings
from wa_bridge.store.api import Store
from wa_bridge.worker.assembly import build_crm_connector
from wa_bridge.worker.pipeline import Pipeline

from .conftest import PNID, FlakyCrm, make_event
from .mapper import NoteMapper

K = "+5215512340000"


@pytest.fixture
async def pipeline(store: Store, crm: FlakyCrm) -> AsyncIterator[Pipeline]:
    settings = Settings(connector="rest", crm_base_url=crm.url, crm_token=crm.token)
    connector = build_crm_connector(settings, store)
    yield Pipeline(store, NoteMapper(), connector)
    await connector.aclose()


def status(n: int, message: int, value: str, second: int) -> CanonicalEvent:
    return CanonicalEvent(
        id=f"st-{n}",
        type="whatsapp.message.status",
        source="waba/1",
        time=f"2026-06-10T13:00:{second:02d}Z",
        data={
            "message_id": f"wamid.{message}",
            "status": value,
            "phone_number_id": PNID,
            "contact": {"key": K, "phone_e164": K},
        },
        subject=K,
        wabaid="1",
    )


def outcome_writes(crm: FlakyCrm) -> list[dict[str, Any]]:
    """Every record_outcome operation the CRM was sent, in order."""
    return [
        item["body"]["fields"]
        for r in crm.requests
        if r.path == "/batch"
        for item in r.body["operations"]
        if item["op"] == "record_outcome"
    ]


async def test_statuses_of_one_message_in_a_batch_are_written_once_with_the_latest(
    pipeline: Pipeline, crm: FlakyCrm
) -> None:
    events = [
        make_event(0, K),
        status(1, 0, "sent", 1),
        status(2, 0, "delivered", 2),
        status(3, 7, "delivered", 2),  # another message: its own write
        status(4, 0, "read", 3),
        status(5, 0, "delivered", 4),  # behind read: stale
    ]
    result = await pipeline.apply(events)
    assert outcome_writes(crm) == [{"status": "delivered"}, {"status": "read"}]
    assert result.outcomes == {
        "ev-0": "applied",
        "st-1": "applied",  # each moved the message forward, in the ledger too
        "st-2": "applied",
        "st-3": "applied",
        "st-4": "applied",
        "st-5": "stale",
    }
    # a later batch: read is the state to beat
    again = await pipeline.apply([status(6, 0, "delivered", 5), status(7, 0, "played", 6)])
    assert again.outcomes == {"st-6": "stale", "st-7": "applied"}
    assert outcome_writes(crm)[2:] == [{"status": "played"}]
