"""Identity graph rules (DESIGN.md "Contact identity") on PostgreSQL and SQLite."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from wa_bridge.events import Contact
from wa_bridge.store import IdentityChange, SqlStore
from wa_bridge.store.api import Identifier
from wa_bridge.store.tables import contacts, identity_events

from ._helpers import T0, StoreFactory, current_links, history_links

WABA = "waba-1"
MX = "+5215512345678"  # hypothetical numbers: E.164 as the normalizer gives them
BR12 = "+551187654321"
BR13 = "+5511987654321"


def phone(p: str) -> Contact:
    return Contact(key=p, phone_e164=p, wa_id=p.lstrip("+"))


def bsuid(u: str, p: str | None = None, *, parent: str | None = None) -> Contact:
    return Contact(key=p or f"bsuid:{u}", phone_e164=p, user_id=u, parent_user_id=parent)


async def resolve(store: SqlStore, *items: tuple[str, Contact]) -> list[str | None]:
    async with store.transaction() as tx:
        return await tx.resolve_contacts(list(items))


async def test_identifiers_carried_together_link_one_contact(
    store_url: str, store_factory: StoreFactory
) -> None:
    store = await store_factory(store_url)
    [a] = await resolve(store, (WABA, bsuid("MX.1", MX, parent="MX.ENT.1")))
    assert await resolve(store, (WABA, phone(MX))) == [a]
    assert await resolve(store, (WABA, bsuid("MX.1"))) == [a]
    assert await resolve(store, (WABA, Contact(key=None, parent_user_id="MX.ENT.1"))) == [a]


async def test_bsuid_only_contact_later_seen_with_phone_is_one_contact(
    store_url: str, store_factory: StoreFactory
) -> None:
    store = await store_factory(store_url)
    [a] = await resolve(store, (WABA, bsuid("MX.2")))
    assert await resolve(store, (WABA, bsuid("MX.2", MX))) == [a]
    assert await resolve(store, (WABA, phone(MX))) == [a]


async def test_same_rules_within_one_batch(store_url: str, store_factory: StoreFactory) -> None:
    store = await store_factory(store_url)
    out = await resolve(store, (WABA, bsuid("MX.3")), (WABA, bsuid("MX.3", MX)), (WABA, phone(MX)))
    assert out[0] is not None and out == [out[0]] * 3


async def test_profile_name_never_links(store_url: str, store_factory: StoreFactory) -> None:
    store = await store_factory(store_url)
    a, b = await resolve(
        store,
        (WABA, Contact(key=MX, phone_e164=MX, profile_name="Ana")),
        (WABA, Contact(key=BR13, phone_e164=BR13, profile_name="Ana")),
    )
    assert a != b
    assert await resolve(store, (WABA, Contact(key=None, profile_name="Ana"))) == [None]


async def test_br_12_and_13_digit_numbers_stay_apart(
    store_url: str, store_factory: StoreFactory
) -> None:
    store = await store_factory(store_url)
    a, b = await resolve(store, (WABA, phone(BR12)), (WABA, phone(BR13)))
    assert a != b


async def test_bsuids_are_scoped_by_business(store_url: str, store_factory: StoreFactory) -> None:
    store = await store_factory(store_url)
    a, b = await resolve(store, ("waba-a", bsuid("SAME.1")), ("waba-b", bsuid("SAME.1")))
    assert a != b


async def test_recycled_number_moves_to_the_bsuids_contact(
    store_url: str, store_factory: StoreFactory
) -> None:
    store = await store_factory(store_url)
    [old_owner] = await resolve(store, (WABA, bsuid("MX.old", MX)))
    [new_owner] = await resolve(store, (WABA, bsuid("MX.new")))
    assert await resolve(store, (WABA, bsuid("MX.new", MX))) == [new_owner]
    links = await current_links(store)
    assert links[("", "phone", MX)] == new_owner
    assert links[(WABA, "bsuid", "MX.old")] == old_owner  # never merged
    assert ("", "phone", MX, old_owner) in await history_links(store)
    async with store.engine.connect() as conn:
        rows = (await conn.execute(select(identity_events))).mappings().all()
    moved = [r for r in rows if r["decision"] == "moved"]
    assert len(moved) == 1 and moved[0]["contact_id"] == new_owner
    assert all(MX not in (r["detail"] or "") for r in rows)  # no raw numbers in the audit


async def test_a_repeated_contact_in_a_batch_follows_the_moves_between(
    store_url: str, store_factory: StoreFactory
) -> None:
    # a batch answers a repeated contact from memory only while no link changed: here the
    # number moves to MX.new and back, and each repeat sees where it is at its turn
    store = await store_factory(store_url)
    old, new = bsuid("MX.o2", MX), bsuid("MX.n2", MX)
    out = await resolve(store, (WABA, old), (WABA, old), (WABA, new), (WABA, new), (WABA, old))
    assert out[0] != out[2]
    assert out == [out[0], out[0], out[2], out[2], out[0]]
    links = await current_links(store)
    assert links[("", "phone", MX)] == out[0]
    async with store.engine.connect() as conn:
        rows = (await conn.execute(select(identity_events))).mappings().all()
    assert [r["decision"] for r in rows].count("moved") == 2


async def test_phone_seen_with_a_new_bsuid_is_someone_else(
    store_url: str, store_factory: StoreFactory
) -> None:
    store = await store_factory(store_url)
    [first] = await resolve(store, (WABA, bsuid("MX.a", MX)))
    [second] = await resolve(store, (WABA, bsuid("MX.b", MX)))
    assert first != second
    links = await current_links(store)
    assert links[("", "phone", MX)] == second
    assert links[(WABA, "bsuid", "MX.a")] == first


def notice(
    previous: Sequence[Identifier],
    current: Sequence[Identifier],
    *,
    number: bool = False,
    at: datetime = T0,
    business: str = WABA,
) -> IdentityChange:
    return IdentityChange(
        business=business,
        previous=tuple(previous),
        current=tuple(current),
        at=at,
        renews_bsuids=number,
    )


async def apply(store: SqlStore, *changes: IdentityChange) -> list[str | None]:
    async with store.transaction() as tx:
        return await tx.apply_identity_changes(list(changes))


async def audit_rows(store: SqlStore) -> list[dict[str, Any]]:
    async with store.engine.connect() as conn:
        rows = (await conn.execute(select(identity_events))).mappings().all()
    return [dict(r) for r in rows]


async def contact_count(store: SqlStore) -> int:
    async with store.engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(contacts))).scalar_one())


async def test_changed_number_keeps_the_contact_and_old_number_as_history(
    store_url: str, store_factory: StoreFactory
) -> None:
    store = await store_factory(store_url)
    [a] = await resolve(store, (WABA, phone(MX)))
    change = notice([("phone", MX)], [("phone", BR13)], number=True)
    assert await apply(store, change) == [a]
    assert await apply(store, change) == [a]  # a redelivered notice changes nothing
    assert await resolve(store, (WABA, phone(BR13))) == [a]
    assert ("", "phone", MX, a) in await history_links(store)
    assert ("", "phone", MX) not in await current_links(store)
    assert await contact_count(store) == 1


async def test_number_change_with_new_bsuid_keeps_one_contact(
    store_url: str, store_factory: StoreFactory
) -> None:
    """2026-08 shape: wa_id (new phone), user_id (new BSUID), previous_user_id."""
    store = await store_factory(store_url)
    [a] = await resolve(store, (WABA, bsuid("MX.old", MX, parent="MX.ENT.1")))
    change = notice(
        [("bsuid", "MX.old"), ("phone", MX)], [("bsuid", "MX.new"), ("phone", BR13)], number=True
    )
    assert await apply(store, change) == [a]
    assert await resolve(store, (WABA, bsuid("MX.new", BR13, parent="MX.ENT.2"))) == [a]
    links = await current_links(store)
    assert links[(WABA, "bsuid", "MX.new")] == a and links[("", "phone", BR13)] == a
    assert (WABA, "bsuid", "MX.old") not in links and ("", "phone", MX) not in links
    assert (WABA, "parent_bsuid", "MX.ENT.1") not in links  # renewed with the number
    assert await contact_count(store) == 1


async def test_old_number_notice_renews_the_bsuid_it_does_not_name(
    store_url: str, store_factory: StoreFactory
) -> None:
    """Classic shape: only the new wa_id; Meta still gives the person a new BSUID."""
    store = await store_factory(store_url)
    [a] = await resolve(store, (WABA, bsuid("MX.old", MX)))
    assert await apply(store, notice([("phone", MX)], [("phone", BR13)], number=True)) == [a]
    assert await resolve(store, (WABA, bsuid("MX.new", BR13))) == [a]
    assert await contact_count(store) == 1


async def test_bsuid_change_moves_to_new_bsuid(store_url: str, store_factory: StoreFactory) -> None:
    store = await store_factory(store_url)
    [a] = await resolve(store, (WABA, bsuid("MX.v1", MX)))
    assert await apply(store, notice([("bsuid", "MX.v1")], [("bsuid", "MX.v2")])) == [a]
    assert await resolve(store, (WABA, bsuid("MX.v2", MX))) == [a]
    assert await resolve(store, (WABA, bsuid("MX.v2"))) == [a]  # no phone: the BSUID alone
    assert (WABA, "bsuid", "MX.v1", a) in await history_links(store)
    assert (await current_links(store))[("", "phone", MX)] == a


async def test_bsuid_notice_without_the_old_bsuid_replaces_the_persons_own(
    store_url: str, store_factory: StoreFactory
) -> None:
    """A user_id_update with a plain current id: the phone finds the person."""
    store = await store_factory(store_url)
    [a] = await resolve(store, (WABA, bsuid("MX.v1", MX)))
    assert await apply(store, notice([("phone", MX)], [("bsuid", "MX.v2"), ("phone", MX)])) == [a]
    assert await resolve(store, (WABA, bsuid("MX.v2", MX))) == [a]
    assert (WABA, "bsuid", "MX.v1") not in await current_links(store)


async def test_parent_bsuid_change(store_url: str, store_factory: StoreFactory) -> None:
    store = await store_factory(store_url)
    [a] = await resolve(store, (WABA, bsuid("MX.1", parent="MX.ENT.1")))
    change = notice(
        [("bsuid", "MX.1"), ("parent_bsuid", "MX.ENT.1")],
        [("bsuid", "MX.2"), ("parent_bsuid", "MX.ENT.2")],
    )
    assert await apply(store, change) == [a]
    assert await resolve(store, (WABA, Contact(key=None, parent_user_id="MX.ENT.2"))) == [a]
    assert (WABA, "parent_bsuid", "MX.ENT.1", a) in await history_links(store)


async def test_notice_about_someone_never_seen_opens_one_contact(
    store_url: str, store_factory: StoreFactory
) -> None:
    store = await store_factory(store_url)
    change = notice([("bsuid", "MX.old"), ("phone", MX)], [("bsuid", "MX.new")])
    [c] = await apply(store, change)
    assert c is not None
    assert await resolve(store, (WABA, bsuid("MX.new"))) == [c]
    # a late message from the old identity reaches the same person, no stray contact
    assert await resolve(store, (WABA, bsuid("MX.old", MX))) == [c]
    assert await contact_count(store) == 1
    links = await current_links(store)
    assert (WABA, "bsuid", "MX.old") not in links and ("", "phone", MX) not in links


async def test_notice_that_beats_nobody_names_no_one(
    store_url: str, store_factory: StoreFactory
) -> None:
    store = await store_factory(store_url)
    assert await apply(store, notice([("phone", MX)], [])) == [None]
    assert await contact_count(store) == 0


async def test_notice_after_the_new_identity_was_seen_does_not_split_the_person(
    store_url: str, store_factory: StoreFactory
) -> None:
    store = await store_factory(store_url)
    [a] = await resolve(store, (WABA, bsuid("MX.old", MX)))
    [b] = await resolve(store, (WABA, bsuid("MX.new", BR13)))  # beat the notice
    assert a != b
    change = notice(
        [("bsuid", "MX.old"), ("phone", MX)], [("bsuid", "MX.new"), ("phone", BR13)], number=True
    )
    assert await apply(store, change) == [a]
    assert await resolve(store, (WABA, bsuid("MX.new", BR13))) == [a]  # from now on: a
    links = await current_links(store)
    assert b not in links.values()  # the early contact holds nothing any more
    moved = [r for r in await audit_rows(store) if r["decision"] == "moved"]
    assert {r["contact_id"] for r in moved} == {a}
    assert all(f"from={b}" in r["detail"] for r in moved)  # on record, for identity report


async def test_in_one_batch_order_does_not_matter(
    store_url: str, store_factory: StoreFactory
) -> None:
    store = await store_factory(store_url)
    change = notice([("bsuid", "MX.old"), ("phone", MX)], [("bsuid", "MX.new")], number=True)
    async with store.transaction() as tx:  # as the worker does: notices first, then people
        [c] = await tx.apply_identity_changes([change])
        out = await tx.resolve_contacts([(WABA, bsuid("MX.new")), (WABA, bsuid("MX.old", MX))])
    assert out == [c, c]


async def test_late_events_from_the_old_identity_reach_the_person(
    store_url: str, store_factory: StoreFactory
) -> None:
    store = await store_factory(store_url)
    [a] = await resolve(store, (WABA, bsuid("MX.old", MX)))
    change = notice(
        [("bsuid", "MX.old"), ("phone", MX)], [("bsuid", "MX.new"), ("phone", BR13)], number=True
    )
    await apply(store, change)
    assert await resolve(store, (WABA, bsuid("MX.old", MX))) == [a]  # a late message
    assert await resolve(store, (WABA, phone(MX))) == [a]  # a late failed status, phone only
    links = await current_links(store)
    assert ("", "phone", MX) not in links and (WABA, "bsuid", "MX.old") not in links
    # the old number, reissued to a stranger (their own BSUID), is someone else
    [stranger] = await resolve(store, (WABA, bsuid("MX.stranger", MX)))
    assert stranger != a
    assert (await current_links(store))[("", "phone", MX)] == stranger


async def test_stale_notice_changes_nothing_but_a_return_to_an_old_number_does(
    store_url: str, store_factory: StoreFactory
) -> None:
    store = await store_factory(store_url)
    [a] = await resolve(store, (WABA, phone(MX)))
    first = notice([("phone", MX)], [("phone", BR12)], number=True, at=T0)
    second = notice([("phone", BR12)], [("phone", BR13)], number=True, at=T0 + timedelta(days=1))
    await apply(store, first, second)
    before = await current_links(store)
    assert await apply(store, first) == [a]  # replayed after the second: stale
    assert await current_links(store) == before == {("", "phone", BR13): a}
    back = notice([("phone", BR13)], [("phone", MX)], number=True, at=T0 + timedelta(days=2))
    assert await apply(store, back) == [a]
    assert await current_links(store) == {("", "phone", MX): a}


async def test_decisions_are_audited_without_raw_identifiers(
    store_url: str, store_factory: StoreFactory
) -> None:
    store = await store_factory(store_url)
    await resolve(store, (WABA, bsuid("MX.old", MX)))
    await resolve(store, (WABA, bsuid("MX.new", BR13)))
    change = notice(
        [("bsuid", "MX.old"), ("phone", MX)], [("bsuid", "MX.new"), ("phone", BR13)], number=True
    )
    await apply(store, change)
    await apply(store, notice([("phone", BR12)], [("phone", BR12 + "0")]))  # never seen
    rows = await audit_rows(store)
    assert {r["decision"] for r in rows} >= {"created", "changed", "moved"}
    for row in rows:
        text = f"{row['kinds']} {row['detail']}"
        assert not any(raw in text for raw in (MX, BR12, BR13, "MX.old", "MX.new", "5511"))


async def test_phones_one_payload_pairs_link_and_stay_apart_otherwise(
    store_url: str, store_factory: StoreFactory
) -> None:
    store = await store_factory(store_url)
    a, b = await resolve(store, (WABA, phone(BR12)), (WABA, phone(BR13)))
    assert a != b  # never guessed
    paired = Contact(key=BR13, phone_e164=BR13, linked_phones=(BR12,))
    assert await resolve(store, (WABA, paired)) == [b]
    links = await current_links(store)
    assert links[("", "phone", BR12)] == b == links[("", "phone", BR13)]


async def test_a_repeat_in_a_batch_is_remembered_by_its_identifiers_only(
    store_url: str, store_factory: StoreFactory
) -> None:
    # a batch answers a repeat from memory by the identifiers resolving reads: another
    # name is the same person, a phone the payload now pairs with the number is linked
    store = await store_factory(store_url)
    a, b = await resolve(store, (WABA, phone(BR12)), (WABA, phone(BR13)))
    named = Contact(key=BR13, phone_e164=BR13, wa_id=BR13[1:], profile_name="Ana")
    paired = Contact(key=BR13, phone_e164=BR13, linked_phones=(BR12,))
    out = await resolve(store, (WABA, phone(BR13)), (WABA, named), (WABA, paired))
    assert out == [b, b, b]
    links = await current_links(store)
    assert links[("", "phone", BR12)] == b == links[("", "phone", BR13)]
    assert a != b


# --- any arrival order gives the same grouping ------------------------------------------

# A person is a (phone, bsuid) pair; an event carries the phone, the bsuid, or both.
person_events = st.lists(
    st.tuples(st.integers(0, 3), st.sampled_from(["phone", "bsuid", "both"])),
    min_size=1,
    max_size=14,
)


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(events=person_events, batch=st.integers(1, 6), data=st.data())
async def test_any_arrival_order_gives_same_grouping(
    store_url: str,
    store_factory: StoreFactory,
    events: list[tuple[int, str]],
    batch: int,
    data: st.DataObject,
) -> None:
    store = await store_factory(store_url)
    run = uuid.uuid4().hex[:8]  # each example gets identifiers of its own
    people = {p: (f"+1555{run}{p}", f"B.{run}.{p}") for p, _ in events}
    paired = {p for p, kind in events if kind == "both"}
    events = events + [(p, "both") for p in people if p not in paired]
    order = data.draw(st.permutations(events))
    items = []
    for p, kind in order:
        ph, bs = people[p]
        contact = Contact(
            key=None,
            phone_e164=ph if kind != "bsuid" else None,
            user_id=bs if kind != "phone" else None,
        )
        items.append((f"w{run}", contact))
    for start in range(0, len(items), batch):
        await resolve(store, *items[start : start + batch])
    links = await current_links(store)
    owner = {p: links[(f"w{run}", "bsuid", bs)] for p, (_, bs) in people.items()}
    for p, (ph, _) in people.items():
        assert links[("", "phone", ph)] == owner[p]
    assert len(set(owner.values())) == len(people)


# --- a number change, in any arrival order and batching -----------------------------------

change_events = st.lists(
    st.tuples(st.integers(0, 2), st.sampled_from(["old", "new", "notice"])),
    min_size=1,
    max_size=12,
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(events=change_events, batch=st.integers(1, 5), data=st.data())
async def test_number_change_in_any_order_converges_on_one_contact(
    store_url: str,
    store_factory: StoreFactory,
    events: list[tuple[int, str]],
    batch: int,
    data: st.DataObject,
) -> None:
    """Messages from the old identity, from the new one and the notice, in any order and
    batches (a batch applies its notices first, as the worker does): every event from the
    notice's batch on reaches the notice's contact; the person has a second contact only
    when messages from both identities came in batches before the notice's."""
    store = await store_factory(store_url)
    run = uuid.uuid4().hex[:8]
    business = f"w{run}"
    people = {p for p, _ in events}
    events = events + [(p, "notice") for p in people if (p, "notice") not in events]
    order = data.draw(st.permutations(events))

    def ids(p: int, side: str) -> Contact:
        n = 0 if side == "old" else 1
        return bsuid(f"B.{run}.{p}.{n}", f"+1555{run[:4]}{p}{n}"[:12])

    def change_of(p: int) -> IdentityChange:
        old, new = ids(p, "old"), ids(p, "new")
        return notice(
            [("bsuid", str(old.user_id)), ("phone", str(old.phone_e164))],
            [("bsuid", str(new.user_id)), ("phone", str(new.phone_e164))],
            number=True,
            business=business,
        )

    landed: list[tuple[int, int, str, str]] = []  # (batch no, person, kind, contact)
    for no, start in enumerate(range(0, len(order), batch)):
        part = order[start : start + batch]
        async with store.transaction() as tx:
            await tx.apply_identity_changes([change_of(p) for p, k in part if k == "notice"])
            who = [(business, ids(p, "new" if k == "notice" else k)) for p, k in part]
            out = await tx.resolve_contacts(who)
        landed += [(no, p, k, str(c)) for (p, k), c in zip(part, out, strict=True)]
    for p in people:
        at, _, _, mine = next(x for x in landed if x[1] == p and x[2] == "notice")
        later = {c for no, q, _, c in landed if q == p and no >= at}
        assert later == {mine}
        early = {k for no, q, k, _ in landed if q == p and no < at}
        contacts_of_p = {c for _, q, _, c in landed if q == p}
        assert len(contacts_of_p) == (2 if early == {"old", "new"} else 1)
        links = await current_links(store)
        new, old = ids(p, "new"), ids(p, "old")
        assert links[(business, "bsuid", str(new.user_id))] == mine
        assert ("", "phone", old.phone_e164) not in links
        before = dict(links)
        assert await apply(store, change_of(p)) == [mine]  # redelivered: no change
        assert await current_links(store) == before
    owners = {c for _, _, _, c in landed}
    by_person = {p: {c for _, q, _, c in landed if q == p} for p in people}
    assert sum(len(v) for v in by_person.values()) == len(owners)  # never shared


