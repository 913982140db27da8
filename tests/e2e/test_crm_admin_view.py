"""What a CRM admin sees, through the whole pipeline (signed webhook → receiver → Tansu →
worker → the vendor's strict stand-in), for what ``test_crm_adoption`` does not cover:

- customers the company typed in other forms of their number (``00`` prefix, the national
  format with its trunk prefix, a second phone field): adopted, not duplicated;
- an adopted customer's other numbers: the company's, left as they were;
- identity changes (Meta's 2026-08 shapes) on HubSpot and Salesforce, not just the SQL CRM:
  one contact, carrying the new identity, every note on it, no orphan.

Judged on the stand-in's records and associations, never on our own tables.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI

from connectors.conftest import (  # noqa: F401 - fixtures
    checked,
    hubspot_session,
    salesforce_session,
)
from connectors.servers import HubSpotServer, SalesforceServer
from connectors.servers.hubspot.errors import property_values_error
from e2e.test_crm_adoption import (
    Pipeline,
    Vendor,
    pipeline,
    settings_for,
    status_webhook,
    text_webhook,
    wamid,
)
from e2e.test_identity_merge import lookalikes, renamed
from e2e.test_identity_scenarios import SCENARIOS, Scenario, message_ids
from ops.test_admin_api import OPERATOR, VIEWER
from receiver._harness import running_receiver
from wa_bridge.bus.embedded import EmbeddedBroker
from wa_bridge.ops import identity as identity_ops
from wa_bridge.ops.backend import admin_api
from wa_bridge.settings import Settings
from wa_bridge.store import open_store
from wa_bridge.store.api import DeadLetterFilter
from wa_bridge.worker.assembly import DeadLetterReplayer, state_store
from wa_bridge.worker.runner import open_worker
from worker.sqlcrm import SAMPLES

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


@pytest.fixture(params=["hubspot", "salesforce"])
def crm(request: pytest.FixtureRequest) -> Iterator[Vendor]:
    """The vendor's stand-in, emptied; the test fails if the contract was broken."""
    if request.param == "hubspot":
        hubspot: HubSpotServer = request.getfixturevalue("hubspot_session")
        for server in checked(hubspot):
            yield Vendor(server, "hubspot.yaml", "firstname", ("POST objects/contacts/search",))
    else:
        salesforce: SalesforceServer = request.getfixturevalue("salesforce_session")
        for sf in checked(salesforce):
            yield Vendor(sf, "salesforce.yaml", "LastName", ("GET query", "GET search"))


def seed_contact(vendor: Vendor, first: str, last: str, **phones: str) -> str:
    """A contact the company holds; ``phones``: ``phone``, ``mobile``, ``other`` as typed
    (``other``: Salesforce's OtherPhone; HubSpot has no third phone field)."""
    if isinstance(vendor.server, HubSpotServer):
        props = {"firstname": first, "lastname": last}
        props |= {{"phone": "phone", "mobile": "mobilephone"}[k]: v for k, v in phones.items()}
        return vendor.server.seed("contacts", props)
    names = {"phone": "Phone", "mobile": "MobilePhone", "other": "OtherPhone"}
    fields = {"FirstName": first, "LastName": last}
    fields |= {names[k]: v for k, v in phones.items()}
    return vendor.server.seed("Contact", **fields)


def by_id(vendor: Vendor) -> dict[str, dict[str, Any]]:
    return {c["id"]: c for c in vendor.contacts()}


# (WhatsApp id, the number as the company typed it, which field)
TYPED_FORMS = {
    "00 prefix": ("5491123456789", {"phone": "0054 9 11 2345 6789"}),
    "AR national, trunk 0 and 15": ("5491160000001", {"phone": "011 15-6000-0001"}),
    "AR national, trunk 0, no 9": ("5491160000002", {"phone": "011 6000-0002"}),
    "UK national, trunk 0": ("447911123456", {"phone": "07911 123456"}),
    "MX without the 1, second field": ("5215512345678", {"mobile": "+52 55 1234 5678"}),
}


