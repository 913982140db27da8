"""HubSpot and Salesforce find a company's existing contacts before creating one (#9).

The stand-ins are seeded with the customers a company's CRM already holds
(``seed_company_crm``: numbers typed with ``+`` and spaces, in national format, MX with the
old ``1``, one known by e-mail only, two records sharing one phone). Each test asserts
the CRM's end state as an admin would see it: how many contacts, which one holds our key,
what its fields say; and what it cost in requests.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from connectors.conftest import connector_for
from connectors.servers import ContractServer, HubSpotServer, RestCrmServer, SalesforceServer
from wa_bridge.connectors import CrmConnector, CrmResult, OpRejected
from wa_bridge.operations import CrmOperation, FieldValue, MatchRule
from wa_bridge.store import RecordBook

NAME_IF_EMPTY = {"name": "if_empty"}


@dataclass
class Crm:
    """One vendor, seen through the questions these tests ask."""

    server: ContractServer
    connector: CrmConnector
    contacts: Callable[[], list[dict[str, Any]]]  # live contacts, as flat field dicts
    key_field: str
    name_field: str  # where the mapping's `name` goes
    contact_kind: str  # the book's kind for contacts
    lookups: Callable[[], int]  # requests made to find records

    def by_key(self, key: str) -> list[dict[str, Any]]:
        return [c for c in self.contacts() if c.get(self.key_field) == key]


def _hubspot(server: HubSpotServer, connector: CrmConnector) -> Crm:
    def contacts() -> list[dict[str, Any]]:
        return [{"id": r["id"], **r["properties"]} for r in server.objects("contacts")]

    def lookups() -> int:
        return sum(1 for r in server.requests if r.path.endswith(("/search", "/batch/read")))

    return Crm(server, connector, contacts, "wa_contact_key", "firstname", "contacts", lookups)


def _salesforce(server: SalesforceServer, connector: CrmConnector) -> Crm:
    def contacts() -> list[dict[str, Any]]:
        return [{"id": r["Id"], **r} for r in server.objects("Contact")]

    def lookups() -> int:
        return sum(1 for r in server.requests if r.method == "GET")

    return Crm(server, connector, contacts, "WA_Contact_Key__c", "LastName", "Contact", lookups)


async def _crm(request: pytest.FixtureRequest, **settings: Any) -> AsyncIterator[Crm]:
    if request.param == "hubspot":
        hubspot: HubSpotServer = request.getfixturevalue("hubspot_server")
        connector = connector_for(hubspot, **settings)
        crm = _hubspot(hubspot, connector)
    else:
        salesforce: SalesforceServer = request.getfixturevalue("salesforce_server")
        connector = connector_for(salesforce, **settings)
        crm = _salesforce(salesforce, connector)
    try:
        yield crm
    finally:
        await connector.aclose()


@pytest.fixture(params=["hubspot", "salesforce"])
async def crm(request: pytest.FixtureRequest) -> AsyncIterator[Crm]:
    async for one in _crm(request):
        yield one


def seed(crm: Crm) -> dict[str, str]:
    server = crm.server
    assert isinstance(server, HubSpotServer | SalesforceServer)
    return server.seed_company_crm()


def contact(key: str, event: str = "ev-1", **fields: FieldValue) -> CrmOperation:
    return CrmOperation(
        kind="upsert_contact",
        fields=fields,
        event_id=event,
        contact_key=key,
        write_modes={name: "if_empty" for name in ("name", "country") if name in fields},
    )


def note(key: str, wamid: str, event: str = "ev-9") -> CrmOperation:
    return CrmOperation(
        kind="add_note",
        fields={
            "message_id": wamid,
            "direction": "inbound",
            "body": "hola",
            "occurred_at": datetime(2026, 5, 4, 10, 30, tzinfo=UTC),
        },
        event_id=event,
        contact_key=key,
    )


PEOPLE = [
    contact("c_ar", "ev-1", phone_e164="+5491123456789", name="🦄 Pao"),
    contact("c_us", "ev-2", phone_e164="+15132271572", name="Dana W"),
    contact("c_mx", "ev-3", phone_e164="+525512345678", name="Luis"),
    contact("c_mail", "ev-4", email="Carla.Mendes@example.com", name="Carla"),
    contact("c_br", "ev-5", phone_e164="+5511999990001", name="Rita"),
    contact("c_new", "ev-6", phone_e164="+5215599990001", name="Nuevo"),
]


async def test_existing_contacts_are_adopted_not_duplicated(crm: Crm) -> None:
    ids = seed(crm)
    book = RecordBook(crm.connector.instance)
    results = await crm.connector.apply(PEOPLE, book)
    assert all(isinstance(r, CrmResult) for r in results)
    assert len(crm.contacts()) == 7  # six the company had, one new person
    adopted = {
        "c_ar": "ar_international",
        "c_us": "us_national",
        "c_mx": "mx_with_1",
        "c_mail": "email_only",
        "c_br": "shared_newer",  # two records share the phone: the more recently modified
    }
    for key, label in adopted.items():
        [record] = crm.by_key(key)
        assert record["id"] == ids[label], key
    [new] = crm.by_key("c_new")
    assert new["id"] not in ids.values()
    # the names the company has are kept (written if_empty); an empty one gets ours
    names = {key: crm.by_key(key)[0].get(crm.name_field) for key in adopted}
    if crm.name_field == "firstname":
        assert names == {
            "c_ar": "Paola",
            "c_us": "Dana",
            "c_mx": "Luis",
            "c_mail": "Carla",  # HubSpot: the e-mail-only record had no first name
            "c_br": "Rita",
        }
    else:
        assert names == {
            "c_ar": "Gutiérrez",
            "c_us": "Whitfield",
            "c_mx": "Ortega",
            "c_mail": "(unknown)",  # Salesforce: LastName is never empty
            "c_br": "Souza Lima",
        }
    assert crm.by_key("c_new")[0][crm.name_field] == "Nuevo"
    # one lookup for the whole batch (Salesforce: one SOQL and one SOSL)
    assert crm.lookups() == (1 if isinstance(crm.server, HubSpotServer) else 2)
    matches = {key: (book.get(crm.contact_kind, key) or _none()).match for key in adopted}
    assert matches == {
        "c_ar": "phone",
        "c_us": "phone",
        "c_mx": "phone",
        "c_mail": "email",
        "c_br": "phone",
    }
    assert (book.get(crm.contact_kind, "c_new") or _none()).match == "created"
    decided = {(d.key, d.rule, d.candidates) for d in book.decisions()}
    assert ("c_br", "phone", 2) in decided and ("c_mail", "email", 1) in decided


def _none() -> Any:
    raise AssertionError("not in the book")


async def test_a_rolled_back_batch_finds_its_records_again_by_key(crm: Crm) -> None:
    seed(crm)
    await crm.connector.apply(PEOPLE, RecordBook(crm.connector.instance))
    before = len(crm.server.requests)
    lost = RecordBook(crm.connector.instance)  # the batch's transaction was rolled back
    results = await crm.connector.apply(PEOPLE, lost)
    assert all(isinstance(r, CrmResult) and not r.created for r in results)
    assert len(crm.contacts()) == 7
    assert {
        (lost.get(crm.contact_kind, op.contact_key or "") or _none()).match for op in PEOPLE
    } == {"key"}
    assert lost.decisions() == []  # nothing adopted again: they carry our key
    later = crm.server.requests[before:]
    by_id = [r for r in later if r.path.endswith(("/batch/update", "/composite/sobjects"))]
    assert by_id == []  # written by key: no adoption by id
    assert crm.lookups() == 2 * (1 if isinstance(crm.server, HubSpotServer) else 2)


async def test_two_contacts_never_adopt_one_record(crm: Crm) -> None:
    ids = seed(crm)
    twins = [
        contact("c_one", "ev-1", phone_e164="+15132271572"),
        contact("c_two", "ev-2", phone_e164="+15132271572"),
    ]
    await crm.connector.apply(twins, RecordBook(crm.connector.instance))
    assert [r["id"] for r in crm.by_key("c_one")] == [ids["us_national"]]
    [other] = crm.by_key("c_two")
    assert other["id"] != ids["us_national"] and len(crm.contacts()) == 7


@pytest.fixture(params=["hubspot", "salesforce"])
async def email_first(request: pytest.FixtureRequest) -> AsyncIterator[Crm]:
    async for one in _crm(request):
        one.connector.match_order = ("key", "email")  # type: ignore[attr-defined]
        yield one


async def test_the_match_order_is_the_mappings(email_first: Crm) -> None:
    crm = email_first
    ids = seed(crm)
    order: tuple[MatchRule, ...] = crm.connector.match_order  # type: ignore[attr-defined]
    assert order == ("key", "email")
    await crm.connector.apply(
        [contact("c_ar", phone_e164="+5491123456789", email="carla.mendes@example.com")],
        RecordBook(crm.connector.instance),
    )
    [record] = crm.by_key("c_ar")
    assert record["id"] == ids["email_only"]  # phone is not a rule here: the e-mail decides


async def test_known_contacts_cost_no_lookup_and_nothing_unchanged_is_written(crm: Crm) -> None:
    seed(crm)
    book = RecordBook(crm.connector.instance)
    await crm.connector.apply(PEOPLE, book)
    before = len(crm.server.requests)
    again = await crm.connector.apply(PEOPLE, book)  # the same values: nothing to write
    assert all(isinstance(r, CrmResult) and not r.created for r in again)
    assert len(crm.server.requests) == before
    changed = [contact("c_us", "ev-7", phone_e164="+15132271572", country="US")]
    await crm.connector.apply(changed, book)
    # country is written if_empty and was never read nor written: one read of it first
    # (someone may have typed one in the CRM since), then the write
    read, write = crm.server.requests[before:]
    assert "country" in str(read.body or read.query).lower()
    sent = (
        write.body["inputs"][0]["properties"]
        if "inputs" in write.body
        else write.body["records"][0]
    )
    assert "country" in str(sent).lower() and "+15132271572" not in str(sent)


async def test_a_refused_contact_refuses_its_note(crm: Crm) -> None:
    bad_mail = contact("c_bad", "ev-1", email="not-an-email")
    results = await crm.connector.apply(
        [bad_mail, note("c_bad", "wamid.1"), contact("c_ok", "ev-2", phone_e164="+15550100001")],
        RecordBook(crm.connector.instance),
    )
    refused, its_note, fine = results
    assert isinstance(refused, OpRejected) and isinstance(its_note, OpRejected)
    assert isinstance(fine, CrmResult)
    assert [c.get(crm.key_field) for c in crm.contacts()] == ["c_ok"]


# --- the generic REST CRM, through the contract's optional searchContacts ----------------
async def test_rest_adopts_existing_contacts_through_the_search(
    rest_crm_server: RestCrmServer,
) -> None:
    ar = rest_crm_server.seed_contact(name="Paola", phone="+54 9 11 2345-6789")
    mail = rest_crm_server.seed_contact(email="carla.mendes@example.com")
    us = rest_crm_server.seed_contact(mobile_phone="(513) 227-1572")
    connector = connector_for(rest_crm_server)
    book = RecordBook(connector.instance)
    try:
        results = await connector.apply(PEOPLE, book)
        again = await connector.apply(PEOPLE, book)  # known now: no search
    finally:
        await connector.aclose()
    assert all(isinstance(r, CrmResult) for r in [*results, *again])
    contacts = rest_crm_server.collection("contacts")
    assert {k: contacts[k]["id"] for k in ("c_ar", "c_us", "c_mail")} == {
        "c_ar": ar,
        "c_us": us,
        "c_mail": mail,
    }
    assert len(contacts) == 6  # three adopted, three new: no duplicate
    assert contacts["c_ar"]["fields"]["phone"] == "+54 9 11 2345-6789"  # kept, merged into
    searches = [r for r in rest_crm_server.requests if r.path == "/contacts/search"]
    assert len(searches) == 1 and len(searches[0].body["keys"]) == 6
    known = book.get("contacts", "c_mail")
    assert known is not None and known.match == "email" and known.crm_id == mail


async def test_rest_without_the_search_creates_by_key(rest_crm_server: RestCrmServer) -> None:
    rest_crm_server.searchable = False
    rest_crm_server.seed_contact(phone="+54 9 11 2345-6789")
    connector = connector_for(rest_crm_server)
    try:
        await connector.apply(PEOPLE[:1], RecordBook(connector.instance))
        await connector.apply(PEOPLE[1:], RecordBook(connector.instance))
    finally:
        await connector.aclose()
    searches = [r for r in rest_crm_server.requests if r.path == "/contacts/search"]
    assert [r.status for r in searches] == [404]  # asked once; the CRM does not offer it
    assert len(rest_crm_server.collection("contacts")) == 7
