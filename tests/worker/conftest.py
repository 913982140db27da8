"""Worker test fixtures: a fresh topic and group per test, the REST CRM contract server."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from connectors.conftest import (  # noqa: F401 - fixtures
    checked,
    hubspot_session,
    rest_crm_server,
    rest_crm_session,
    serving,
)
from connectors.servers import RecordedRequest, Reply, RestCrmServer
from wa_bridge.bus.admin import ensure_topics
from wa_bridge.bus.embedded import EmbeddedBroker
from wa_bridge.bus.headers import event_headers, record_key
from wa_bridge.events import CanonicalEvent
from wa_bridge.settings import Settings
from wa_bridge.store import open_store
from wa_bridge.store.api import Store
from wa_bridge.worker.dlq import DlqGuard
from wa_bridge.worker.loop import Worker
from wa_bridge.worker.runner import open_worker, worker_topics

from .mapper import NoteMapper

# Tansu makes a group join wait about half the session timeout: keep it short in tests.
FAST_GROUP = {"session_timeout_ms": 1000, "heartbeat_interval_ms": 200}
PNID = "1098765432"


def make_event(
    n: int, contact: str, *, seq: int | None = None, pnid: str = PNID, **data: Any
) -> CanonicalEvent:
    body: dict[str, Any] = {
        "message_id": f"wamid.{n}",
        "phone_number_id": pnid,
        "seq": n if seq is None else seq,
        "contact": {"key": contact, "phone_e164": contact, "wa_id": contact.lstrip("+")},
        **data,
    }
    return CanonicalEvent(
        id=f"ev-{n}",
        type="whatsapp.message.received",
        source="waba/1",
        time=f"2026-06-10T12:{n // 60 % 60:02d}:{n % 60:02d}Z",
        data=body,
        subject=contact,
        wabaid="1",
    )


class FlakyCrm(RestCrmServer):
    """The REST CRM, plus: notes of given message ids fail with 503 a number of times
    (``flaky``), or make their request answer late (``slow``: seconds)."""

    def __init__(self) -> None:
        super().__init__()
        self.flaky: dict[str, int] = {}
        self.slow: dict[str, float] = {}
        self.slow_started: list[str] = []  # slow notes whose request arrived

    def reset(self) -> None:
        super().reset()
        self.flaky = {}
        self.slow = {}
        self.slow_started = []

    async def _answer(self, request: RecordedRequest) -> Reply:
        ops = request.body.get("operations", []) if request.path == "/batch" else []
        slow = [item["key"] for item in ops if item.get("key") in self.slow]
        if slow:
            self.slow_started += slow
            await asyncio.sleep(max(self.slow[key] for key in slow))
        return await super()._answer(request)

    def handle(self, request: RecordedRequest) -> Reply:
        ops = request.body.get("operations", []) if request.path == "/batch" else []
        for item in ops:
            key = item.get("key")
            if item.get("op") == "add_note" and self.flaky.get(key, 0) > 0:
                self.flaky[key] -= 1
                return self.error_reply(503, "scripted outage for one record")
        return super().handle(request)

    def notes(self) -> dict[str, dict[str, Any]]:
        return self.collection("notes")

    def all_answered(self) -> bool:
        """Every request received was answered (a slow one the client gave up on, too)."""
        with self._lock:
            return all(r.status for r in self.requests)

    def note_writes(self) -> list[str]:
        """Message ids of note writes the CRM accepted, in arrival order."""
        out = []
        for r in self.requests:
            if r.path == "/batch" and r.status in (200, 207):
                out += [i["key"] for i in r.body["operations"] if i["op"] == "add_note"]
        return out


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    """A state store on a fresh SQLite file (tables created), closed after the test."""
    opened = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'state.db'}", create=True)
    yield opened
    await opened.aclose()


@pytest.fixture(scope="session")
def flaky_session() -> Iterator[FlakyCrm]:
    yield from serving(FlakyCrm())


@pytest.fixture
def crm(flaky_session: FlakyCrm) -> Iterator[FlakyCrm]:
    yield from checked(flaky_session)


@pytest.fixture
def settings_factory(
    broker: EmbeddedBroker, topic_factory: Callable[[str], str], pg_url: str, crm: FlakyCrm
) -> Callable[..., Settings]:
    topic = topic_factory("wa")
    group = f"g-{uuid.uuid4().hex[:8]}"

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "kafka_bootstrap": broker.bootstrap,
            "kafka_topic": topic,
            "kafka_partitions": 2,
            "kafka_enable_idempotence": False,
            "consumer_group": group,
            "database_url": pg_url,
            "connector": "rest",
            "crm_base_url": crm.url,
            "crm_token": crm.token,
            # long enough for a loaded CI machine; a test of timeouts sets its own
            "crm_timeout_s": 2.0,
            "retry_delays_s": [0.2, 0.5],
            "retry_in_place_attempts": 2,
            "shutdown_grace_s": 5,
        }
        values.update(overrides)
        return Settings(**values)

    return make


@pytest.fixture
def worker_factory() -> Callable[..., AbstractAsyncContextManager[Worker]]:
    def make(
        settings: Settings, *, guard: DlqGuard | None = None
    ) -> AbstractAsyncContextManager[Worker]:
        return open_worker(settings, mapper=NoteMapper(), guard=guard, consumer_options=FAST_GROUP)

    return make


async def publish(settings: Settings, events: Sequence[CanonicalEvent | bytes]) -> None:
    await ensure_topics(
        settings.kafka_bootstrap, worker_topics(settings), settings.kafka_partitions
    )
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for event in events:
            if isinstance(event, bytes):
                await producer.send_and_wait(settings.kafka_topic, event, key=b"garbage")
                continue
            await producer.send_and_wait(
                settings.kafka_topic,
                event.to_json(),
                key=record_key(event),
                headers=event_headers(event),
            )
    finally:
        await producer.stop()


# --- the built-in SQL CRM (mappings/sql.yaml) on PostgreSQL ---------------------------

WRITE_LOG_DDL = (
    "CREATE TABLE IF NOT EXISTS crm_write_log "
    "(id bigserial PRIMARY KEY, note_key text NOT NULL, op text NOT NULL)",
    "CREATE OR REPLACE FUNCTION crm_log_note_write() RETURNS trigger AS $$ BEGIN "
    "INSERT INTO crm_write_log (note_key, op) VALUES (NEW.note_key, TG_OP); RETURN NEW; "
    "END $$ LANGUAGE plpgsql",
    "DROP TRIGGER IF EXISTS crm_notes_write_log ON crm_notes",
    "CREATE TRIGGER crm_notes_write_log AFTER INSERT OR UPDATE ON crm_notes "
    "FOR EACH ROW EXECUTE FUNCTION crm_log_note_write()",
    "TRUNCATE crm_write_log",
)


@pytest.fixture
async def sql_crm_url(pg_url: str) -> str:
    """The emptied session schema, plus a trigger that logs every committed crm_notes
    write (``crm_write_log``): the count of CRM writes per note, for the exactly-once checks.
    """
    from sqlalchemy import text

    from wa_bridge.store import create_engine

    engine = create_engine(pg_url)
    try:
        async with engine.begin() as conn:
            for statement in WRITE_LOG_DDL:
                await conn.execute(text(statement))
    finally:
        await engine.dispose()
    return pg_url


@pytest.fixture
def sql_settings_factory(
    broker: EmbeddedBroker, topic_factory: Callable[[str], str], sql_crm_url: str
) -> Callable[..., Settings]:
    """Settings for the SQL CRM with mappings/sql.yaml; one topic and group per test."""
    from .sqlcrm import sql_settings

    topic = topic_factory("wa")
    group = f"g-{uuid.uuid4().hex[:8]}"

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {"consumer_group": group}
        values.update(overrides)
        return sql_settings(broker.bootstrap, topic, sql_crm_url, **values)

    return make