@asynccontextmanager
async def synced(
    vendor: Vendor, broker: EmbeddedBroker, topic: str, pg_url: str
) -> AsyncIterator[Pipeline]:
    """The receiver and a worker writing to ``vendor``, on ``topic``."""
    settings = settings_for(vendor, broker.bootstrap, topic, pg_url)
    async with (
        running_receiver(broker.bootstrap, topic) as receiver,
        pipeline(settings, receiver) as run,
    ):
        yield run


async def test_numbers_typed_in_other_forms_are_adopted(
    crm: Vendor,
    broker: EmbeddedBroker,
    topic_factory: Callable[[str], str],
    pg_url: str,
) -> None:
    vendor = crm
    ids = {
        label: seed_contact(vendor, "Cliente", label, **phones)
        for label, (_, phones) in TYPED_FORMS.items()
    }
    async with synced(vendor, broker, topic_factory("forms"), pg_url) as run:
        await run.post(
            *(text_webhook(wa_id, "🙂", n) for n, (wa_id, _) in enumerate(TYPED_FORMS.values()))
        )
    contacts = by_id(vendor)
    duplicated = [
        label
        for n, (label, (wa_id, _)) in enumerate(TYPED_FORMS.items())
        if vendor.contact_of_note(wamid(wa_id, n)) != ids[label]
    ]
    assert duplicated == []  # each one's note on the record the company holds
    assert len(contacts) == len(TYPED_FORMS)  # no contact created


async def test_an_agent_names_a_contact_the_next_message_keeps_the_name(
    crm: Vendor,
    broker: EmbeddedBroker,
    topic_factory: Callable[[str], str],
    pg_url: str,
) -> None:
    """The business writes first (a template: its statuses carry no profile name), so the
    contact is created without a name; an agent types the customer's name in the CRM; the
    customer's answer comes with a WhatsApp profile name. The agent's name stays."""
    vendor, person = crm, "573005550188"
    async with synced(vendor, broker, topic_factory("named"), pg_url) as run:
        await run.post(status_webhook(person, 1))
        [contact] = vendor.contacts()
        vendor.edit_name(contact["id"], "Mariana Restrepo")
        await run.post(text_webhook(person, "🌸 Mari", 2))
        [after] = vendor.contacts()
    assert after["id"] == contact["id"]
    assert vendor.contact_of_note(wamid(person, 2)) == contact["id"]
    assert after[vendor.name_field] == "Mariana Restrepo"


@pytest.mark.parametrize("scenario", list(SCENARIOS.values()), ids=list(SCENARIOS))
async def test_identity_scenario_in_the_vendor_crm(
    scenario: Scenario,
    crm: Vendor,
    broker: EmbeddedBroker,
    topic_factory: Callable[[str], str],
    pg_url: str,
) -> None:
    """``test_identity_scenarios``' people, judged in HubSpot and Salesforce: as many
    contacts as people, each message's note on its person's contact, none shared."""
    vendor = crm
    async with synced(vendor, broker, topic_factory("identity"), pg_url) as run:
        for step in scenario.steps:
            await run.post(*((SAMPLES / f"{name}.json").read_bytes() for name in step))
    assert len(vendor.contacts()) == scenario.contacts
    posted = {m for step in scenario.steps for name in step for m in message_ids(name)}
    landed = {m: vendor.contact_of_note(m) for m in posted}
    assert [m for m, c in landed.items() if c is None] == []  # no note lost or orphaned
    owners = []
    for person in scenario.people:
        ids = {landed[m] for name in person for m in message_ids(name)}
        assert len(ids) == 1, (person, ids)
        owners += ids
    assert len(set(owners)) == len(owners)  # no two people share a contact


def identity_of(vendor: Vendor, contact: dict[str, Any]) -> tuple[Any, Any, Any]:
    """(phone, reply address, BSUID) as the CRM shows them."""
    if isinstance(vendor.server, HubSpotServer):
        return contact.get("phone"), contact.get("wa_id"), contact.get("wa_bsuid")
    return contact.get("MobilePhone"), contact.get("WA_Wa_Id__c"), contact.get("WA_Bsuid__c")


