"""``wa-bridge identity`` report, merge and unmerge on the state store (PostgreSQL and
SQLite), with the built-in SQL CRM: what the report finds, what a merge moves, that a
dry run changes nothing, and that an unmerge gives our maps back."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select

from wa_bridge.errors import MergeRefused
from wa_bridge.events import Contact
from wa_bridge.ops import identity as ops
from wa_bridge.settings import Settings
from wa_bridge.store import SqlStore
from wa_bridge.store.api import CaseRecord
from wa_bridge.store.cases import case_key_for
from wa_bridge.store.consent import ConsentRecord
from wa_bridge.store.identity_report import find_lookalikes
from wa_bridge.store.tables import (
    audit_log,
    cases,
    consents,
    crm_cases,
    crm_contacts,
    crm_notes,
    identity_events,
    identity_merges,
    metadata,
)

from ._helpers import T0, StoreFactory, current_links

WABA = "waba-1"
NUMBER = "pnid-1"  # the business number cases open on
AR = "+5491160001001"
AR_OLD = "+541160001001"  # the same person's 9-less form, as a release before the fold kept it
MX = "+525512345678"
MX_OLD = "+5215512345678"


def phone(p: str) -> Contact:
    return Contact(key=p, phone_e164=p, wa_id=p.lstrip("+"))


def bsuid(u: str, p: str | None = None) -> Contact:
    return Contact(key=p or f"bsuid:{u}", phone_e164=p, user_id=u)


async def resolve(store: SqlStore, contact: Contact) -> str:
    async with store.transaction() as tx:
        [cid] = await tx.resolve_contacts([(WABA, contact)])
    assert cid is not None
    return cid


async def open_case(store: SqlStore, cid: str, at: datetime = T0) -> str:
    """The contact's open case on NUMBER, opened (as the worker opens one) if none is."""
    async with store.transaction() as tx:
        loaded = await tx.load_cases([cid])
        for case in loaded.cases.values():
            if (case.contact_id, case.business_number, case.status) == (cid, NUMBER, "open"):
                return case.case_key
        key = case_key_for(cid, NUMBER, loaded.counts.get((cid, NUMBER), 0))
        record = CaseRecord(
            case_key=key, contact_id=cid, business_number=NUMBER, status="open", opened_at=at
        )
        await tx.save_cases([record], [key])
    return key


async def close_case(store: SqlStore, key: str, at: datetime) -> None:
    [(contact_id, _)] = await _pairs(store, key)  # before the transaction: one SQLite writer
    async with store.transaction() as tx:
        loaded = await tx.load_cases([contact_id])
        case = loaded.cases[key]
        case.status, case.closed_at = "resolved", at
        await tx.save_cases([case], [])


async def _pairs(store: SqlStore, key: str) -> list[tuple[str, str]]:
    async with store.engine.connect() as conn:
        rows = await conn.execute(
            select(cases.c.contact_id, cases.c.business_number).where(cases.c.case_key == key)
        )
        return [(r[0], r[1]) for r in rows]


async def crm_contact(store: SqlStore, cid: str, **columns: Any) -> None:
    """A row of the built-in SQL CRM, with a case and a note."""
    async with store.engine.begin() as conn:
        await conn.execute(
            insert(crm_contacts).values(contact_key=cid, created_at=T0, updated_at=T0, **columns)
        )
        await conn.execute(
            insert(crm_cases).values(case_key=f"k_{cid}", contact_key=cid, updated_at=T0)
        )
        await conn.execute(
            insert(crm_notes).values(
                note_key=f"wamid.{cid}", contact_key=cid, body="hola", created_at=T0, updated_at=T0
            )
        )


async def tables(store: SqlStore) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the tables a merge may touch (the audit log aside), sorted."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    async with store.engine.connect() as conn:
        for table in metadata.sorted_tables:
            if table.name == "audit_log":
                continue
            rows = (await conn.execute(select(table))).all()
            out[table.name] = sorted((tuple(r) for r in rows), key=repr)
    return out


def sql_settings(url: str) -> Settings:
    return Settings(connector="sql", database_url=url)


async def audit_actions(store: SqlStore) -> list[tuple[str, str, str]]:
    async with store.engine.connect() as conn:
        rows = await conn.execute(
            select(audit_log.c.action, audit_log.c.actor, audit_log.c.target).order_by(
                audit_log.c.id
            )
        )
        return [(str(a), str(b), str(c)) for a, b, c in rows]


