"""``wa-bridge identity merge`` against the CRM stand-ins: after the merge the CRM holds
what an admin expects (one contact, every ticket/case and note/task on it), the next
message of either identity lands there, a dry run sends no write, a failing CRM leaves
our maps as they were, and an unmerge says what stays merged in the CRM.

The two contacts come from the worker's own pipeline (state store, mapping, connector):
a number-change notice that arrived after the new identity had already written
(``identity_ar_late_*``, README "Identity").
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

import wa_bridge
from connectors.servers import ContractServer, HubSpotServer, RestCrmServer, SalesforceServer
from wa_bridge.connectors import CrmConnector, build_connector
from wa_bridge.errors import CrmUnavailable
from wa_bridge.normalize import normalize_webhook
from wa_bridge.ops import identity as ops
from wa_bridge.settings import Settings
from wa_bridge.store import SqlStore, open_store
from wa_bridge.store.tables import cases, crm_records, identities, identity_merges
from wa_bridge.worker.assembly import load_event_mapper, match_order_of
from wa_bridge.worker.pipeline import Pipeline
from worker.sqlcrm import RECEIVED_AT, ROOT, sample_body, sample_events

LATE = ("1_before", "2_new_first", "3_notice", "4_after")


@dataclass
class World:
    settings: Settings
    store: SqlStore
    connector: CrmConnector
    pipeline: Pipeline
    person: str = ""  # the contact the notice's person has
    stray: str = ""  # the one the new identity opened before the notice

    async def post(self, body: dict[str, Any]) -> None:
        await self.pipeline.apply(normalize_webhook(body, received_at=RECEIVED_AT))

    async def merge(self, *, dry_run: bool = False) -> ops.MergeOutcome:
        return await ops.merge(
            self.settings,
            self.store,
            self.person,
            self.stray,
            actor="test",
            dry_run=dry_run,
            connector=self.connector,
        )


@asynccontextmanager
async def world(server: ContractServer, tmp_path: Path) -> AsyncIterator[World]:
    """The late-notice scenario applied to ``server``'s CRM through the pipeline."""
    settings = Settings(
        connector=server.vendor,  # type: ignore[arg-type]  # a vendor name: a Literal there
        crm_base_url=server.url,
        crm_token=server.token,  # type: ignore[arg-type]  # pydantic makes it a SecretStr
        crm_timeout_s=2,
        mappings_path=str(ROOT / "mappings" / f"{server.vendor}.yaml"),
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'state.db'}",
    )
    store = await open_store(str(settings.database_url), create=True)
    mapper = load_event_mapper(settings)
    connector = build_connector(settings, match_order=match_order_of(mapper))
    try:
        w = World(settings, store, connector, Pipeline(store, mapper, connector))
        for name in LATE:
            await w.post(sample_body(f"identity_ar_late_{name}.json"))
        w.person, w.stray = await owners(store)
        yield w
    finally:
        await connector.aclose()
        await store.aclose()


async def owners(store: SqlStore) -> tuple[str, str]:
    """(the person's contact, the stray one): the stray holds no identifier now."""
    async with store.engine.connect() as conn:
        rows = (await conn.execute(select(identities.c.contact_id, identities.c.is_current))).all()
    current = {c for c, is_current in rows if is_current}
    [person] = current
    [stray] = {c for c, _ in rows} - current
    return person, stray


def again(name: str, n: int) -> dict[str, Any]:
    body = sample_body(f"identity_ar_late_{name}.json")
    for message in body["entry"][0]["changes"][0]["value"]["messages"]:
        message["id"] = f"{message['id']}.again{n}"
    return body


def wamids(*names: str) -> set[str]:
    return {
        str(e.data["message_id"])
        for name in names
        for e in sample_events(f"identity_ar_late_{name}.json")
        if "message_id" in e.data
    }


