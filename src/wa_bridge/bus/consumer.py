"""The worker's side of Kafka: the consumer seam, its aiokafka adapter, and the records.

The worker codes against :class:`RecordConsumer` (a member of the consumer group) and
sees our own :class:`TopicPartition` and :class:`Delivery`; :class:`KafkaRecordConsumer`
is the aiokafka implementation and the boundary where Kafka errors become
``BusUnavailable`` (chained). Offsets are committed by hand (``enable_auto_commit=False``)
and only for events that are finished. Retry and DLQ topics get the main topic's
partition count, so a contact's records sit in partition p of every topic and the range
assignor gives them to one worker.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener
from aiokafka import TopicPartition as KafkaTopicPartition
from aiokafka.errors import KafkaError

from wa_bridge.bus._errors import kafka_errors
from wa_bridge.bus.security import kafka_client_options
from wa_bridge.bus.topics import (
    HEADER_ORIGINAL_OFFSET,
    HEADER_ORIGINAL_PARTITION,
    HEADER_ORIGINAL_TOPIC,
    HEADER_RETRY_ATTEMPT,
    HEADER_RETRY_DUE_MS,
)
from wa_bridge.log import get_logger
from wa_bridge.settings import Settings
from wa_bridge.slot_init import slot_init

__all__ = [
    "Delivery",
    "KafkaRecordConsumer",
    "RebalanceListener",
    "RecordConsumer",
    "TopicPartition",
    "build_consumer",
    "retry_headers",
]

log = get_logger("bus.consumer")

_OWN_HEADERS = frozenset({HEADER_RETRY_ATTEMPT, HEADER_RETRY_DUE_MS})


class TopicPartition(NamedTuple):
    """One partition of one topic."""

    topic: str
    partition: int


@slot_init
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
        raw = record.headers
        headers = _headers(raw) if raw else ()
        attempt = due_ms = 0
        for name, value in headers:  # a first try carries neither: no dict per record
            if name in _OWN_HEADERS:
                if name == HEADER_RETRY_ATTEMPT:
                    attempt = _int(value)
                else:
                    due_ms = _int(value)
        key, value = record.key, record.value
        return cls(
            record.topic,
            record.partition,
            record.offset,
            key.decode("utf-8", "replace") if isinstance(key, bytes) else None,
            value if isinstance(value, bytes) else b"",
            headers,
            attempt,
            due_ms,
        )

    def origin(self) -> tuple[str, int, int]:
        """Topic, partition, offset where the event was first consumed."""
        for name, _ in self.headers:
            if name == HEADER_ORIGINAL_TOPIC:
                break
        else:
            return self.topic, self.partition, self.offset  # first consumed here
        found = dict(self.headers)
        return (
            found[HEADER_ORIGINAL_TOPIC].decode(),
            _int(found.get(HEADER_ORIGINAL_PARTITION)),
            _int(found.get(HEADER_ORIGINAL_OFFSET)),
        )


def _headers(raw: Any) -> tuple[tuple[str, bytes], ...]:
    """A record's headers as ``(str, bytes)`` pairs: aiokafka's own when they are so
    already (every record it reads), else each one converted."""
    for pair in raw:
        if type(pair) is not tuple or type(pair[0]) is not str or type(pair[1]) is not bytes:
            return tuple(_header(k, v) for k, v in raw)
    return tuple(raw)


def _header(name: Any, value: Any) -> tuple[str, bytes]:
    """One record header as ``(str, bytes)`` (aiokafka gives them so already)."""
    return (
        name if type(name) is str else str(name),
        value if type(value) is bytes else bytes(value or b""),
    )


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


class RebalanceListener(Protocol):
    """Told when the group gives this member partitions or takes them away."""

    async def on_revoked(self, partitions: list[TopicPartition]) -> None:
        """Called before ``partitions`` go to another member: finish and commit first."""
        ...

    async def on_assigned(self, partitions: list[TopicPartition]) -> None: ...


class RecordConsumer(Protocol):
    """A member of the worker's consumer group, as the worker uses it.

    Every method that talks to the broker raises ``BusUnavailable`` when Kafka fails
    (unreachable, timed out, or the group moved on before a commit); nothing else.
    """

    async def start(self, topics: Sequence[str], listener: RebalanceListener) -> None:
        """Subscribe to ``topics`` with ``listener`` and join the group."""
        ...

    async def stop(self) -> None:
        """Leave the group (after the caller's last commit)."""
        ...

    def assignment(self) -> frozenset[TopicPartition]: ...

    async def getmany(
        self, *, timeout_ms: int, max_records: int
    ) -> dict[TopicPartition, list[Delivery]]:
        """What is ready, waiting up to ``timeout_ms``; at most ``max_records`` in all."""
        ...

    def pause(self, partition: TopicPartition) -> None: ...

    def resume(self, partition: TopicPartition) -> None: ...

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Commit ``offsets`` (each the offset of the next record to read)."""
        ...

    async def position(self, partition: TopicPartition) -> int: ...

    async def end_offsets(
        self, partitions: Sequence[TopicPartition]
    ) -> dict[TopicPartition, int]: ...


def _ours(tp: Any) -> TopicPartition:
    return TopicPartition(tp.topic, tp.partition)


def _theirs(tp: TopicPartition) -> Any:
    return KafkaTopicPartition(tp.topic, tp.partition)


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka is untyped
    def __init__(self, listener: RebalanceListener, assigned: set[Any]) -> None:
        self.listener = listener
        self.assigned = assigned  # for the consumer to check before its next fetch

    async def on_partitions_revoked(self, revoked: Any) -> None:
        await self.listener.on_revoked([_ours(tp) for tp in revoked])

    async def on_partitions_assigned(self, assigned: Any) -> None:
        self.assigned.update(assigned)
        await self.listener.on_assigned([_ours(tp) for tp in assigned])


async def _rewind_past_log_end(consumer: AIOKafkaConsumer, assigned: list[Any]) -> None:
    """Start from the log's beginning where the position lies past the log's end.

    That happens when a broker lost its log and its group kept (or was sent, by a member
    that held positions from before) offsets of the old log: ``wa-bridge dev``'s
    in-memory broker restarted. Kafka answers OffsetOutOfRange there and the consumer
    resets to the earliest record; Tansu answers nothing, and the consumer would wait at
    that offset, skipping every record below it. Re-reading from the beginning is safe:
    the ledger skips what took effect. Errors here are left to the fetch that follows.
    """
    try:
        ends = await consumer.end_offsets(assigned)
        for tp in assigned:
            position = await consumer.position(tp)
            if position > ends.get(tp, position):
                log.warning(
                    "position_past_log_end",
                    topic=tp.topic,
                    partition=tp.partition,
                    position=position,
                    log_end=ends[tp],
                )
                await consumer.seek_to_beginning(tp)
    except (KafkaError, OSError, TimeoutError) as exc:
        log.warning("log_end_check_failed", error=type(exc).__name__)


class KafkaRecordConsumer:
    """:class:`RecordConsumer` on an unstarted, unsubscribed ``AIOKafkaConsumer``."""

    def __init__(self, consumer: AIOKafkaConsumer) -> None:
        self._consumer = consumer
        self._assigned: set[Any] = set()  # newly assigned, not yet checked

    async def start(self, topics: Sequence[str], listener: RebalanceListener) -> None:
        self._consumer.subscribe(list(topics), listener=_Listener(listener, self._assigned))
        with kafka_errors("start"):
            await self._consumer.start()

    async def stop(self) -> None:
        await self._consumer.stop()

    def assignment(self) -> frozenset[TopicPartition]:
        return frozenset(_ours(tp) for tp in self._consumer.assignment())

    async def getmany(
        self, *, timeout_ms: int, max_records: int
    ) -> dict[TopicPartition, list[Delivery]]:
        if self._assigned:
            current = self._consumer.assignment()
            check = [tp for tp in self._assigned if tp in current]
            self._assigned.clear()
            if check:
                await _rewind_past_log_end(self._consumer, check)
        with kafka_errors("fetch"):
            fetched = await self._consumer.getmany(timeout_ms=timeout_ms, max_records=max_records)
        return {_ours(tp): [Delivery.of(r) for r in records] for tp, records in fetched.items()}

    def pause(self, partition: TopicPartition) -> None:
        self._consumer.pause(_theirs(partition))

    def resume(self, partition: TopicPartition) -> None:
        self._consumer.resume(_theirs(partition))

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        with kafka_errors("commit"):
            await self._consumer.commit({_theirs(tp): offset for tp, offset in offsets.items()})

    async def position(self, partition: TopicPartition) -> int:
        with kafka_errors("position"):
            return int(await self._consumer.position(_theirs(partition)))

    async def end_offsets(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        with kafka_errors("end_offsets"):
            ends = await self._consumer.end_offsets([_theirs(tp) for tp in partitions])
        return {_ours(tp): int(offset) for tp, offset in ends.items()}


def build_consumer(settings: Settings, **options: Any) -> KafkaRecordConsumer:
    """A consumer in ``settings.consumer_group``, not yet subscribed: ``start`` it.

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
    return KafkaRecordConsumer(
        AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap,
            group_id=settings.consumer_group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=4 * 1024 * 1024,
            **kafka_client_options(settings),
            **config,
        )
    )