async def report(store: SqlStore) -> dict[frozenset[str], tuple[str, str, list[str]]]:
    async with store.engine.connect() as conn:
        found = await find_lookalikes(conn)
    return {
        frozenset((x.keep.contact_id, x.other.contact_id)): (
            x.keep.contact_id,
            x.other.contact_id,
            [e.rule for e in x.evidence],
        )
        for x in found
    }


# --- the report -------------------------------------------------------------------------


async def test_report_finds_phone_variants_made_before_the_folding_rule(
    store_url: str, store_factory: StoreFactory
) -> None:
    store = await store_factory(store_url)
    ar_old, ar = await resolve(store, phone(AR_OLD)), await resolve(store, phone(AR))
    mx_old, mx = await resolve(store, phone(MX_OLD)), await resolve(store, phone(MX))
    found = await report(store)
    assert found[frozenset((ar, ar_old))] == (ar, ar_old, ["phone_variant"])  # 549 is kept
    assert found[frozenset((mx, mx_old))] == (mx, mx_old, ["phone_variant"])  # 52 is kept
    assert len(found) == 2


async def test_report_finds_a_phone_only_contact_whose_number_joined_a_bsuid(
    store_url: str, store_factory: StoreFactory
) -> None:
    store = await store_factory(store_url)
    by_phone = await resolve(store, phone(MX))  # a status to the number, before any message
    by_bsuid = await resolve(store, bsuid("MX.1"))  # a username user writes
    assert await resolve(store, bsuid("MX.1", MX)) == by_bsuid  # later seen with the phone
    found = await report(store)
    assert found == {frozenset((by_bsuid, by_phone)): (by_bsuid, by_phone, ["orphaned", "moved"])}


async def test_report_leaves_a_recycled_number_apart(
    store_url: str, store_factory: StoreFactory
) -> None:
    store = await store_factory(store_url)
    old_owner = await resolve(store, bsuid("MX.old", MX))
    new_owner = await resolve(store, bsuid("MX.new", MX))  # Meta gave the number to a stranger
    assert old_owner != new_owner
    assert await report(store) == {}


async def test_report_finds_what_identity_events_no_longer_show(
    store_url: str, store_factory: StoreFactory
) -> None:
    store = await store_factory(store_url)
    by_phone = await resolve(store, phone(AR))
    by_bsuid = await resolve(store, bsuid("AR.1"))
    await resolve(store, bsuid("AR.1", AR))
    async with store.engine.begin() as conn:
        await conn.execute(identity_events.delete())  # purged by retention
    found = await report(store)
    assert found == {frozenset((by_bsuid, by_phone)): (by_bsuid, by_phone, ["orphaned"])}


# --- merge, dry run, unmerge --------------------------------------------------------------


async def variant_pair(store: SqlStore) -> tuple[str, str]:
    """KEEP holds AR and an open case, OTHER the 9-less AR form, an open case and a
    consent record; both are in the SQL CRM (OTHER with a name KEEP lacks)."""
    other = await resolve(store, phone(AR_OLD))
    keep = await resolve(store, bsuid("AR.1", AR))
    await open_case(store, other, T0)
    await open_case(store, keep, T0 + timedelta(hours=1))
    async with store.transaction() as tx:
        await tx.record_consents([ConsentRecord("ev-optout", other, "opt_out", T0)])
    await crm_contact(store, keep, phone_e164=AR, bsuid="AR.1")
    await crm_contact(store, other, phone_e164=AR_OLD, name="Lucía Paz", email="l@example.com")
    return keep, other


async def test_dry_run_changes_nothing_but_the_audit_log(
    store_url: str, store_factory: StoreFactory
) -> None:
    store = await store_factory(store_url)
    keep, other = await variant_pair(store)
    before = await tables(store)
    outcome = await ops.merge(
        sql_settings(store_url), store, keep, other, actor="ana", dry_run=True
    )
    assert outcome.merge_id is None
    assert "identifiers: 1 move" in outcome.map_lines[0]
    assert any("would move 1 cases, 1 notes" in line for line in outcome.crm_lines)
    assert await tables(store) == before
    assert await audit_actions(store) == [("identity.merge.dry_run", "ana", f"contact:{other}")]


