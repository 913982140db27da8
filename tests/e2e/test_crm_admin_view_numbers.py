"""What a CRM admin sees when the company's record holds the customer's number in a form
``test_crm_admin_view`` does not cover, through the whole pipeline (signed webhook →
receiver → Tansu → worker → the vendor's strict stand-in), on HubSpot and Salesforce:

- with an extension (``+44 7911 123456 ext. 12``, ``+1 (415) 555-0100 x7``) or a remark
  (``07400 123456 (mobile)``): adopted, the field as the company typed it; a number that
  only shares digits or a prefix with the customer's is not adopted;
- as Mexico dialled it before August 2019 (``01``, ``044``, ``045`` before the national
  number): adopted.

Judged on the stand-in's records: one contact per person, the company's record kept as it
was, the conversation's note on it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from connectors.conftest import (  # noqa: F401 - fixtures
    checked,
    hubspot_session,
    rest_crm_session,
    salesforce_session,
)
from connectors.servers import HubSpotServer, RestCrmServer
from e2e.test_crm_admin_view import by_id, crm, seed_contact, synced  # noqa: F401 - fixture
from e2e.test_crm_adoption import (
    PARTITIONS,
    ROOT,
    Vendor,
    pipeline,
    text_webhook,
    wamid,
)
from receiver._harness import running_receiver
from wa_bridge.bus.embedded import EmbeddedBroker
from wa_bridge.normalize.phones import user_e164
from worker.sqlcrm import sql_settings

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

Seeded = dict[str, tuple[str, dict[str, str]]]  # label → (WhatsApp id, phones as typed)


def field_names(vendor: Vendor) -> dict[str, str]:
    """``seed_contact``'s phone names → the vendor's field names."""
    if isinstance(vendor.server, HubSpotServer):
        return {"phone": "phone", "mobile": "mobilephone"}
    return {"phone": "Phone", "mobile": "MobilePhone", "other": "OtherPhone"}


def owned_phone(vendor: Vendor) -> str:
    """The phone field wa-bridge keeps up to date when it holds the person's number."""
    return "phone" if isinstance(vendor.server, HubSpotServer) else "MobilePhone"


@dataclass
class Sent:
    """The CRM after ``send_each``: label → the seeded record's id (``ids``), CRM id → each
    contact (``contacts``), label → the contact its message's note is on (``notes``), and
    label → what the seeded record no longer holds as seeded (``changed``)."""

    ids: dict[str, str]
    contacts: dict[str, dict[str, Any]]
    notes: dict[str, str | None]
    changed: dict[str, dict[str, Any]]


async def send_each(
    vendor: Vendor,
    seeded: Seeded,
    broker: EmbeddedBroker,
    topic: str,
    pg_url: str,
    *,
    rewritten_ok: bool = False,
) -> Sent:
    """Seed one contact per label, send one message from each WhatsApp id. With
    ``rewritten_ok`` the field wa-bridge owns may hold the person's E.164 instead of the
    number as typed (a plain number of theirs is wa-bridge's to keep up to date)."""
    ids = {
        label: seed_contact(vendor, "Cliente", label, **phones)
        for label, (_, phones) in seeded.items()
    }
    async with synced(vendor, broker, topic, pg_url) as run:
        await run.post(
            *(text_webhook(wa_id, "🙂", n) for n, (wa_id, _) in enumerate(seeded.values()))
        )
    contacts = by_id(vendor)
    notes = {
        label: vendor.contact_of_note(wamid(wa_id, n))
        for n, (label, (wa_id, _)) in enumerate(seeded.items())
    }
    changed = {
        label: changed_fields(
            vendor,
            contacts[ids[label]],
            label,
            phones,
            e164=user_e164(wa_id) if rewritten_ok else None,
        )
        for label, (wa_id, phones) in seeded.items()
    }
    return Sent(ids, contacts, notes, changed)


def changed_fields(
    vendor: Vendor,
    contact: dict[str, Any],
    label: str,
    phones: dict[str, str],
    *,
    e164: str | None = None,
) -> dict[str, Any]:
    """What ``send_each``'s record ``label`` no longer holds as seeded: its name, its phones
    as typed (``e164``, the person's number, is allowed in the field wa-bridge owns)."""
    names = field_names(vendor)
    out = {
        names[k]: contact.get(names[k])
        for k, typed in phones.items()
        if contact.get(names[k]) != typed
        and not (names[k] == owned_phone(vendor) and contact.get(names[k]) == e164)
    }
    last = "lastname" if isinstance(vendor.server, HubSpotServer) else "LastName"
    if contact.get(last) != label:
        out[last] = contact.get(last)
    return out


def assert_adopted(sent: Sent, seeded: Seeded) -> None:
    """One contact per person: each conversation on the record the company holds, which
    keeps its name and phones."""
    assert sent.notes == sent.ids
    assert len(sent.contacts) == len(seeded)  # no contact created
    assert sent.changed == {label: {} for label in seeded}


# (WhatsApp id, the number as the company typed it, which field)
EXTENDED: Seeded = {
    "UK mobile, ext.": ("447911123456", {"phone": "+44 7911 123456 ext. 12"}),
    "US, x, second field": ("14155550100", {"mobile": "+1 (415) 555-0100 x7"}),
    "UK national, a remark": ("447400123456", {"phone": "07400 123456 (mobile)"}),
}


