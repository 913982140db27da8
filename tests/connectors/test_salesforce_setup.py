"""``wa-bridge crm setup`` for Salesforce: every custom field the connector writes, with its
type and length, created through the Tooling API and granted to the API user; an existing
org checked field by field; what an admin must do when the API user may not.

The stand-in runs as a new org (``strict_fields``): a field exists once created and is
invisible until a permission set assigned to the API user grants it, as in Salesforce.
"""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from connectors.servers import SalesforceServer
from wa_bridge.cli.main import app
from wa_bridge.connectors import SetupResult, build_connector, set_up_crm
from wa_bridge.connectors.salesforce.setup import PERMISSION_SET, CustomField, required_fields
from wa_bridge.errors import CrmRejected
from wa_bridge.events import CanonicalEvent
from wa_bridge.mapping import load_mapping
from wa_bridge.mapping.spec import load_spec
from wa_bridge.operations import CrmOperation
from wa_bridge.resources import resolve_mappings_path
from wa_bridge.settings import Settings

MAPPING = "mappings/salesforce.yaml"
T0 = datetime(2026, 6, 10, 14, 4, tzinfo=UTC)


@pytest.fixture
def org(salesforce_server: SalesforceServer) -> SalesforceServer:
    """A new org: no WA_* field exists yet."""
    salesforce_server.strict_fields = True
    return salesforce_server


def _settings(server: SalesforceServer, **changes: Any) -> Settings:
    app = server.oauth
    values: dict[str, Any] = {
        "connector": "salesforce",
        "crm_auth": "client_credentials",
        "crm_login_url": server.url,
        "crm_client_id": app.client_id,
        "crm_client_secret": app.client_secret,
        "mappings_path": MAPPING,
        **changes,
    }
    return Settings(**values)


def _fields() -> dict[str, CustomField]:
    specs = required_fields(load_spec(resolve_mappings_path(MAPPING)))
    return {f.full_name: f for fields in specs.values() for f in fields}


def _lines(result: SetupResult) -> dict[str, str]:
    """``Contact.WA_Bsuid__c`` → ``created (Text(255))``."""
    out = {}
    for line in result.lines:
        name, sep, rest = line.partition(": ")
        if sep and "." in name and " " not in name:
            out[name] = rest
    return out


# --- what the mapping makes the connector write (pure) -----------------------------------
def test_every_field_the_connector_writes_with_its_type_and_length() -> None:
    fields = _fields()
    kinds = {name: f.kind() for name, f in fields.items()}
    for key in ("Contact.WA_Contact_Key__c", "Case.WA_Case_Key__c", "Task.WA_Note_Key__c"):
        assert kinds[key] == "Text(255), External ID, Unique"
    # text longer than 255 is a Long Text Area of the mapping's length
    assert kinds["Case.WA_Ctwa_Clid__c"] == "LongTextArea(512)"
    assert kinds["Case.WA_Source_Url__c"] == "LongTextArea(2048)"
    assert kinds["Task.WA_Status_Error__c"] == "LongTextArea(512)"
    assert kinds["Contact.WA_Whatsapp_Marketing_Consent_Evidence__c"] == "LongTextArea(512)"
    assert kinds["Case.WA_Tags__c"] == "LongTextArea(32768)"  # a list, joined
    # short text, times, numbers
    assert kinds["Contact.WA_Bsuid__c"] == "Text(255)" and fields["Contact.WA_Bsuid__c"].need == 160
    assert kinds["Case.WA_Opened_At__c"] == "DateTime"
    assert kinds["Task.WA_Status_At__c"] == "DateTime"  # a status's own time
    assert kinds["Contact.WA_Whatsapp_Marketing_Consent_At__c"] == "DateTime"
    assert kinds["Case.WA_Outcome_Value__c"] == "Number(18, 4)"
    assert kinds["Case.WA_Csat__c"] == "Number(18, 0)"  # its own field, not the outcome's
    assert "Case.WA_Outcome_Csat__c" not in kinds
    assert kinds["Case.WA_Frt_S__c"] == "Number(18, 0)" and kinds["Case.WA_Fcr__c"] == "Checkbox"
    assert kinds["Contact.WA_First_Touch_Ctwa_Clid__c"] == "LongTextArea(512)"
    # Salesforce's own fields are written, not created
    assert not {"Contact.MobilePhone", "Contact.LastName", "Task.Description"} & set(fields)
    assert all(len(f.name.removesuffix("__c")) <= 40 for f in fields.values())
    metadata = fields["Case.WA_Source_Url__c"].metadata()
    assert metadata["type"] == "LongTextArea" and metadata["visibleLines"] == 3


