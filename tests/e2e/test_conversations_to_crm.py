"""The issue's scenario through the whole pipeline, for every CRM a business may use (#11).

Signed Meta webhooks and signed inbox calls → receiver → Tansu → worker → the built-in
SQL CRM (PostgreSQL), or HubSpot and Salesforce (their contract servers). A customer
clicks a click-to-WhatsApp ad (UTMs in the ad's URL) and writes; a bot answers and hands
off to an agent; the agent tags, answers (FRT), resolves as converted with a value and a
currency; the customer rates 5; a late ``tagged`` arrives; 30 hours later the customer
writes again. The customer had opted in on the shop's web form the day before (evidence
posted to ``POST /consents``). The CRM must show one contact with the first touch, two
cases (the first closed with every attribute, FRT, outcome, value and CSAT intact; the
second open), notes for both directions, one deal / opportunity for the conversion and
the contact's consent state (:func:`sales_and_consent_hook`).

Then, per CRM: opt-out by keyword (the customer writes "Baja."; the business's own
"STOP" never counts) and opt-in again by evidence; evidence older than the opt-out,
posted late, stays in the ledger and changes nothing. ``wa-bridge consent show`` prints
the history; ``wa-bridge export conversions`` gives the sale with its click and consent.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from typer.testing import CliRunner

from connectors.conftest import (  # noqa: F401 - fixtures
    checked,
    hubspot_session,
    salesforce_session,
    serving,
)
from connectors.servers import HubSpotServer, SalesforceServer
from receiver._harness import READY_WAIT_S, SECRET, receiver_settings
from wa_bridge.bus.embedded import EmbeddedBroker
from wa_bridge.cli.crm import load_crm_view
from wa_bridge.cli.main import app
from wa_bridge.cli.receiver import build_receiver
from wa_bridge.ops.consents import CONSENTS_PATH
from wa_bridge.receiver import WEBHOOK_PATH, sign
from wa_bridge.receiver.inbox import INBOX_PATH, INBOX_SIGNATURE_HEADER
from wa_bridge.settings import Settings
from wa_bridge.worker.loop import Worker
from wa_bridge.worker.runner import open_worker
from worker.conversation_events import (
    AD_URL,
    CTWA_CLID,
    at,
    business_status,
    consent_post,
    customer_text,
    echo,
    inbox_post,
    wamid,
)
from worker.sqlcrm import sql_settings

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

ROOT = Path(__file__).resolve().parents[2]
WA = "5215550001234"
INBOX_SECRET = b"the-inbox-signs-with-this-secret"
OPERATOR_TOKEN = "operator-token-for-consent-evidence"
HOUR = 60.0


def scenario() -> list[tuple[str, dict[str, Any]]]:
    """(webhook | inbox, body), in the order they happen."""
    return [
        ("webhook", customer_text(WA, 1, at(0), "Hola, vi el anuncio del sofá", ad=True)),
        ("webhook", business_status(WA, 2, "sent", at(0.2))),  # the bot answers
        ("consent", consent_post("form-1", at(-24 * HOUR), WA)),  # the web form, a day before
        (
            "inbox",
            inbox_post(
                "handoff",
                "h1",
                at(1),
                WA,
                conversation_id="conv-1",
                queue="ventas",
                intents=["comprar_sofa"],
                captured={"modelo": "Oslo", "color": "gris"},
            ),
        ),
        ("inbox", inbox_post("assigned", "a1", at(1.5), WA, conversation_id="conv-1", agent="ana")),
        ("inbox", inbox_post("tagged", "t1", at(2), WA, conversation_id="conv-1", tags=["sales"])),
        ("webhook", business_status(WA, 3, "sent", at(3))),  # the agent answers
        ("webhook", business_status(WA, 3, "delivered", at(3.1))),
        (
            "inbox",
            inbox_post(
                "converted",
                "c1",
                at(10),
                WA,
                conversation_id="conv-1",
                value="18999.00",
                currency="MXN",
            ),
        ),
        ("inbox", inbox_post("csat", "s1", at(11), WA, conversation_id="conv-1", csat=5)),
        ("inbox", inbox_post("tagged", "t2", at(12), WA, conversation_id="conv-1", tags=["vip"])),
        ("webhook", customer_text(WA, 4, at(30 * HOUR), "¿Ya salió mi pedido?")),
    ]


@dataclass
class Case:
    """A case as these tests ask about it, in wa-bridge's words, whatever the CRM."""

    key: str
    status: str
    channel: str | None
    opened_at: datetime | None
    closed_at: datetime | None
    outcome: str | None
    value: Decimal | None
    currency: str | None
    csat: int | None
    frt_s: int | None
    handling_s: int | None
    fcr: bool | None
    agent: str | None
    queue: str | None
    tags: list[str]
    ctwa_clid: str | None
    utm_campaign: str | None


