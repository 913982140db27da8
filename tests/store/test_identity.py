"""Identity graph rules (DESIGN.md "Contact identity") on PostgreSQL and SQLite."""

from __future__ import annotations

import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from wa_bridge.events import Contact
from wa_bridge.store import IdentityChange, SqlStore
from wa_bridge.store.tables import identity_events

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


async def test_changed_number_keeps_the_contact_and_old_number_as_history(
    store_url: str, store_factory: StoreFactory
) -> None:
    store = await store_factory(store_url)
    [a] = await resolve(store, (WABA, phone(MX)))
    change = IdentityChange(business=WABA, kind="phone", old=MX, new=BR13, at=T0)
    async with store.transaction() as tx:
        assert await tx.apply_identity_changes([change]) == [a]
    async with store.transaction() as tx:  # a redelivered notice changes nothing
        assert await tx.apply_identity_changes([change]) == [a]
    assert await resolve(store, (WABA, phone(BR13))) == [a]
    assert ("", "phone", MX, a) in await history_links(store)
    assert ("", "phone", MX) not in await current_links(store)


async def test_bsuid_change_moves_to_new_bsuid(store_url: str, store_factory: StoreFactory) -> None:
    store = await store_factory(store_url)
    [a] = await resolve(store, (WABA, bsuid("MX.v1", MX)))
    change = IdentityChange(business=WABA, kind="bsuid", old="MX.v1", new="MX.v2", at=T0)
    async with store.transaction() as tx:
        assert await tx.apply_identity_changes([change]) == [a]
    assert await resolve(store, (WABA, bsuid("MX.v2", MX))) == [a]
    assert (WABA, "bsuid", "MX.v1", a) in await history_links(store)


async def test_change_of_unknown_identifier_creates_a_contact(
    store_url: str, store_factory: StoreFactory
) -> None:
    store = await store_factory(store_url)
    change = IdentityChange(business=WABA, kind="phone", old=MX, new=BR13, at=T0)
    async with store.transaction() as tx:
        [c] = await tx.apply_identity_changes([change])
    assert c is not None
    assert await resolve(store, (WABA, phone(BR13))) == [c]


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