# --- a new org ----------------------------------------------------------------------------
async def test_setup_creates_and_grants_every_field_then_the_connector_writes(
    org: SalesforceServer,
) -> None:
    settings = _settings(org)
    ops = _received_ops()
    before = build_connector(settings)
    try:
        with pytest.raises(CrmRejected) as refused:
            await before.apply(ops)  # what a forgotten setup looked like: INVALID_FIELD
    finally:
        await before.aclose()
    assert "INVALID_FIELD" in refused.value.crm_error
    assert "run `wa-bridge crm setup`" in str(refused.value)

    result = await set_up_crm(settings)
    assert result.ok, result.lines
    lines = _lines(result)
    assert set(lines) == set(_fields())
    assert all(status.startswith("created") for status in lines.values())
    assert lines["Case.WA_Ctwa_Clid__c"] == "created (LongTextArea(512))"
    assert f"permission set {PERMISSION_SET}: created" in result.lines
    assert f"permission set {PERMISSION_SET}: assigned to the API user" in result.lines

    after = build_connector(settings)
    try:
        results = await after.apply(ops)
    finally:
        await after.aclose()
    assert len(results) == len(ops)
    task = org.find("Task", "WA_Note_Key__c", "wamid.setup1")
    assert task is not None and task["WA_Message_Type__c"] == "text"

    again = await set_up_crm(settings)
    assert again.ok
    assert set(_lines(again).values()) == {"exists"}
    assert again.lines[-1] == f"0 created, {len(_fields())} exists, 0 problem"


async def test_a_dry_run_only_reads(org: SalesforceServer) -> None:
    result = await set_up_crm(_settings(org), dry_run=True)
    assert result.ok
    lines = _lines(result)
    assert lines["Contact.WA_Contact_Key__c"] == (
        "missing (would create Text(255), External ID, Unique)"
    )
    assert all(r.method == "GET" for r in org.requests if not r.auth_endpoint)
    assert org.org.custom_fields("Contact") == {}


async def test_an_existing_org_is_checked_field_by_field(org: SalesforceServer) -> None:
    org.add_field("Contact", "WA_Contact_Key__c", external_id=True, unique=True)
    org.add_field("Case", "WA_Opened_At__c", type="Text", length=40)  # not a DateTime
    org.add_field("Contact", "WA_Bsuid__c", length=64)  # shorter than a BSUID may be
    org.add_field("Task", "WA_Direction__c", readable=False, editable=False)  # hidden
    result = await set_up_crm(_settings(org))
    assert not result.ok
    lines = _lines(result)
    assert lines["Contact.WA_Contact_Key__c"] == "exists"
    assert lines["Case.WA_Opened_At__c"].startswith("problem (is string(40); wa-bridge writes")
    assert "values reach 160 characters" in lines["Contact.WA_Bsuid__c"]
    assert lines["Task.WA_Direction__c"] == "granted"
    assert lines["Case.WA_Ctwa_Clid__c"] == "created (LongTextArea(512))"


async def test_without_customize_application_it_says_what_an_admin_must_do(
    org: SalesforceServer,
) -> None:
    org.customize_application = False
    result = await set_up_crm(_settings(org))
    assert not result.ok
    lines = _lines(result)
    assert set(lines) == set(_fields())
    assert lines["Contact.WA_Contact_Key__c"] == (
        "problem (no permission to create fields: an admin creates it in Setup > Object "
        "Manager > Contact > Fields & Relationships as Text(255), External ID, Unique, then "
        f"must grant Read and Edit on it to the API user (permission set {PERMISSION_SET}))"
    )
    assert "as DateTime" in lines["Case.WA_Opened_At__c"]
    assert any("an admin must create or grant" in line for line in result.lines)
    assert org.org.custom_fields("Contact") == {}


async def test_without_permission_set_rights_the_grants_are_listed(
    org: SalesforceServer,
) -> None:
    org.manage_permission_sets = False
    result = await set_up_crm(_settings(org))
    assert not result.ok
    lines = _lines(result)
    assert lines["Contact.WA_Bsuid__c"] == (
        "problem (an admin must grant Read and Edit on it to the API user "
        f"(permission set {PERMISSION_SET}))"
    )
    assert "WA_Bsuid__c" in org.org.custom_fields("Contact")  # created all the same
    assert any("may not manage permission sets" in line for line in result.lines)


async def test_a_session_token_assigns_by_username(org: SalesforceServer) -> None:
    settings = Settings(
        connector="salesforce",
        crm_base_url=org.url,
        crm_token=org.token,  # type: ignore[arg-type]
        crm_username=org.api_user["Username"],
        mappings_path=MAPPING,
    )
    result = await set_up_crm(settings)
    assert result.ok, result.lines
    (assignment,) = org.objects("PermissionSetAssignment")
    assert assignment["AssigneeId"] == org.api_user_id