def writes(server: ContractServer) -> list[str]:
    """Requests that may change the CRM (a search reads)."""
    return [
        f"{r.method} {r.path}"
        for r in server.requests
        if r.method != "GET" and not r.path.endswith("/search")
    ]


async def book(store: SqlStore) -> dict[str, str]:
    async with store.engine.connect() as conn:
        rows = await conn.execute(select(crm_records.c.key, crm_records.c.crm_id))
        return {str(k): str(v) for k, v in rows}


# --- HubSpot ----------------------------------------------------------------------------


def hubspot_contact_of(server: HubSpotServer, note_key: str) -> list[str]:
    note = server.find("communications", "wa_note_key", note_key)
    assert note is not None, note_key
    return server.associations_of("communications", note["id"], "contacts")


async def test_hubspot_merge_leaves_one_contact_with_every_ticket_and_note(
    hubspot_server: HubSpotServer, tmp_path: Path
) -> None:
    async with world(hubspot_server, tmp_path) as w:
        assert len(hubspot_server.objects("contacts")) == 2
        known = await book(w.store)
        keep_id, other_id = known[w.person], known[w.stray]

        before = writes(hubspot_server)
        dry = await w.merge(dry_run=True)
        assert dry.merge_id is None and writes(hubspot_server) == before  # searched only
        assert dry.crm_lines[0] == f"hubspot: would merge contact {other_id} into contact {keep_id}"

        outcome = await w.merge()
        assert not outcome.crm_reversible
        assert any("cannot be undone" in line for line in outcome.crm_lines)
        [contact] = hubspot_server.objects("contacts")
        assert contact["id"] == keep_id
        assert contact["properties"]["wa_contact_key"] == w.person
        tickets = hubspot_server.objects("tickets")
        assert len(tickets) == 2
        for ticket in tickets:
            assert hubspot_server.associations_of("tickets", ticket["id"], "contacts") == [keep_id]
        for note_key in wamids(*LATE):
            assert hubspot_contact_of(hubspot_server, note_key) == [keep_id]
        assert w.stray not in await book(w.store)  # its record is merged away

        await w.post(again("2_new_first", 1))  # the new identity writes again
        assert len(hubspot_server.objects("contacts")) == 1
        [note_key] = {f"{m}.again1" for m in wamids("2_new_first")}
        assert hubspot_contact_of(hubspot_server, note_key) == [keep_id]

        assert outcome.merge_id is not None
        undone = await ops.unmerge(
            w.settings, w.store, outcome.merge_id, actor="test", connector=w.connector
        )
        assert any("cannot be undone" in line for line in undone.crm_lines)
        async with w.store.engine.connect() as conn:  # the stray's case is its own again
            case_owners = set((await conn.execute(select(cases.c.contact_id))).scalars())
        assert case_owners == {w.person, w.stray}
        assert len(hubspot_server.objects("contacts")) == 1  # HubSpot's merge stays


async def test_a_failing_crm_merge_leaves_our_maps_as_they_were(
    hubspot_server: HubSpotServer, tmp_path: Path
) -> None:
    async with world(hubspot_server, tmp_path) as w:
        hubspot_server.script(status=500, match="/contacts/merge")
        with pytest.raises(CrmUnavailable):
            await w.merge()
        async with w.store.engine.connect() as conn:
            assert (await conn.execute(select(identity_merges))).all() == []
        assert await owners(w.store) == (w.person, w.stray)
        assert len(hubspot_server.objects("contacts")) == 2
        outcome = await w.merge()  # once the CRM is back
        assert outcome.merge_id is not None and len(hubspot_server.objects("contacts")) == 1


# --- Salesforce -------------------------------------------------------------------------