@pytest.mark.parametrize(
    ("names", "identity"),
    [
        (  # Meta's 2026-08 shape: the notice names the new phone and the new BSUID
            ("identity_ar_change_1_before", "identity_ar_change_2_notice"),
            ("+5491160001002", "5491160001002", "AR.9100000000000000002"),
        ),
        (  # the new phone and BSUID first seen on the message after the notice
            (
                "identity_ar_change_1_before",
                "identity_ar_change_2_notice",
                "identity_ar_change_3_after",
            ),
            ("+5491160001002", "5491160001002", "AR.9100000000000000002"),
        ),
    ],
    ids=["notice", "notice then message"],
)
async def test_number_change_leaves_the_vendor_contact_on_the_new_identity(
    names: tuple[str, ...],
    identity: tuple[str, str, str],
    crm: Vendor,
    broker: EmbeddedBroker,
    topic_factory: Callable[[str], str],
    pg_url: str,
) -> None:
    vendor = crm
    async with synced(vendor, broker, topic_factory("change"), pg_url) as run:
        for name in names:
            await run.post((SAMPLES / f"{name}.json").read_bytes())
    [contact] = vendor.contacts()
    assert identity_of(vendor, contact) == identity


async def test_an_adopted_customer_keeps_the_other_number_the_company_holds(
    crm: Vendor,
    broker: EmbeddedBroker,
    topic_factory: Callable[[str], str],
    pg_url: str,
) -> None:
    """The customer's WhatsApp number is in one phone field; the field wa-bridge writes
    its phone to holds another number of theirs (an office line). Adopting the record
    must not replace the company's number with a copy of the one it holds already."""
    vendor = crm
    if isinstance(vendor.server, HubSpotServer):
        # WhatsApp number in mobilephone; phone (where wa-bridge writes) holds the office
        crm_id = seed_contact(
            vendor, "Luis", "Ortega", mobile="+52 1 55 1234 5678", phone="+52 55 5555 0000"
        )
        other = ("phone", "+52 55 5555 0000")
    else:
        # WhatsApp number in Phone; MobilePhone (where wa-bridge writes) holds another
        crm_id = seed_contact(
            vendor, "Luis", "Ortega", phone="+52 1 55 1234 5678", mobile="+52 55 5555 0000"
        )
        other = ("MobilePhone", "+52 55 5555 0000")
    async with synced(vendor, broker, topic_factory("other"), pg_url) as run:
        await run.post(text_webhook("5215512345678", "Luis O", 1))
    [contact] = vendor.contacts()
    assert contact["id"] == crm_id
    assert vendor.contact_of_note(wamid("5215512345678", 1)) == crm_id
    assert contact[other[0]] == other[1]


