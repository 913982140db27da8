"""Vendor specifics: batching limits, per-item failures, path styles, contract checking."""

from __future__ import annotations

import ast
from pathlib import Path

import httpx
import pytest

import wa_bridge
from connectors.conftest import connector_for
from connectors.servers import HubSpotServer, RestCrmServer, SalesforceServer
from connectors.test_contract_suite import (
    CONTACT,
    T0,
    WAMID,
    apply_one,
    case_op,
    contact_op,
    message_op,
    op,
)
from wa_bridge.connectors import CrmResult, OpRejected
from wa_bridge.connectors.hubspot import property_value
from wa_bridge.errors import ConfigError, CrmRejected, UnkeyedOperation
from wa_bridge.operations import CrmOperation
from wa_bridge.store import RecordBook


def contacts(n: int) -> list[CrmOperation]:
    return [
        CrmOperation(
            kind="upsert_contact",
            fields={"name": f"n{i}", "tags": ("a", "b")},
            event_id=f"ev-{i}",
            contact_key=f"c-{i:04d}",
        )
        for i in range(n)
    ]


async def test_hubspot_batches_at_most_100_inputs(hubspot_server: HubSpotServer) -> None:
    connector = connector_for(hubspot_server)
    try:
        results = await connector.apply(contacts(250))
    finally:
        await connector.aclose()
    assert len(results) == 250 and all(isinstance(r, CrmResult) and r.created for r in results)
    upserts = [r for r in hubspot_server.requests if r.path.endswith("/batch/upsert")]
    assert [len(r.body["inputs"]) for r in upserts] == [100, 100, 50]
    [search] = [r for r in hubspot_server.requests if r.path.endswith("/search")]
    groups = search.body["filterGroups"]  # one search for the batch: 100 keys per IN filter
    assert [len(g["filters"][0]["values"]) for g in groups] == [100, 100, 50]
    assert len(hubspot_server.collection("contacts")) == 250


async def test_rest_batches_at_most_100_ops(rest_crm_server: RestCrmServer) -> None:
    connector = connector_for(rest_crm_server)
    try:
        results = await connector.apply(contacts(150))
    finally:
        await connector.aclose()
    assert len(results) == 150
    batches = [r for r in rest_crm_server.requests if r.path == "/batch"]
    assert [len(r.body["operations"]) for r in batches] == [100, 50]


async def test_hubspot_207_item_error_rejects_that_op(hubspot_server: HubSpotServer) -> None:
    # A ticket created without a status has no pipeline stage: HubSpot refuses that item,
    # and the note on that ticket is not written either; the rest is.
    connector = connector_for(hubspot_server)
    no_stage = op("upsert_case", index=1, channel="whatsapp")
    other = CrmOperation(
        kind="upsert_case",
        fields={"status": "open"},
        event_id="ev-2",
        contact_key=CONTACT,
        case_key="case-0002",
    )
    try:
        contact, refused, note, fine = await connector.apply(
            [contact_op(), no_stage, message_op(), other]
        )
    finally:
        await connector.aclose()
    assert isinstance(contact, CrmResult) and isinstance(fine, CrmResult)
    assert isinstance(refused, OpRejected) and isinstance(refused.error, CrmRejected)
    assert "hs_pipeline_stage" in refused.error.crm_error
    assert "upsert_case" in str(refused.error)
    assert isinstance(note, OpRejected) and "the tickets record it needs was refused" in str(
        note.error
    )
    assert len(hubspot_server.collection("contacts")) == 1
    assert len(hubspot_server.collection("tickets")) == 1
    assert hubspot_server.collection("communications") == {}
    upserts = [r for r in hubspot_server.requests if r.path.endswith("tickets/batch/upsert")]
    assert all(i["objectWriteTraceId"] == i["id"] for i in upserts[0].body["inputs"])


async def test_rest_refused_item_is_rejected_and_the_rest_applied(
    rest_crm_server: RestCrmServer,
) -> None:
    rejected = {"code": "validation_error", "message": "unknown status", "field": "status"}

    def reject_cases(item: dict[str, object]) -> dict[str, object] | None:
        return rejected if item["op"] == "upsert_case" else None

    rest_crm_server.item_rejection = reject_cases  # type: ignore[method-assign]
    connector = connector_for(rest_crm_server)
    try:
        contact, case, note = await connector.apply([contact_op(), case_op(), message_op()])
    finally:
        await connector.aclose()
        del rest_crm_server.item_rejection
    assert isinstance(contact, CrmResult) and isinstance(note, CrmResult)
    assert isinstance(case, OpRejected) and isinstance(case.error, CrmRejected)
    assert case.error.crm_error == "validation_error: unknown status (field status)"
    assert "upsert_case" in str(case.error)
    assert list(rest_crm_server.collection("notes")) == [WAMID]  # sent again after the refusal
    batches = [r for r in rest_crm_server.requests if r.path == "/batch"]
    assert [len(r.body["operations"]) for r in batches] == [3, 1]


