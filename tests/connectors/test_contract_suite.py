"""ONE connector contract suite, run against every connector and its contract server.

Each case names a behaviour every CRM connector must have; ``Crm`` adapts one vendor's
stored state to the questions the suite asks (how many contacts, what a note holds).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from connectors.conftest import connector_for
from connectors.servers import ContractServer, HubSpotServer, RestCrmServer, SalesforceServer
from wa_bridge.connectors import CrmConnector, CrmResult
from wa_bridge.errors import CrmRateLimited, CrmRejected, CrmUnavailable
from wa_bridge.operations import CrmOperation, FieldValue

T0 = datetime(2026, 5, 4, 10, 30, tzinfo=UTC)
CONTACT = "c-0001"
CASE = "case-0001"
WAMID = "wamid.HBgLMTIzNDU2Nzg5MBUCABIYFjNFQjBCNkE3"


@dataclass
class Crm:
    """A vendor's state, seen through the questions the suite asks."""

    server: ContractServer
    connector: CrmConnector
    contacts: Callable[[], list[dict[str, Any]]]
    cases: Callable[[], list[dict[str, Any]]]
    note: Callable[[str], dict[str, Any] | None]  # → {"body", "status"}
    contact_fields: Callable[[str], dict[str, Any]]


def _rest(server: RestCrmServer, connector: CrmConnector) -> Crm:
    def records(name: str) -> list[dict[str, Any]]:
        return list(server.collection(name).values())

    def note(key: str) -> dict[str, Any] | None:
        record = server.collection("notes").get(key)
        return None if record is None else record["fields"]

    return Crm(
        server,
        connector,
        contacts=lambda: records("contacts"),
        cases=lambda: records("cases"),
        note=note,
        contact_fields=lambda key: server.collection("contacts")[key]["fields"],
    )


def _hubspot(server: HubSpotServer, connector: CrmConnector) -> Crm:
    def note(key: str) -> dict[str, Any] | None:
        record = server.find("communications", "wa_note_key", key)
        if record is None:
            return None
        props = record["properties"]
        return {"body": props.get("hs_communication_body"), "status": props.get("wa_status")}

    def contact_fields(key: str) -> dict[str, Any]:
        record = server.find("contacts", "wa_contact_key", key)
        assert record is not None
        return dict(record["properties"])

    return Crm(
        server,
        connector,
        contacts=lambda: list(server.collection("contacts").values()),
        cases=lambda: list(server.collection("tickets").values()),
        note=note,
        contact_fields=contact_fields,
    )


def _salesforce(server: SalesforceServer, connector: CrmConnector) -> Crm:
    def note(key: str) -> dict[str, Any] | None:
        record = server.collection("Task").get(key)
        if record is None:
            return None
        return {"body": record.get("Description"), "status": record.get("WA_Message_Status__c")}

    return Crm(
        server,
        connector,
        contacts=lambda: list(server.collection("Contact").values()),
        cases=lambda: list(server.collection("Case").values()),
        note=note,
        contact_fields=lambda key: dict(server.collection("Contact")[key]),
    )


@pytest.fixture(params=["rest", "hubspot", "salesforce"])
async def crm(request: pytest.FixtureRequest) -> AsyncIterator[Crm]:
    server: ContractServer = request.getfixturevalue(
        {"rest": "rest_crm_server", "hubspot": "hubspot_server"}.get(
            request.param, "salesforce_server"
        )
    )
    connector = connector_for(server)
    try:
        if isinstance(server, RestCrmServer):
            yield _rest(server, connector)
        elif isinstance(server, HubSpotServer):
            yield _hubspot(server, connector)
        else:
            assert isinstance(server, SalesforceServer)
            yield _salesforce(server, connector)
    finally:
        await connector.aclose()


async def apply_one(connector: CrmConnector, operation: CrmOperation) -> CrmResult:
    """One operation through ``apply``, every connector's one write path."""
    (result,) = await connector.apply([operation])
    return result


def op(kind: str, index: int = 0, event: str = "ev-1", **fields: FieldValue) -> CrmOperation:
    return CrmOperation(
        kind=kind,  # type: ignore[arg-type]
        fields=fields,
        event_id=event,
        index=index,
        contact_key=CONTACT,
        case_key=CASE,
    )


def contact_op(**fields: FieldValue) -> CrmOperation:
    base: dict[str, FieldValue] = {"phone_e164": "+15550100001", "name": "Ana"}
    return op("upsert_contact", **{**base, **fields})


def case_op(**fields: FieldValue) -> CrmOperation:
    base: dict[str, FieldValue] = {"status": "open", "channel": "whatsapp", "opened_at": T0}
    return op("upsert_case", index=1, **{**base, **fields})


def message_op() -> CrmOperation:
    return op(
        "add_note",
        index=2,
        message_id=WAMID,
        direction="inbound",
        message_type="text",
        body="hello there",
        occurred_at=T0,
    )


# --- behaviour ------------------------------------------------------------------------
async def test_upsert_contact_twice_keeps_one_record(crm: Crm) -> None:
    first = await apply_one(crm.connector, contact_op())
    second = await apply_one(crm.connector, contact_op(country="US"))
    assert first.created and not second.created
    assert first.crm_id == second.crm_id
    assert len(crm.contacts()) == 1
    assert "US" in crm.contact_fields(CONTACT).values()