async def test_a_refusal_shows_the_crm_message_to_operators_and_no_personal_data_to_viewers(
    request: pytest.FixtureRequest,
    broker: EmbeddedBroker,
    topic_factory: Callable[[str], str],
    pg_url: str,
) -> None:
    """The portal's validation rule refuses the contact, quoting the values (HubSpot
    enforces admin rules on API writes since 2026-09, and its messages quote them). The
    dead letter keeps the CRM's own words; a viewer (console and admin API) reads them
    with the person's name and number masked, as the event is."""
    person, name = "5491123456789", "Paola Gutiérrez"
    rule = (
        f'Validation rule "AR phones need an area code" refused the contact {name} '
        f"(phone +{person}, whatsapp {person})"
    )
    refusal = property_values_error(
        [{"isValid": False, "message": rule, "error": "INVALID_VALUE", "name": "phone"}]
    )
    # ids that do not spell the number (text_webhook's do), so what leaks is the message's
    body = orjson.loads(text_webhook(person, name, 1))
    value = body["entry"][0]["changes"][0]["value"]
    value["contacts"][0]["user_id"] = value["messages"][0]["from_user_id"] = "AR.ZZ0000000001"
    value["messages"][0]["id"] = "wamid.REFUSEDBYARULE0001"
    hubspot: HubSpotServer = request.getfixturevalue("hubspot_session")
    for server in checked(hubspot):
        vendor = Vendor(server, "hubspot.yaml", "firstname", ())
        topic = topic_factory("refused")
        settings = settings_for(vendor, broker.bootstrap, topic, pg_url)
        server.script(status=400, body=refusal, match="contacts/batch/upsert")
        async with (
            running_receiver(broker.bootstrap, topic) as receiver,
            open_worker(settings) as worker,
        ):
            response = await receiver.post(orjson.dumps(body))
            assert response.status_code == 200
            await worker.run_until_idle()
            assert worker.stats.dead_lettered == 1
        assert server.objects("contacts") == []

    viewing = Settings(
        database_url=pg_url,
        admin_tokens=[f"operator:{OPERATOR}", f"viewer:{VIEWER}"],
        connector="hubspot",
        crm_base_url=hubspot.url,
        crm_token=hubspot.token,
        mappings_path=settings.mappings_path,
    )
    routers, closers = admin_api(viewing)
    app = FastAPI()
    for router in routers:
        app.include_router(router)
    personal = (name, "Gutiérrez", person, person[-10:], "2345", "6789")
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://console"
        ) as client:
            [letter] = (await client.get("/admin/dead-letters", headers=bearer(OPERATOR))).json()
            assert "AR phones need an area code" in letter["crm_error"]  # the CRM's words
            assert name in letter["crm_error"]  # operators see the data as stored

            listed = await client.get("/admin/dead-letters", headers=bearer(VIEWER))
            shown = await client.get(f"/admin/dead-letters/{letter['id']}", headers=bearer(VIEWER))
            assert "AR phones need an area code" in shown.json()["crm_error"]
            signed = await client.post("/admin/sign-in", data={"token": VIEWER})
            assert signed.status_code == 303
            page = await client.get(f"/admin/letters/{letter['id']}")
            assert "AR phones need an area code" in page.text
            seen = {
                "admin API list": listed.text,
                "admin API letter": shown.text,
                "console letter": page.text,
            }
            leaks = {
                where: [p for p in personal if p in text or p in text.replace("\\u00e9", "é")]
                for where, text in seen.items()
            }
            assert leaks == {where: [] for where in seen}
    finally:
        for close in closers:
            await close()


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def cases_of(vendor: Vendor, contact_id: str) -> list[str]:
    if isinstance(vendor.server, HubSpotServer):
        return sorted(vendor.server.associations_of("contacts", contact_id, "tickets"))
    return sorted(
        str(c["Id"]) for c in vendor.server.objects("Case") if c.get("ContactId") == contact_id
    )


def case_of_note(vendor: Vendor, message_id: str) -> str | None:
    if isinstance(vendor.server, HubSpotServer):
        note = vendor.server.find("communications", "wa_note_key", message_id)
        assert note is not None, message_id
        linked = vendor.server.associations_of("communications", note["id"], "tickets")
        assert len(linked) <= 1
        return linked[0] if linked else None
    task = vendor.server.find("Task", "WA_Note_Key__c", message_id)
    assert task is not None, message_id
    return str(task.get("WhatId") or "") or None


