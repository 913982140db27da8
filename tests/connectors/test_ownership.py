"""Field ownership and records a user deleted, for HubSpot and Salesforce (#9).

An agent's edit in the CRM survives later messages (names are written ``if_empty``); an
``on_create`` field keeps the value of the operation that created the record; a record
a user deleted is made again under our key, with all it should hold, and linked again.
Each test asserts the CRM's end state as an admin would see it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from connectors.conftest import connector_for
from connectors.servers import HubSpotServer, SalesforceServer
from connectors.test_matching import Crm, _crm, contact, note
from wa_bridge.connectors import CrmResult
from wa_bridge.operations import CrmOperation
from wa_bridge.store import RecordBook

T0 = datetime(2026, 5, 4, 10, 30, tzinfo=UTC)


@pytest.fixture(params=["hubspot", "salesforce"])
async def crm(request: pytest.FixtureRequest) -> AsyncIterator[Crm]:
    async for one in _crm(request):
        yield one


def _edit(crm: Crm, crm_id: str, **fields: Any) -> None:
    if isinstance(crm.server, HubSpotServer):
        crm.server.agent_edit("contacts", crm_id, **fields)
    else:
        assert isinstance(crm.server, SalesforceServer)
        crm.server.agent_edit("Contact", crm_id, **fields)


def case(status: str, opened: datetime, event: str = "ev-2") -> CrmOperation:
    return CrmOperation(
        kind="upsert_case",
        fields={"status": status, "channel": "whatsapp", "opened_at": opened},
        event_id=event,
        contact_key="c_1",
        case_key="k_1",
        write_modes={"channel": "on_create", "opened_at": "on_create"},
    )


@pytest.mark.parametrize("book_survives", [True, False], ids=["same book", "book lost"])
async def test_an_agents_edit_survives_later_messages(crm: Crm, book_survives: bool) -> None:
    book = RecordBook(crm.connector.instance)
    await crm.connector.apply([contact("c_1", phone_e164="+15550100001", name="Pao")], book)
    [created] = crm.by_key("c_1")
    assert created[crm.name_field] == "Pao"  # a new record gets the WhatsApp name
    _edit(crm, created["id"], **{crm.name_field: "Paola Gutiérrez"})
    later = book if book_survives else RecordBook(crm.connector.instance)
    results = await crm.connector.apply(
        [contact("c_1", "ev-2", phone_e164="+15550100001", name="🦄 Pao", country="MX")], later
    )
    assert isinstance(results[0], CrmResult) and not results[0].created
    [record] = crm.by_key("c_1")
    assert record[crm.name_field] == "Paola Gutiérrez"
    assert len(crm.contacts()) == 1


async def test_on_create_fields_keep_the_first_value(crm: Crm) -> None:
    book = RecordBook(crm.connector.instance)
    first = [contact("c_1", phone_e164="+15550100001"), case("open", T0)]
    await crm.connector.apply(first, book)
    later = T0.replace(hour=18)
    results = await crm.connector.apply([case("pending", later, "ev-3")], book)
    assert isinstance(results[0], CrmResult) and not results[0].created
    ticket = _case(crm)
    opened = ticket.get("wa_opened_at") or ticket.get("WA_Opened_At__c")
    assert opened in (str(int(T0.timestamp() * 1000)), T0.isoformat())
    assert (ticket.get("hs_pipeline_stage") or ticket.get("Status")) in ("2", "Working")


def _case(crm: Crm) -> dict[str, Any]:
    if isinstance(crm.server, HubSpotServer):
        record = crm.server.find("tickets", "wa_case_key", "k_1")
        assert record is not None
        return {"id": record["id"], **record["properties"]}
    assert isinstance(crm.server, SalesforceServer)
    found = crm.server.find("Case", "WA_Case_Key__c", "k_1")
    assert found is not None
    return dict(found)


# --- records a user deleted -----------------------------------------------------------
async def test_hubspot_a_deleted_contact_is_made_again_and_linked(
    hubspot_server: HubSpotServer,
) -> None:
    connector = connector_for(hubspot_server)
    book = RecordBook(connector.instance)
    person = contact("c_1", phone_e164="+15550100001", name="Ana")
    try:
        await connector.apply([person, case("open", T0), note("c_1", "wamid.1")], book)
        [old] = hubspot_server.find_all("contacts", "wa_contact_key", "c_1")
        hubspot_server.delete("contacts", old["id"])
        results = await connector.apply(
            [person, case("pending", T0, "ev-3"), note("c_1", "wamid.2", "ev-4")], book
        )
    finally:
        await connector.aclose()
    assert all(isinstance(r, CrmResult) for r in results)
    [new] = hubspot_server.find_all("contacts", "wa_contact_key", "c_1")
    assert new["id"] != old["id"] and new["properties"]["firstname"] == "Ana"
    assert new["properties"]["phone"] == "+15550100001"
    known = book.get("contacts", "c_1")
    assert known is not None and known.crm_id == new["id"]
    ticket = hubspot_server.find("tickets", "wa_case_key", "k_1")
    second = hubspot_server.find("communications", "wa_note_key", "wamid.2")
    assert ticket is not None and second is not None
    assert hubspot_server.associations_of("contacts", new["id"], "tickets") == [ticket["id"]]
    assert hubspot_server.associations_of("communications", second["id"], "contacts") == [new["id"]]


async def test_hubspot_a_deleted_ticket_is_made_again_whole(hubspot_server: HubSpotServer) -> None:
    connector = connector_for(hubspot_server)
    book = RecordBook(connector.instance)
    try:
        await connector.apply([contact("c_1", phone_e164="+15550100001"), case("open", T0)], book)
        old = hubspot_server.find("tickets", "wa_case_key", "k_1")
        assert old is not None
        hubspot_server.delete("tickets", old["id"])
        (result,) = await connector.apply([case("pending", T0, "ev-3")], book)
    finally:
        await connector.aclose()
    assert isinstance(result, CrmResult) and result.crm_id != old["id"]
    [ticket] = hubspot_server.find_all("tickets", "wa_case_key", "k_1")
    props = ticket["properties"]
    assert props["subject"] == "WhatsApp conversation" and props["hs_pipeline_stage"] == "2"
    assert props["wa_opened_at"] == str(int(T0.timestamp() * 1000))
    [contact_id] = [c["id"] for c in hubspot_server.objects("contacts")]
    assert hubspot_server.associations_of("tickets", ticket["id"], "contacts") == [contact_id]


async def test_salesforce_a_deleted_contact_is_made_again_for_its_task(
    salesforce_server: SalesforceServer,
) -> None:
    connector = connector_for(salesforce_server)
    book = RecordBook(connector.instance)
    person = contact("c_1", phone_e164="+15550100001", name="Ana")
    try:
        await connector.apply([person, note("c_1", "wamid.1")], book)
        old = salesforce_server.find("Contact", "WA_Contact_Key__c", "c_1")
        assert old is not None
        salesforce_server.delete("Contact", old["Id"])
        results = await connector.apply([person, note("c_1", "wamid.2", "ev-4")], book)
    finally:
        await connector.aclose()
    assert all(isinstance(r, CrmResult) for r in results)
    [new] = salesforce_server.find_all("Contact", "WA_Contact_Key__c", "c_1")
    assert new["Id"] != old["Id"] and new["LastName"] == "Ana"
    task = salesforce_server.find("Task", "WA_Note_Key__c", "wamid.2")
    assert task is not None and task["WhoId"] == new["Id"]


async def test_salesforce_a_deleted_case_is_made_again_whole(
    salesforce_server: SalesforceServer,
) -> None:
    connector = connector_for(salesforce_server)
    book = RecordBook(connector.instance)
    try:
        await connector.apply([contact("c_1", phone_e164="+15550100001"), case("open", T0)], book)
        old = salesforce_server.find("Case", "WA_Case_Key__c", "k_1")
        assert old is not None
        salesforce_server.delete("Case", old["Id"])
        (result,) = await connector.apply([case("pending", T0, "ev-3")], book)
    finally:
        await connector.aclose()
    assert isinstance(result, CrmResult) and result.crm_id != old["Id"]
    [again] = salesforce_server.find_all("Case", "WA_Case_Key__c", "k_1")
    contact_id = salesforce_server.find("Contact", "WA_Contact_Key__c", "c_1")
    assert contact_id is not None and again["ContactId"] == contact_id["Id"]
    assert again["Status"] == "Working" and again["Origin"] == "WhatsApp"
    assert again["WA_Opened_At__c"] == T0.isoformat()