async def test_merge_moves_links_cases_consents_and_crm_rows_to_keep(
    store_url: str, store_factory: StoreFactory
) -> None:
    store = await store_factory(store_url)
    keep, other = await variant_pair(store)
    outcome = await ops.merge(sql_settings(store_url), store, keep, other, actor="ana")
    assert outcome.merge_id is not None and outcome.crm_reversible
    # later events of either identity land on KEEP, in KEEP's open case
    assert await resolve(store, phone(AR_OLD)) == keep
    assert await resolve(store, phone(AR)) == keep
    async with store.engine.connect() as conn:
        case_rows = (await conn.execute(select(cases.c.contact_id, cases.c.status))).all()
        consent_owner = (await conn.execute(select(consents.c.contact_id))).scalar_one()
        crm = (await conn.execute(select(crm_contacts))).mappings().all()
        notes = (await conn.execute(select(crm_notes.c.contact_key))).scalars().all()
        events = (
            await conn.execute(select(identity_events.c.contact_id, identity_events.c.decision))
        ).all()
    assert sorted(case_rows) == [(keep, "open"), (keep, "resolved")]  # OTHER's closed here
    open_key = await open_case(store, keep, T0 + timedelta(hours=2))
    assert open_key == next(k for k, c, s in await case_list(store) if c == keep and s == "open")
    assert consent_owner == keep
    assert [(r["contact_key"], r["name"], r["email"]) for r in crm] == [
        (keep, "Lucía Paz", "l@example.com")  # one contact: KEEP's empty fields filled
    ]
    assert notes == [keep, keep]
    assert (keep, "merged") in events and (other, "merged_into") in events
    assert await report(store) == {}  # merged pairs are not reported again
    assert await audit_actions(store) == [("identity.merge", "ana", f"contact:{other}")]


async def case_list(store: SqlStore) -> list[tuple[str, str, str]]:
    async with store.engine.connect() as conn:
        rows = await conn.execute(select(cases.c.case_key, cases.c.contact_id, cases.c.status))
        return [(str(k), str(c), str(s)) for k, c, s in rows]


async def test_unmerge_gives_our_maps_and_the_sql_crm_back(
    store_url: str, store_factory: StoreFactory
) -> None:
    store = await store_factory(store_url)
    keep, other = await variant_pair(store)
    before = await tables(store)
    settings = sql_settings(store_url)
    outcome = await ops.merge(settings, store, keep, other, actor="ana")
    assert outcome.merge_id is not None
    undone = await ops.unmerge(settings, store, outcome.merge_id, actor="bo")
    assert undone.other_id == other
    assert undone.crm_lines == (f"sql: 2 row(s) back on contact {other}, its contact row restored",)
    after = await tables(store)
    for name in ("identities", "cases", "consents", "crm_contacts", "crm_notes", "crm_cases"):
        assert _without_times(after[name]) == _without_times(before[name]), name
    assert await resolve(store, phone(AR_OLD)) == other
    assert await resolve(store, phone(AR)) == keep
    async with store.engine.connect() as conn:
        status = (await conn.execute(select(identity_merges.c.status))).scalar_one()
    assert status == "unmerged"
    assert [a for a, _, _ in await audit_actions(store)] == ["identity.merge", "identity.unmerge"]
    with pytest.raises(MergeRefused, match="undone already"):
        await ops.unmerge(settings, store, outcome.merge_id, actor="bo")


