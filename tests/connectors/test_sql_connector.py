"""The built-in SQL CRM connector on PostgreSQL and SQLite: idempotent upserts, errors."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Table, select

from wa_bridge.connectors.base import CrmConnector
from wa_bridge.connectors.sql import SqlCrmConnector
from wa_bridge.errors import CrmRejected, UnkeyedOperation
from wa_bridge.operations import CrmOperation, FieldValue, OperationKind
from wa_bridge.store import SqlStore
from wa_bridge.store.tables import crm_cases, crm_contacts, crm_notes, crm_outcomes

StoreFactory = Callable[..., Awaitable[SqlStore]]
T0 = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)


def op(kind: OperationKind, event_id: str, index: int = 0, **fields: FieldValue) -> CrmOperation:
    return CrmOperation(
        kind=kind, fields=fields, event_id=event_id, index=index, contact_key="c_1", case_key="k_1"
    )


def batch() -> list[CrmOperation]:
    return [
        op(
            "upsert_contact",
            "e1",
            phone_e164="+5215512345678",
            wa_id="5215512345678",
            name="Ana",
            tags=("vip", "mx"),
            loyalty_tier="gold",
        ),
        op("upsert_case", "e1", 1, status="open", channel="whatsapp", tags=("ads",), opened_at=T0),
        op(
            "add_note",
            "e1",
            2,
            message_id="wamid.1",
            direction="inbound",
            message_type="text",
            body="hola",
            occurred_at=T0,
        ),
        op("record_outcome", "e9", outcome="won", value=Decimal("12.50"), csat=5),
        op("set_consent", "e8", channel="whatsapp", purpose="marketing", status="opt_out"),
    ]


async def rows(store: SqlStore, table: Table) -> list[dict[str, Any]]:
    async with store.engine.connect() as conn:
        result = await conn.execute(select(table))
        return [dict(r.items()) for r in result.mappings()]


async def notes_by_key(store: SqlStore, *columns: str) -> dict[str, tuple[Any, ...]]:
    """Each CRM note's ``columns``, by its key."""
    return {r["note_key"]: tuple(r[c] for c in columns) for r in await rows(store, crm_notes)}


async def snapshot(store: SqlStore) -> dict[str, list[dict[str, Any]]]:
    out = {}
    for table in (crm_contacts, crm_cases, crm_notes, crm_outcomes):
        out[table.name] = [
            {k: v for k, v in r.items() if k not in ("created_at", "updated_at")}
            for r in await rows(store, table)
        ]
    return out


async def test_is_a_crm_connector(store_url: str, store_factory: StoreFactory) -> None:
    connector = SqlCrmConnector(await store_factory(store_url))
    assert isinstance(connector, CrmConnector)


async def test_apply_twice_equals_once(store_url: str, store_factory: StoreFactory) -> None:
    store = await store_factory(store_url)
    connector = SqlCrmConnector(store, clock=lambda: T0)
    first = await connector.apply(batch())
    assert [r.created for r in first] == [True] * 5
    once = await snapshot(store)
    second = await connector.apply(batch())
    assert [r.created for r in second] == [False] * 5
    assert await snapshot(store) == once
    [contact] = once["crm_contacts"]
    assert contact["name"] == "Ana" and contact["phone_e164"] == "+5215512345678"
    assert contact["attributes"] == {"tags": ["vip", "mx"], "loyalty_tier": "gold"}
    [case] = once["crm_cases"]
    assert case["tags"] == ["ads"] and case["opened_at"] == T0 and case["contact_key"] == "c_1"
    [outcome] = once["crm_outcomes"]
    assert outcome["value"] == Decimal("12.50") and outcome["csat"] == 5


