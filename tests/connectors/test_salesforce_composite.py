"""Salesforce: a batch's upserts of several sObjects go in one ``POST /composite`` (issue 10).

The Composite resource counts as one API call for up to 25 subrequests (at most 5 sObject
Collections); the connector sends its Contact, Case, Opportunity and Task upserts of one
batch in it, and reads each subrequest's answer as it reads that collection's own.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from connectors.conftest import connector_for
from connectors.servers import SalesforceServer
from connectors.test_contract_suite import CONTACT, case_op, contact_op, message_op
from wa_bridge.connectors import CrmResult, OpRejected
from wa_bridge.errors import CrmRejected, CrmUnavailable
from wa_bridge.operations import CrmOperation

API = "/services/data/v61.0"
UPSERT = API + "/composite/sobjects/{}/{}"


def writes(server: SalesforceServer) -> list[Any]:
    return [r for r in server.requests if r.method != "GET"]


async def apply(
    server: SalesforceServer, ops: list[CrmOperation], *, timeout_s: float | None = None
) -> list[Any]:
    connector = (
        connector_for(server) if timeout_s is None else connector_for(server, timeout_s=timeout_s)
    )
    try:
        return list(await connector.apply(ops))
    finally:
        await connector.aclose()


async def test_a_batch_of_new_records_is_one_composite_call(
    salesforce_server: SalesforceServer,
) -> None:
    results = await apply(salesforce_server, [contact_op(), case_op(), message_op()])
    assert all(isinstance(r, CrmResult) and r.created for r in results), results
    [call] = writes(salesforce_server)
    assert call.endpoint == "POST composite/subrequests"
    assert [(p.method, p.path) for p in call.parts] == [
        ("PATCH", UPSERT.format("Contact", "WA_Contact_Key__c")),
        ("PATCH", UPSERT.format("Case", "WA_Case_Key__c")),
        ("PATCH", UPSERT.format("Task", "WA_Note_Key__c")),
    ]
    task = next(iter(salesforce_server.collection("Task").values()))
    case = next(iter(salesforce_server.collection("Case").values()))
    contact = next(iter(salesforce_server.collection("Contact").values()))
    assert task["WhoId"] == contact["Id"] and task["WhatId"] == case["Id"]
    assert case["ContactId"] == contact["Id"]
    assert [r.crm_id for r in results] == [contact["Id"], case["Id"], task["Id"]]
    salesforce_server.assert_contract_kept()


async def test_one_sobject_alone_is_its_own_collection_call(
    salesforce_server: SalesforceServer,
) -> None:
    await apply(salesforce_server, [contact_op(), case_op()])
    before = len(salesforce_server.requests)
    await apply(salesforce_server, [message_op()])
    [call] = [r for r in salesforce_server.requests[before:] if r.method != "GET"]
    assert call.endpoint == "PATCH composite/Task"


async def test_a_task_of_a_refused_new_case_is_refused_with_it(
    salesforce_server: SalesforceServer,
) -> None:
    too_long = case_op(subject="x" * 300)
    contact, case, task = await apply(salesforce_server, [contact_op(), too_long, message_op()])
    assert isinstance(contact, CrmResult)
    assert isinstance(case, OpRejected) and isinstance(case.error, CrmRejected)
    assert case.error.crm_error is not None and "STRING_TOO_LONG" in case.error.crm_error
    assert isinstance(task, OpRejected)
    assert "the Case record it needs was refused" in str(task.error)
    assert task.error.crm_error == case.error.crm_error
    assert salesforce_server.collection("Case") == {}
    assert salesforce_server.collection("Task") == {}
    assert len(writes(salesforce_server)) == 1, "a refused link costs no second call"


async def test_a_task_of_an_existing_case_is_written_when_the_case_update_is_refused(
    salesforce_server: SalesforceServer,
) -> None:
    await apply(salesforce_server, [contact_op(), case_op()])
    _, case, task = await apply(
        salesforce_server, [contact_op(), case_op(subject="x" * 300), message_op()]
    )
    assert isinstance(case, OpRejected)
    assert isinstance(task, CrmResult) and task.created  # the Case exists: the Task links
    [stored] = salesforce_server.collection("Task").values()
    [existing] = salesforce_server.collection("Case").values()
    assert stored["WhatId"] == existing["Id"]


async def test_a_subrequest_refused_whole_fails_the_call_like_its_own_request(
    salesforce_server: SalesforceServer,
) -> None:
    connector = connector_for(salesforce_server)
    try:
        await connector.apply([contact_op()])
        salesforce_server.strict_fields = True  # no WA_* field exists: setup was forgotten
        with pytest.raises(CrmRejected) as caught:
            await connector.apply([contact_op(), case_op(), message_op()])
    finally:
        await connector.aclose()
    assert "upsert Case got HTTP 400 inside upsert Case+Task" in str(caught.value)
    assert "wa-bridge crm setup" in str(caught.value)
    assert caught.value.crm_error and "INVALID_FIELD" in caught.value.crm_error


async def test_a_deleted_contact_is_made_again_and_its_case_linked_to_it(
    salesforce_server: SalesforceServer,
) -> None:
    connector = connector_for(salesforce_server)
    try:
        await connector.apply([contact_op(), case_op()])
        [gone] = salesforce_server.collection("Contact").values()
        salesforce_server.delete("Contact", gone["Id"])
        results = await connector.apply([contact_op(country="US"), case_op(status="pending")])
    finally:
        await connector.aclose()
    assert all(isinstance(r, CrmResult) for r in results), results
    [contact] = salesforce_server.objects("Contact")
    [case] = salesforce_server.objects("Case")
    assert contact["Id"] != gone["Id"] and contact["WA_Contact_Key__c"] == CONTACT
    assert case["ContactId"] == contact["Id"], "the case still points at the deleted contact"


async def test_more_than_five_collections_go_in_more_calls(
    salesforce_server: SalesforceServer,
) -> None:
    people = [
        CrmOperation(
            kind="upsert_contact", fields={"name": f"n{i}"}, event_id=f"ev-{i}", contact_key=f"c{i}"
        )
        for i in range(1300)  # 7 Contact collections of at most 200
    ]
    # 1,300 records: the stand-in checks each against the contract, which takes longer than
    # the fast timeout of the other tests on a loaded box
    results = await apply(salesforce_server, people, timeout_s=30.0)
    assert all(isinstance(r, CrmResult) for r in results)
    calls = [r for r in writes(salesforce_server) if r.endpoint == "POST composite/subrequests"]
    assert [len(c.parts) for c in calls] == [5, 2]
    assert len(salesforce_server.collection("Contact")) == 1300
    salesforce_server.assert_contract_kept()


# --- the stand-in's contract ----------------------------------------------------------
def subrequest(sobject: str, key: str, ref: str) -> dict[str, Any]:
    field = f"WA_{sobject}_Key__c" if sobject != "Task" else "WA_Note_Key__c"
    record = {"attributes": {"type": sobject}, field: key, "LastName": "x"}
    return {
        "method": "PATCH",
        "url": UPSERT.format(sobject, field),
        "referenceId": ref,
        "body": {"allOrNone": False, "records": [record]},
    }


async def post(server: SalesforceServer, body: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {server.token}"}
    async with httpx.AsyncClient(base_url=server.url, headers=headers) as client:
        return await client.post(f"{API}/composite", json=body)


async def test_stand_in_answers_each_subrequest_and_counts_one_call(
    salesforce_server: SalesforceServer,
) -> None:
    body = {"allOrNone": False, "compositeRequest": [subrequest("Contact", "k1", "first")]}
    response = await post(salesforce_server, body)
    assert response.status_code == 200
    [answer] = response.json()["compositeResponse"]
    assert answer["httpStatusCode"] == 200 and answer["referenceId"] == "first"
    assert answer["body"][0]["success"] is True and answer["body"][0]["created"] is True
    assert salesforce_server.total() == 1 and salesforce_server.api_usage == 1
    assert "Sforce-Limit-Info" in response.headers


@pytest.mark.parametrize(
    ("change", "violation"),
    [
        (lambda b: b["compositeRequest"].extend([subrequest("Contact", "k", "r")] * 5), "at most"),
        (lambda b: b["compositeRequest"].append(subrequest("Contact", "k2", "a")), "used twice"),
        (lambda b: b.update(allOrNone=True), "allOrNone: true"),
        (lambda b: b["compositeRequest"][0].update(referenceId="1a"), "does not match"),
        (lambda b: b["compositeRequest"][0].update(url="/limits"), "does not match"),
        (lambda b: b["compositeRequest"][0].update(url=API + "/limits"), "not a Composite"),
        (lambda b: b["compositeRequest"][0]["body"].pop("records"), "'records' is a required"),
    ],
)
async def test_stand_in_flags_a_broken_composite_call(
    salesforce_server: SalesforceServer, change: Any, violation: str
) -> None:
    body = {"compositeRequest": [subrequest("Contact", "k1", "a")]}
    change(body)
    response = await post(salesforce_server, body)
    assert response.status_code == 400
    [request] = salesforce_server.violations
    assert any(violation in v for v in request.violations), request.violations
    assert salesforce_server.collection("Contact") == {}
    salesforce_server.reset()


async def test_a_fault_on_a_subrequest_path_plays_on_the_composite_call(
    salesforce_server: SalesforceServer,
) -> None:
    salesforce_server.script(status=503, match="composite/sobjects/Case")
    with pytest.raises(CrmUnavailable):
        await apply(salesforce_server, [contact_op(), case_op()])
    assert salesforce_server.pending_faults == 0
    results = await apply(salesforce_server, [contact_op(), case_op()])
    assert all(isinstance(r, CrmResult) for r in results)
    assert len(salesforce_server.collection("Contact")) == 1
    assert len(salesforce_server.collection("Case")) == 1


async def test_a_subrequest_that_fails_inside_a_composite_call_is_tried_again_whole(
    salesforce_server: SalesforceServer,
) -> None:
    # The Contact subrequest is written, the Case one answers 500 inside the call's 200:
    # the batch fails as a 500 would, and the retry writes every record once.
    salesforce_server.script(status=500, match="composite/sobjects/Case", part=True)
    connector = connector_for(salesforce_server)
    try:
        with pytest.raises(CrmUnavailable, match="upsert Case got HTTP 500 inside"):
            await connector.apply([contact_op(), case_op(), message_op()])
        assert salesforce_server.pending_faults == 0
        assert len(salesforce_server.collection("Contact")) == 1  # written before the 500
        assert salesforce_server.collection("Case") == {}
        results = await connector.apply([contact_op(), case_op(), message_op()])
    finally:
        await connector.aclose()
    assert all(isinstance(r, CrmResult) for r in results), results
    for sobject in ("Contact", "Case", "Task"):
        assert len(salesforce_server.collection(sobject)) == 1, sobject
    [call] = [r for r in salesforce_server.requests if r.method == "POST"][:1]
    assert call.status == 200  # the call itself succeeded; only its part failed