async def test_cli_setup_for_salesforce(
    org: SalesforceServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    app_ = org.oauth
    env = {
        "WA_BRIDGE_CONNECTOR": "salesforce",
        "WA_BRIDGE_CRM_AUTH": "client_credentials",
        "WA_BRIDGE_CRM_LOGIN_URL": org.url,
        "WA_BRIDGE_CRM_CLIENT_ID": app_.client_id,
        "WA_BRIDGE_CRM_CLIENT_SECRET": app_.client_secret,
        "WA_BRIDGE_MAPPINGS_PATH": MAPPING,
        "WA_BRIDGE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'state.db'}",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    runner = CliRunner()
    dry = await asyncio.to_thread(runner.invoke, app, ["crm", "setup", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "Contact.WA_Contact_Key__c: missing (would create Text(255)" in dry.stdout
    done = await asyncio.to_thread(runner.invoke, app, ["crm", "setup"])
    assert done.exit_code == 0, done.output
    assert "Case.WA_Source_Url__c: created (LongTextArea(2048))" in done.stdout


# The worker's update of the case that message opened (conversation.case.updated).
CASE_OPENED = {
    "id": "ev-setup-1#case",
    "type": "conversation.case.updated",
    "source": "wa-bridge:worker",
    "time": "2026-06-10T14:04:00Z",
    "data": {
        "case_key": "case-1",
        "status": "open",
        "opened_at": "2026-06-10T14:04:00Z",
        "opened_by": "message",
        "first_inbound_at": "2026-06-10T14:04:00Z",
    },
}


def _received_ops() -> list[CrmOperation]:
    mapping = load_mapping(resolve_mappings_path(MAPPING))
    event = CanonicalEvent.from_dict(
        {
            "id": "ev-setup-1",
            "type": "whatsapp.message.received",
            "source": "whatsapp:1",
            "time": T0.isoformat(),
            "data": {
                "contact": {"key": "c-1", "wa_id": "15550000001", "user_id": "US.1"},
                "message_id": "wamid.setup1",
                "message_type": "text",
                "text": {"body": "hello"},
                "timestamp": T0.isoformat(),
            },
        }
    )
    case = CanonicalEvent.from_dict(CASE_OPENED)
    return [
        dataclasses.replace(op, contact_key="c-1", case_key="case-1")
        for op in [*mapping.apply(event), *mapping.apply(case)]
    ]


# --- deals --------------------------------------------------------------------------------
def test_opportunity_fields_only_when_deals_are_on() -> None:
    spec = load_spec(resolve_mappings_path(MAPPING))
    assert "Opportunity" not in required_fields(spec)
    fields = {f.full_name: f for f in required_fields(spec, deals=True)["Opportunity"]}
    assert fields["Opportunity.WA_Deal_Key__c"].external_id
    # Name, StageName, Amount and CloseDate are standard fields: not ours to create
    assert set(fields) == {
        "Opportunity.WA_Deal_Key__c",
        "Opportunity.WA_Case_Key_Ref__c",
        "Opportunity.WA_Currency__c",
        "Opportunity.WA_Source__c",
        "Opportunity.WA_Occurred_At__c",
    }


async def test_setup_with_deals_then_the_sale_is_an_opportunity_of_the_contact(
    org: SalesforceServer,
) -> None:
    settings = _settings(org, crm_deals=True)
    result = await set_up_crm(settings)
    assert result.ok, result.lines
    assert _lines(result)["Opportunity.WA_Deal_Key__c"].startswith("created")
    mapping = load_mapping(resolve_mappings_path(MAPPING))
    converted = CanonicalEvent.from_dict(
        {
            "id": "inbox:c-setup-1",
            "type": "inbox.conversation.converted",
            "source": "inbox:1",
            "time": "2026-06-10T15:00:00Z",
            "data": {"contact": {"key": "c-1"}, "value": "1249.90", "currency": "MXN"},
        }
    )
    sale = [
        dataclasses.replace(op, contact_key="c-1", case_key="case-1")
        for op in mapping.apply(converted)
    ]
    ops = [*_received_ops(), *sale]
    connector = build_connector(settings)
    try:
        results = await connector.apply(ops)
        await connector.apply(ops)  # idempotent: one Opportunity
    finally:
        await connector.aclose()
    assert len(results) == len(ops)
    [opportunity] = org.objects("Opportunity")
    [contact] = org.objects("Contact")
    assert opportunity["ContactId"] == contact["Id"]
    assert (opportunity["StageName"], opportunity["Amount"]) == ("Closed Won", 1249.9)
    assert (opportunity["CloseDate"], opportunity["WA_Currency__c"]) == ("2026-06-10", "MXN")
    assert opportunity["WA_Case_Key_Ref__c"] == "case-1" and opportunity["IsWon"]