async def test_a_dead_letter_replayed_after_the_admin_fixed_the_cause(
    crm: Vendor,
    broker: EmbeddedBroker,
    topic_factory: Callable[[str], str],
    pg_url: str,
) -> None:
    """The CRM refuses a new customer's first message (a validation rule); the admin fixes
    the rule; the customer writes again (applied); ``dlq replay``; the worker restarts and
    Meta delivers the first webhook once more. One contact, one case, both notes on them."""
    vendor, person = crm, "5215560009001"
    path = "contacts/batch/upsert" if isinstance(vendor.server, HubSpotServer) else "composite"
    topic = topic_factory("replay")
    settings = settings_for(vendor, broker.bootstrap, topic, pg_url)
    first = text_webhook(person, "Ana", 1)
    async with running_receiver(broker.bootstrap, topic) as receiver:
        async with open_worker(settings) as worker:
            vendor.server.script(status=400, match=path, times=50)
            assert (await receiver.post(first)).status_code == 200
            await worker.run_until_idle()
            assert worker.stats.dead_lettered >= 1
            vendor.server.reset_faults()  # the admin fixed the rule
            assert (await receiver.post(text_webhook(person, "Ana", 2))).status_code == 200
            await worker.run_until_idle()
        async with (
            state_store(settings) as store,
            DeadLetterReplayer(settings, store) as replayer,
        ):
            results = await replayer.replay(flt=DeadLetterFilter(limit=100), actor="admin")
        assert results and {r.status for r in results} == {"replayed"}, results
        async with pipeline(settings, receiver) as run:  # a restart; Meta's redelivery
            await run.post(first)
    [contact] = vendor.contacts()
    notes = {m: vendor.contact_of_note(wamid(person, m)) for m in (1, 2)}
    assert notes == {1: contact["id"], 2: contact["id"]}
    [case] = cases_of(vendor, contact["id"])
    assert {case_of_note(vendor, wamid(person, m)) for m in (1, 2)} == {case}


def answer_status(wa_id: str, n: int, status: str) -> bytes:
    """The status of the business's message ``n`` to ``wa_id``, from the number the
    customer writes to (``text_webhook``'s)."""
    body = orjson.loads(status_webhook(wa_id, n, status))
    text = orjson.loads(text_webhook(wa_id, "x", 0))
    body["entry"][0]["id"] = text["entry"][0]["id"]
    metadata = text["entry"][0]["changes"][0]["value"]["metadata"]
    body["entry"][0]["changes"][0]["value"]["metadata"] = metadata
    return orjson.dumps(body)


def ticket_state(vendor: Vendor) -> list[tuple[str, str | None]]:
    """Each case's (id, status as the CRM's own field shows it)."""
    if isinstance(vendor.server, HubSpotServer):
        return [
            (t["id"], t["properties"].get("hs_pipeline_stage"))
            for t in vendor.server.objects("tickets")
        ]
    return [(str(c["Id"]), c.get("Status")) for c in vendor.server.objects("Case")]


async def test_an_agent_closes_the_ticket_and_later_messages_do_not_reopen_it(
    crm: Vendor,
    broker: EmbeddedBroker,
    topic_factory: Callable[[str], str],
    pg_url: str,
) -> None:
    """An agent closes the ticket in the CRM; within the conversation's window the
    business's answer is delivered and the customer thanks them: the agent's status
    stays (the notes land on the ticket all the same)."""
    vendor, person = crm, "5215560009002"
    async with synced(vendor, broker, topic_factory("closed"), pg_url) as run:
        await run.post(text_webhook(person, "Ana", 1))
        [(ticket, _)] = ticket_state(vendor)
        if isinstance(vendor.server, HubSpotServer):
            vendor.server.agent_edit("tickets", ticket, hs_pipeline_stage="4")
            closed = "4"
        else:
            vendor.server.agent_edit("Case", ticket, Status="Closed")
            closed = "Closed"
        await run.post(answer_status(person, 2, "sent"), answer_status(person, 2, "read"))
        await run.post(text_webhook(person, "Ana", 3))
    assert ticket_state(vendor) == [(ticket, closed)]
    assert {case_of_note(vendor, wamid(person, m)) for m in (1, 2, 3)} == {ticket}


async def test_an_adopted_customer_who_changes_number_shows_the_new_one(
    crm: Vendor,
    broker: EmbeddedBroker,
    topic_factory: Callable[[str], str],
    pg_url: str,
) -> None:
    """The company typed the customer's WhatsApp number in the field wa-bridge writes;
    the customer changes number (Meta's notice): that field shows the new number, with
    the new reply address and BSUID, on the same record."""
    vendor = crm
    where = "phone" if isinstance(vendor.server, HubSpotServer) else "mobile"
    crm_id = seed_contact(vendor, "Lucía", "Paz", **{where: "+54 9 11 6000-1001"})
    async with synced(vendor, broker, topic_factory("moved"), pg_url) as run:
        for name in ("identity_ar_change_1_before", "identity_ar_change_2_notice"):
            await run.post((SAMPLES / f"{name}.json").read_bytes())
        await run.post((SAMPLES / "identity_ar_change_3_after.json").read_bytes())
    [contact] = vendor.contacts()
    assert contact["id"] == crm_id
    assert identity_of(vendor, contact) == (
        "+5491160001002",
        "5491160001002",
        "AR.9100000000000000002",
    )