async def test_status_update_keeps_the_note_body(
    store_url: str, store_factory: StoreFactory
) -> None:
    store = await store_factory(store_url)
    connector = SqlCrmConnector(store)
    await connector.apply(batch())
    [result] = await connector.apply(
        [op("add_note", "e2", message_id="wamid.1", status="read", pricing="free")]
    )
    assert result.crm_id == "wamid.1" and not result.created
    [note] = await rows(store, crm_notes)
    assert (note["body"], note["direction"], note["status"]) == ("hola", "inbound", "read")
    assert note["attributes"] == {"pricing": "free"}


async def test_duplicate_keys_in_one_batch_keep_the_last_values(
    store_url: str, store_factory: StoreFactory
) -> None:
    store = await store_factory(store_url)
    connector = SqlCrmConnector(store)
    results = await connector.apply(
        [
            op("add_note", "e1", message_id="wamid.9", body="hi", status="sent"),
            op("add_note", "e2", message_id="wamid.9", status="delivered"),
            op("upsert_contact", "e1", name="A"),
            op("upsert_contact", "e2", name="B", country="MX"),
        ]
    )
    assert [r.created for r in results] == [True, False, True, False]
    [note] = await rows(store, crm_notes)
    assert (note["body"], note["status"]) == ("hi", "delivered")
    [contact] = await rows(store, crm_contacts)
    assert (contact["name"], contact["country"]) == ("B", "MX")


async def test_apply_in_commits_with_the_store_transaction(
    store_url: str, store_factory: StoreFactory
) -> None:
    store = await store_factory(store_url)
    connector = SqlCrmConnector(store)
    with pytest.raises(RuntimeError):
        async with store.transaction() as tx:
            await tx.claim_events(["e1"])
            await connector.apply_in(tx, batch())
            raise RuntimeError("worker crashed before commit")
    assert await rows(store, crm_contacts) == []
    async with store.transaction() as tx:
        assert await tx.claim_events(["e1"]) == {"e1"}
        await connector.apply_in(tx, batch())
    assert len(await rows(store, crm_contacts)) == 1


async def test_missing_contact_key_is_rejected(store_url: str, store_factory: StoreFactory) -> None:
    connector = SqlCrmConnector(await store_factory(store_url))
    bad = CrmOperation(kind="upsert_contact", fields={"name": "x"}, event_id="e1")
    with pytest.raises(UnkeyedOperation, match="upsert_contact of event e1 has no contact_key"):
        await connector.apply([bad])


@pytest.mark.postgres
async def test_over_long_value_is_crm_rejected_on_postgres(
    pg_url: str, store_factory: StoreFactory
) -> None:
    store = await store_factory(pg_url)
    connector = SqlCrmConnector(store)
    with pytest.raises(CrmRejected) as info:
        await connector.apply([op("upsert_contact", "e1", country="X" * 50)])
    assert info.value.status_code == 400
    assert "too long" in info.value.crm_error
    # inside the worker's transaction the savepoint keeps the transaction usable
    async with store.transaction() as tx:
        await tx.claim_events(["e5"])
        with pytest.raises(CrmRejected):
            await connector.apply_in(
                tx, [op("upsert_contact", "e5", csat_text="x", country="Y" * 9)]
            )
        await connector.apply_in(tx, [op("upsert_contact", "e5", country="MX")])
    [contact] = await rows(store, crm_contacts)
    assert contact["country"] == "MX"


async def test_unchanged_record_is_not_rewritten(
    store_url: str, store_factory: StoreFactory
) -> None:
    store = await store_factory(store_url)
    now = [T0]
    connector = SqlCrmConnector(store, clock=lambda: now[0])
    contact = op("upsert_contact", "e1", name="Ana", country="MX", tier="gold")
    await connector.apply([contact])
    now[0] = T0 + timedelta(hours=1)
    [again] = await connector.apply([op("upsert_contact", "e2", name="Ana", tier="gold")])
    assert not again.created
    [row] = await rows(store, crm_contacts)
    assert row["updated_at"] == T0 and row["created_at"] == T0  # nothing changed
    now[0] = T0 + timedelta(hours=2)
    await connector.apply([op("upsert_contact", "e3", tier="platinum")])
    [row] = await rows(store, crm_contacts)
    assert row["updated_at"] == now[0] and row["attributes"] == {"tier": "platinum"}
    assert (row["name"], row["country"]) == ("Ana", "MX")
    now[0] = T0 + timedelta(hours=3)
    await connector.apply([op("upsert_contact", "e4", name="Ana María")])
    [row] = await rows(store, crm_contacts)
    assert row["updated_at"] == now[0] and row["name"] == "Ana María"


