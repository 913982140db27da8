"""The worker's side of Kafka: the consumer group and the records it hands out.

One aiokafka consumer in ``settings.consumer_group`` subscribes to the main topic and its
retry topics; offsets are committed by hand (``enable_auto_commit=False``) and only for
events that are finished. Retry and DLQ topics get the main topic's partition count, so
a contact's records sit in partition p of every topic and the range assignor gives them
to one worker.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener

from wa_bridge.bus.security import kafka_client_options
from wa_bridge.bus.topics import (
    HEADER_ORIGINAL_OFFSET,
    HEADER_ORIGINAL_PARTITION,
    HEADER_ORIGINAL_TOPIC,
    HEADER_RETRY_ATTEMPT,
    HEADER_RETRY_DUE_MS,
)
from wa_bridge.settings import Settings

__all__ = ["Delivery", "build_consumer", "build_producer", "retry_headers"]

_OWN_HEADERS = frozenset({HEADER_RETRY_ATTEMPT, HEADER_RETRY_DUE_MS})


@dataclass(frozen=True, slots=True)
class Delivery:
    """One consumed record: where it sits, its bytes, and its retry state (0 = first try)."""

    topic: str
    partition: int
    offset: int
    key: str | None
    value: bytes = field(repr=False)
    headers: tuple[tuple[str, bytes], ...] = field(default=(), repr=False)
    attempt: int = 0
    due_ms: int = 0

    @classmethod
    def of(cls, record: Any) -> Delivery:
        """From an aiokafka ConsumerRecord."""
        headers = tuple((str(k), bytes(v or b"")) for k, v in (record.headers or ()))
        found = dict(headers)
        key = record.key
        return cls(
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            key=key.decode("utf-8", "replace") if isinstance(key, bytes) else None,
            value=record.value if isinstance(record.value, bytes) else b"",
            headers=headers,
            attempt=_int(found.get(HEADER_RETRY_ATTEMPT)),
            due_ms=_int(found.get(HEADER_RETRY_DUE_MS)),
        )

    def origin(self) -> tuple[str, int, int]:
        """Topic, partition, offset where the event was first consumed."""
        found = dict(self.headers)
        if HEADER_ORIGINAL_TOPIC in found:
            return (
                found[HEADER_ORIGINAL_TOPIC].decode(),
                _int(found.get(HEADER_ORIGINAL_PARTITION)),
                _int(found.get(HEADER_ORIGINAL_OFFSET)),
            )
        return self.topic, self.partition, self.offset


def _int(raw: bytes | None) -> int:
    try:
        return int(raw) if raw else 0
    except ValueError:
        return 0


def retry_headers(delivery: Delivery, *, attempt: int, due_ms: int) -> list[tuple[str, bytes]]:
    """Headers for ``delivery`` re-published to a retry topic (keeps its origin)."""
    kept = [(k, v) for k, v in delivery.headers if k not in _OWN_HEADERS]
    names = {k for k, _ in kept}
    if HEADER_ORIGINAL_TOPIC not in names:
        kept += [
            (HEADER_ORIGINAL_TOPIC, delivery.topic.encode()),
            (HEADER_ORIGINAL_PARTITION, str(delivery.partition).encode()),
            (HEADER_ORIGINAL_OFFSET, str(delivery.offset).encode()),
        ]
    kept += [
        (HEADER_RETRY_ATTEMPT, str(attempt).encode()),
        (HEADER_RETRY_DUE_MS, str(due_ms).encode()),
    ]
    return kept


def build_consumer(
    settings: Settings,
    topics: Sequence[str],
    listener: ConsumerRebalanceListener,
    **options: Any,
) -> AIOKafkaConsumer:
    """An unstarted consumer in the group, subscribed to ``topics``; ``await .start()`` it.

    The session timeout is ``settings.consumer_session_timeout_ms`` (a group join waits
    about that long on Tansu, so tests shorten it) with heartbeats at a fifth of it;
    ``options`` go to aiokafka and win over both.
    """
    session_ms = settings.consumer_session_timeout_ms
    config: dict[str, Any] = {
        "session_timeout_ms": session_ms,
        "heartbeat_interval_ms": max(100, session_ms // 5),
        # a rebalance waits for the round in flight: give it the shutdown grace and more
        "rebalance_timeout_ms": max(session_ms, int(settings.shutdown_grace_s * 1000) + 5000),
        "fetch_max_wait_ms": settings.consumer_fetch_max_wait_ms,
        **options,
    }
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=settings.consumer_group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=4 * 1024 * 1024,
        **kafka_client_options(settings),
        **config,
    )
    consumer.subscribe(list(topics), listener=listener)
    return consumer


def build_producer(settings: Settings) -> AIOKafkaProducer:
    """A producer for retry and DLQ records: acks=all, idempotence as configured."""
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        acks="all",
        enable_idempotence=settings.kafka_enable_idempotence,
        linger_ms=settings.kafka_linger_ms,
        **kafka_client_options(settings),
    )
