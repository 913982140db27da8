"""POST /inbox/events on the real receiver (build_receiver), a real KafkaPublisher on Tansu,
read back with AIOKafkaConsumer; and once through the worker into the SQL CRM."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import structlog
from jsonschema import Draft202012Validator

from wa_bridge.bus.embedded import EmbeddedBroker
from wa_bridge.bus.publishers import publisher_from_settings
from wa_bridge.cli.receiver import build_receiver
from wa_bridge.normalize.inbox import SHORT_TYPES
from wa_bridge.receiver import ReceiverApp, create_app
from wa_bridge.receiver.inbox import (
    INBOX_PATH,
    INBOX_SIGNATURE_HEADER,
    MAX_EVENTS_PER_REQUEST,
    inbox_api,
)
from wa_bridge.receiver.signature import sign

from ._harness import READY_WAIT_S, read_records, receiver_settings

pytestmark = pytest.mark.kafka

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
INBOX_TOKEN = "inbox-token-for-tests-0000001"
VIEWER_TOKEN = "viewer-token-for-tests-000001"
OPERATOR_TOKEN = "operator-token-for-tests-0001"
TOKENS = [f"inbox:{INBOX_TOKEN}", f"viewer:{VIEWER_TOKEN}", f"operator:{OPERATOR_TOKEN}"]
PNID = "106540352242922"


def inbox_event(kind: str = "resolved", n: int = 1, **changes: Any) -> dict[str, Any]:
    extra: dict[str, Any] = {
        "assigned": {"agent": "agent-7"},
        "handoff": {"queue": "ventas", "intents": ["sofa"], "captured": {"talla": "M"}},
        "tagged": {"tags": ["pricing", "vip"]},
        "resolved": {"agent": "agent-7", "outcome": "won", "reason": "pricing"},
        "converted": {"outcome": "converted", "value": "1249.90", "currency": "MXN"},
        "csat": {"csat": 4},
    }[kind]
    body: dict[str, Any] = {
        "type": kind,
        "id": f"evt-{kind}-{n}",
        "time": f"2026-06-10T16:{n % 60:02d}:00Z",
        "phone_number_id": PNID,
        "waba_id": "102290129340398",
        "conversation_id": "conv-1",
        "contact": {"phone": "+52 1 55 1234 5678"},
        **extra,
    }
    body.update(changes)
    return body


@dataclass
class Inbox:
    app: ReceiverApp
    client: httpx.AsyncClient
    topic: str
    bootstrap: str

    async def post(
        self, body: object, *, token: str | None = INBOX_TOKEN, secret: bytes | None = None
    ) -> httpx.Response:
        """Post ``body`` with a bearer ``token``, and signed with ``secret`` when given."""
        content = body if isinstance(body, bytes) else orjson.dumps(body)
        headers = {"content-type": "application/json"}
        if token is not None:
            headers["authorization"] = f"Bearer {token}"
        if secret is not None:
            headers[INBOX_SIGNATURE_HEADER] = sign(content, secret)
        return await self.client.post(INBOX_PATH, content=content, headers=headers)

    async def records(self, at_least: int) -> list[dict[str, Any]]:
        found = await read_records(self.bootstrap, self.topic, at_least=at_least)
        return [
            {"value": orjson.loads(r.value), "key": r.key, "headers": dict(r.headers)}
            for r in found
        ]


@asynccontextmanager
async def running_inbox(bootstrap: str, topic: str, **overrides: Any) -> AsyncIterator[Inbox]:
    """The receiver as `wa-bridge receiver` builds it, lifespan open, publisher connected."""
    settings = receiver_settings(bootstrap, topic, admin_tokens=TOKENS, **overrides)
    app = build_receiver(settings)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.lifespan(),
        httpx.AsyncClient(transport=transport, base_url="http://r") as client,
    ):
        async with asyncio.timeout(READY_WAIT_S):
            while True:  # polled: readiness has no event to wait on
                if app.publisher.is_ready:
                    break
                await asyncio.sleep(0.05)
        yield Inbox(app, client, topic, bootstrap)


@pytest.fixture
async def inbox(
    broker: EmbeddedBroker, topic_factory: Callable[[str], str]
) -> AsyncIterator[Inbox]:
    async with running_inbox(broker.bootstrap, topic_factory("inbox"), max_body_bytes=64_000) as r:
        yield r


@cache
def validator(event_type: str) -> Draft202012Validator:
    schema = orjson.loads((SCHEMAS / f"{event_type}.json").read_bytes())
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


# --- auth --------------------------------------------------------------------------------


async def test_only_an_inbox_token_may_post(inbox: Inbox) -> None:
    body = inbox_event()
    missing = await inbox.post(body, token=None)
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    assert (await inbox.post(body, token="not-a-configured-token-at-all")).status_code == 401
    for token in (VIEWER_TOKEN, OPERATOR_TOKEN):
        refused = await inbox.post(body, token=token)
        assert refused.status_code == 403, token
        assert "inbox role" in refused.json()["detail"]
    accepted = await inbox.post(body)
    assert accepted.status_code == 202, accepted.text
    assert accepted.json() == {"events": 1, "ids": ["inbox:evt-resolved-1"]}
    # the refused posts published nothing
    assert [r["value"]["id"] for r in await inbox.records(1)] == ["inbox:evt-resolved-1"]


async def test_an_inbox_token_cannot_read_the_admin_api(inbox: Inbox) -> None:
    headers = {"authorization": f"Bearer {INBOX_TOKEN}"}
    response = await inbox.client.get("/admin/dead-letters", headers=headers)
    assert response.status_code == 403


async def test_auth_is_checked_before_the_body_is_read(inbox: Inbox) -> None:
    assert (await inbox.post(b"{not json", token=None)).status_code == 401
    assert (await inbox.post(b"{not json", token=VIEWER_TOKEN)).status_code == 403


SIGNING = b"inbox-signing-secret-for-tests"


async def test_an_inbox_without_a_token_may_sign_its_calls(
    broker: EmbeddedBroker, topic_factory: Callable[[str], str]
) -> None:
    secrets = f"old-secret-being-rotated,{SIGNING.decode()}"
    topic = topic_factory("inbox-hmac")
    async with running_inbox(broker.bootstrap, topic, inbox_signing_secrets=secrets) as inbox:
        body = inbox_event("handoff")
        accepted = await inbox.post(body, token=None, secret=SIGNING)
        assert accepted.status_code == 202, accepted.text
        assert (
            await inbox.post(body, token=None, secret=b"old-secret-being-rotated")
        ).status_code == 202
        wrong = await inbox.post(inbox_event("csat"), token=None, secret=b"a-guess")
        assert wrong.status_code == 401 and wrong.json()["error"] == "bad_signature"
        # a signature of another body (a replayed header on changed content) does not sign it
        changed = orjson.dumps(inbox_event("csat"))
        headers = {
            "content-type": "application/json",
            INBOX_SIGNATURE_HEADER: sign(orjson.dumps(body), SIGNING),
        }
        response = await inbox.client.post(INBOX_PATH, content=changed, headers=headers)
        assert response.status_code == 401
        # a bearer token, when sent, decides: a viewer's is refused even with a signature
        assert (await inbox.post(body, token=VIEWER_TOKEN, secret=SIGNING)).status_code == 403
        records = await inbox.records(2)
    assert [r["value"]["id"] for r in records] == ["inbox:evt-handoff-1"] * 2  # no csat


async def test_signatures_are_refused_when_no_signing_secret_is_set(inbox: Inbox) -> None:
    refused = await inbox.post(inbox_event(), token=None, secret=SIGNING)
    assert refused.status_code == 401
    assert "WA_BRIDGE_INBOX_SIGNING_SECRETS" in refused.json()["detail"]


# --- publishing --------------------------------------------------------------------------


async def test_each_type_lands_on_the_topic_valid_against_its_schema(inbox: Inbox) -> None:
    posted = [inbox_event(kind, n) for n, kind in enumerate(SHORT_TYPES)]
    response = await inbox.post(posted)
    assert response.status_code == 202, response.text
    assert response.json()["ids"] == [f"inbox:{p['id']}" for p in posted]

    records = await inbox.records(len(posted))
    assert sorted(r["value"]["type"] for r in records) == sorted(
        f"inbox.conversation.{kind}" for kind in SHORT_TYPES
    )
    for record in records:
        event = record["value"]
        errors = [e.message for e in validator(event["type"]).iter_errors(event)]
        assert not errors, (event["type"], errors)
        assert event["subject"] == "+525512345678"
        assert event["source"] == f"inbox:{PNID}"
        assert record["key"] == b"+525512345678"  # one contact: one partition, in order
        assert record["headers"]["ce_type"] == event["type"].encode()
        assert record["headers"]["ce_id"] == event["id"].encode()
    # in the posted order
    assert [r["value"]["id"] for r in records] == response.json()["ids"]


async def test_a_repeated_post_publishes_the_same_id(inbox: Inbox) -> None:
    first = await inbox.post(inbox_event("csat"))
    again = await inbox.post(inbox_event("csat", csat=5))  # a retry after a lost answer
    assert first.status_code == again.status_code == 202
    assert first.json()["ids"] == again.json()["ids"] == ["inbox:evt-csat-1"]
    records = await inbox.records(2)
    assert [r["value"]["id"] for r in records] == ["inbox:evt-csat-1"] * 2  # worker dedups


@pytest.mark.parametrize(
    ("body", "error", "detail"),
    [
        (b'{"type": "resolved",', "malformed_json", ""),
        (b"[]", "invalid_event", "the list of events is empty"),
        (b'"resolved"', "invalid_event", "must be a JSON object, not a string"),
        (inbox_event("assigned", agent=None), "invalid_event", "agent: is required for assigned"),
        (inbox_event("csat", csat=9), "invalid_event", "csat: must be less than or equal to 5"),
        (
            [inbox_event("assigned"), inbox_event("tagged", tags=[]), inbox_event("csat")],
            "invalid_event",
            "events[1]: tags: at least one tag is required for tagged",
        ),
        (
            [inbox_event("csat"), inbox_event("csat", csat=5)],
            "invalid_event",
            "events[1]: id: repeats the id of events[0]",
        ),
        (
            inbox_event(contact={"name": "Mariana"}),
            "invalid_event",
            "contact.name: is not a known field",
        ),
    ],
)
async def test_bad_input_is_400_with_the_reason_and_nothing_is_published(
    inbox: Inbox, body: object, error: str, detail: str
) -> None:
    response = await inbox.post(body)
    assert response.status_code == 400, response.text
    assert response.json()["error"] == error
    assert detail in response.json()["detail"]
    assert "Mariana" not in response.text
    marker = await inbox.post(inbox_event("converted", 99))
    assert marker.status_code == 202
    assert [r["value"]["id"] for r in await inbox.records(1)] == ["inbox:evt-converted-99"]


async def test_too_large_is_413(inbox: Inbox) -> None:
    big = inbox_event(note="x" * 2000)
    response = await inbox.post([{**big, "id": f"e{n}"} for n in range(40)])
    assert response.status_code == 413
    assert response.json()["error"] == "body_too_large"
    # counted before any event is checked
    response = await inbox.post([{}] * (MAX_EVENTS_PER_REQUEST + 1))
    assert response.status_code == 413
    assert response.json()["error"] == "too_many_events"


async def test_nothing_posted_reaches_the_logs(inbox: Inbox) -> None:
    pii = ["5512345678", "Mariana", "agent-Lucia", "cliente molesto"]
    good = inbox_event(agent="agent-Lucia", note="cliente molesto, Mariana")
    bad = inbox_event(contact={"phone": "+52 55 1234 5678", "name": "Mariana"})
    with structlog.testing.capture_logs() as logs:  # what our code logs, before redaction
        assert (await inbox.post(good)).status_code == 202
        assert (await inbox.post(bad)).status_code == 400
    assert {entry["event"] for entry in logs} >= {"inbox_events_published", "inbox_rejected"}
    logged = repr(logs)
    assert not [word for word in pii if word in logged]


async def test_bus_down_is_503_with_retry_after() -> None:
    # A receiver whose broker was never reachable: its publisher has no connection.
    settings = receiver_settings("127.0.0.1:9", "inbox.down", admin_tokens=TOKENS)
    publisher = publisher_from_settings(settings)
    app = create_app(settings, publisher=publisher, routers=[inbox_api(settings, publisher)])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://r") as client:
        response = await client.post(
            INBOX_PATH,
            content=orjson.dumps(inbox_event()),
            headers={"authorization": f"Bearer {INBOX_TOKEN}"},
        )
    assert response.status_code == 503
    assert response.json()["error"] == "bus_unavailable"
    assert int(response.headers["retry-after"]) > 0


# --- through the worker into the SQL CRM -------------------------------------------------


@pytest.mark.postgres
async def test_resolved_records_the_outcome_and_closes_the_case(
    broker: EmbeddedBroker, topic_factory: Callable[[str], str], pg_url: str
) -> None:
    from sqlalchemy import select

    from wa_bridge.store import create_engine
    from wa_bridge.store.tables import cases, crm_cases, crm_outcomes
    from wa_bridge.worker.runner import open_worker
    from worker.sqlcrm import crm_state, sql_settings

    settings = sql_settings(broker.bootstrap, topic_factory("inbox-crm"), pg_url)
    async with open_worker(settings) as worker:
        async with running_inbox(
            broker.bootstrap, settings.kafka_topic, kafka_partitions=settings.kafka_partitions
        ) as inbox:
            posts = [
                [inbox_event("assigned", 1), inbox_event("tagged", 2)],
                inbox_event("resolved", 3),
                inbox_event("resolved", 3),  # the inbox retried: takes effect once
            ]
            for body in posts:
                assert (await inbox.post(body)).status_code == 202
        stats = await worker.run_until_idle()

    assert (stats.delivered, stats.duplicates, stats.dead_lettered) == (3, 1, 0)
    state = await crm_state(pg_url)
    assert state.cases == 1  # (the inbox mapping writes cases and outcomes, not contacts)
    engine = create_engine(pg_url)
    try:
        async with engine.connect() as conn:
            [case] = (await conn.execute(select(crm_cases))).mappings().all()
            outcomes = (await conn.execute(select(crm_outcomes))).mappings().all()
            [internal] = (await conn.execute(select(cases))).mappings().all()
    finally:
        await engine.dispose()
    assert case["contact_key"] == internal["contact_id"]  # the identity graph's contact
    assert (case["status"], case["agent"], case["tags"]) == (
        "resolved",
        "agent-7",
        ["pricing", "vip"],
    )
    assert case["reason"] == "PRICE"
    assert [(o["outcome"], o["reason"], o["case_key"]) for o in outcomes] == [
        ("won", "pricing", case["case_key"])
    ]
    assert internal["status"] == "resolved" and internal["closed_at"] is not None
    assert internal["business_number"] == PNID


def test_openapi_documents_every_inbox_answer_and_the_body() -> None:
    from wa_bridge.ops.openapi import openapi_document

    post = openapi_document()["paths"][INBOX_PATH]["post"]
    assert set(post["responses"]) == {"202", "400", "401", "403", "413", "503"}
    assert "Retry-After" in post["responses"]["503"]["headers"]
    one, many = post["requestBody"]["content"]["application/json"]["schema"]["anyOf"]
    assert set(one["required"]) == {"type", "id", "time", "phone_number_id", "contact"}
    assert many["items"] == one
    assert post["security"] == [{"InboxBearer": []}, {"InboxSignature": []}]  # either one


async def test_csat_after_resolution_rates_that_case_and_opens_no_new_one(
    broker: EmbeddedBroker, topic_factory: Callable[[str], str], pg_url: str
) -> None:
    from sqlalchemy import select

    from wa_bridge.store import create_engine
    from wa_bridge.store.tables import cases, crm_cases, crm_outcomes
    from wa_bridge.worker.runner import open_worker
    from worker.sqlcrm import sql_settings

    settings = sql_settings(broker.bootstrap, topic_factory("inbox-csat"), pg_url)
    async with open_worker(settings) as worker:
        async with running_inbox(
            broker.bootstrap, settings.kafka_topic, kafka_partitions=settings.kafka_partitions
        ) as inbox:
            assert (await inbox.post(inbox_event("resolved", 3))).status_code == 202
            await worker.run_until_idle()  # the resolution is applied on its own first
            assert (await inbox.post(inbox_event("csat", 4))).status_code == 202
        stats = await worker.run_until_idle()

    assert stats.dead_lettered == 0
    engine = create_engine(pg_url)
    try:
        async with engine.connect() as conn:
            internal = (await conn.execute(select(cases))).mappings().all()
            outcomes = (await conn.execute(select(crm_outcomes))).mappings().all()
            [case] = (await conn.execute(select(crm_cases))).mappings().all()
    finally:
        await engine.dispose()
    assert [c["status"] for c in internal] == ["resolved"]  # no empty case opened for the CSAT
    assert {o["case_key"] for o in outcomes} == {internal[0]["case_key"]}
    assert [o["outcome"] for o in outcomes] == ["won"]  # the CSAT is not an outcome
    assert (case["case_key"], case["csat"], case["outcome"]) == (
        internal[0]["case_key"],
        4,
        "won",
    )