async def test_rest_a_refused_contact_refuses_what_names_it(
    rest_crm_server: RestCrmServer,
) -> None:
    def reject_contacts(item: dict[str, object]) -> dict[str, object] | None:
        return {"code": "invalid", "message": "no"} if item["op"] == "upsert_contact" else None

    rest_crm_server.item_rejection = reject_contacts  # type: ignore[method-assign]
    connector = connector_for(rest_crm_server)
    try:
        results = await connector.apply([contact_op(), case_op(), message_op()])
    finally:
        await connector.aclose()
        del rest_crm_server.item_rejection
    assert all(isinstance(r, OpRejected) for r in results)
    assert rest_crm_server.records.get("notes") is None


async def test_hubspot_2026_03_paths(hubspot_server: HubSpotServer) -> None:
    connector = connector_for(hubspot_server, hubspot_api_style="2026-03")
    try:
        await connector.apply([contact_op(), case_op()])
    finally:
        await connector.aclose()
    fresh = connector_for(hubspot_server, hubspot_api_style="2026-03")
    try:  # no book: the note is created, then linked to the contact it looked up
        await fresh.apply([message_op()])
    finally:
        await fresh.aclose()
    paths = {r.path for r in hubspot_server.requests}
    assert "/crm/objects/2026-03/contacts/batch/upsert" in paths
    assert "/crm/objects/2026-03/tickets/batch/create" in paths  # linked to its contact inline
    assert "/crm/associations/2026-03/communications/contacts/batch/associate/default" in paths
    assert not any("/v3/" in p or "/v4/" in p for p in paths)
    ticket = hubspot_server.objects("tickets")[0]
    contact = hubspot_server.objects("contacts")[0]
    assert hubspot_server.associations_of("tickets", ticket["id"], "contacts") == [contact["id"]]


async def test_hubspot_links_by_the_books_ids_in_a_new_process(
    hubspot_server: HubSpotServer,
) -> None:
    first = connector_for(hubspot_server)
    book = RecordBook(first.instance)  # what crm_records holds once the batch commits
    try:
        await first.apply([contact_op(), case_op()], book)
    finally:
        await first.aclose()
    before = len(hubspot_server.requests)
    fresh = connector_for(hubspot_server)  # a new process: nothing in memory
    try:
        (result,) = await fresh.apply([message_op()], book)
    finally:
        await fresh.aclose()
    assert isinstance(result, CrmResult) and result.created
    later = [r.endpoint for r in hubspot_server.requests[before:]]
    assert not [e for e in later if e.endswith(("/batch/read", "/search"))]  # no lookup
    assert len(hubspot_server.records["associations"]) == 3


async def test_hubspot_looks_up_a_contact_it_did_not_write(hubspot_server: HubSpotServer) -> None:
    first = connector_for(hubspot_server)
    try:
        await first.apply([contact_op(), case_op()])
    finally:
        await first.aclose()
    before = len(hubspot_server.requests)
    fresh = connector_for(hubspot_server)  # no book: a caller without the worker's store
    try:
        await apply_one(fresh, message_op())
    finally:
        await fresh.aclose()
    reads = [r.path for r in hubspot_server.requests[before:] if r.path.endswith("/batch/read")]
    assert reads == ["/crm/v3/objects/contacts/batch/read"]  # by our unique property
    contact = hubspot_server.find("contacts", "wa_contact_key", CONTACT)
    note = hubspot_server.find("communications", "wa_note_key", WAMID)
    assert contact is not None and note is not None
    assert hubspot_server.associations_of("communications", note["id"], "contacts") == [
        contact["id"]
    ]


def test_hubspot_property_values_are_strings() -> None:
    from decimal import Decimal

    assert property_value(True) == "true"
    assert property_value(Decimal("1.50")) == "1.50"
    assert property_value(5) == "5"
    assert property_value(("a", "b")) == "a;b"
    assert property_value(None) == ""
    assert property_value(T0) == str(int(T0.timestamp() * 1000))