# Records holding digits the customer's number shares, that are not the customer's number.
NOT_THEIRS: Seeded = {
    # every digit of +447911123456, but the number before the extension is shorter
    "digits shared, extension apart": ("447911123456", {"phone": "+44 7911 12345 ext. 6"}),
    # +14155550100 followed by one more digit, no extension marker: another number
    "a longer number": ("14155550100", {"phone": "+1 (415) 555-01007"}),
}


async def test_a_number_sharing_digits_or_a_prefix_is_not_adopted(
    crm: Vendor,  # noqa: F811 - the fixture
    broker: EmbeddedBroker,
    topic_factory: Callable[[str], str],
    pg_url: str,
) -> None:
    vendor = crm
    sent = await send_each(vendor, NOT_THEIRS, broker, topic_factory("prefix"), pg_url)
    assert {label: note in sent.ids.values() for label, note in sent.notes.items()} == {
        label: False for label in NOT_THEIRS
    }  # a contact of its own
    assert None not in sent.notes.values()
    assert len(sent.contacts) == 2 * len(NOT_THEIRS)
    untouched = {
        label: sent.contacts[sent.ids[label]].get(vendor.key_field) for label in NOT_THEIRS
    }
    assert untouched == {label: None for label in NOT_THEIRS}  # our key on none of them
    assert sent.changed == {label: {} for label in NOT_THEIRS}


# Mexico before August 2019: 01 before a long-distance number, 044 (local) or 045 (long
# distance) before a mobile's; WhatsApp ids keep the mobile 1 (521…).
MX_DIALLED: Seeded = {
    "01, long distance": ("5215523456789", {"phone": "01 55 2345 6789"}),
    "044, a mobile, local": ("5213312345678", {"mobile": "044 33 1234 5678"}),
    "045, a mobile, long distance": ("5218112345678", {"mobile": "045 (81) 1234-5678"}),
}


@pytest.mark.parametrize(
    ("seeded", "rewritten_ok"),
    [
        pytest.param(EXTENDED, False, id="extension or remark"),
        pytest.param(MX_DIALLED, True, id="Mexico before 2019"),
    ],
)
async def test_a_number_as_the_company_typed_it_is_adopted(
    crm: Vendor,  # noqa: F811 - the fixture
    broker: EmbeddedBroker,
    topic_factory: Callable[[str], str],
    pg_url: str,
    seeded: Seeded,
    rewritten_ok: bool,
) -> None:
    """The search finds these records. The match used to compare every digit of the field
    (an extension's too) and refused them, creating a second contact for each; the field
    keeps the extension or the remark. A Mexican number dialled the pre-2019 way may be
    rewritten to the person's E.164 in the field wa-bridge owns."""
    topic = topic_factory("typed")
    sent = await send_each(crm, seeded, broker, topic, pg_url, rewritten_ok=rewritten_ok)
    assert_adopted(sent, seeded)


async def test_the_rest_crm_adopts_mexican_forms_and_not_a_number_sharing_digits(
    request: pytest.FixtureRequest,
    broker: EmbeddedBroker,
    topic_factory: Callable[[str], str],
    pg_url: str,
) -> None:
    """The REST CRM's search (the contract's ``searchContacts``) compares whole digits, so
    an extension is not found there; the forms it can find go through the same match."""
    session: RestCrmServer = request.getfixturevalue("rest_crm_session")
    people = {**MX_DIALLED, **NOT_THEIRS}
    for rest in checked(session):
        ids = {
            label: rest.seed_contact(name=label, **{f"{k}_phone": v for k, v in phones.items()})
            for label, (_, phones) in people.items()
        }
        topic = topic_factory("restforms")
        settings = sql_settings(
            broker.bootstrap,
            topic,
            pg_url,
            kafka_partitions=PARTITIONS,
            consumer_fetch_max_wait_ms=50,
            connector="rest",
            crm_base_url=rest.url,
            crm_token=rest.token,
            crm_timeout_s=5,
            mappings_path=str(ROOT / "mappings" / "rest.yaml"),
        )
        async with (
            running_receiver(broker.bootstrap, topic) as receiver,
            pipeline(settings, receiver) as run,
        ):
            await run.post(
                *(text_webhook(wa_id, "🙂", n) for n, (wa_id, _) in enumerate(people.values()))
            )
        contacts = rest.collection("contacts")
        notes = rest.collection("notes")
        on = {
            label: contacts[notes[wamid(wa_id, n)]["contact_key"]]["id"]
            for n, (label, (wa_id, _)) in enumerate(people.items())
        }
        assert {label: on[label] == ids[label] for label in people} == {
            label: label in MX_DIALLED for label in people
        }
        assert len(contacts) == len(MX_DIALLED) + 2 * len(NOT_THEIRS)
        seeded = {r["id"]: r["fields"] for r in contacts.values() if r["id"] in ids.values()}
        for label in NOT_THEIRS:
            _, phones = people[label]
            assert seeded[ids[label]] == {
                "name": label,
                **{f"{k}_phone": v for k, v in phones.items()},
            }  # untouched