def _without_times(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Rows with their times dropped (a closed-then-reopened case keeps no closed_at)."""
    return sorted((tuple(v for v in row if not isinstance(v, datetime)) for row in rows), key=repr)


async def test_merge_refuses_unknown_same_and_already_merged_contacts(
    store_url: str, store_factory: StoreFactory
) -> None:
    store = await store_factory(store_url)
    keep, other = await variant_pair(store)
    settings = sql_settings(store_url)
    with pytest.raises(MergeRefused, match="same contact"):
        await ops.merge(settings, store, keep, keep, actor="ana")
    with pytest.raises(MergeRefused, match="no contact c_nobody"):
        await ops.merge(settings, store, keep, "c_nobody", actor="ana")
    done = await ops.merge(settings, store, keep, other, actor="ana")
    with pytest.raises(MergeRefused, match=f"already merged into {keep}"):
        await ops.merge(settings, store, keep, other, actor="ana")
    with pytest.raises(MergeRefused, match=f"was merged into {keep}"):
        await ops.merge(settings, store, other, keep, actor="ana")
    assert done.merge_id is not None


async def test_retired_identifiers_follow_to_keep_and_come_back(
    store_url: str, store_factory: StoreFactory
) -> None:
    """OTHER changed number once: a late status for its old number reaches KEEP after the
    merge, and OTHER again after the unmerge."""
    store = await store_factory(store_url)
    other = await resolve(store, phone(MX))
    async with store.transaction() as tx:
        from wa_bridge.store import IdentityChange

        await tx.apply_identity_changes(
            [IdentityChange(WABA, (("phone", MX),), (("phone", AR),), T0, renews_bsuids=True)]
        )
    keep = await resolve(store, bsuid("X.1", "+573005550199"))
    settings = sql_settings(store_url)
    outcome = await ops.merge(settings, store, keep, other, actor="ana")
    assert "1 retired ones follow" in outcome.map_lines[0]
    assert await resolve(store, phone(MX)) == keep  # phone only: the last holder
    assert outcome.merge_id is not None
    await ops.unmerge(settings, store, outcome.merge_id, actor="ana")
    assert await resolve(store, phone(MX)) == other
    links = await current_links(store)
    assert links[("", "phone", AR)] == other


async def test_unmerge_that_would_reuse_a_case_key_is_refused(
    store_url: str, store_factory: StoreFactory
) -> None:
    store = await store_factory(store_url)
    keep, other = await variant_pair(store)
    settings = sql_settings(store_url)
    outcome = await ops.merge(settings, store, keep, other, actor="ana")
    assert outcome.merge_id is not None
    # KEEP's conversations go on: two more cases on the same number since the merge
    for hours in (3, 5):
        [open_key] = [k for k, c, s in await case_list(store) if c == keep and s == "open"]
        await close_case(store, open_key, T0 + timedelta(hours=hours))
        await open_case(store, keep, T0 + timedelta(hours=hours + 1))
    before = await tables(store)
    with pytest.raises(MergeRefused, match="reuse case key"):
        await ops.unmerge(settings, store, outcome.merge_id, actor="ana")
    assert await tables(store) == before


async def test_a_second_bsuid_of_one_business_reaches_keep_as_history(
    store_url: str, store_factory: StoreFactory
) -> None:
    """A contact holds one current BSUID per business: OTHER's joins KEEP as history, so
    its events still land on KEEP, and KEEP's own stays the one that decides."""
    store = await store_factory(store_url)
    keep = await resolve(store, bsuid("AR.keep", AR))
    other = await resolve(store, bsuid("AR.other", MX))
    settings = sql_settings(store_url)
    outcome = await ops.merge(settings, store, keep, other, actor="ana")
    assert "1 kept as history (it holds its own bsuid)" in outcome.map_lines[0]
    links = await current_links(store)
    assert links[(WABA, "bsuid", "AR.keep")] == keep
    assert (WABA, "bsuid", "AR.other") not in links
    assert links[("", "phone", MX)] == keep
    assert await resolve(store, bsuid("AR.other")) == keep
    assert await resolve(store, bsuid("AR.other", MX)) == keep
    assert outcome.merge_id is not None
    await ops.unmerge(settings, store, outcome.merge_id, actor="ana")
    links = await current_links(store)
    assert links[(WABA, "bsuid", "AR.other")] == other and links[("", "phone", MX)] == other
    assert await resolve(store, bsuid("AR.other", MX)) == other


async def test_the_record_book_follows_the_crm_merge(
    store_url: str, store_factory: StoreFactory
) -> None:
    """OTHER's record is forgotten (merged away); KEEP's takes the id the CRM gave the
    merged record and the if_empty fields the merge filled from OTHER's."""
    from wa_bridge.store.crm_records import load_book, save_book
    from wa_bridge.store.identity_merges import CrmOutcome, apply_merge
    from wa_bridge.store.merge_plan import plan_merge

    store = await store_factory(store_url)
    keep, other = await resolve(store, phone(AR)), await resolve(store, phone(AR_OLD))
    async with store.engine.begin() as conn:
        book = await load_book(conn, "hubspot:1", [])
        book.remember("contacts", keep, "101", filled=["country"])
        book.remember("contacts", other, "202", match="phone", filled=["name"])
        book.remember("tickets", "k_1", "303")
        await save_book(conn, book, T0)
        plan = await plan_merge(conn, keep, other, "hubspot:1")
        assert plan.other_record is not None and plan.other_record[1].match == "phone"
        crm = CrmOutcome("hubspot:1", ("merged",), False, {}, keep_crm_id="404", fields_merged=True)
        await apply_merge(conn, plan, crm, actor="ana", at=T0)
        after = await load_book(conn, "hubspot:1", [keep, other, "k_1"])
    kept = after.get("contacts", keep)
    assert kept is not None and (kept.crm_id, kept.filled) == (
        "404",
        frozenset({"country", "name"}),
    )
    assert after.get("contacts", other) is None
    assert after.get("tickets", "k_1") is not None  # tickets and notes keep their own keys