async def test_operation_without_contact_key_is_invalid(rest_crm_server: RestCrmServer) -> None:
    connector = connector_for(rest_crm_server)
    orphan = CrmOperation(kind="upsert_contact", fields={}, event_id="ev-x")
    try:
        with pytest.raises(UnkeyedOperation, match="has no contact_key"):
            await apply_one(connector, orphan)
    finally:
        await connector.aclose()
    assert rest_crm_server.requests == []


async def test_server_catches_contract_violations(hubspot_server: HubSpotServer) -> None:
    # The server must notice a bad request, or the suite proves nothing.
    async with httpx.AsyncClient(base_url=hubspot_server.url) as client:
        bad = {"inputs": [{"id": CONTACT, "idProperty": "firstname", "properties": {"n": 5}}]}
        response = await client.post(
            "/crm/v3/objects/contacts/batch/upsert",
            json=bad,
            headers={"Authorization": f"Bearer {hubspot_server.token}"},
        )
    assert response.status_code == 400
    assert response.json()["category"] == "VALIDATION_ERROR"
    violations = hubspot_server.violations[0].violations
    assert any("is not of type 'string'" in v for v in violations)
    hubspot_server.reset()  # expected violation: keep the fixture's teardown check green


async def test_rest_server_checks_the_published_schema(rest_crm_server: RestCrmServer) -> None:
    async with httpx.AsyncClient(base_url=rest_crm_server.url) as client:
        response = await client.put(
            "/consents/k1",
            json={"contact_key": CONTACT, "fields": {"status": "maybe"}},
            headers={"Authorization": f"Bearer {rest_crm_server.token}"},
        )
    assert response.status_code == 400
    assert "maybe" in response.json()["error"]["message"]
    rest_crm_server.reset()


@pytest.mark.parametrize("module", ["connectors/http.py", "cli/crm.py"])
def test_vendor_knowledge_stays_in_the_vendor_packages(module: str) -> None:
    # The shared HTTP boundary and the CLI reach a CRM through its dialect and Vendor only.
    source = (Path(wa_bridge.__file__).parent / module).read_text().lower()
    assert not [name for name in ("hubspot", "salesforce", '__c"', "wa_contact") if name in source]


def test_build_connector_needs_a_base_url() -> None:
    from wa_bridge.connectors import build_connector
    from wa_bridge.settings import Settings

    with pytest.raises(ConfigError, match="WA_BRIDGE_CRM_BASE_URL"):
        build_connector(Settings(connector="hubspot"))


async def test_salesforce_200_with_failed_record_is_rejected(
    salesforce_server: SalesforceServer,
) -> None:
    # Salesforce answers 200 even when a record failed: a consent alone, for an unknown
    # contact, creates a Contact without LastName (the worker adds the contact first).
    connector = connector_for(salesforce_server)
    consent = op("set_consent", channel="whatsapp", purpose="marketing", status="opt_in")
    try:
        (result,) = await connector.apply([consent])
    finally:
        await connector.aclose()
    assert isinstance(result, OpRejected) and isinstance(result.error, CrmRejected)
    assert result.error.crm_error == (
        "REQUIRED_FIELD_MISSING: Required fields are missing: [LastName] [LastName]"
    )
    assert salesforce_server.collection("Contact") == {}


async def test_salesforce_links_by_external_id(salesforce_server: SalesforceServer) -> None:
    connector = connector_for(salesforce_server, salesforce_api_version="v62.0")
    try:
        await connector.apply([contact_op(), case_op(), message_op()])
    finally:
        await connector.aclose()
    task = next(iter(salesforce_server.collection("Task").values()))
    assert task["Who"]["WA_Contact_Key__c"] == CONTACT
    assert task["What"]["WA_Case_Key__c"] == "case-0001"
    assert all(r.path.startswith("/services/data/v62.0/") for r in salesforce_server.requests)