@dataclass
class Deal:
    """A deal / opportunity, in wa-bridge's words."""

    stage: str | None
    amount: Decimal | None
    currency: str | None
    case_key: str | None
    contact_linked: bool  # associated with (HubSpot), looked up from (Salesforce) the contact


@dataclass
class Note:
    direction: str | None
    status: str | None
    case_key: str | None


class CrmView:
    """What a CRM holds after the scenario, read from its own records."""

    def contacts(self) -> list[dict[str, Any]]:
        raise NotImplementedError

    def first_touch_clid(self, contact: dict[str, Any]) -> str | None:
        raise NotImplementedError

    def cases(self) -> list[Case]:
        raise NotImplementedError

    def note(self, message_id: str) -> Note:
        raise NotImplementedError

    def deals(self) -> list[Deal]:
        raise NotImplementedError

    def consent(self, contact: dict[str, Any]) -> tuple[str | None, datetime | None]:
        """The contact's WhatsApp marketing consent in the CRM: state and since when."""
        raise NotImplementedError


def _time(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    text = str(value)
    if text.isdigit():
        return datetime.fromtimestamp(int(text) / 1000, UTC)
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def _int(value: Any) -> int | None:
    return None if value in (None, "") else int(float(value))


def _decimal(value: Any) -> Decimal | None:
    return None if value in (None, "") else Decimal(str(value))


def _bool(value: Any) -> bool | None:
    if value in (None, ""):
        return None
    return value is True or str(value).lower() == "true"


def _tags(value: Any) -> list[str]:
    if isinstance(value, list):
        return value
    return [t for t in str(value or "").split(";") if t]


class SqlView(CrmView):
    def __init__(self, shown: list[dict[str, Any]]) -> None:
        self.shown = shown  # wa-bridge crm show --json

    def contacts(self) -> list[dict[str, Any]]:
        return self.shown

    def first_touch_clid(self, contact: dict[str, Any]) -> str | None:
        touch = contact["first_touch"] or {}
        return touch.get("ctwa_clid")

    def cases(self) -> list[Case]:
        rows = [case for contact in self.shown for case in contact["cases"]]
        return sorted((self._case(r) for r in rows), key=lambda c: c.opened_at or datetime.min)

    @staticmethod
    def _case(r: dict[str, Any]) -> Case:
        return Case(
            key=r["case_key"],
            status=r["status"],
            channel=r["channel"],
            opened_at=_time(r["opened_at"]),
            closed_at=_time(r["closed_at"]),
            outcome=r["outcome"],
            value=_decimal(r["outcome_value"]),
            currency=r["outcome_currency"],
            csat=r["csat"],
            frt_s=r["frt_s"],
            handling_s=r["handling_s"],
            fcr=r["fcr"],
            agent=r["agent"],
            queue=r["queue"],
            tags=_tags(r["tags"]),
            ctwa_clid=r["ctwa_clid"],
            utm_campaign=r["utm_campaign"],
        )

    def note(self, message_id: str) -> Note:
        for contact in self.shown:
            for note in contact["notes"]:
                if note["note_key"] == message_id:
                    return Note(note["direction"], note["status"], note["case_key"])
        raise AssertionError(f"no note {message_id}")

    def consent(self, contact: dict[str, Any]) -> tuple[str | None, datetime | None]:
        state = contact["consent"].get("whatsapp:marketing") or {}
        return state.get("status"), _time(state.get("at"))

    def deals(self) -> list[Deal]:
        return [
            Deal(
                d["stage"],
                _decimal(d["amount"]),
                d["currency"],
                d["case_key"],
                d["contact_key"] == contact["contact_key"],
            )
            for contact in self.shown
            for d in contact["deals"]
        ]


class HubSpotView(CrmView):
    def __init__(self, server: HubSpotServer) -> None:
        self.server = server

    def contacts(self) -> list[dict[str, Any]]:
        return [{"id": r["id"], **r["properties"]} for r in self.server.objects("contacts")]

    def first_touch_clid(self, contact: dict[str, Any]) -> str | None:
        return contact.get("wa_first_touch_ctwa_clid")

    def cases(self) -> list[Case]:
        out = []
        for ticket in self.server.objects("tickets"):
            p = ticket["properties"]
            out.append(
                Case(
                    key=p["wa_case_key"],
                    status=p.get("wa_status"),
                    channel=p.get("wa_channel"),
                    opened_at=_time(p.get("wa_opened_at")),
                    closed_at=_time(p.get("wa_closed_at")),
                    outcome=p.get("wa_outcome"),
                    value=_decimal(p.get("wa_outcome_value")),
                    currency=p.get("wa_outcome_currency"),
                    csat=_int(p.get("wa_csat")),
                    frt_s=_int(p.get("wa_frt_s")),
                    handling_s=_int(p.get("wa_handling_s")),
                    fcr=_bool(p.get("wa_fcr")),
                    agent=p.get("wa_agent"),
                    queue=p.get("wa_queue"),
                    tags=_tags(p.get("wa_tags")),
                    ctwa_clid=p.get("wa_ctwa_clid"),
                    utm_campaign=p.get("wa_utm_campaign"),
                )
            )
            stage = p.get("hs_pipeline_stage")
            assert stage == ("1" if p.get("wa_status") == "open" else "4"), p
        return sorted(out, key=lambda c: c.opened_at or datetime.min)

    def note(self, message_id: str) -> Note:
        record = self.server.find("communications", "wa_note_key", message_id)
        assert record is not None, message_id
        p = record["properties"]
        tickets = self.server.associations_of("communications", record["id"], "tickets")
        assert len(tickets) <= 1
        case_key = None
        if tickets:
            [ticket] = [t for t in self.server.objects("tickets") if t["id"] == tickets[0]]
            case_key = ticket["properties"]["wa_case_key"]
            assert p.get("wa_case_key_ref") == case_key
        return Note(p.get("wa_direction"), p.get("wa_status") or None, case_key)

    def consent(self, contact: dict[str, Any]) -> tuple[str | None, datetime | None]:
        status = contact.get("wa_whatsapp_marketing_consent")
        return status or None, _time(contact.get("wa_whatsapp_marketing_consent_at"))

    def deals(self) -> list[Deal]:
        stages = {"closedwon": "won", "closedlost": "lost", "appointmentscheduled": "open"}
        out = []
        contact_ids = {c["id"] for c in self.server.objects("contacts")}
        for record in self.server.objects("deals"):
            p = record["properties"]
            assert p.get("pipeline") == "default"
            linked = self.server.associations_of("deals", record["id"], "contacts")
            tickets = self.server.associations_of("deals", record["id"], "tickets")
            [ticket] = [t for t in self.server.objects("tickets") if t["id"] in tickets]
            assert ticket["properties"]["wa_case_key"] == p.get("wa_case_key_ref")
            out.append(
                Deal(
                    stages.get(p.get("dealstage", ""), p.get("dealstage")),
                    _decimal(p.get("amount")),
                    p.get("deal_currency_code"),
                    p.get("wa_case_key_ref"),
                    bool(linked) and set(linked) <= contact_ids,
                )
            )
        return out


class SalesforceView(CrmView):
    def __init__(self, server: SalesforceServer) -> None:
        self.server = server

    def contacts(self) -> list[dict[str, Any]]:
        return list(self.server.objects("Contact"))

    def first_touch_clid(self, contact: dict[str, Any]) -> str | None:
        return contact.get("WA_First_Touch_Ctwa_Clid__c")

    def cases(self) -> list[Case]:
        words = {"New": "open", "Closed": None}
        out = []
        for r in self.server.objects("Case"):
            status = words.get(r["Status"], r["Status"]) or (
                "resolved" if r.get("WA_Close_Reason__c") != "lapsed" else "closed"
            )
            out.append(
                Case(
                    key=r["WA_Case_Key__c"],
                    status=status,
                    channel=r.get("WA_Channel__c"),
                    opened_at=_time(r.get("WA_Opened_At__c")),
                    closed_at=_time(r.get("WA_Closed_At__c")),
                    outcome=r.get("WA_Outcome__c"),
                    value=_decimal(r.get("WA_Outcome_Value__c")),
                    currency=r.get("WA_Outcome_Currency__c"),
                    csat=_int(r.get("WA_Csat__c")),
                    frt_s=_int(r.get("WA_Frt_S__c")),
                    handling_s=_int(r.get("WA_Handling_S__c")),
                    fcr=_bool(r.get("WA_Fcr__c")),
                    agent=r.get("WA_Agent__c"),
                    queue=r.get("WA_Queue__c"),
                    tags=_tags(r.get("WA_Tags__c")),
                    ctwa_clid=r.get("WA_Ctwa_Clid__c"),
                    utm_campaign=r.get("WA_Utm_Campaign__c"),
                )
            )
        return sorted(out, key=lambda c: c.opened_at or datetime.min)

    def note(self, message_id: str) -> Note:
        task = self.server.find("Task", "WA_Note_Key__c", message_id)
        assert task is not None, message_id
        case_key = None
        if task.get("WhatId"):
            case = self.server.find("Case", "Id", task["WhatId"])
            assert case is not None
            case_key = case["WA_Case_Key__c"]
        return Note(task.get("WA_Direction__c"), task.get("WA_Message_Status__c"), case_key)

    def consent(self, contact: dict[str, Any]) -> tuple[str | None, datetime | None]:
        status = contact.get("WA_Whatsapp_Marketing_Consent__c")
        return status or None, _time(contact.get("WA_Whatsapp_Marketing_Consent_At__c"))

    def deals(self) -> list[Deal]:
        stages = {"Closed Won": "won", "Closed Lost": "lost", "Prospecting": "open"}
        contacts = {c["Id"] for c in self.server.objects("Contact")}
        return [
            Deal(
                stages.get(r.get("StageName", ""), r.get("StageName")),
                _decimal(r.get("Amount")),
                r.get("WA_Currency__c"),
                r.get("WA_Case_Key_Ref__c"),
                r.get("ContactId") in contacts,
            )
            for r in self.server.objects("Opportunity")
        ]


@dataclass
class Target:
    """The CRM a scenario runs against: how to configure the worker, how to read it."""

    name: str
    overrides: dict[str, Any]
    view: Callable[[str], Any]  # database URL → CrmView (async for SQL)


@pytest.fixture(params=["sql", "hubspot", "salesforce"])
def target(request: pytest.FixtureRequest) -> Iterator[Target]:
    if request.param == "sql":
        yield Target("sql", {}, lambda url: None)
        return
    fixture = f"{request.param}_session"
    server: HubSpotServer | SalesforceServer = request.getfixturevalue(fixture)
    for ready in checked(server):
        overrides = {
            "connector": ready.vendor,
            "crm_base_url": ready.url,
            "crm_token": ready.token,
            "crm_timeout_s": 5,
            "crm_deals": True,  # the conversion's deal / opportunity (on for SQL already)
            "mappings_path": str(ROOT / "mappings" / f"{request.param}.yaml"),
        }
        if isinstance(ready, HubSpotServer):
            yield Target("hubspot", overrides, lambda _url, s=ready: HubSpotView(s))
        else:
            yield Target("salesforce", overrides, lambda _url, s=ready: SalesforceView(s))


@dataclass
class Pipeline:
    client: httpx.AsyncClient
    worker: Worker

    async def send(self, kind: str, body: dict[str, Any]) -> None:
        """POST ``body``, then apply it: nothing dead-lettered."""
        await self.post(kind, body)
        await self.worker.run_until_idle()
        assert self.worker.stats.dead_lettered == 0

    async def post(self, kind: str, body: dict[str, Any]) -> None:
        """POST ``body`` as a signed webhook, consent evidence or a signed inbox call."""
        content = orjson.dumps(body)
        if kind == "webhook":
            headers = {"x-hub-signature-256": sign(content, SECRET)}
            path = WEBHOOK_PATH
        elif kind == "consent":  # evidence, by a caller with the operator role
            headers = {"authorization": f"Bearer {OPERATOR_TOKEN}"}
            path = CONSENTS_PATH
        else:  # the inbox signs its calls: it holds no bearer token
            headers = {INBOX_SIGNATURE_HEADER: sign(content, INBOX_SECRET)}
            path = INBOX_PATH
        headers["content-type"] = "application/json"
        response = await self.client.post(path, content=content, headers=headers)
        assert response.status_code in (200, 202), response.text


@asynccontextmanager
async def pipeline(settings: Settings) -> AsyncIterator[Pipeline]:
    receiving = receiver_settings(
        settings.kafka_bootstrap,
        settings.kafka_topic,
        kafka_partitions=settings.kafka_partitions,
        inbox_signing_secrets=INBOX_SECRET.decode(),
        admin_tokens=[f"operator:{OPERATOR_TOKEN}"],
        database_url=settings.database_url,  # POST /consents is audited there
    )
    app = build_receiver(receiving)
    transport = httpx.ASGITransport(app=app)
    async with (
        open_worker(settings) as worker,
        app.lifespan(),
        httpx.AsyncClient(transport=transport, base_url="http://r") as client,
    ):
        async with asyncio.timeout(READY_WAIT_S):
            while True:  # polled: readiness has no event to wait on
                if app.publisher.is_ready:
                    break
                await asyncio.sleep(0.05)
        yield Pipeline(client, worker)


async def view_of(target: Target, pg_url: str) -> CrmView:
    """What the CRM holds now."""
    view: CrmView | None = target.view(pg_url)
    return view or SqlView(await load_crm_view(pg_url, notes=20))


def sales_and_consent_hook(target: Target, view: CrmView) -> None:
    """One deal / opportunity for the conversion (18999.00 MXN, won, on the contact and
    the first case), and the contact's consent state."""
    [deal] = view.deals()
    first = view.cases()[0]
    assert (deal.stage, deal.amount, deal.currency) == ("won", Decimal("18999"), "MXN")
    assert deal.case_key == first.key
    assert deal.contact_linked
    [contact] = view.contacts()
    assert view.consent(contact) == ("opt_in", at(-24 * HOUR))  # the web form's evidence


async def test_the_sale_lands_in_every_crm(
    target: Target, broker: EmbeddedBroker, topic_factory: Callable[[str], str], pg_url: str
) -> None:
    settings = sql_settings(
        broker.bootstrap,
        topic_factory(f"sale-{target.name}"),
        pg_url,
        kafka_partitions=3,
        consumer_fetch_max_wait_ms=50,
        **target.overrides,
    )
    async with pipeline(settings) as run:
        for kind, body in scenario():
            await run.send(kind, body)
    view = await view_of(target, pg_url)

    [contact] = view.contacts()  # one contact: the webhooks' and the inbox's
    assert view.first_touch_clid(contact) == CTWA_CLID
    first, second = view.cases()
    assert (first.status, second.status) == ("resolved", "open")
    assert first.channel == "whatsapp_ctwa_ad" and second.channel == "whatsapp"
    assert first.opened_at == at(0) and second.opened_at == at(30 * HOUR)
    assert first.closed_at == at(10)
    assert (first.ctwa_clid, first.utm_campaign) == (CTWA_CLID, "invierno26")
    assert (first.agent, first.queue) == ("ana", "ventas")
    assert first.tags == ["vip"]  # the late tag: on the closed case, which stays closed
    assert (first.outcome, first.value, first.currency) == ("won", Decimal("18999"), "MXN")
    assert first.csat == 5
    assert (first.frt_s, first.handling_s, first.fcr) == (180, 600, True)  # a person's answer
    assert (second.frt_s, second.csat, second.outcome, second.ctwa_clid) == (None,) * 4
    inbound, answer, bot = view.note(wamid(WA, 1)), view.note(wamid(WA, 3)), view.note(wamid(WA, 2))
    assert (inbound.direction, inbound.case_key) == ("inbound", first.key)
    assert (answer.direction, answer.status, answer.case_key) == (
        "outbound",
        "delivered",
        first.key,
    )
    assert (bot.direction, bot.case_key) == ("outbound", first.key)
    later = view.note(wamid(WA, 4))
    assert (later.direction, later.case_key) == ("inbound", second.key)
    if isinstance(view, SqlView):  # wa-bridge crm show --json, as an operator reads it
        shown = {case["status"]: case for case in contact["cases"]}["resolved"]
        assert (shown["outcome"], shown["csat"], shown["frt_s"]) == ("won", 5, 180)
        assert contact["first_touch"]["utm_campaign"] == "invierno26"
        assert contact["first_touch"]["source_url"] == AD_URL
    sales_and_consent_hook(target, view)


def cli(pg_url: str, *args: str) -> str:
    """``wa-bridge ARGS`` on the scenario's state database; its output."""
    env = {"WA_BRIDGE_DATABASE_URL": pg_url}
    result = CliRunner().invoke(app, list(args), env=env)
    assert result.exit_code == 0, result.output
    return result.stdout


async def test_opt_out_by_keyword_then_opt_in_by_evidence(
    target: Target, broker: EmbeddedBroker, topic_factory: Callable[[str], str], pg_url: str
) -> None:
    settings = sql_settings(
        broker.bootstrap,
        topic_factory(f"consent-{target.name}"),
        pg_url,
        kafka_partitions=3,
        consumer_fetch_max_wait_ms=50,
        **target.overrides,
    )
    async with pipeline(settings) as run:
        await run.send("webhook", customer_text(WA, 1, at(0), "Hola"))
        await run.send("webhook", echo(WA, 2, at(1), "STOP"))  # the business's: never counts
        view = await view_of(target, pg_url)
        [contact] = view.contacts()
        assert view.consent(contact) == (None, None)
        await run.send("webhook", customer_text(WA, 3, at(2), "Baja."))  # es: stop
        view = await view_of(target, pg_url)
        [contact] = view.contacts()
        assert view.consent(contact) == ("opt_out", at(2))
        await run.send("consent", consent_post("pos-7", at(60), WA, captured_via="pos"))
        view = await view_of(target, pg_url)
        [contact] = view.contacts()
        assert view.consent(contact) == ("opt_in", at(60))
        # evidence from before the opt-in, posted late: kept, but the state stays
        await run.send("consent", consent_post("form-0", at(-60), WA))
        await run.send("consent", consent_post("pos-7", at(60), WA, captured_via="pos"))  # again
        view = await view_of(target, pg_url)
        [contact] = view.contacts()
        assert view.consent(contact) == ("opt_in", at(60))

    shown = orjson.loads(
        await asyncio.to_thread(cli, pg_url, "consent", "show", f"+{WA}", "--json")
    )
    history = [(r["status"], r["captured_via"], _time(r["at"])) for r in shown["history"]]
    assert history == [
        ("opt_in", "web_form", at(-60)),
        ("opt_out", "whatsapp_keyword", at(2)),
        ("opt_in", "pos", at(60)),
    ]
    assert shown["current"]["whatsapp:marketing"]["event_id"] == "consent:pos-7"
    assert shown["history"][0]["text_shown"].startswith("Acepto recibir ofertas")
    text = await asyncio.to_thread(cli, pg_url, "consent", "show", f"+{WA}")
    assert "now whatsapp:marketing: opt_in since" in text


async def test_export_conversions_gives_the_click_the_value_and_the_consent(
    broker: EmbeddedBroker, topic_factory: Callable[[str], str], pg_url: str
) -> None:
    settings = sql_settings(
        broker.bootstrap, topic_factory("export"), pg_url, consumer_fetch_max_wait_ms=50
    )
    async with pipeline(settings) as run:
        for kind, body in scenario():
            await run.send(kind, body)
    rows = orjson.loads(
        await asyncio.to_thread(
            cli, pg_url, "export", "conversions", "--since", "2026-01-01", "--format", "json"
        )
    )
    [row] = rows
    assert (row["ctwa_clid"], row["touch"], row["source_type"]) == (CTWA_CLID, "case", "ad")
    assert (row["utm_campaign"], row["outcome"]) == ("invierno26", "converted")
    assert (row["value"], row["currency"]) == ("18999", "MXN")
    assert (row["consent_status"], row["consent_captured_via"]) == ("opt_in", "web_form")
    assert _time(row["converted_at"]) == at(10) and _time(row["opened_at"]) == at(0)
    text = await asyncio.to_thread(cli, pg_url, "export", "conversions", "--since", "2026-01-01")
    header, line = text.splitlines()
    assert header.startswith("case_key,contact_id,ctwa_clid,") and CTWA_CLID in line
    later = await asyncio.to_thread(
        cli, pg_url, "export", "conversions", "--since", "2099-01-01", "--format", "json"
    )
    assert orjson.loads(later) == []