def note_status(vendor: Vendor, message_id: str) -> str | None:
    if isinstance(vendor.server, HubSpotServer):
        note = vendor.server.find("communications", "wa_note_key", message_id)
        assert note is not None, message_id
        return note["properties"].get("wa_status") or None
    task = vendor.server.find("Task", "WA_Note_Key__c", message_id)
    assert task is not None, message_id
    return task.get("WA_Message_Status__c")


async def test_late_statuses_never_move_the_note_back(
    crm: Vendor,
    broker: EmbeddedBroker,
    topic_factory: Callable[[str], str],
    pg_url: str,
) -> None:
    """Meta sends ``read`` first; ``delivered`` and ``sent`` come late, each in a batch of
    its own, one of them after a worker restart: the note says ``read``."""
    vendor, person = crm, "5215560009003"
    topic = topic_factory("late")
    settings = settings_for(vendor, broker.bootstrap, topic, pg_url)
    async with running_receiver(broker.bootstrap, topic) as receiver:
        async with pipeline(settings, receiver) as run:
            await run.post(text_webhook(person, "Ana", 1))
            await run.post(answer_status(person, 2, "read"))
            await run.post(answer_status(person, 2, "delivered"))
        async with pipeline(settings, receiver) as run:
            await run.post(answer_status(person, 2, "sent"))
    assert note_status(vendor, wamid(person, 2)) == "read"
    [contact] = vendor.contacts()
    assert vendor.contact_of_note(wamid(person, 2)) == contact["id"]


@pytest.mark.parametrize(
    "names",
    [
        (
            "identity_ar_change_1_before",
            "identity_ar_change_2_notice",
            "identity_ar_change_3_after",
        ),
        (
            "identity_cl_rotation_1_before",
            "identity_cl_rotation_2_notice",
            "identity_cl_rotation_3_after",
        ),
    ],
    ids=["number change", "BSUID rotation without a phone"],
)
async def test_an_identity_change_keeps_the_conversation_on_one_ticket(
    names: tuple[str, ...],
    crm: Vendor,
    broker: EmbeddedBroker,
    topic_factory: Callable[[str], str],
    pg_url: str,
) -> None:
    """The person changes number (or BSUID) mid-conversation: one contact, one case, every
    message's note on both."""
    vendor = crm
    async with synced(vendor, broker, topic_factory("onecase"), pg_url) as run:
        for name in names:
            await run.post((SAMPLES / f"{name}.json").read_bytes())
    [contact] = vendor.contacts()
    [case] = cases_of(vendor, contact["id"])
    assert len(ticket_state(vendor)) == 1
    ids = [m for name in names for m in message_ids(name)]
    assert {vendor.contact_of_note(m) for m in ids} == {contact["id"]}
    assert {case_of_note(vendor, m) for m in ids} == {case}


async def test_a_reported_pair_merged_in_the_vendor_crm(
    crm: Vendor,
    broker: EmbeddedBroker,
    topic_factory: Callable[[str], str],
    pg_url: str,
) -> None:
    """The new identity wrote before Meta's notice: two contacts (README "Identity");
    ``identity merge`` joins them in the CRM: one contact holds every note (and its
    case), and the new identity's next message lands there, creating nothing."""
    vendor = crm
    names = [f"identity_ar_late_{n}" for n in ("1_before", "2_new_first", "3_notice", "4_after")]
    topic = topic_factory("merge")
    settings = settings_for(vendor, broker.bootstrap, topic, pg_url)  # as synced's worker
    async with synced(vendor, broker, topic, pg_url) as run:
        for name in names:
            await run.post((SAMPLES / f"{name}.json").read_bytes())
        assert len(vendor.contacts()) == 2
        [pair] = await lookalikes(pg_url)
        store = await open_store(pg_url)
        try:
            outcome = await identity_ops.merge(
                settings, store, pair.keep.contact_id, pair.other.contact_id, actor="e2e"
            )
        finally:
            await store.aclose()
        assert outcome.merge_id is not None, outcome
        await run.post(renamed("identity_ar_late_2_new_first", 1))
    [contact] = vendor.contacts()
    ids = [m for name in names for m in message_ids(name)]
    ids.append(message_ids("identity_ar_late_2_new_first")[0] + ".again1")
    assert {m: vendor.contact_of_note(m) for m in ids} == {m: contact["id"] for m in ids}


