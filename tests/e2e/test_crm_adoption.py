"""The company's CRM already holds its customers: HubSpot and Salesforce through the whole
pipeline (signed webhook → receiver → Tansu → worker → contract server), issue 9.

The stand-in is seeded with the contacts a company has (``seed_company_crm``: a number
typed with ``+`` and spaces, one in national format, a Mexican one with the old ``1``,
one known by e-mail only, two records sharing one phone), plus a Colombian customer who
will only ever get a template from the business. Then WhatsApp traffic arrives: messages
from those people and from a new one, statuses of messages the business sent. At the end,
as an admin would see the CRM: 0 duplicates (each person one contact), the existing
records adopted (our key on them, their names kept), an agent's correction of a name
untouched by the next message, every note on the right contact, and, after a worker
restart, known contacts costing no lookup (the ids come from ``crm_records``).
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from connectors.conftest import (  # noqa: F401 - fixtures
    checked,
    hubspot_session,
    salesforce_session,
    serving,
)
from connectors.servers import HubSpotServer, SalesforceServer
from receiver._harness import Receiver, running_receiver
from wa_bridge.bus.embedded import EmbeddedBroker
from wa_bridge.settings import Settings
from wa_bridge.worker.loop import Worker
from wa_bridge.worker.runner import open_worker
from worker.sqlcrm import SAMPLES, sql_settings

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

ROOT = Path(__file__).resolve().parents[2]
PARTITIONS = 3  # what the receiver harness creates the topic with
AR, US, MX, BR = "5491123456789", "15132271572", "5215512345678", "5511999990001"
NEW = "573005550199"  # not in the CRM
CO_TEMPLATE = "573005550123"  # in the CRM, gets only a template (statuses)
STRANGER = "573005550777"  # gets a template, in no CRM


def text_webhook(wa_id: str, name: str, n: int) -> bytes:
    """A text message from ``wa_id`` under the profile ``name`` (message id by ``n``)."""
    body = orjson.loads((SAMPLES / "text_mx.json").read_bytes())
    value = body["entry"][0]["changes"][0]["value"]
    person = value["contacts"][0]
    person.update(wa_id=wa_id, profile={"name": name}, user_id=f"XX.{int(wa_id):019d}")
    person.pop("parent_user_id", None)
    message = value["messages"][0]
    message.update(id=wamid(wa_id, n), timestamp=str(1781200000 + n), text={"body": f"m{n}"})
    message["from"] = wa_id
    message["from_user_id"] = person["user_id"]
    message.pop("from_parent_user_id", None)
    return orjson.dumps(body)


def status_webhook(wa_id: str, n: int, status: str = "sent") -> bytes:
    """The status of message ``n`` the business sent to ``wa_id`` (no profile)."""
    body = orjson.loads((SAMPLES / "statuses_br.json").read_bytes())
    value = body["entry"][0]["changes"][0]["value"]
    value.pop("contacts", None)
    first = copy.deepcopy(value["statuses"][0])
    for drop in ("recipient_user_id", "parent_recipient_user_id", "conversation", "pricing"):
        first.pop(drop, None)
    first.update(id=wamid(wa_id, n), status=status, timestamp=str(1781200000 + n))
    first["recipient_id"] = wa_id
    value["statuses"] = [first]
    return orjson.dumps(body)


def wamid(wa_id: str, n: int) -> str:
    return f"wamid.E2E{wa_id}N{n:04d}"


@dataclass
class Vendor:
    """A CRM stand-in as these tests ask about it."""

    server: HubSpotServer | SalesforceServer
    mapping: str
    name_field: str
    lookups: tuple[str, ...]  # endpoints a lookup goes to

    def contacts(self) -> list[dict[str, Any]]:
        if isinstance(self.server, HubSpotServer):
            return [{"id": r["id"], **r["properties"]} for r in self.server.objects("contacts")]
        return [{"id": r["Id"], **r} for r in self.server.objects("Contact")]

    @property
    def key_field(self) -> str:
        return "wa_contact_key" if isinstance(self.server, HubSpotServer) else "WA_Contact_Key__c"

    def contact_of_note(self, message_id: str) -> str | None:
        """The CRM id of the contact the note of ``message_id`` is on (one, or None)."""
        if isinstance(self.server, HubSpotServer):
            note = self.server.find("communications", "wa_note_key", message_id)
            if note is None:
                return None
            linked = self.server.associations_of("communications", note["id"], "contacts")
            assert len(linked) <= 1, linked
            return linked[0] if linked else None
        task = self.server.find("Task", "WA_Note_Key__c", message_id)
        return None if task is None else str(task.get("WhoId") or "") or None

    def seed(self) -> dict[str, str]:
        ids = self.server.seed_company_crm()
        if isinstance(self.server, HubSpotServer):
            ids["co_template"] = self.server.seed(
                "contacts", firstname="Camilo", lastname="Rojas", phone="+57 300 555 0123"
            )
        else:
            ids["co_template"] = self.server.seed(
                "Contact", FirstName="Camilo", LastName="Rojas", MobilePhone="300 555 0123"
            )
        return ids

    def edit_name(self, crm_id: str, name: str) -> None:
        if isinstance(self.server, HubSpotServer):
            self.server.agent_edit("contacts", crm_id, firstname=name)
        else:
            self.server.agent_edit("Contact", crm_id, LastName=name)

    def lookup_count(self) -> int:
        counts = self.server.counts()
        return sum(counts[e] for e in self.lookups)


@pytest.fixture(params=["hubspot", "salesforce"])
def vendor(request: pytest.FixtureRequest) -> Iterator[Vendor]:
    if request.param == "hubspot":
        hubspot: HubSpotServer = request.getfixturevalue("hubspot_session")
        for server in checked(hubspot):
            yield Vendor(
                server,
                "hubspot.yaml",
                "firstname",
                ("POST objects/contacts/search", "POST objects/contacts/batch/read"),
            )
    else:
        salesforce: SalesforceServer = request.getfixturevalue("salesforce_session")
        for server in checked(salesforce):
            yield Vendor(server, "salesforce.yaml", "LastName", ("GET query", "GET search"))


@dataclass
class Pipeline:
    receiver: Receiver
    worker: Worker

    async def post(self, *bodies: bytes) -> None:
        for body in bodies:
            response = await self.receiver.post(body)
            assert response.status_code == 200, response.text
        await self.worker.run_until_idle()
        assert self.worker.stats.dead_lettered == 0


def settings_for(vendor: Vendor, bootstrap: str, topic: str, database_url: str) -> Settings:
    return sql_settings(
        bootstrap,
        topic,
        database_url,
        kafka_partitions=PARTITIONS,
        consumer_fetch_max_wait_ms=50,
        connector=vendor.server.vendor,
        crm_base_url=vendor.server.url,
        crm_token=vendor.server.token,
        crm_timeout_s=5,
        mappings_path=str(ROOT / "mappings" / vendor.mapping),
    )


@asynccontextmanager
async def pipeline(settings: Settings, receiver: Receiver) -> AsyncIterator[Pipeline]:
    async with open_worker(settings) as worker:
        yield Pipeline(receiver, worker)


async def test_existing_customers_are_adopted_through_the_pipeline(
    vendor: Vendor,
    broker: EmbeddedBroker,
    topic_factory: Callable[[str], str],
    pg_url: str,
) -> None:
    ids = vendor.seed()
    topic = topic_factory("crm")
    settings = settings_for(vendor, broker.bootstrap, topic, pg_url)
    async with running_receiver(broker.bootstrap, topic) as receiver:
        async with pipeline(settings, receiver) as run:
            await run.post(
                text_webhook(AR, "🦄 Pao", 1),
                text_webhook(US, "Dana", 2),
                text_webhook(MX, "Luis O", 3),
                text_webhook(BR, "Rita", 4),
                text_webhook(NEW, "Nuevo Cliente", 5),
                status_webhook(CO_TEMPLATE, 6),
                status_webhook(STRANGER, 7),
            )
            await run.post(status_webhook(CO_TEMPLATE, 6, "delivered"), text_webhook(AR, "🦄", 8))
            seeded = len(ids)
            contacts = vendor.contacts()
            assert len(contacts) == seeded + 2  # the new person and the stranger: no duplicate
            ours = {c[vendor.key_field]: c for c in contacts if c.get(vendor.key_field)}
            assert len(ours) == 7  # five who wrote, the template's recipient, the stranger
            adopted = {c["id"] for c in ours.values()} & set(ids.values())
            assert adopted == {
                ids[label]
                for label in (
                    "ar_international",
                    "us_national",
                    "mx_with_1",
                    "shared_newer",
                    "co_template",
                )
            }
            by_id = {c["id"]: c for c in contacts}
            assert by_id[ids["email_only"]].get(vendor.key_field) in (None, "")
            assert by_id[ids["shared_older"]].get(vendor.key_field) in (None, "")
            # the names the company typed are kept; the new person gets the profile name
            assert by_id[ids["ar_international"]][vendor.name_field] in ("Paola", "Gutiérrez")
            assert by_id[ids["co_template"]][vendor.name_field] in ("Camilo", "Rojas")
            # every note on the right contact, the statuses' too
            expected = {
                wamid(AR, 1): ids["ar_international"],
                wamid(AR, 8): ids["ar_international"],
                wamid(US, 2): ids["us_national"],
                wamid(MX, 3): ids["mx_with_1"],
                wamid(BR, 4): ids["shared_newer"],
                wamid(CO_TEMPLATE, 6): ids["co_template"],
            }
            for message_id, crm_id in expected.items():
                assert vendor.contact_of_note(message_id) == crm_id, message_id
            [new] = [c for c in contacts if "+" + NEW in (c.get("phone"), c.get("MobilePhone"))]
            assert new[vendor.name_field] == "Nuevo Cliente"
            assert vendor.contact_of_note(wamid(NEW, 5)) == new["id"]
            [stranger] = [c for c in contacts if c["id"] not in (*ids.values(), new["id"])]
            assert vendor.contact_of_note(wamid(STRANGER, 7)) == stranger["id"]

            # an agent corrects the new person's name: the next message keeps it
            vendor.edit_name(new["id"], "Nuevo Cliente (VIP)")
            await run.post(text_webhook(NEW, "🐙 NC", 9))
            assert {c["id"]: c for c in vendor.contacts()}[new["id"]][vendor.name_field] == (
                "Nuevo Cliente (VIP)"
            )
            lookups = vendor.lookup_count()

        # a worker restart: a new connector, with nothing in memory, reads crm_records
        async with pipeline(settings, receiver) as run:
            await run.post(
                text_webhook(AR, "🦄 Pao", 10),
                text_webhook(NEW, "🐙", 11),
                status_webhook(CO_TEMPLATE, 6, "read"),
                status_webhook(STRANGER, 7, "delivered"),
            )
    assert vendor.lookup_count() == lookups  # no lookup for known keys
    assert len(vendor.contacts()) == seeded + 2
    assert vendor.contact_of_note(wamid(AR, 10)) == ids["ar_international"]
    assert vendor.contact_of_note(wamid(NEW, 11)) == new["id"]
    assert {c["id"]: c for c in vendor.contacts()}[new["id"]][vendor.name_field] == (
        "Nuevo Cliente (VIP)"
    )
