"""Helpers for worker tests into the built-in SQL CRM (PostgreSQL, mappings/sql.yaml).

Events are real shapes: Meta webhook bodies from ``tests/samples/meta`` normalized with
``normalize_webhook``. Checks read the CRM tables and the ledger directly.
"""

from __future__ import annotations

import copy
import os
import sys
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from wa_bridge.bus.admin import ensure_topics
from wa_bridge.bus.headers import event_headers, record_key
from wa_bridge.events import CanonicalEvent
from wa_bridge.normalize import normalize_webhook
from wa_bridge.settings import Settings
from wa_bridge.store import create_engine

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "tests" / "samples" / "meta"
SQL_MAPPING = ROOT / "mappings" / "sql.yaml"
RECEIVED_AT = datetime(2026, 6, 11, 18, 0, tzinfo=UTC)
WA_BRIDGE = str(Path(sys.executable).parent / "wa-bridge")


def sample_body(name: str) -> dict[str, Any]:
    body: dict[str, Any] = orjson.loads((SAMPLES / name).read_bytes())
    return body


def sample_events(name: str) -> list[CanonicalEvent]:
    return normalize_webhook(sample_body(name), received_at=RECEIVED_AT)


def text_body(n: int, contact: int) -> dict[str, Any]:
    """``text_mx.json`` turned into message ``n`` of contact ``contact`` (unique ids)."""
    body = sample_body("text_mx.json")
    value = body["entry"][0]["changes"][0]["value"]
    wa_id = f"52155{contact:08d}"
    value["contacts"][0].update(wa_id=wa_id, user_id=f"MX.{contact:019d}")
    value["contacts"][0].pop("parent_user_id", None)
    msg = value["messages"][0]
    msg.update(
        id=f"wamid.T{contact:06d}N{n:07d}",
        timestamp=str(1781200000 + n),
        text={"body": f"note {n}"},
    )
    msg["from"] = wa_id
    msg["from_user_id"] = f"MX.{contact:019d}"
    msg.pop("from_parent_user_id", None)
    return body


def status_body(message_n: int, contact: int, status: str, at_s: int) -> dict[str, Any]:
    """A status webhook (``statuses_br.json`` shape) about message ``message_n``."""
    body = sample_body("statuses_br.json")
    value = body["entry"][0]["changes"][0]["value"]
    wa_id = f"52155{contact:08d}"
    value["contacts"] = [{"profile": {"name": "x"}, "wa_id": wa_id}]
    first = copy.deepcopy(value["statuses"][0])
    for drop in ("recipient_user_id", "parent_recipient_user_id", "conversation", "pricing"):
        first.pop(drop, None)
    first.update(
        id=f"wamid.T{contact:06d}N{message_n:07d}",
        status=status,
        timestamp=str(at_s),
        recipient_id=wa_id,
    )
    value["statuses"] = [first]
    return body


def text_events(count: int, contacts: int) -> list[CanonicalEvent]:
    """``count`` text messages spread round-robin over ``contacts`` contacts."""
    out: list[CanonicalEvent] = []
    for n in range(count):
        out += normalize_webhook(text_body(n, n % contacts), received_at=RECEIVED_AT)
    return out


def note_seq(event: CanonicalEvent) -> int:
    """The production sequence number carried in a text event's message id."""
    return int(str(event.data["message_id"]).rsplit("N", 1)[1])


def sql_settings(bootstrap: str, topic: str, database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "kafka_bootstrap": bootstrap,
        "kafka_topic": topic,
        "kafka_partitions": 2,
        "kafka_enable_idempotence": False,
        "consumer_group": f"g-{uuid.uuid4().hex[:8]}",
        "database_url": database_url,
        "connector": "sql",
        "mappings_path": str(SQL_MAPPING),
        "retry_delays_s": [0.2, 0.5],
        "retry_in_place_attempts": 2,
        "shutdown_grace_s": 5,
        "consumer_session_timeout_ms": 1000,
    }
    values.update(overrides)
    return Settings(**values)


