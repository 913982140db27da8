"""The CRM fault tests' harness: the whole pipeline into a vendor stand-in, and the CRM's
end state as its admin would see it.

Pipeline: signed webhooks → receiver (ASGI, in process) → Tansu → worker (``open_worker``,
the production wiring) → the vendor's strict stand-in. Each scenario sends a fresh
:class:`Batch` (new people: each opens a contact and a case, and writes notes), so several
scenarios share one pipeline and each is judged on its own records.

:func:`audit` reads the stand-in's records (contacts, tickets/cases, notes/tasks and their
links) and counts, per batch: events applied (a note on the right contact and case),
duplicated (a second contact for a phone, a second case for a person, a second note for a
message) and lost; every problem is listed with what an admin would see.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import text

from connectors.servers import ContractServer, HubSpotServer, RestCrmServer, SalesforceServer
from receiver._harness import Receiver, running_receiver
from wa_bridge.clock import SYSTEM_CLOCK, Clock
from wa_bridge.settings import Settings
from wa_bridge.store import create_engine
from wa_bridge.worker.loop import Worker
from wa_bridge.worker.runner import open_worker
from worker.sqlcrm import sql_settings, text_body

ROOT = Path(__file__).resolve().parents[2]
PARTITIONS = 3
_PEOPLE = itertools.count(1)
_MESSAGES = itertools.count(1)


@dataclass(frozen=True)
class Batch:
    """One scenario's webhooks: ``people`` new people, ``per_person`` messages each."""

    phones: tuple[str, ...]  # E.164
    message_ids: tuple[str, ...]
    bodies: tuple[bytes, ...]
    owner: dict[str, str]  # message id → phone

    @property
    def events(self) -> int:
        return len(self.message_ids)


def new_batch(people: int = 3, per_person: int = 2) -> Batch:
    """Fresh people (phones nobody used in this session) and their text messages."""
    who = [next(_PEOPLE) for _ in range(people)]
    phones, ids, bodies, owner = [], [], [], {}
    for _ in range(per_person):
        for person in who:
            n = next(_MESSAGES)
            body = text_body(n, person)
            message = body["entry"][0]["changes"][0]["value"]["messages"][0]
            phone = "+52" + message["from"][3:]  # 521 + 10 digits (Mexico's old 1)
            ids.append(message["id"])
            owner[message["id"]] = phone
            bodies.append(orjson.dumps(body))
            if phone not in phones:
                phones.append(phone)
    return Batch(tuple(phones), tuple(ids), tuple(bodies), owner)


# --- the CRM as its admin sees it --------------------------------------------------------


@dataclass(frozen=True)
class Thing:
    """A record: its CRM id, our key on it, the contacts (and cases) it is linked to."""

    id: str
    key: str
    phone: str = ""
    contacts: tuple[str, ...] = ()
    cases: tuple[str, ...] = ()


@dataclass(frozen=True)
class CrmSnapshot:
    contacts: list[Thing]
    cases: list[Thing]
    notes: list[Thing]


def snapshot(server: ContractServer) -> CrmSnapshot:
    if isinstance(server, HubSpotServer):
        return _hubspot(server)
    if isinstance(server, SalesforceServer):
        return _salesforce(server)
    assert isinstance(server, RestCrmServer)
    return _rest(server)


def _hubspot(server: HubSpotServer) -> CrmSnapshot:
    def props(record: dict[str, Any]) -> dict[str, Any]:
        return dict(record["properties"])

    contacts = [
        Thing(r["id"], props(r).get("wa_contact_key") or "", props(r).get("phone") or "")
        for r in server.objects("contacts")
    ]
    cases = [
        Thing(
            r["id"],
            props(r).get("wa_case_key") or "",
            contacts=tuple(server.associations_of("tickets", r["id"], "contacts")),
        )
        for r in server.objects("tickets")
    ]
    notes = [
        Thing(
            r["id"],
            props(r).get("wa_note_key") or "",
            contacts=tuple(server.associations_of("communications", r["id"], "contacts")),
            cases=tuple(server.associations_of("communications", r["id"], "tickets")),
        )
        for r in server.objects("communications")
    ]
    return CrmSnapshot(contacts, cases, notes)


def _salesforce(server: SalesforceServer) -> CrmSnapshot:
    def ids(*values: Any) -> tuple[str, ...]:
        return tuple(str(v) for v in values if v)

    contacts = [
        Thing(str(r["Id"]), r.get("WA_Contact_Key__c") or "", r.get("MobilePhone") or "")
        for r in server.objects("Contact")
    ]
    cases = [
        Thing(str(r["Id"]), r.get("WA_Case_Key__c") or "", contacts=ids(r.get("ContactId")))
        for r in server.objects("Case")
    ]
    notes = [
        Thing(
            str(r["Id"]),
            r.get("WA_Note_Key__c") or "",
            contacts=ids(r.get("WhoId")),
            cases=ids(r.get("WhatId")),
        )
        for r in server.objects("Task")
    ]
    return CrmSnapshot(contacts, cases, notes)


