"""crm_records: the record book, loaded in one SELECT and saved in the batch's transaction."""

from __future__ import annotations

import pytest
from sqlalchemy import event, select

from wa_bridge.store import KnownRecord, RecordBook, value_hash
from wa_bridge.store.tables import crm_records

from ._helpers import StoreFactory

HUBSPOT = "hubspot:https://api.hubapi.com"


def test_remember_merges_what_a_record_is_known_to_hold() -> None:
    book = RecordBook(HUBSPOT)
    book.remember("contacts", "c_1", "101", match="phone", filled=["firstname"], written={"a": "1"})
    book.remember("contacts", "c_1", "101", filled=["country"], written={"b": "2", "a": "3"})
    assert book.get("contacts", "c_1") == KnownRecord(
        "101", "phone", frozenset({"firstname", "country"}), {"a": "3", "b": "2"}
    )
    book.remember("contacts", "c_1", "202", written={"a": "9"})  # recreated: starts again
    assert book.get("contacts", "c_1") == KnownRecord("202", "created", frozenset(), {"a": "9"})
    assert not book.knows("tickets", "c_1")
    changed, forgotten = book.changes()
    assert [(k, key) for k, key, _ in changed] == [("contacts", "c_1")] and forgotten == []


def test_forget_and_unchanged_remember() -> None:
    book = RecordBook(HUBSPOT, [("contacts", "c_1", KnownRecord("101"))])
    book.remember("contacts", "c_1", "101")  # nothing new: no change to save
    assert book.changes() == ([], [])
    book.forget("contacts", "c_1")
    assert book.get("contacts", "c_1") is None
    assert book.changes() == ([], [("contacts", "c_1")])
    book.remember("contacts", "c_1", "303")
    changed, forgotten = book.changes()
    assert changed[0][2].crm_id == "303" and forgotten == []
    book.saved()
    assert book.changes() == ([], [])
    assert "c_1" not in repr(book)


def test_value_hash_is_short_stable_and_order_free() -> None:
    assert value_hash({"a": 1, "b": [2]}) == value_hash({"b": [2], "a": 1})
    assert value_hash("Ana") != value_hash("ana")
    assert len(value_hash("x" * 10_000)) == 16


async def test_load_and_save_round_trip(store_url: str, store_factory: StoreFactory) -> None:
    store = await store_factory(store_url)
    async with store.transaction() as tx:
        book = await tx.load_records(HUBSPOT, ["c_1", "k_1"])
        assert len(book) == 0
        book.remember("contacts", "c_1", "101", match="phone", filled=["firstname"])
        book.remember("contacts", "c_1", "101", written={"phone": value_hash("+15550100001")})
        book.remember("tickets", "k_1", "7")
        book.remember("tickets", "c_1", "8")  # another kind under the same key
        await tx.save_records(book)
        other = RecordBook("salesforce:https://x.my.salesforce.com")
        other.remember("Contact", "c_1", "003A")
        await tx.save_records(other)
    async with store.transaction() as tx:
        book = await tx.load_records(HUBSPOT, ["c_1", "k_1", "c_unknown"])
    assert len(book) == 3
    assert book.get("contacts", "c_1") == KnownRecord(
        "101", "phone", frozenset({"firstname"}), {"phone": value_hash("+15550100001")}
    )
    assert book.get("tickets", "k_1") == KnownRecord("7")
    assert book.get("Contact", "c_1") is None  # another CRM's records stay apart
    async with store.transaction() as tx:
        book.remember("contacts", "c_1", "101", filled=["country"])
        book.forget("tickets", "k_1")
        await tx.save_records(book)
    async with store.transaction() as tx:
        again = await tx.load_records(HUBSPOT, ["c_1", "k_1"])
    known = again.get("contacts", "c_1")
    assert known is not None and known.filled == {"firstname", "country"}
    assert not again.knows("tickets", "k_1") and again.knows("tickets", "c_1")


async def test_a_rolled_back_batch_saves_nothing(
    store_url: str, store_factory: StoreFactory
) -> None:
    store = await store_factory(store_url)
    with pytest.raises(RuntimeError):
        async with store.transaction() as tx:
            book = await tx.load_records(HUBSPOT, ["c_1"])
            book.remember("contacts", "c_1", "101")
            await tx.save_records(book)
            raise RuntimeError("the CRM call after it failed")
    async with store.engine.connect() as conn:
        assert (await conn.execute(select(crm_records))).all() == []


async def test_a_batch_loads_in_one_select(store_url: str, store_factory: StoreFactory) -> None:
    store = await store_factory(store_url)
    keys = [f"c_{i}" for i in range(3000)]
    async with store.transaction() as tx:
        book = await tx.load_records(HUBSPOT, [])
        for key in keys:
            book.remember("contacts", key, key.removeprefix("c_"))
        await tx.save_records(book)
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    event.listen(store.engine.sync_engine, "before_cursor_execute", count)
    try:
        async with store.transaction() as tx:
            book = await tx.load_records(HUBSPOT, keys)
    finally:
        event.remove(store.engine.sync_engine, "before_cursor_execute", count)
    assert len(book) == 3000
    assert len([s for s in statements if "crm_records" in s]) == 1