def worker_env(settings: Settings) -> dict[str, str]:
    """The environment for a ``wa-bridge worker`` subprocess with these settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WA_BRIDGE_")}
    env.update(
        WA_BRIDGE_KAFKA_BOOTSTRAP=settings.kafka_bootstrap,
        WA_BRIDGE_KAFKA_TOPIC=settings.kafka_topic,
        WA_BRIDGE_KAFKA_PARTITIONS=str(settings.kafka_partitions),
        WA_BRIDGE_KAFKA_ENABLE_IDEMPOTENCE="false",
        WA_BRIDGE_CONSUMER_GROUP=settings.consumer_group,
        WA_BRIDGE_DATABASE_URL=settings.database_url or "",
        WA_BRIDGE_CONNECTOR="sql",
        WA_BRIDGE_MAPPINGS_PATH=settings.mappings_path,
        WA_BRIDGE_RETRY_DELAYS_S=",".join(str(d) for d in settings.retry_delays_s),
        WA_BRIDGE_SHUTDOWN_GRACE_S=str(settings.shutdown_grace_s),
        WA_BRIDGE_CONSUMER_SESSION_TIMEOUT_MS=str(settings.consumer_session_timeout_ms),
        WA_BRIDGE_WORKER_BATCH_MAX=str(settings.worker_batch_max),
        WA_BRIDGE_LOG_LEVEL="INFO",
        WA_BRIDGE_CONVERSATION_SWEEP_INTERVAL_S=str(settings.conversation_sweep_interval_s),
    )
    return env


async def publish(
    settings: Settings, events: Sequence[CanonicalEvent], *, create: bool = True
) -> None:
    """Produce ``events`` as the receiver does (key = contact key, ce_* headers)."""
    if create:
        from wa_bridge.worker.runner import worker_topics

        await ensure_topics(
            settings.kafka_bootstrap, worker_topics(settings), settings.kafka_partitions
        )
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        futures = [
            await producer.send(
                settings.kafka_topic,
                event.to_json(),
                key=record_key(event),
                headers=event_headers(event),
            )
            for event in events
        ]
        for fut in futures:
            await fut
    finally:
        await producer.stop()


@dataclass(frozen=True)
class CrmState:
    contacts: int
    cases: int
    notes: dict[str, dict[str, Any]]  # note_key → row
    outcomes: Counter[str]  # ledger outcome → count
    dead_letters: int

    @property
    def effective(self) -> int:
        """Events that took effect (applied, or stale / noop by design)."""
        return sum(self.outcomes[o] for o in ("applied", "stale", "noop", "replayed"))


async def crm_state(database_url: str) -> CrmState:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            contacts = (await conn.execute(text("SELECT count(*) FROM crm_contacts"))).scalar()
            cases = (await conn.execute(text("SELECT count(*) FROM crm_cases"))).scalar()
            rows = (await conn.execute(text("SELECT * FROM crm_notes"))).mappings().all()
            ledger = (
                await conn.execute(
                    text("SELECT outcome, count(*) FROM processed_events GROUP BY outcome")
                )
            ).all()
            dead = (await conn.execute(text("SELECT count(*) FROM dead_letters"))).scalar()
    finally:
        await engine.dispose()
    return CrmState(
        contacts=int(contacts or 0),
        cases=int(cases or 0),
        notes={str(r["note_key"]): dict(r) for r in rows},
        outcomes=Counter({str(o): int(c) for o, c in ledger}),
        dead_letters=int(dead or 0),
    )


async def committed_offsets(settings: Settings, partitions: Sequence[int] = ()) -> int:
    """Sum over the main topic's partitions (``partitions``, else all) of the group's
    committed offsets (0 for a partition with none).

    Read with a consumer of the group that never joins it (aiokafka's admin client
    cannot decode Tansu's OffsetFetch answer).
    """
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=settings.consumer_group,
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        total = 0
        for partition in partitions or range(settings.kafka_partitions):
            offset = await consumer.committed(TopicPartition(settings.kafka_topic, partition))
            total += offset or 0
        return total
    finally:
        await consumer.stop()


async def note_writes(database_url: str) -> Counter[str]:
    """Committed writes per crm_notes key (needs the ``sql_crm_url`` trigger)."""
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    text("SELECT note_key, count(*) FROM crm_write_log GROUP BY note_key")
                )
            ).all()
    finally:
        await engine.dispose()
    return Counter({str(k): int(c) for k, c in rows})


def status_events(message_n: int, contact: int, status: str, at_s: int) -> list[CanonicalEvent]:
    return normalize_webhook(status_body(message_n, contact, status, at_s), received_at=RECEIVED_AT)


async def ledger_count(engine: AsyncEngine) -> int:
    """Events the worker claimed in the ledger (committed transactions only)."""
    async with engine.connect() as conn:
        return int((await conn.execute(text("SELECT count(*) FROM processed_events"))).scalar_one())


async def note_order(engine: AsyncEngine) -> list[str]:
    """crm_notes keys in the order their rows were first written (the write log)."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT note_key FROM crm_write_log WHERE op = 'INSERT' ORDER BY id")
        )
        return [str(k) for k in rows.scalars()]


def order_breaks(note_keys: Sequence[str]) -> list[str]:
    """Notes written before an earlier-produced note of the same contact (want: none)."""
    last: dict[str, int] = {}
    breaks = []
    for key in note_keys:
        contact, n = key.removeprefix("wamid.T").split("N")
        if int(n) < last.get(contact, -1):
            breaks.append(key)
        last[contact] = max(int(n), last.get(contact, -1))
    return breaks