async def test_created_is_false_for_records_written_earlier_in_the_transaction(
    store_url: str, store_factory: StoreFactory
) -> None:
    store = await store_factory(store_url)
    connector = SqlCrmConnector(store)
    async with store.transaction() as tx:
        first = await connector.apply_in(tx, batch())
        second = await connector.apply_in(tx, batch())
        changed = await connector.apply_in(
            tx,
            [
                op("upsert_contact", "e5", name="Bea"),
                op("add_note", "e5", 1, message_id="wamid.2", body="new"),
            ],
        )
    assert [r.created for r in first] == [True] * 5
    assert [r.created for r in second] == [False] * 5
    assert [r.created for r in changed] == [False, True]


async def test_naive_times_are_taken_as_utc(store_url: str, store_factory: StoreFactory) -> None:
    store = await store_factory(store_url)
    connector = SqlCrmConnector(store)
    naive = T0.replace(tzinfo=None)
    await connector.apply([op("add_note", "e1", message_id="wamid.7", occurred_at=naive)])
    [note] = await rows(store, crm_notes)
    assert note["occurred_at"] == T0


async def test_values_shared_by_every_row_and_unset_fields(
    store_url: str, store_factory: StoreFactory
) -> None:
    # PostgreSQL sends a value shared by all rows once and leaves all-NULL columns out
    store = await store_factory(store_url)
    connector = SqlCrmConnector(store, clock=lambda: T0)
    notes = [
        op("add_note", f"e{i}", message_id=f"wamid.{i}", direction="inbound", occurred_at=T0)
        for i in range(3)
    ]
    notes.append(op("add_note", "e3", message_id="wamid.3", direction="outbound", body="x"))
    await connector.apply(notes)
    got = await notes_by_key(store, "direction", "occurred_at", "body", "created_at")
    assert got == {
        "wamid.0": ("inbound", T0, None, T0),
        "wamid.1": ("inbound", T0, None, T0),
        "wamid.2": ("inbound", T0, None, T0),
        "wamid.3": ("outbound", None, "x", T0),
    }


async def test_a_column_one_row_leaves_out_keeps_its_stored_value(
    store_url: str, store_factory: StoreFactory
) -> None:
    # one statement writes the columns any of its rows holds: a record whose op leaves a
    # column out keeps what it has there, beside one whose op writes it
    store = await store_factory(store_url)
    connector = SqlCrmConnector(store, clock=lambda: T0)
    first = [
        op("add_note", "e1", message_id="wamid.1", body="hola", media_id="m1", occurred_at=T0),
        op("add_note", "e2", message_id="wamid.2", body="adios", status="sent"),
    ]
    await connector.apply(first)
    later = T0 + timedelta(minutes=1)
    await connector.apply(
        [
            op("add_note", "e3", message_id="wamid.1", status="read"),  # body, media kept
            op("add_note", "e4", message_id="wamid.2", body="adios!", occurred_at=later),
            op("add_note", "e5", message_id="wamid.3", direction="outbound"),  # a new one
        ]
    )
    got = await notes_by_key(store, "body", "media_id", "status", "occurred_at", "direction")
    assert got == {
        "wamid.1": ("hola", "m1", "read", T0, None),
        "wamid.2": ("adios!", None, "sent", later, None),
        "wamid.3": (None, None, None, None, "outbound"),
    }
