"""``wa-bridge crm setup`` for HubSpot: which properties, creating them once, conflicts."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from connectors.conftest import connector_for
from connectors.servers import HubSpotServer
from wa_bridge.cli.main import app
from wa_bridge.connectors import set_up_crm
from wa_bridge.connectors.hubspot import HubSpotOptions
from wa_bridge.connectors.hubspot.setup import (
    GROUP_NAME,
    PropertySpec,
    ensure_properties,
    required_properties,
)
from wa_bridge.errors import CrmRejected
from wa_bridge.events import CanonicalEvent
from wa_bridge.mapping import CompiledMapping, load_mapping
from wa_bridge.resources import resolve_mappings_path
from wa_bridge.settings import Settings

IDS = {"contacts": "wa_contact_key", "tickets": "wa_case_key", "communications": "wa_note_key"}


@pytest.fixture(scope="module")
def mapping() -> CompiledMapping:
    return load_mapping(resolve_mappings_path("mappings/hubspot.yaml"))


@pytest.fixture
async def client(hubspot_server: HubSpotServer) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {hubspot_server.token}"}
    async with httpx.AsyncClient(base_url=hubspot_server.url, headers=headers) as http:
        yield http


def _names(specs: dict[str, list[PropertySpec]], object_type: str) -> set[str]:
    return {s.name for s in specs[object_type]}


def test_required_properties_has_the_unique_ids(mapping: CompiledMapping) -> None:
    specs = required_properties(mapping, HubSpotOptions())
    assert set(specs) == set(IDS)
    for object_type, id_property in IDS.items():
        unique = [s.name for s in specs[object_type] if s.unique]
        assert unique == [id_property]
        by_name = {s.name: s for s in specs[object_type]}
        assert by_name[id_property].create_body()["hasUniqueValue"] is True
    # what the connector writes: custom fields, consent, outcomes, note refs
    assert {"wa_bsuid", "wa_whatsapp_marketing_consent", "wa_outcome"} <= _names(specs, "contacts")
    assert {"wa_status", "wa_contact_key", "wa_agent", "wa_outcome_value"} <= _names(
        specs, "tickets"
    )
    assert {"wa_message_id", "wa_status_at", "wa_case_key_ref"} <= _names(specs, "communications")
    # HubSpot's own properties are not created
    every = {s.name for specs_ in specs.values() for s in specs_}
    assert all(name.startswith("wa_") for name in every)


def test_required_properties_follow_the_note_object(mapping: CompiledMapping) -> None:
    specs = required_properties(mapping, HubSpotOptions(note_object="notes"))
    assert "notes" in specs and "communications" not in specs
    assert "wa_note_key" in _names(specs, "notes")


async def test_ensure_properties_creates_missing_once(
    hubspot_server: HubSpotServer, client: httpx.AsyncClient, mapping: CompiledMapping
) -> None:
    options = HubSpotOptions()
    specs = required_properties(mapping, options)
    total = sum(len(v) for v in specs.values())
    first = await ensure_properties(client, options, specs)
    assert first.ok
    assert len(first.by_status("created")) == total
    for object_type, id_property in IDS.items():
        created = hubspot_server.property(object_type, id_property)
        assert created is not None and created["hasUniqueValue"] is True
        assert created["groupName"] == GROUP_NAME
    posts = [r for r in hubspot_server.requests if r.method == "POST"]
    assert len(posts) == total + len(IDS)  # every property, and one group per object type

    second = await ensure_properties(client, options, specs)
    assert second.ok
    assert second.by_status("created") == []
    assert len(second.by_status("exists")) == total


async def test_ensure_properties_2026_03_paths(
    hubspot_server: HubSpotServer, client: httpx.AsyncClient
) -> None:
    options = HubSpotOptions(api_style="2026-03")
    specs = {"contacts": [PropertySpec("wa_contact_key", "WhatsApp contact key", unique=True)]}
    report = await ensure_properties(client, options, specs)
    assert [o.status for o in report.outcomes] == ["created"]
    assert all(r.path.startswith("/crm/properties/2026-03/") for r in hubspot_server.requests)


async def test_existing_non_unique_id_property_is_a_problem(
    hubspot_server: HubSpotServer, client: httpx.AsyncClient, mapping: CompiledMapping
) -> None:
    hubspot_server.add_property("contacts", "wa_contact_key", unique=False)
    hubspot_server.add_property("tickets", "wa_bsuid", unique=True)
    specs = {
        "contacts": [PropertySpec("wa_contact_key", "x", unique=True)],
        "tickets": [PropertySpec("wa_bsuid", "x")],
    }
    report = await ensure_properties(client, HubSpotOptions(), specs)
    assert not report.ok
    problems = {o.name: o.detail for o in report.by_status("problem")}
    assert "without hasUniqueValue" in problems["wa_contact_key"]
    assert "archive wa_contact_key" in problems["wa_contact_key"]
    assert "with hasUniqueValue" in problems["wa_bsuid"]
    prop = hubspot_server.property("contacts", "wa_contact_key")
    assert prop is not None and prop["hasUniqueValue"] is False  # never modified
    assert all(r.method == "GET" for r in hubspot_server.requests)


async def test_dry_run_creates_nothing(
    hubspot_server: HubSpotServer, client: httpx.AsyncClient, mapping: CompiledMapping
) -> None:
    specs = required_properties(mapping)
    report = await ensure_properties(client, HubSpotOptions(), specs, dry_run=True)
    assert report.ok and report.by_status("created") == []
    assert len(report.by_status("missing")) == sum(len(v) for v in specs.values())
    assert all(r.method == "GET" for r in hubspot_server.requests)


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


def _received_ops(mapping: CompiledMapping) -> list[Any]:
    event = CanonicalEvent.from_dict(
        {
            "id": "ev-setup-1",
            "type": "whatsapp.message.received",
            "source": "whatsapp:1",
            "time": "2026-06-10T14:04:00Z",
            "data": {
                "contact": {"key": "c-1", "wa_id": "15550000001", "user_id": "US.1"},
                "message_id": "wamid.setup1",
                "message_type": "text",
                "text": {"body": "hello"},
                "timestamp": "2026-06-10T14:04:00Z",
            },
        }
    )
    case = CanonicalEvent.from_dict(CASE_OPENED)
    return [
        dataclasses.replace(op, contact_key="c-1", case_key="case-1")
        for op in [*mapping.apply(event), *mapping.apply(case)]
    ]


async def test_strict_portal_rejects_until_setup(
    hubspot_server: HubSpotServer, client: httpx.AsyncClient, mapping: CompiledMapping
) -> None:
    hubspot_server.strict_properties = True
    ops = _received_ops(mapping)
    assert {op.kind for op in ops} == {"upsert_contact", "upsert_case", "add_note"}
    connector = connector_for(hubspot_server)
    try:
        with pytest.raises(CrmRejected) as refused:
            await connector.apply(ops)
        assert "does not exist" in refused.value.crm_error
        assert "run `wa-bridge crm setup`" in str(refused.value)  # so the dead letter says it
        report = await ensure_properties(client, HubSpotOptions(), required_properties(mapping))
        assert report.ok
        results = await connector.apply(ops)
    finally:
        await connector.aclose()
    assert len(results) == len(ops) and all(r.created for r in results)
    note = hubspot_server.find("communications", "wa_note_key", "wamid.setup1")
    assert note is not None and note["properties"]["wa_message_type"] == "text"


def _cli_env(monkeypatch: pytest.MonkeyPatch, server: HubSpotServer, tmp_path: Path) -> None:
    monkeypatch.setenv("WA_BRIDGE_CONNECTOR", "hubspot")
    monkeypatch.setenv("WA_BRIDGE_CRM_BASE_URL", server.url)
    monkeypatch.setenv("WA_BRIDGE_CRM_TOKEN", server.token)
    monkeypatch.setenv("WA_BRIDGE_MAPPINGS_PATH", "mappings/hubspot.yaml")
    monkeypatch.setenv("WA_BRIDGE_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'state.db'}")


async def test_cli_setup_creates_then_finds(
    hubspot_server: HubSpotServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    _cli_env(monkeypatch, hubspot_server, tmp_path)
    caplog.set_level(logging.INFO)
    runner = CliRunner()
    dry = await asyncio.to_thread(runner.invoke, app, ["crm", "setup", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "contacts.wa_contact_key: missing (unique, would create)" in dry.stdout
    assert f"contacts: property group {GROUP_NAME} missing (would create)" in dry.stdout
    assert hubspot_server.property("contacts", "wa_contact_key") is None

    done = await asyncio.to_thread(runner.invoke, app, ["crm", "setup"])
    assert done.exit_code == 0, done.output
    assert "contacts.wa_contact_key: created (hasUniqueValue)" in done.stdout
    assert "tickets.wa_case_key: created (hasUniqueValue)" in done.stdout
    assert f"contacts: property group {GROUP_NAME} created" in done.stdout
    assert hubspot_server.property("communications", "wa_note_key") is not None
    assert [r for r in caplog.records if r.name.startswith("httpx")] == []  # no URL lines

    again = await asyncio.to_thread(runner.invoke, app, ["crm", "setup"])
    assert again.exit_code == 0, again.output
    assert "0 created" in again.stdout and "contacts.wa_contact_key: exists" in again.stdout


async def test_cli_setup_exits_1_on_a_problem(
    hubspot_server: HubSpotServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _cli_env(monkeypatch, hubspot_server, tmp_path)
    hubspot_server.add_property("contacts", "wa_contact_key", unique=False)
    result = await asyncio.to_thread(CliRunner().invoke, app, ["crm", "setup"])
    assert result.exit_code == 1, result.output
    assert "contacts.wa_contact_key: problem" in result.stdout


async def test_cli_setup_prints_the_crms_own_refusal(
    hubspot_server: HubSpotServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _cli_env(monkeypatch, hubspot_server, tmp_path)
    scopes = (
        "This app hasn't been granted all required scopes to make this call. Read more "
        "about required scopes here: https://developers.hubspot.com/scopes."
    )
    body = {"status": "error", "message": scopes, "category": "MISSING_SCOPES"}
    hubspot_server.script(status=403, body=body)
    result = await asyncio.to_thread(CliRunner().invoke, app, ["crm", "setup"])
    assert result.exit_code == 1
    assert "check the token and its scopes" in result.stderr
    assert f"the CRM said: MISSING_SCOPES: {scopes}" in result.stderr


async def test_setup_backs_off_on_429_through_the_gate(hubspot_server: HubSpotServer) -> None:
    hubspot_server.enforce_retry_after = True
    hubspot_server.script(status=429, retry_after_s=1, times=2)
    settings = Settings(
        connector="hubspot",
        crm_base_url=hubspot_server.url,
        crm_token=hubspot_server.token,  # type: ignore[arg-type]
        mappings_path="mappings/hubspot.yaml",
    )
    result = await set_up_crm(settings)
    assert result.ok, result.lines
    assert "contacts.wa_contact_key: created (hasUniqueValue)" in result.lines
    assert [r.status for r in hubspot_server.requests[:3]] == [429, 429, 200]
    gaps = [b.arrived - a.arrived for a, b in itertools.pairwise(hubspot_server.requests[:3])]
    assert min(gaps) >= 0.95
    assert hubspot_server.early == []


class _Refused(PropertySpec):
    def create_body(self) -> dict[str, object]:
        return {**super().create_body(), "fieldType": "booleancheckbox"}


async def test_a_refused_property_is_a_problem_with_hubspots_message(
    hubspot_server: HubSpotServer, client: httpx.AsyncClient
) -> None:
    specs = {"contacts": [_Refused("wa_bad", "x"), PropertySpec("wa_good", "y")]}
    report = await ensure_properties(client, HubSpotOptions(), specs)
    assert not report.ok
    (problem,) = report.by_status("problem")
    assert problem.name == "wa_bad"
    assert problem.detail.startswith("HubSpot refused: VALIDATION_ERROR: fieldType")
    assert [o.name for o in report.by_status("created")] == ["wa_good"]


def test_cli_setup_other_connectors(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    runner = CliRunner()
    monkeypatch.setenv("WA_BRIDGE_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'state.db'}")
    monkeypatch.setenv("WA_BRIDGE_CONNECTOR", "sql")
    sql = runner.invoke(app, ["crm", "setup"])
    assert sql.exit_code == 0 and "nothing to set up" in sql.stdout
    monkeypatch.setenv("WA_BRIDGE_CONNECTOR", "salesforce")
    sf = runner.invoke(app, ["crm", "setup", "--dry-run"])  # it asks the org: where is it?
    assert sf.exit_code == 1 and "WA_BRIDGE_CRM_BASE_URL" in sf.stderr


# The inbox's conversion of that case, with a value: the case's deal (upsert_deal).
CONVERTED = {
    "id": "inbox:c-setup-1",
    "type": "inbox.conversation.converted",
    "source": "inbox:1",
    "time": "2026-06-10T15:00:00Z",
    "data": {"contact": {"key": "c-1"}, "value": "1249.90", "currency": "MXN"},
}


def test_deal_properties_only_when_deals_are_on(mapping: CompiledMapping) -> None:
    assert "deals" not in required_properties(mapping, HubSpotOptions())
    specs = required_properties(mapping, HubSpotOptions(deals=True))
    assert [s.name for s in specs["deals"] if s.unique] == ["wa_deal_key"]
    # HubSpot's own dealname, dealstage, amount, deal_currency_code, closedate are not ours
    assert _names(specs, "deals") == {
        "wa_deal_key",
        "wa_contact_key",
        "wa_case_key_ref",
        "wa_source",
        "wa_occurred_at",
    }


async def test_setup_with_deals_then_the_sale_is_a_deal_of_the_contact_and_ticket(
    hubspot_server: HubSpotServer, client: httpx.AsyncClient, mapping: CompiledMapping
) -> None:
    hubspot_server.strict_properties = True
    sale = [
        dataclasses.replace(op, contact_key="c-1", case_key="case-1")
        for op in mapping.apply(CanonicalEvent.from_dict(CONVERTED))
    ]
    assert [op.kind for op in sale] == ["record_outcome", "upsert_case", "upsert_deal"]
    ops = [*_received_ops(mapping), *sale]
    options = HubSpotOptions(deals=True)
    report = await ensure_properties(client, options, required_properties(mapping, options))
    assert report.ok, report.lines
    connector = connector_for(hubspot_server)
    try:
        results = await connector.apply(ops)
        again = await connector.apply(ops)  # idempotent: one deal, nothing new
    finally:
        await connector.aclose()
    assert len(results) == len(ops) and not any(getattr(r, "created", False) for r in again[-1:])
    [deal] = hubspot_server.objects("deals")
    p = deal["properties"]
    assert (p["dealname"], p["dealstage"], p["pipeline"]) == (
        "WhatsApp sale",
        "closedwon",
        "default",
    )
    assert (p["amount"], p["deal_currency_code"], p["wa_case_key_ref"]) == (
        "1249.90",
        "MXN",
        "case-1",
    )
    [contact] = hubspot_server.objects("contacts")
    [ticket] = hubspot_server.objects("tickets")
    assert hubspot_server.associations_of("deals", deal["id"], "contacts") == [contact["id"]]
    assert hubspot_server.associations_of("deals", deal["id"], "tickets") == [ticket["id"]]