async def test_salesforce_merge_moves_cases_and_tasks_and_deletes_our_contact(
    salesforce_server: SalesforceServer, tmp_path: Path
) -> None:
    async with world(salesforce_server, tmp_path) as w:
        assert len(salesforce_server.objects("Contact")) == 2
        known = await book(w.store)
        keep_id, other_id = known[w.person], known[w.stray]

        before = writes(salesforce_server)
        dry = await w.merge(dry_run=True)
        assert writes(salesforce_server) == before
        assert dry.crm_lines[0] == (
            f"salesforce: would move 1 Case, 1 Task, 0 Opportunity from Contact {other_id} "
            f"to Contact {keep_id}"
        )

        outcome = await w.merge()
        assert not outcome.crm_reversible
        [contact] = salesforce_server.objects("Contact")
        assert contact["Id"] == keep_id
        assert {c["ContactId"] for c in salesforce_server.objects("Case")} == {keep_id}
        tasks = salesforce_server.objects("Task")
        assert len(tasks) == len(wamids(*LATE)) and {t["WhoId"] for t in tasks} == {keep_id}
        assert any("Recycle Bin" in line for line in outcome.crm_lines)

        await w.post(again("2_new_first", 1))
        assert len(salesforce_server.objects("Contact")) == 1
        [note_key] = {f"{m}.again1" for m in wamids("2_new_first")}
        task = salesforce_server.find("Task", "WA_Note_Key__c", note_key)
        assert task is not None and task["WhoId"] == keep_id


async def test_salesforce_keeps_a_contact_the_company_had(
    salesforce_server: SalesforceServer, tmp_path: Path
) -> None:
    """The stray identity adopted the company's own record (found by its new number):
    its Cases and Tasks move, the record itself stays for the admin to merge there."""
    salesforce_server.seed("Contact", LastName="Ríos", MobilePhone="+54 9 11 6001-0002")
    async with world(salesforce_server, tmp_path) as w:
        other_id = (await book(w.store))[w.stray]
        outcome = await w.merge()
        assert salesforce_server.get("Contact", other_id) is not None
        assert any("company's own record" in line for line in outcome.crm_lines)
        assert not salesforce_server.find_all("Task", "WhoId", other_id)
        assert not salesforce_server.find_all("Case", "ContactId", other_id)


# --- the REST contract ------------------------------------------------------------------


async def test_rest_crm_merges_through_the_contract(
    rest_crm_server: RestCrmServer, tmp_path: Path
) -> None:
    async with world(rest_crm_server, tmp_path) as w:
        outcome = await w.merge()
        assert outcome.crm_lines == (
            f"rest: the CRM merged contact {w.stray} into {w.person}; the contract has no unmerge",
        )
        assert list(rest_crm_server.collection("contacts")) == [w.person]
        for name in ("cases", "notes"):
            owners_ = {r["contact_key"] for r in rest_crm_server.collection(name).values()}
            assert owners_ == {w.person}, name


async def test_rest_crm_without_merge_merges_our_maps_only(
    rest_crm_server: RestCrmServer, tmp_path: Path
) -> None:
    rest_crm_server.mergeable = False
    async with world(rest_crm_server, tmp_path) as w:
        outcome = await w.merge()
        assert outcome.merge_id is not None
        assert "merge the two records there by hand" in outcome.crm_lines[0]
        assert await owners(w.store) == (w.person, w.stray)
        await w.post(again("2_new_first", 1))
        [note_key] = {f"{m}.again1" for m in wamids("2_new_first")}
        assert rest_crm_server.collection("notes")[note_key]["contact_key"] == w.person


# --- layering ---------------------------------------------------------------------------


@pytest.mark.parametrize("module", ["cli/identity.py", "ops/identity.py", "connectors/merging.py"])
def test_merge_callers_name_no_vendor(module: str) -> None:
    source = (Path(wa_bridge.__file__).parent / module).read_text().lower()
    assert not [n for n in ("hubspot", "salesforce", '__c"', "wa_contact") if n in source]


def test_every_vendor_brings_a_merger() -> None:
    from wa_bridge.connectors import _vendor

    for name in ("sql", "rest", "hubspot", "salesforce"):
        assert _vendor(name).merger is not None, name