# --- create-only defaults never overwrite CRM values on update ------------------------
async def test_hubspot_update_keeps_a_subject_set_in_hubspot(hubspot_server: HubSpotServer) -> None:
    # An agent named and moved the ticket in HubSpot; this process never wrote it.
    hubspot_server.collection("tickets")["wa_case_key=case-0001"] = {
        "id": "77",
        "properties": {
            "wa_case_key": "case-0001",
            "subject": "Refund for order 42",
            "hs_pipeline": "support-2",
            "hs_pipeline_stage": "9",
        },
    }
    connector = connector_for(hubspot_server)
    no_subject = op("upsert_case", index=1, channel="whatsapp", opened_at=T0)
    try:
        results = await connector.apply([contact_op(), no_subject])
    finally:
        await connector.aclose()
    ticket = hubspot_server.find("tickets", "wa_case_key", "case-0001")
    assert ticket is not None and results[1].crm_id == "77" and not results[1].created
    assert ticket["properties"]["subject"] == "Refund for order 42"
    assert ticket["properties"]["hs_pipeline"] == "support-2"
    assert ticket["properties"]["wa_channel"] == "whatsapp"
    upserts = [r for r in hubspot_server.requests if r.path.endswith("tickets/batch/upsert")]
    assert "subject" not in upserts[0].body["inputs"][0]["properties"]


async def test_hubspot_new_ticket_still_gets_the_default_subject(
    hubspot_server: HubSpotServer,
) -> None:
    connector = connector_for(hubspot_server)
    try:
        first = await connector.apply([contact_op(), case_op()])
        again = await apply_one(connector, case_op(status="pending"))  # known id: no read
    finally:
        await connector.aclose()
    ticket = hubspot_server.find("tickets", "wa_case_key", "case-0001")
    assert ticket is not None and first[1].created and not again.created
    assert ticket["properties"]["subject"] == "WhatsApp conversation"
    assert ticket["properties"]["hs_pipeline_stage"] == "2"
    reads = [r for r in hubspot_server.requests if r.path.endswith("/batch/read")]
    assert len(reads) == 1  # one read for the unknown ticket, none once its id is cached


async def test_hubspot_one_read_per_batch_of_unknown_tickets(
    hubspot_server: HubSpotServer,
) -> None:
    cases = [
        CrmOperation(
            kind="upsert_case",
            fields={"status": "open"},
            event_id=f"ev-{i}",
            contact_key=CONTACT,
            case_key=f"case-{i:04d}",
        )
        for i in range(150)
    ]
    connector = connector_for(hubspot_server)
    try:
        results = await connector.apply([contact_op(), *cases])
    finally:
        await connector.aclose()
    assert all(r.created for r in results)
    reads = [r for r in hubspot_server.requests if r.path.endswith("tickets/batch/read")]
    assert [len(r.body["inputs"]) for r in reads] == [100, 50]


async def test_hubspot_status_first_creates_a_note_with_its_time(
    hubspot_server: HubSpotServer,
) -> None:
    # notes require hs_timestamp to be created; a status that beats its message must send it.
    connector = connector_for(hubspot_server, hubspot_note_object="notes")
    first, later = T0.replace(minute=31), T0.replace(hour=11)
    delivered = op(
        "add_note", event="ev-2", message_id=WAMID, status="delivered", occurred_at=first
    )
    read = op("add_note", event="ev-3", message_id=WAMID, status="read", occurred_at=later)
    try:
        created = await connector.apply([contact_op(), delivered])
        assert created[1].created
        note = hubspot_server.find("notes", "wa_note_key", WAMID)
        assert note is not None and note["properties"]["hs_timestamp"] == property_value(first)
        await connector.apply([message_op()])  # the message arrives: its own time wins
        await apply_one(connector, read)  # a later status does not move hs_timestamp
    finally:
        await connector.aclose()
    note = hubspot_server.find("notes", "wa_note_key", WAMID)
    assert note is not None
    assert note["properties"]["hs_timestamp"] == property_value(T0)
    assert note["properties"]["wa_status_at"] == property_value(later)
    assert note["properties"]["hs_note_body"] == "hello there"


async def test_salesforce_update_keeps_the_last_name(salesforce_server: SalesforceServer) -> None:
    # The contact's real last name was set in Salesforce; this process never wrote it.
    odd_key = "c-o'brien\\1"  # a key SOQL must escape
    for key, last in ((CONTACT, "Okafor"), (odd_key, "O'Brien")):
        salesforce_server.collection("Contact")[key] = {
            "Id": f"003{len(last):015d}",
            "WA_Contact_Key__c": key,
            "LastName": last,
        }
    phone_only = op("upsert_contact", phone_e164="+15550100001")
    odd = CrmOperation(
        kind="upsert_contact", fields={"email": "x@example.com"}, event_id="e", contact_key=odd_key
    )
    connector = connector_for(salesforce_server)
    try:
        results = await connector.apply([phone_only, odd])
    finally:
        await connector.aclose()
    contacts = salesforce_server.collection("Contact")
    assert contacts[CONTACT]["LastName"] == "Okafor"
    assert contacts[CONTACT]["MobilePhone"] == "+15550100001"
    assert contacts[odd_key]["LastName"] == "O'Brien"
    assert not any(r.created for r in results)
    upsert = next(r for r in salesforce_server.requests if r.method == "PATCH")
    assert all("LastName" not in record for record in upsert.body["records"])
    queries = [r.path.rsplit("/", 1)[1] for r in salesforce_server.requests if r.method == "GET"]
    assert queries == ["query", "search"]  # by external id and e-mail, by phone: once each


