"""Failure paths log no personal data either (the happy path: ``test_no_pii_in_logs.py``).

The event of ``tests/samples/meta/text_mx.json`` (a phone number, a name, a message) goes
through the receiver and the worker at DEBUG level while things go wrong: a CRM refuses
it with a message that echoes the values sent (as HubSpot's "Property values were not
valid" does), a CRM fails with 5xx or answers too late, our own code meets a bug whose
exception message carries the record, the receiver refuses bodies, and a replay of the
dead letter fails again. The dead letter keeps the CRM's message (``crm_error``, checked
here so that the echo provably reached us); nothing the processes write carries it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import httpx
import orjson
import pytest
import structlog

from connectors.conftest import checked, hubspot_session, rest_crm_session  # noqa: F401
from connectors.servers import HubSpotServer, RestCrmServer
from connectors.servers.hubspot.errors import invalid_property, property_values_error
from receiver._harness import receiver_settings, running_receiver
from wa_bridge.bus.embedded import EmbeddedBroker
from wa_bridge.cli.receiver import build_receiver
from wa_bridge.connectors import CrmConnector
from wa_bridge.connectors.base import OpResult, RecordBook
from wa_bridge.log import configure_logging
from wa_bridge.operations import CrmOperation
from wa_bridge.receiver.inbox import INBOX_PATH
from wa_bridge.settings import Settings
from wa_bridge.store import open_store
from wa_bridge.store.api import DeadLetter, DeadLetterFilter
from wa_bridge.worker.assembly import DeadLetterReplayer
from wa_bridge.worker.loop import WorkerStats
from wa_bridge.worker.runner import open_worker
from worker.sqlcrm import ROOT, SAMPLES, sql_settings

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

# Personal data in tests/samples/meta/text_mx.json (the number in two spellings).
WA_ID = "5215550001234"
PII = ("5550001234", "555 000 1234", "Renata", "Olvera", "cotizan", "roble")
INBOX_TOKEN = "inbox-token-for-pii-tests-00001"


def _echo_body() -> dict[str, Any]:
    """HubSpot's 400 for bad property values, echoing each value it was sent."""
    items = [
        invalid_property("phone", "INVALID_PHONE", f"'+{WA_ID}' is not a valid phone number"),
        invalid_property("firstname", "INVALID_STRING", "'Renata Olvera' is too long"),
        invalid_property(
            "hs_communication_body", "INVALID_STRING", "'Hola, ¿me cotizan una mesa de roble'"
        ),
    ]
    return property_values_error(items)


@pytest.fixture
def logs(capfd: pytest.CaptureFixture[str]) -> Iterator[Callable[[], str]]:
    """Everything the test's processes write (JSON logs at DEBUG), read on demand."""
    configure_logging(fmt="json", level="DEBUG")
    written: list[str] = []

    def read() -> str:
        out, err = capfd.readouterr()
        written.append(out + err)
        return "".join(written)

    try:
        yield read
    finally:
        structlog.reset_defaults()
        configure_logging()


def _leaked(text: str) -> list[str]:
    return [item for item in PII if item in text]


@pytest.fixture
def hubspot(hubspot_session: HubSpotServer) -> Iterator[HubSpotServer]:  # noqa: F811
    yield from checked(hubspot_session)


@pytest.fixture
def rest_crm(rest_crm_session: RestCrmServer) -> Iterator[RestCrmServer]:  # noqa: F811
    yield from checked(rest_crm_session)


async def _sample_posted(
    broker: EmbeddedBroker, topic: str, pg_url: str, server: HubSpotServer | RestCrmServer
) -> Settings:
    """The worker's settings for ``server``, once the receiver took the text sample."""
    body = (SAMPLES / "text_mx.json").read_bytes()
    async with running_receiver(broker.bootstrap, topic) as receiver:
        assert (await receiver.post(body)).status_code == 200
    return sql_settings(
        broker.bootstrap,
        topic,
        pg_url,
        kafka_partitions=3,
        connector=server.vendor,
        crm_base_url=server.url,
        crm_token=server.token,
        crm_timeout_s=0.3,
        mappings_path=str(ROOT / "mappings" / f"{server.vendor}.yaml"),
    )


async def _dead_lettered(
    settings: Settings, connector: CrmConnector | None = None
) -> tuple[WorkerStats, DeadLetter]:
    """Run a worker until idle; it must dead-letter the posted sample, and only it."""
    async with open_worker(settings, connector=connector) as worker:
        stats = await worker.run_until_idle()
    assert stats.dead_lettered == 1
    store = await open_store(settings.database_url)
    try:
        [letter] = await store.list_dead_letters(DeadLetterFilter())
    finally:
        await store.aclose()
    return stats, letter


async def _replay(settings: Settings, **parts: Any) -> Sequence[Any]:
    """Replay every open dead letter as the CLI and the admin API do."""
    store = await open_store(settings.database_url)
    try:
        letters = await store.list_dead_letters(DeadLetterFilter())
        async with DeadLetterReplayer(settings, store, **parts) as replayer:
            return list(await replayer.replay([d.id for d in letters], actor="ops"))
    finally:
        await store.aclose()