def _rest(server: RestCrmServer) -> CrmSnapshot:
    contacts = [
        Thing(r["key"], r["key"], str(r["fields"].get("phone_e164") or ""))
        for r in server.collection("contacts").values()
    ]
    cases = [
        Thing(r["key"], r["key"], contacts=(r.get("contact_key") or "",))
        for r in server.collection("cases").values()
    ]
    notes = [
        Thing(
            r["key"],
            r["key"],
            contacts=(r.get("contact_key") or "",),
            cases=(r.get("case_key") or "",),
        )
        for r in server.collection("notes").values()
    ]
    return CrmSnapshot(contacts, cases, notes)


@dataclass
class Audit:
    sent: int
    applied: int = 0
    duplicated: int = 0
    lost: int = 0
    problems: list[str] = field(default_factory=list)


def audit(server: ContractServer, batch: Batch) -> Audit:
    """The batch's people, cases and notes in the CRM: exactly one each, all linked."""
    crm = snapshot(server)
    result = Audit(sent=batch.events)
    contact_of: dict[str, str] = {}
    for phone in batch.phones:
        found = [c for c in crm.contacts if c.phone == phone]
        if len(found) != 1:
            result.problems.append(f"{len(found)} contacts with phone …{phone[-4:]}")
            result.duplicated += max(0, len(found) - 1)
        if found:
            contact_of[phone] = found[0].id
    case_of: dict[str, str] = {}
    for phone, contact_id in contact_of.items():
        theirs = [c for c in crm.cases if contact_id in c.contacts]
        if len(theirs) != 1:
            result.problems.append(f"{len(theirs)} cases for contact {contact_id}")
            result.duplicated += max(0, len(theirs) - 1)
        if theirs:
            case_of[phone] = theirs[0].id
    ours = set(contact_of.values())
    orphans = [c.id for c in crm.cases if not (set(c.contacts) & {t.id for t in crm.contacts})]
    if orphans:
        result.problems.append(f"cases linked to no contact: {orphans}")
    keys = Counter(n.key for n in crm.notes)
    for message_id in batch.message_ids:
        notes = [n for n in crm.notes if n.key == message_id]
        result.duplicated += max(0, keys[message_id] - 1)
        phone = batch.owner[message_id]
        good = [
            n
            for n in notes
            if n.contacts == (contact_of.get(phone),) and n.cases == (case_of.get(phone),)
        ]
        if len(notes) != 1:
            result.problems.append(f"{len(notes)} notes for {message_id}")
        if good:
            result.applied += 1
        else:
            result.lost += 1
            if notes:
                links = [(n.contacts, n.cases) for n in notes]
                result.problems.append(f"note of {message_id} not on its contact/case: {links}")
    del ours
    return result


# --- the pipeline ------------------------------------------------------------------------


@dataclass
class Pipeline:
    receiver: Receiver
    worker: Worker
    server: ContractServer
    settings: Settings

    async def post(self, batch: Batch) -> None:
        """The receiver acknowledged every webhook of ``batch`` (Kafka has them)."""
        for body in batch.bodies:
            response = await self.receiver.post(body)
            assert response.status_code == 200, response.text

    async def send(self, batch: Batch, *, timeout_s: float = 60.0) -> None:
        """Post ``batch`` and let the worker apply everything there is."""
        await self.post(batch)
        await self.worker.run_until_idle(timeout_s=timeout_s)

    async def dead_letters(self, *, open_only: bool = False) -> int:
        """Dead letters written (``open_only``: those not replayed or discarded)."""
        query = "SELECT count(*) FROM dead_letters"
        if open_only:
            query += " WHERE status = 'open'"
        engine = create_engine(self.settings.database_url or "")
        try:
            async with engine.connect() as conn:
                count = await conn.execute(text(query))
                return int(count.scalar_one())
        finally:
            await engine.dispose()


def pipeline_settings(
    server: ContractServer, bootstrap: str, topic: str, database_url: str, **overrides: Any
) -> Settings:
    values: dict[str, Any] = {
        "kafka_partitions": PARTITIONS,
        "consumer_fetch_max_wait_ms": 50,
        # each scenario sends one small batch at once; a short linger keeps its events in
        # one CRM batch without the 1 s an HTTP CRM waits by default
        "worker_linger_ms": 200,
        "connector": server.vendor,
        "crm_base_url": server.url,
        "crm_token": server.token,
        "crm_timeout_s": 1.0,
        "mappings_path": str(ROOT / "mappings" / f"{server.vendor}.yaml"),
        "retry_delays_s": [0.2, 0.4],
        "retry_in_place_attempts": 2,
        "monitor_interval_s": 0,
    }
    values.update(overrides)
    return sql_settings(bootstrap, topic, database_url, **values)


@asynccontextmanager
async def crm_pipeline(
    server: ContractServer,
    bootstrap: str,
    topic: str,
    database_url: str,
    *,
    clock: Clock = SYSTEM_CLOCK,
    **overrides: Any,
) -> AsyncIterator[Pipeline]:
    """Receiver and worker on ``topic``, writing to ``server``; closed on exit."""
    settings = pipeline_settings(server, bootstrap, topic, database_url, **overrides)
    async with (
        running_receiver(bootstrap, topic, kafka_partitions=PARTITIONS) as receiver,
        open_worker(settings, clock=clock) as worker,
    ):
        yield Pipeline(receiver, worker, server, settings)
