"""Adoptions among several candidates: saved with the ids left unused, read back for
``wa-bridge identity adoptions`` (the decisions of one candidate are not listed)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import insert

from wa_bridge.store import RecordBook
from wa_bridge.store.adoptions import DETAIL_CHARS, adoption_detail, ambiguous_adoptions
from wa_bridge.store.tables import identity_events

from ._helpers import StoreFactory

HUBSPOT = "hubspot:https://api.hubapi.com"


def test_the_detail_keeps_every_id_that_fits_and_says_when_one_did_not() -> None:
    assert adoption_detail("contacts", "1002", 2, ["1001"]) == (
        "contacts 1002: the most recently modified of 2; not adopted: 1001"
    )
    assert adoption_detail("contacts", "1002", 1, []) == (
        "contacts 1002: the most recently modified of 1"
    )
    many = [f"003000000000{n:03d}AAA" for n in range(19)]
    cut = adoption_detail("Contact", "003000000000999AAA", 20, many)
    assert len(cut) <= DETAIL_CHARS and cut.endswith(" …")
    listed = cut.split("not adopted: ")[1].removesuffix(" …").split()
    assert 0 < len(listed) < len(many) and listed == many[: len(listed)]


async def test_saved_adoptions_are_listed_newest_first(
    store_url: str, store_factory: StoreFactory
) -> None:
    store = await store_factory(store_url)
    async with store.transaction() as tx:
        book = await tx.load_records(HUBSPOT, ["c_1", "c_2", "c_3"])
        book.remember("contacts", "c_1", "1002", match="phone")
        book.note_match("contacts", "c_1", "phone", 3, ["1001", "1000"])
        book.remember("contacts", "c_2", "2001", match="email")
        book.note_match("contacts", "c_2", "email", 1)  # one candidate: nothing to show
        book.remember("contacts", "c_3", "3002", match="phone")
        book.note_match("contacts", "c_3", "phone", 2, ["3001"])
        await tx.save_records(book)
    async with store.engine.begin() as conn:  # a decision saved before the ids were kept
        await conn.execute(
            insert(identity_events),
            [
                {
                    "contact_id": "c_4",
                    "decision": "crm_matched",
                    "kinds": "phone",
                    "detail": "contacts 4002: the most recently modified of 2",
                    "at": datetime(2026, 6, 10, tzinfo=UTC),
                }
            ],
        )
    async with store.engine.connect() as conn:
        found = await ambiguous_adoptions(conn)
    assert [(a.contact_id, a.crm_id, a.others, a.others_known) for a in found] == [
        ("c_4", "4002", (), False),
        ("c_3", "3002", ("3001",), True),
        ("c_1", "1002", ("1001", "1000"), True),
    ]
    assert {a.kind for a in found} == {"contacts"} and found[2].candidates == 3
    async with store.engine.connect() as conn:
        assert [a.contact_id for a in await ambiguous_adoptions(conn, limit=1)] == ["c_4"]


def test_the_book_keeps_the_ids_left_unused() -> None:
    book = RecordBook(HUBSPOT)
    book.remember("contacts", "c_1", "1002", match="phone")
    book.note_match("contacts", "c_1", "phone", 2, ["1001"])
    [decision] = book.decisions()
    assert (decision.crm_id, decision.candidates, decision.others) == ("1002", 2, ("1001",))
