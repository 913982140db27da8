"""The worker's producer: the seam it re-publishes retry and DLQ records through.

:class:`KafkaRecordProducer` is the aiokafka implementation (acks=all) and the boundary
where Kafka errors become ``BusUnavailable`` (chained). The receiver publishes canonical
events through its own seam, :class:`wa_bridge.bus.producer.EventPublisher`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from aiokafka import AIOKafkaProducer

from wa_bridge.bus._errors import kafka_errors
from wa_bridge.bus.security import kafka_client_options
from wa_bridge.settings import Settings

__all__ = ["Headers", "KafkaRecordProducer", "RecordProducer", "build_producer"]


Headers = Sequence[tuple[str, bytes]]


class RecordProducer(Protocol):
    """Sends one record and waits for the broker's acknowledgement."""

    async def send_and_wait(
        self,
        topic: str,
        value: bytes,
        *,
        key: bytes | None,
        partition: int | None,
        headers: Headers,
    ) -> None:
        """Return once the record is acknowledged (``partition`` None: by key); raise
        ``BusUnavailable`` otherwise."""
        ...


class KafkaRecordProducer:
    """:class:`RecordProducer` on one ``AIOKafkaProducer``; ``start`` before use."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self._producer = producer

    async def start(self) -> None:
        """Connect; raise ``BusUnavailable`` when the broker cannot be reached."""
        with kafka_errors("producer start"):
            await self._producer.start()

    async def stop(self) -> None:
        """Send what is buffered and disconnect."""
        await self._producer.stop()

    async def send_and_wait(
        self,
        topic: str,
        value: bytes,
        *,
        key: bytes | None,
        partition: int | None,
        headers: Headers,
    ) -> None:
        with kafka_errors(f"send to {topic}"):
            await self._producer.send_and_wait(
                topic, value=value, key=key, partition=partition, headers=list(headers)
            )


def build_producer(settings: Settings) -> KafkaRecordProducer:
    """A producer for retry and DLQ records: acks=all, idempotence as configured."""
    return KafkaRecordProducer(
        AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap,
            acks="all",
            enable_idempotence=settings.kafka_enable_idempotence,
            linger_ms=settings.kafka_linger_ms,
            **kafka_client_options(settings),
        )
    )
