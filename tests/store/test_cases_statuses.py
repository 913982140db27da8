"""Cases (one open per contact + number, loaded and saved per batch) and statuses (never
backwards) on both backends."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event, select
from sqlalchemy.exc import IntegrityError

from wa_bridge.events import Contact
from wa_bridge.store import SqlStore
from wa_bridge.store.api import CaseRecord, FirstTouch
from wa_bridge.store.cases import case_key_for
from wa_bridge.store.statuses import STATUS_RANKS
from wa_bridge.store.tables import contacts, message_statuses

from ._helpers import T0, StoreFactory


def _case(key: str, contact: str, number: str, hours: int, **values: Any) -> CaseRecord:
    """A case opened ``hours`` after T0 (open unless ``status`` says otherwise)."""
    at = T0 + timedelta(hours=hours)
    return CaseRecord(
        case_key=key,
        contact_id=contact,
        business_number=number,
        status=values.pop("status", "open"),
        opened_at=at,
        lapses_at=at + timedelta(hours=24),
        **values,
    )


async def test_load_gives_counts_the_open_and_latest_case_and_the_bound_ones(
    store_url: str, store_factory: StoreFactory
) -> None:
    store = await store_factory(store_url)
    closed = {"status": "closed", "close_reason": "lapsed"}
    cases = [
        _case("k0", "c1", "n1", 0, **closed, conversation_id="conv-0"),
        _case("k1", "c1", "n1", 1, **closed, conversation_id="conv-1"),
        _case("k2", "c1", "n1", 2, attribution={"origin": "referral", "ctwa_clid": "x"}),
        _case("k3", "c1", "n2", 0, status="resolved", outcome_value=Decimal("1249.9")),
        _case("k4", "c3", "n1", 0),
    ]
    async with store.transaction() as tx:
        await tx.save_cases(cases, [c.case_key for c in cases])
    async with store.transaction() as tx:
        loaded = await tx.load_cases(["c1", "c2"], ["conv-0"])
    assert loaded.counts == {("c1", "n1"): 3, ("c1", "n2"): 1}
    # the open (and latest) one, the latest of n2, the one bound to conv-0; not k1
    assert sorted(loaded.cases) == ["k0", "k2", "k3"]
    assert loaded.cases["k2"] == cases[2]  # every column comes back as it was saved
    assert loaded.cases["k3"].outcome_value == Decimal("1249.9")


async def test_saved_changes_replace_the_row_and_one_pair_has_one_open_case(
    store_url: str, store_factory: StoreFactory
) -> None:
    store = await store_factory(store_url)
    first = _case("k0", "c1", "n1", 0)
    async with store.transaction() as tx:
        await tx.save_cases([first], ["k0"])
    first.status, first.close_reason, first.frt_s = "resolved", "converted", 42
    second = _case("k1", "c1", "n1", 2)
    async with store.transaction() as tx:
        await tx.save_cases([first, second], ["k1"])
    async with store.transaction() as tx:
        loaded = await tx.load_cases(["c1"])
    assert loaded.counts == {("c1", "n1"): 2}
    assert sorted(loaded.cases) == ["k1"]  # the open and latest; k0 is history now
    with pytest.raises(IntegrityError):  # a second open case of the pair
        async with store.transaction() as tx:
            await tx.save_cases([_case("k2", "c1", "n1", 3)], ["k2"])


async def test_lapsed_cases_are_the_open_ones_past_their_window(
    store_url: str, store_factory: StoreFactory
) -> None:
    store = await store_factory(store_url)
    cases = [
        _case("k0", "c1", "n1", 0),  # lapses at T0 + 24 h
        _case("k1", "c2", "n1", 10),  # lapses at T0 + 34 h
        _case("k2", "c3", "n1", 0, status="closed"),
    ]
    async with store.transaction() as tx:
        await tx.save_cases(cases, [c.case_key for c in cases])
    assert [c.case_key for c in await store.lapsed_cases(T0 + timedelta(hours=30))] == ["k0"]
    later = await store.lapsed_cases(T0 + timedelta(hours=40))
    assert [c.case_key for c in later] == ["k0", "k1"]
    assert [c.case_key for c in await store.lapsed_cases(T0 + timedelta(hours=40), 1)] == ["k0"]


async def test_first_touch_is_set_once(store_url: str, store_factory: StoreFactory) -> None:
    store = await store_factory(store_url)
    person = Contact(key="+5215512345678", phone_e164="+5215512345678")
    async with store.transaction() as tx:
        [contact_id] = await tx.resolve_contacts([("waba", person)])
        assert contact_id is not None
        assert await tx.first_touches([contact_id]) == set()
        await tx.set_first_touches([FirstTouch(contact_id, {"origin": "referral"}, T0)])
        later = FirstTouch(contact_id, {"origin": "text_link"}, T0 + timedelta(days=1))
        await tx.set_first_touches([later])
        assert await tx.first_touches([contact_id, "nobody"]) == {contact_id}
    async with store.engine.connect() as conn:
        row = (await conn.execute(select(contacts.c.first_touch, contacts.c.first_touch_at))).one()
    assert row.first_touch == {"origin": "referral"} and row.first_touch_at == T0


async def test_statuses_move_forward_only(store_url: str, store_factory: StoreFactory) -> None:
    store = await store_factory(store_url)
    async with store.transaction() as tx:
        got = await tx.advance_statuses(
            [("m1", "sent", T0), ("m1", "read", T0), ("m1", "delivered", T0), ("m2", "bogus", T0)]
        )
    assert got == [True, True, False, False]
    async with store.transaction() as tx:
        got = await tx.advance_statuses(
            [("m1", "delivered", T0), ("m1", "failed", T0), ("m1", "played", T0)]
        )
    assert got == [False, True, False]  # failed is terminal


@pytest.mark.parametrize("split", [1, 3, 100])
@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(order=st.permutations(["sent", "delivered", "read", "played"]))
async def test_statuses_never_regress_in_any_arrival_order(
    store_url: str, store_factory: StoreFactory, split: int, order: list[str]
) -> None:
    store = await store_factory(store_url)
    message_id = f"wamid.{uuid.uuid4().hex}"  # fresh per example
    moved: list[bool] = []
    for start in range(0, len(order), split):
        async with store.transaction() as tx:
            moved += await tx.advance_statuses(
                [(message_id, s, T0) for s in order[start : start + split]]
            )
    accepted = [STATUS_RANKS[s] for s, ok in zip(order, moved, strict=True) if ok]
    assert accepted == sorted(accepted) and len(set(accepted)) == len(accepted)
    best = 0
    for s in order:  # exactly the statuses that beat everything before them are accepted
        assert (STATUS_RANKS[s] > best) == moved[order.index(s)]
        best = max(best, STATUS_RANKS[s])
    async with store.engine.connect() as conn:
        row = (
            await conn.execute(
                select(message_statuses.c.status).where(message_statuses.c.message_id == message_id)
            )
        ).one()
    assert row.status == "played"


class RolledBack(Exception):
    """Raised inside a transaction to roll it back, as a failed CRM call does."""


async def test_case_keys_survive_a_rollback_and_differ_per_conversation(
    store_url: str, store_factory: StoreFactory
) -> None:
    store = await store_factory(store_url)

    async def next_key() -> str:
        async with store.transaction() as tx:
            loaded = await tx.load_cases(["c1"])
        return case_key_for("c1", "n1", loaded.counts.get(("c1", "n1"), 0))

    first = await next_key()
    try:
        async with store.transaction() as tx:
            await tx.save_cases([_case(first, "c1", "n1", 0)], [first])
            raise RolledBack
    except RolledBack:
        pass
    assert await next_key() == first  # the retried batch: the same key
    async with store.transaction() as tx:
        await tx.save_cases([_case(first, "c1", "n1", 0, status="closed")], [first])
    second = await next_key()
    assert second != first  # the next conversation is a new case
    assert all(re.fullmatch(r"k_[0-9a-f]{32}", key) for key in (first, second))
    assert case_key_for("c1", "n2", 0) not in (first, second)
    assert await tx_seen(store, ["m1", "m2"]) == set()
    async with store.transaction() as tx:
        await tx.advance_statuses([("m1", "sent", T0)])
    assert await tx_seen(store, ["m1", "m2"]) == {"m1"}


async def tx_seen(store: SqlStore, ids: list[str]) -> set[str]:
    async with store.transaction() as tx:
        return await tx.seen_messages(ids)


async def test_statuses_after_seen_messages_use_its_ranks_in_one_statement(
    store_url: str, store_factory: StoreFactory
) -> None:
    """The pipeline asks which messages had a status, then advances them: the ranks read
    by the first call serve the second (its upsert is its only statement); the outcomes
    are those of a fresh read, also for messages the first call did not ask about."""
    store = await store_factory(store_url)
    async with store.transaction() as tx:
        await tx.advance_statuses([("m1", "delivered", T0), ("m2", "failed", T0)])
    sent: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        sent.append(statement)

    event.listen(store.engine.sync_engine, "before_cursor_execute", count)
    try:
        async with store.transaction() as tx:
            assert await tx.seen_messages(["m1", "m2", "m3"]) == {"m1", "m2"}
            before = len(sent)
            got = await tx.advance_statuses(
                [("m1", "sent", T0), ("m1", "read", T0), ("m2", "read", T0), ("m3", "sent", T0)]
            )
            assert got == [False, True, False, True]
            assert len(sent) - before == 1  # the upsert; no SELECT
            # not asked by seen_messages (and its ranks are used once): read again
            got = await tx.advance_statuses([("m1", "delivered", T0), ("m4", "sent", T0)])
            assert got == [False, True]
            assert len(sent) - before == 3
    finally:
        event.remove(store.engine.sync_engine, "before_cursor_execute", count)
    async with store.transaction() as tx:
        assert await tx.advance_statuses([("m1", "read", T0), ("m3", "delivered", T0)]) == [
            False,
            True,
        ]
