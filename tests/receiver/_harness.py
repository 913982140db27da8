"""A receiver wired to real parts: a KafkaPublisher on Tansu, read back with AIOKafkaConsumer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import ConsumerRecord

from wa_bridge.bus.producer import KafkaPublisher
from wa_bridge.bus.publishers import publisher_from_settings
from wa_bridge.normalize import normalize_webhook
from wa_bridge.receiver import WEBHOOK_PATH, ReceiverApp, create_app, sign
from wa_bridge.settings import Settings

SECRET = b"current-app-secret"
OLD_SECRET = b"previous-app-secret"
VERIFY_TOKEN = "verify-me-please"
READY_WAIT_S = 20.0


@dataclass
class Receiver:
    app: ReceiverApp
    client: httpx.AsyncClient
    publisher: KafkaPublisher
    topic: str
    bootstrap: str

    async def post(
        self,
        body: bytes,
        *,
        secret: bytes = SECRET,
        signature: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        sent = {"content-type": "application/json"}
        sent["x-hub-signature-256"] = signature if signature is not None else sign(body, secret)
        sent.update(headers or {})
        return await self.client.post(WEBHOOK_PATH, content=body, headers=sent)

    async def wait_ready(self) -> None:
        async with asyncio.timeout(READY_WAIT_S):
            while True:  # polled: readiness has no event to wait on
                if self.publisher.is_ready:
                    return
                await asyncio.sleep(0.05)


def event_ids(body: bytes) -> list[str]:
    """The ids of the events ``body`` normalizes to (ids are deterministic)."""
    events = normalize_webhook(orjson.loads(body), received_at=datetime.now(UTC))
    return [e.id for e in events]


def receiver_settings(bootstrap: str, topic: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "app_secrets": [SECRET.decode(), OLD_SECRET.decode()],
        "verify_token": VERIFY_TOKEN,
        "kafka_bootstrap": bootstrap,
        "kafka_topic": topic,
        "kafka_partitions": 3,
        "kafka_enable_idempotence": False,
        # Generous: on a loaded 2-core box Tansu once took over 5 s (the production default)
        # to acknowledge, and a test not about timeouts got a 503. The outage tests set
        # their own short timeout.
        "publish_timeout_s": 15.0,
    }
    values.update(overrides)
    return Settings(**values)


@asynccontextmanager
async def running_receiver(
    bootstrap: str, topic: str, *, probe_interval_s: float = 0.2, **overrides: Any
) -> AsyncIterator[Receiver]:
    """A receiver app with its lifespan open and its publisher connected."""
    settings = receiver_settings(bootstrap, topic, **overrides)
    publisher = publisher_from_settings(settings)
    publisher.probe_interval_s = probe_interval_s
    app = create_app(settings, publisher=publisher)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.lifespan(),
        httpx.AsyncClient(transport=transport, base_url="http://r") as client,
    ):
        receiver = Receiver(app, client, publisher, topic, bootstrap)
        await receiver.wait_ready()
        yield receiver


async def read_records(
    bootstrap: str, topic: str, *, at_least: int, timeout_s: float = 20.0
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record of ``topic`` from the start, once at least ``at_least`` are there."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    records: list[ConsumerRecord[bytes, bytes]] = []
    try:
        async with asyncio.timeout(timeout_s):
            while len(records) < at_least:
                batch = await consumer.getmany(timeout_ms=200)
                for part in batch.values():
                    records.extend(part)
        # Anything more that is already there (a test may check nothing extra arrived).
        batch = await consumer.getmany(timeout_ms=300)
        for part in batch.values():
            records.extend(part)
    finally:
        await consumer.stop()
    return records