# --- contact ids: decided from state a rollback leaves as it was ------------------------


class RolledBack(Exception):
    """Raised inside a transaction to roll it back, as a failed CRM call does."""


async def test_a_rolled_back_batch_mints_the_same_contact_ids_on_retry(
    store_url: str, store_factory: StoreFactory
) -> None:
    store = await store_factory(store_url)
    items = [(WABA, bsuid("MX.9", MX)), (WABA, phone(BR13)), (WABA, bsuid("MX.8"))]
    change = notice([("bsuid", "MX.gone")], [("bsuid", "MX.7")])
    first: list[str | None] = []
    try:
        async with store.transaction() as tx:
            first += await tx.apply_identity_changes([change])
            first += await tx.resolve_contacts(items)
            raise RolledBack
    except RolledBack:
        pass
    assert await contact_count(store) == 0  # nothing of the first try is kept
    async with store.transaction() as tx:
        retried = [*await tx.apply_identity_changes([change]), *await tx.resolve_contacts(items)]
    assert retried == first
    assert len(set(first)) == 4
    assert all(cid is not None and re.fullmatch(r"c_[0-9a-f]{32}", cid) for cid in first)
    # the same identifiers in another batch, alone and in another order: the same ids
    async with store.transaction() as tx:
        assert await tx.resolve_contacts(items[::-1]) == first[1:][::-1]


async def test_an_identifier_that_named_someone_before_mints_a_new_id(
    store_url: str, store_factory: StoreFactory
) -> None:
    """A parent BSUID let go by its person and then seen alone opens another contact: the
    seed is the same, its generation (contacts ever linked to it) is not."""
    store = await store_factory(store_url)
    parent_only = Contact(key=None, parent_user_id="MX.ENT.1")
    [a] = await resolve(store, (WABA, parent_only))
    moved = notice([("parent_bsuid", "MX.ENT.1")], [("parent_bsuid", "MX.ENT.2")])
    assert await apply(store, moved) == [a]
    [b] = await resolve(store, (WABA, parent_only))
    assert b is not None and b != a
    assert await contact_count(store) == 2
    [again] = await resolve(store, (WABA, parent_only))
    assert again == b  # and from now on it names b