async def test_a_crm_refusal_echoing_the_values_is_kept_in_the_dead_letter_not_logged(
    broker: EmbeddedBroker,
    topic_factory: Callable[[str], str],
    pg_url: str,
    hubspot: HubSpotServer,
    logs: Callable[[], str],
) -> None:
    topic = topic_factory("pii-refused")
    settings = await _sample_posted(broker, topic, pg_url, hubspot)
    hubspot.script(status=400, body=_echo_body(), times=50)
    _, letter = await _dead_lettered(settings)
    assert letter.error_class == "CrmRejected"
    assert WA_ID in (letter.crm_error or "")  # the CRM's message is kept, echo and all
    [result] = await _replay(settings)  # the CRM still refuses it
    assert result.status == "failed"
    hubspot.reset_faults()
    logged = logs()
    assert "event_dead_lettered" in logged and "CrmRejected" in logged
    assert _leaked(logged + result.detail) == []


async def test_a_crm_failing_with_5xx_and_timeouts_logs_no_personal_data(
    broker: EmbeddedBroker,
    topic_factory: Callable[[str], str],
    pg_url: str,
    rest_crm: RestCrmServer,
    logs: Callable[[], str],
) -> None:
    topic = topic_factory("pii-down")
    settings = await _sample_posted(broker, topic, pg_url, rest_crm)
    echo = {"error": {"code": "error", "message": f"backend failed on +{WA_ID} Renata Olvera"}}
    rest_crm.script(status=503, body=echo, times=4)
    rest_crm.script(delay_s=1.0, times=100)  # then every answer comes too late
    stats, letter = await _dead_lettered(settings)
    assert stats.retried >= 1
    assert letter.error_class == "CrmUnavailable"
    rest_crm.reset_faults()
    logged = logs()
    assert "event_retried" in logged and "CrmUnavailable" in logged
    assert _leaked(logged) == []


class BrokenCrm:
    """A connector with a bug: it fails every call with the record in the message (as a
    KeyError or a careless f-string does)."""

    name = "rest"
    instance = "broken"
    max_batch = 100

    async def apply(self, ops: Sequence[CrmOperation], book: RecordBook) -> list[OpResult]:
        fields = [op.fields for op in ops]
        raise RuntimeError(f"cannot handle the answer for {fields}") from KeyError(
            f"+{WA_ID} (Renata Olvera)"
        )

    async def aclose(self) -> None:
        return None


async def test_a_bug_whose_exception_carries_the_record_logs_its_traceback_not_the_record(
    broker: EmbeddedBroker,
    topic_factory: Callable[[str], str],
    pg_url: str,
    rest_crm: RestCrmServer,
    logs: Callable[[], str],
) -> None:
    topic = topic_factory("pii-bug")
    settings = await _sample_posted(broker, topic, pg_url, rest_crm)
    crm: CrmConnector = BrokenCrm()
    _, letter = await _dead_lettered(settings, connector=crm)
    assert letter.error_class == "UnexpectedError"
    [result] = await _replay(settings, connector=BrokenCrm())
    assert result.status == "failed"
    logged = logs()
    # the traceback is still there, with the error's class and where it was raised
    assert "event_failed_unexpectedly" in logged and "retrying_in_place" in logged
    assert "RuntimeError" in logged and "in apply" in logged
    assert _leaked(logged + result.detail) == []


async def test_refused_bodies_are_neither_logged_nor_echoed(
    broker: EmbeddedBroker, topic_factory: Callable[[str], str], logs: Callable[[], str]
) -> None:
    topic = topic_factory("pii-receiver")
    body = (SAMPLES / "text_mx.json").read_bytes()
    malformed = body.replace(b'"type": "text"', b'"type": "text",,')
    too_large = body.replace(b"Hola", b"Hola" + b" " * 70_000)
    async with running_receiver(broker.bootstrap, topic, max_body_bytes=64_000) as receiver:
        answers = [await receiver.post(malformed), await receiver.post(too_large)]
    assert [a.status_code for a in answers] == [400, 413]
    settings = receiver_settings(broker.bootstrap, topic, admin_tokens=[f"inbox:{INBOX_TOKEN}"])
    inbox = {
        "type": "resolved",
        "id": "evt-1",
        "time": "2026-06-10T16:00:00Z",
        "phone_number_id": "400000000000001",
        "conversation_id": "conv-1",
        "contact": {"phone": "+52 1 555 000 1234 Renata Olvera", "wa_id": WA_ID},
        "agent": "agent-7",
        "outcome": "won",
        "value": "1" * 15,
    }
    app = build_receiver(settings)
    headers = {"authorization": f"Bearer {INBOX_TOKEN}", "content-type": "application/json"}
    transport = httpx.ASGITransport(app=app)
    async with app.lifespan(), httpx.AsyncClient(transport=transport, base_url="http://r") as c:
        refused = [
            await c.post(INBOX_PATH, content=orjson.dumps(inbox), headers=headers),
            await c.post(INBOX_PATH, content=orjson.dumps(inbox)[:-3], headers=headers),
        ]
    assert [r.status_code for r in refused] == [400, 400]
    logged = logs()
    assert "webhook_rejected" in logged and "inbox_rejected" in logged
    echoed = "".join(a.text for a in [*answers, *refused])
    assert _leaked(logged) == [] and _leaked(echoed) == []