async def test_salesforce_new_contact_still_gets_the_default_last_name(
    salesforce_server: SalesforceServer,
) -> None:
    nameless = [
        CrmOperation(
            kind="upsert_contact", fields={"tags": ("a",)}, event_id=f"e{i}", contact_key=f"c-{i}"
        )
        for i in range(250)
    ]
    connector = connector_for(salesforce_server)
    try:
        created = await connector.apply(nameless)
        again = await apply_one(connector, nameless[0])  # known id: no query
    finally:
        await connector.aclose()
    assert all(r.created for r in created) and not again.created
    stored = salesforce_server.collection("Contact")
    assert len(stored) == 250
    assert {c["LastName"] for c in stored.values()} == {"WhatsApp contact"}
    queries = [r for r in salesforce_server.requests if r.method == "GET"]
    assert [r.query["q"].count("'") // 2 for r in queries] == [250]  # one for the batch


async def test_salesforce_default_last_name_only_when_the_mapping_gives_none(
    salesforce_server: SalesforceServer,
) -> None:
    connector = connector_for(salesforce_server)
    no_name = op("upsert_contact", phone_e164="+15550100001")
    try:
        created = await apply_one(connector, no_name)
    finally:
        await connector.aclose()
    assert created.created
    assert salesforce_server.collection("Contact")[CONTACT]["LastName"] == "WhatsApp contact"


async def test_salesforce_server_refuses_a_badly_quoted_lookup(
    salesforce_server: SalesforceServer,
) -> None:
    async with httpx.AsyncClient(base_url=salesforce_server.url) as client:
        response = await client.get(
            "/services/data/v61.0/query",
            params={
                "q": "SELECT Id, WA_Contact_Key__c FROM Contact WHERE WA_Contact_Key__c IN ('a'b')"
            },
            headers={"Authorization": f"Bearer {salesforce_server.token}"},
        )
    assert response.status_code == 400
    assert "unsupported SOQL" in salesforce_server.violations[0].violations[0]
    salesforce_server.reset()


def test_connectors_import_no_other_package_private_module() -> None:
    package = Path(wa_bridge.__file__).parent
    problems = []
    for path in (package / "connectors").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                parts = node.module.split(".")
                if parts[:2] != ["wa_bridge", "connectors"] and any(
                    p.startswith("_") and p != "__future__" for p in parts
                ):
                    problems.append(f"{path.name} imports {node.module}")
    assert problems == []


async def test_hubspot_search_splits_only_past_its_limits(hubspot_server: HubSpotServer) -> None:
    # 120 unknown contacts with US numbers: 120 keys (2 IN filters of <= 100), 360 phone
    # digit strings (international, national, 00-dialled) for each of the two calculated
    # phone properties (4 filters each): 10 filter groups, 5 per search (HubSpot's limit)
    # -> 2 searches, not 120.
    hubspot_server.set_limits(search_per_second=10)
    people = [
        CrmOperation(
            kind="upsert_contact",
            fields={"phone_e164": f"+1513555{i:04d}"},
            event_id=f"ev-{i}",
            contact_key=f"c-{i:04d}",
        )
        for i in range(120)
    ]
    connector = connector_for(hubspot_server)
    try:
        results = await connector.apply(people)
    finally:
        await connector.aclose()
    assert all(isinstance(r, CrmResult) and r.created for r in results)
    searches = [r.body for r in hubspot_server.requests if r.path.endswith("/search")]
    assert [len(s["filterGroups"]) for s in searches] == [5, 5]
    for search in searches:
        filters = [f for g in search["filterGroups"] for f in g["filters"]]
        assert len(filters) <= 25 and all(len(f["values"]) <= 100 for f in filters)
