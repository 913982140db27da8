"""Batches larger than one IN chunk, and the PostgreSQL planner setting the batches rely on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import text

from wa_bridge.events import Contact
from wa_bridge.store._chunks import IN_CHUNK
from wa_bridge.store.api import CaseRecord
from wa_bridge.store.cases import case_key_for

from ._helpers import T0, StoreFactory

N = IN_CHUNK + 7  # SQLite splits its IN lists here; PostgreSQL sends one array


def _case(key: str, contact_id: str) -> CaseRecord:
    return CaseRecord(key, contact_id, "n1", "open", T0, lapses_at=T0 + timedelta(days=1))


def _contact(i: int) -> Contact:
    phone = f"+1555{i:07d}"
    return Contact(key=phone, phone_e164=phone, wa_id=phone[1:], user_id=f"US.{i}")


async def test_batch_larger_than_one_chunk(store_url: str, store_factory: StoreFactory) -> None:
    store = await store_factory(store_url)
    ids = [f"e{i}" for i in range(N)]
    items = [("waba-1", _contact(i)) for i in range(N)]
    async with store.transaction() as tx:
        assert await tx.claim_events(ids) == set(ids)
        first = await tx.resolve_contacts(items)
        contact_ids = [c or "" for c in first]
        cases = [_case(case_key_for(c, "n1", 0), c) for c in contact_ids]
        await tx.save_cases(cases, [c.case_key for c in cases])
        moved = await tx.advance_statuses([(f"m{i}", "read", T0) for i in range(N)])
    assert len(set(first)) == N and None not in first
    assert len({c.case_key for c in cases}) == N and all(moved)
    async with store.transaction() as tx:
        assert await tx.claim_events([*ids, "new"]) == {"new"}
        assert await tx.resolve_contacts(items) == first
        loaded = await tx.load_cases(contact_ids)
        assert loaded.cases == {c.case_key: c for c in cases}
        assert await tx.seen_messages([f"m{i}" for i in range(N)]) == {f"m{i}" for i in range(N)}
        assert (
            await tx.advance_statuses([(f"m{i}", "delivered", T0) for i in range(N)]) == [False] * N
        )
        for case in cases:
            case.status = "closed"
        await tx.save_cases(cases, [])
    async with store.transaction() as tx:
        loaded = await tx.load_cases(contact_ids)
    assert set(loaded.counts.values()) == {1}
    assert {c.status for c in loaded.cases.values()} == {"closed"}


@pytest.mark.postgres
async def test_postgres_plans_each_batch_for_its_own_arrays(
    pg_url: str, store_factory: StoreFactory
) -> None:
    # A generic plan guesses 10 elements per array parameter; with thousands it chose a
    # nested loop over identities per id (0.4 s a batch). See wa_bridge.store.db.
    store = await store_factory(pg_url)
    async with store.engine.connect() as conn:
        assert (await conn.execute(text("SHOW plan_cache_mode"))).scalar() == "force_custom_plan"


def _probe(name: str, *extra: Any) -> Any:
    """A scratch table with a column of each type the bulk helpers must carry."""
    from sqlalchemy import JSON, Boolean, Column, Integer, MetaData, Numeric, String, Table

    from wa_bridge.store.tables import UtcDateTime

    return Table(
        name,
        MetaData(),
        Column("k", String(8), primary_key=True),
        Column("at", UtcDateTime()),
        Column("n", Integer),
        Column("amount", Numeric(12, 2)),
        Column("ok", Boolean),
        Column("doc", JSON),
        *extra,
    )


@pytest.mark.postgres
async def test_postgres_bulk_rows_keep_every_value_as_its_column_takes_it(
    pg_url: str, store_factory: StoreFactory
) -> None:
    # insert_arrays / update_arrays send the rows as one JSON parameter: each value must
    # come back as its column's type, in order, NULLs as NULL, and a too-long text must
    # still fail as PostgreSQL's assignment cast says (22001), not be cut.
    from decimal import Decimal

    from sqlalchemy.exc import DBAPIError

    from wa_bridge.store._bulk import insert_arrays, update_arrays

    probe = _probe("bulk_probe")
    store = await store_factory(pg_url)
    naive = datetime(2026, 12, 6, 10, 30, 0, 123456)
    aware = datetime(2026, 12, 6, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    async with store.engine.begin() as conn:
        await conn.run_sync(probe.create)
        try:
            result = await insert_arrays(
                conn,
                probe,
                {
                    "k": ["b", "a", "c"],
                    "at": [naive, aware, None],
                    "n": [1, None, -(2**31)],
                    "amount": [Decimal("10.05"), None, Decimal("0.10")],
                    "ok": [True, False, None],
                    "doc": [{"x": [1, "ü"]}, None, "text"],
                },
                "RETURNING k",
            )
            assert [row[0] for row in result] == ["b", "a", "c"]
            await update_arrays(conn, probe, "k", {"k": ["a", "c"], "n": [7, None]})
            rows = {r.k: r for r in await conn.execute(probe.select())}
            assert rows["b"].at == naive.replace(tzinfo=UTC)
            assert rows["a"].at == aware and rows["c"].at is None
            assert (rows["a"].n, rows["b"].n, rows["c"].n) == (7, 1, None)
            assert rows["b"].amount == Decimal("10.05") and rows["a"].amount is None
            assert (rows["b"].ok, rows["a"].ok, rows["c"].ok) == (True, False, None)
            assert rows["b"].doc == {"x": [1, "ü"]} and rows["a"].doc is None
            assert rows["c"].doc == "text"
            nulls = text("SELECT k FROM bulk_probe WHERE doc IS NULL")
            assert (await conn.execute(nulls)).scalars().all() == ["a"]  # SQL NULL, not 'null'
            with pytest.raises(DBAPIError) as too_long:
                async with conn.begin_nested():
                    await insert_arrays(conn, probe, {"k": ["123456789"]})
            assert getattr(too_long.value.orig, "sqlstate", None) == "22001"
        finally:
            await conn.run_sync(probe.drop)


@pytest.mark.postgres
async def test_postgres_bulk_columns_of_one_value_are_sent_once(
    pg_url: str, store_factory: StoreFactory
) -> None:
    # A column named in ``once`` whose rows all hold one value goes in as a parameter of
    # its own (not in the JSON rows); with two values it stays in the rows. Either way
    # every row gets its own value, as its column takes it (a naive time as UTC).
    from decimal import Decimal

    from sqlalchemy import Column, String
    from sqlalchemy import event as sa_event

    from wa_bridge.store._bulk import insert_arrays

    probe = _probe("bulk_once", Column("tag", String(8)))
    store = await store_factory(pg_url)
    naive = datetime(2026, 12, 6, 10, 30, 0, 123456)
    sent: list[tuple[str, list[object]]] = []

    def keep(_c: object, _cur: object, statement: str, params: Any, *_a: object) -> None:
        sent.append((statement, list(params.values() if isinstance(params, dict) else params)))

    once = ("at", "n", "amount", "ok", "doc", "tag")
    async with store.engine.begin() as conn:
        await conn.run_sync(probe.create)
        sa_event.listen(store.engine.sync_engine, "before_cursor_execute", keep)
        try:
            arrays: dict[str, list[object]] = {
                "k": ["a", "b", "c"],
                "at": [naive] * 3,
                "n": [5, 5, 5],
                "amount": [Decimal("1.50")] * 3,
                "ok": [False] * 3,
                "doc": [{"x": 1}] * 3,  # JSON: always in the rows
                "tag": ["t1", "t2", "t1"],  # two values: in the rows
            }
            await insert_arrays(conn, probe, arrays, once=once)
            statement, params = sent[-1]
            rows_json = next(p for p in params if isinstance(p, str) and p.startswith("[["))
            assert "1.50" not in rows_json and "10:30" not in rows_json
            assert '"t2"' in rows_json and '"x"' in rows_json
            assert len(params) == 5 and "CAST(r->>4" not in statement  # 4 once + the rows
            await insert_arrays(conn, probe, {"k": ["d"], "tag": ["t3"]}, once=("k", "tag"))
            got = {r.k: r for r in await conn.execute(probe.select())}
            for key in "abc":
                row = got[key]
                assert row.at == naive.replace(tzinfo=UTC) and row.n == 5
                assert row.amount == Decimal("1.50") and row.ok is False
                assert row.doc == {"x": 1}
            assert [got[k].tag for k in "abcd"] == ["t1", "t2", "t1", "t3"]
        finally:
            sa_event.remove(store.engine.sync_engine, "before_cursor_execute", keep)
            await conn.run_sync(probe.drop)