async def test_upsert_case_twice_keeps_one_case(crm: Crm) -> None:
    await apply_one(crm.connector, contact_op())
    first = await apply_one(crm.connector, case_op(tags=("vip", "new")))
    second = await apply_one(crm.connector, case_op(status="resolved"))
    assert first.created and not second.created and first.crm_id == second.crm_id
    assert len(crm.cases()) == 1


async def test_status_update_keeps_the_note_body(crm: Crm) -> None:
    await crm.connector.apply([contact_op(), case_op()])
    await apply_one(crm.connector, message_op())
    status = op("add_note", event="ev-2", message_id=WAMID, status="read", occurred_at=T0)
    result = await apply_one(crm.connector, status)
    assert not result.created
    assert crm.note(WAMID) is not None
    assert crm.note(WAMID) == {**(crm.note(WAMID) or {}), "body": "hello there", "status": "read"}


async def test_outcome_and_consent_are_stored(crm: Crm) -> None:
    await crm.connector.apply([contact_op(), case_op()])
    outcome = op("record_outcome", event="ev-3", outcome="won", value=Decimal("12.50"), csat=5)
    consent = op(
        "set_consent",
        event="ev-4",
        channel="whatsapp",
        purpose="marketing",
        status="opt_out",
        occurred_at=T0,
    )
    assert (await apply_one(crm.connector, outcome)).crm_id
    assert (await apply_one(crm.connector, consent)).crm_id
    stored = repr(crm.server.records)
    assert "12.5" in stored and "opt_out" in stored


async def test_apply_mixed_batch_in_order(crm: Crm) -> None:
    status = op("add_note", index=3, message_id=WAMID, status="delivered", occurred_at=T0)
    ops = [contact_op(), case_op(), message_op(), status]
    results = await crm.connector.apply(ops)
    assert len(results) == len(ops)
    assert results[0].created and results[1].created
    assert results[2].crm_id == results[3].crm_id  # the status updated the same note
    assert crm.note(WAMID) is not None
    assert (crm.note(WAMID) or {})["status"] == "delivered"
    assert (crm.note(WAMID) or {})["body"] == "hello there"
    again = await crm.connector.apply(ops)  # a redelivery changes nothing
    assert [r.crm_id for r in again] == [r.crm_id for r in results]
    assert len(crm.contacts()) == 1 and len(crm.cases()) == 1


# --- faults ---------------------------------------------------------------------------
async def test_429_is_rate_limited_with_retry_after(crm: Crm) -> None:
    if crm.server.vendor == "salesforce":  # its rate limit is 403 REQUEST_LIMIT_EXCEEDED
        crm.server.script(status=403)
    else:
        crm.server.script(status=429, retry_after_s=7)
    with pytest.raises(CrmRateLimited) as caught:
        await apply_one(crm.connector, contact_op())
    assert caught.value.retry_after_s == (None if crm.server.vendor == "salesforce" else 7)
    assert crm.contacts() == []


async def test_500_is_unavailable(crm: Crm) -> None:
    crm.server.script(status=500)
    with pytest.raises(CrmUnavailable):
        await apply_one(crm.connector, contact_op())


async def test_503_with_retry_after_is_unavailable(crm: Crm) -> None:
    crm.server.script(status=503, retry_after_s=2)
    with pytest.raises(CrmUnavailable) as caught:
        await crm.connector.apply([contact_op(), case_op()])
    assert caught.value.retry_after_s == 2


async def test_timeout_is_unavailable_and_retry_writes_once(crm: Crm) -> None:
    crm.server.script(delay_s=1.5)  # well above FAST_TIMEOUT_S
    with pytest.raises(CrmUnavailable) as caught:
        await apply_one(crm.connector, contact_op())
    assert "Timeout" in str(caught.value)
    await apply_one(crm.connector, contact_op())
    assert len(crm.contacts()) == 1


async def test_400_is_rejected_with_the_crm_message(crm: Crm) -> None:
    body: Any = (
        {"error": {"code": "validation_error", "message": "phone is malformed", "field": "phone"}}
        if crm.server.vendor == "rest"
        else [{"message": "phone is malformed", "errorCode": "INVALID_FIELD", "fields": ["Phone"]}]
        if crm.server.vendor == "salesforce"
        else {
            "status": "error",
            "message": "Property values were not valid",
            "correlationId": "0f1e",
            "category": "VALIDATION_ERROR",
            "errors": [{"message": "phone is malformed", "in": "phone"}],
        }
    )
    crm.server.script(status=400, body=body)
    with pytest.raises(CrmRejected) as caught:
        await apply_one(crm.connector, contact_op())
    assert caught.value.status_code == 400
    assert "phone is malformed" in caught.value.crm_error


async def test_401_is_rejected(crm: Crm) -> None:
    bad = connector_for(crm.server, token="wrong-token")
    try:
        with pytest.raises(CrmRejected) as caught:
            await apply_one(bad, contact_op())
    finally:
        await bad.aclose()
    assert caught.value.status_code == 401
    assert caught.value.crm_error


async def test_connection_refused_is_unavailable() -> None:
    from wa_bridge.connectors import build_connector
    from wa_bridge.settings import Settings

    connector = build_connector(
        Settings(connector="rest", crm_base_url="http://127.0.0.1:9", crm_timeout_s=0.5)
    )
    try:
        with pytest.raises(CrmUnavailable):
            await apply_one(connector, contact_op())
    finally:
        await connector.aclose()