async def test_a_contact_a_template_created_gets_the_name_of_the_first_message(
    crm: Vendor,
    broker: EmbeddedBroker,
    topic_factory: Callable[[str], str],
    pg_url: str,
) -> None:
    """The business writes first (no profile name in its statuses): the contact is created
    with the CRM's placeholder, if it needs one; the customer's answer names it."""
    vendor, person = crm, "573005550189"
    async with synced(vendor, broker, topic_factory("placeholder"), pg_url) as run:
        await run.post(status_webhook(person, 1))
        await run.post(text_webhook(person, "Mariana", 2))
    [contact] = vendor.contacts()
    assert contact[vendor.name_field] == "Mariana"


async def test_a_salesforce_validation_rule_refusal_keeps_its_words(
    request: pytest.FixtureRequest,
    broker: EmbeddedBroker,
    topic_factory: Callable[[str], str],
    pg_url: str,
) -> None:
    """A validation rule refuses the Contact inside the composite call: the dead letter
    (``dlq show``) has Salesforce's own message and code, and nothing was half-written."""
    salesforce: SalesforceServer = request.getfixturevalue("salesforce_session")
    words = "Los contactos de WhatsApp necesitan una cuenta"
    refusal = [{"message": words, "errorCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION", "fields": []}]
    for server in checked(salesforce):
        vendor = Vendor(server, "salesforce.yaml", "LastName", ())
        topic = topic_factory("sfrule")
        settings = settings_for(vendor, broker.bootstrap, topic, pg_url)
        server.script(status=400, body=refusal, match="sobjects/Contact", part=True, times=20)
        async with (
            running_receiver(broker.bootstrap, topic) as receiver,
            open_worker(settings) as worker,
        ):
            assert (await receiver.post(text_webhook("5215560009004", "Ana", 1))).status_code == 200
            await worker.run_until_idle()
            assert worker.stats.dead_lettered == 1
        server.reset_faults()
        assert server.objects("Contact") == server.objects("Case") == server.objects("Task") == []
    store = await open_store(pg_url)
    try:
        [letter] = await store.list_dead_letters(DeadLetterFilter())
    finally:
        await store.aclose()
    assert letter.crm_error is not None
    assert words in letter.crm_error and "FIELD_CUSTOM_VALIDATION_EXCEPTION" in letter.crm_error


async def test_a_number_only_in_salesforce_other_phone_is_adopted(
    request: pytest.FixtureRequest,
    broker: EmbeddedBroker,
    topic_factory: Callable[[str], str],
    pg_url: str,
) -> None:
    """Salesforce has four phone fields; the number is only in OtherPhone, typed in the
    national format: adopted (SOSL searches every phone field), OtherPhone untouched."""
    salesforce: SalesforceServer = request.getfixturevalue("salesforce_session")
    for server in checked(salesforce):
        vendor = Vendor(server, "salesforce.yaml", "LastName", ())
        crm_id = seed_contact(vendor, "Bruno", "Lima", other="(11) 98888-7777")
        async with synced(vendor, broker, topic_factory("other"), pg_url) as run:
            await run.post(text_webhook("5511988887777", "Bruno", 1))
        [contact] = vendor.contacts()
        assert contact["id"] == crm_id and contact["OtherPhone"] == "(11) 98888-7777"
        assert vendor.contact_of_note(wamid("5511988887777", 1)) == crm_id
