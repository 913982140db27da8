"""Sales through the real pipeline into the built-in SQL CRM: an order from the catalog is a
note with its items and an open deal of its case; the case's conversion makes that deal
won with the value the inbox posted; deals are one per case and off when the setting is."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from wa_bridge.connectors.sql import SqlCrmConnector
from wa_bridge.events import CanonicalEvent
from wa_bridge.mapping import load_mapping
from wa_bridge.store import SqlStore, open_store
from wa_bridge.store.tables import crm_cases, crm_deals, crm_notes
from wa_bridge.worker.pipeline import Pipeline

from .conversation_events import inbox_event, inbox_post
from .sqlcrm import SQL_MAPPING, sample_events

WA = "5215550001234"  # the customer of tests/samples/meta/order_mx.json


async def _rows(store: SqlStore, table: Any) -> list[dict[str, Any]]:
    async with store.engine.connect() as conn:
        return [dict(r) for r in (await conn.execute(select(table))).mappings()]


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqlStore]:
    opened = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'state.db'}", create=True)
    yield opened
    await opened.aclose()


def _pipeline(store: SqlStore, *, deals: bool) -> Pipeline:
    return Pipeline(store, load_mapping(SQL_MAPPING), SqlCrmConnector(store), deals=deals)


def _converted(when: datetime, post_id: str = "c1", **fields: Any) -> CanonicalEvent:
    body = inbox_post("converted", post_id, when, WA, value="13500", currency="MXN", **fields)
    return inbox_event(body)


async def test_an_order_is_a_note_and_an_open_deal_the_conversion_makes_won(
    store: SqlStore,
) -> None:
    pipeline = _pipeline(store, deals=True)
    [order] = sample_events("order_mx.json")
    ordered_at = datetime.fromisoformat(order.time.replace("Z", "+00:00"))
    await pipeline.apply([order])
    [note] = await _rows(store, crm_notes)
    assert note["message_type"] == "order"
    assert "SKU-ROBLE-6" in note["body"] and "12999.5" in note["body"]  # the items
    [case] = await _rows(store, crm_cases)
    [deal] = await _rows(store, crm_deals)
    assert (deal["deal_key"], deal["case_key"]) == (case["case_key"], case["case_key"])
    assert (deal["stage"], deal["amount"], deal["currency"]) == ("open", Decimal("12999.5"), "MXN")
    assert (deal["name"], deal["source"], deal["contact_key"]) == (
        "WhatsApp order",
        "order",
        case["contact_key"],
    )

    converted_at = ordered_at + timedelta(minutes=20)
    await pipeline.apply([_converted(converted_at)])
    await pipeline.apply([_converted(converted_at)])  # redelivered: once
    [deal] = await _rows(store, crm_deals)
    assert (deal["stage"], deal["amount"]) == ("won", Decimal("13500"))
    assert deal["closed_at"] == converted_at
    # made by the order: its name and source stay (on_create)
    assert (deal["name"], deal["source"]) == ("WhatsApp order", "order")


async def test_no_deal_when_deals_are_off_and_none_without_a_value(store: SqlStore) -> None:
    [order] = sample_events("order_mx.json")
    await _pipeline(store, deals=False).apply([order])
    assert await _rows(store, crm_deals) == []
    when = datetime.fromisoformat(order.time.replace("Z", "+00:00")) + timedelta(minutes=5)
    on = _pipeline(store, deals=True)
    await on.apply([inbox_event(inbox_post("converted", "c0", when, WA))])  # no value
    assert await _rows(store, crm_deals) == []
