"""Cases (one open per contact + number) and statuses (never backwards) on both backends."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from wa_bridge.store.statuses import STATUS_RANKS
from wa_bridge.store.tables import message_statuses

from ._helpers import T0, StoreFactory


async def test_one_open_case_per_contact_and_number(
    store_url: str, store_factory: StoreFactory
) -> None:
    store = await store_factory(store_url)
    async with store.transaction() as tx:
        a1, b1, a2, a3 = await tx.open_cases(
            [("c1", "n1", T0), ("c1", "n2", T0), ("c1", "n1", T0), ("c2", "n1", T0)]
        )
    assert a1 == a2 and len({a1, b1, a3}) == 3
    async with store.transaction() as tx:
        assert await tx.open_cases([("c1", "n1", T0), ("c1", "n2", T0)]) == [a1, b1]


async def test_closed_case_reopens_as_a_new_case(
    store_url: str, store_factory: StoreFactory
) -> None:
    store = await store_factory(store_url)
    async with store.transaction() as tx:
        [first] = await tx.open_cases([("c1", "n1", T0)])
        await tx.close_cases([first], T0 + timedelta(hours=1))
    async with store.transaction() as tx:
        [second] = await tx.open_cases([("c1", "n1", T0 + timedelta(hours=2))])
        assert second != first
        assert await tx.open_cases([("c1", "n1", T0)]) == [second]


async def test_current_case_is_the_open_one_else_the_latest_closed(
    store_url: str, store_factory: StoreFactory
) -> None:
    store = await store_factory(store_url)
    async with store.transaction() as tx:
        [old] = await tx.open_cases([("c1", "n1", T0)])
        await tx.close_cases([old], T0 + timedelta(hours=1))
        [latest] = await tx.open_cases([("c1", "n1", T0 + timedelta(hours=2))])
        await tx.close_cases([latest], T0 + timedelta(hours=3))
    async with store.transaction() as tx:
        # a CSAT after the resolution rates the latest case; no new case for it
        assert await tx.current_cases([("c1", "n1", T0 + timedelta(hours=4))]) == [latest]
        [reopened] = await tx.open_cases([("c1", "n1", T0 + timedelta(hours=5))])
        assert await tx.current_cases([("c1", "n1", T0)]) == [reopened]
        [fresh] = await tx.current_cases([("c2", "n1", T0)])  # no case yet: one is opened
        assert await tx.open_cases([("c2", "n1", T0)]) == [fresh]


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
    items = [("c1", "n1", T0), ("c1", "n2", T0), ("c2", "n1", T0)]
    try:
        async with store.transaction() as tx:
            first = await tx.open_cases(items)
            raise RolledBack
    except RolledBack:
        pass
    async with store.transaction() as tx:
        assert await tx.open_cases(items) == first  # the retried batch: the same keys
        await tx.close_cases([first[0]], T0 + timedelta(hours=1))
    assert len(set(first)) == 3
    assert all(re.fullmatch(r"k_[0-9a-f]{32}", key) for key in first)
    try:
        async with store.transaction() as tx:
            [second] = await tx.open_cases([("c1", "n1", T0 + timedelta(hours=2))])
            raise RolledBack
    except RolledBack:
        pass
    async with store.transaction() as tx:
        assert await tx.open_cases([("c1", "n1", T0 + timedelta(hours=2))]) == [second]
    assert second not in first  # the next conversation is a new case
