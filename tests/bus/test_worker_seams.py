"""The worker's Kafka seams: the consumer and record-producer adapters on a real broker.

They hand out our own TopicPartition and Delivery, and every Kafka failure comes out as
BusUnavailable (chained), the one error the worker waits out.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from wa_bridge.bus.admin import ensure_topics
from wa_bridge.bus.consumer import RecordConsumer, TopicPartition, build_consumer
from wa_bridge.bus.embedded import EmbeddedBroker, free_port
from wa_bridge.bus.record_producer import RecordProducer, build_producer
from wa_bridge.errors import BusUnavailable
from wa_bridge.settings import Settings

pytestmark = [pytest.mark.kafka]

FAST_GROUP = {"session_timeout_ms": 1000, "heartbeat_interval_ms": 200}


class _Assignments:
    """A RebalanceListener that remembers what it was told."""

    def __init__(self) -> None:
        self.assigned: list[TopicPartition] = []
        self.revoked: list[TopicPartition] = []

    async def on_assigned(self, partitions: list[TopicPartition]) -> None:
        self.assigned += partitions

    async def on_revoked(self, partitions: list[TopicPartition]) -> None:
        self.revoked += partitions


async def test_records_round_trip_as_our_types(
    broker: EmbeddedBroker, topic_factory: Callable[[str], str]
) -> None:
    topic = topic_factory("seam")
    settings = Settings(
        kafka_bootstrap=broker.bootstrap,
        kafka_enable_idempotence=False,
        consumer_group=f"g-{topic}",
    )
    await ensure_topics(broker.bootstrap, [topic], 1)
    producer = build_producer(settings)
    await producer.start()
    try:
        sender: RecordProducer = producer
        await sender.send_and_wait(topic, b"one", key=b"k1", partition=None, headers=[("h", b"v")])
    finally:
        await producer.stop()

    consumer: RecordConsumer = build_consumer(settings, **FAST_GROUP)
    listener = _Assignments()
    await consumer.start([topic], listener)
    try:
        tp = TopicPartition(topic, 0)
        async with asyncio.timeout(30):
            fetched = {}
            while not fetched:
                fetched = await consumer.getmany(timeout_ms=200, max_records=10)
        assert list(fetched) == [tp]
        (delivery,) = fetched[tp]
        assert (delivery.key, delivery.value, delivery.offset) == ("k1", b"one", 0)
        assert ("h", b"v") in delivery.headers
        assert listener.assigned == [tp]
        assert consumer.assignment() == frozenset({tp})
        await consumer.commit({tp: 1})
        assert await consumer.position(tp) == 1
        assert await consumer.end_offsets([tp]) == {tp: 1}
    finally:
        await consumer.stop()


async def test_an_unreachable_broker_is_bus_unavailable() -> None:
    settings = Settings(kafka_bootstrap=f"127.0.0.1:{free_port()}", consumer_group="nobody")
    producer = build_producer(settings)
    with pytest.raises(BusUnavailable) as raised:
        await producer.start()
    assert raised.value.__cause__ is not None  # the Kafka error, chained
    await producer.stop()
    consumer = build_consumer(settings, request_timeout_ms=1000)
    with pytest.raises(BusUnavailable):
        await consumer.start(["nowhere"], _Assignments())
    await consumer.stop()


async def test_a_committed_offset_past_the_log_end_reads_the_log_from_its_beginning(
    broker: EmbeddedBroker, topic_factory: Callable[[str], str]
) -> None:
    """A broker that lost its log (an in-memory one restarted) may hold the group's
    offsets of the old log; Tansu does not answer OffsetOutOfRange for them, so the
    consumer itself must not wait past the end of the new log."""
    from aiokafka import AIOKafkaConsumer
    from aiokafka import TopicPartition as KafkaTopicPartition

    topic = topic_factory("lost")
    settings = Settings(
        kafka_bootstrap=broker.bootstrap,
        kafka_enable_idempotence=False,
        consumer_group=f"g-{topic}",
    )
    await ensure_topics(broker.bootstrap, [topic], 1)
    producer = build_producer(settings)
    await producer.start()
    try:
        for n in range(3):
            await producer.send_and_wait(topic, b"%d" % n, key=b"k", partition=None, headers=[])
    finally:
        await producer.stop()
    stale = AIOKafkaConsumer(
        bootstrap_servers=broker.bootstrap, group_id=settings.consumer_group
    )  # a member-less commit of an offset from the lost log
    await stale.start()
    try:
        stale.assign([KafkaTopicPartition(topic, 0)])
        await stale.commit({KafkaTopicPartition(topic, 0): 500})
    finally:
        await stale.stop()

    consumer = build_consumer(settings, **FAST_GROUP)
    await consumer.start([topic], _Assignments())
    try:
        offsets: list[int] = []
        async with asyncio.timeout(30):
            while len(offsets) < 3:
                fetched = await consumer.getmany(timeout_ms=200, max_records=10)
                offsets += [d.offset for ds in fetched.values() for d in ds]
        assert offsets == [0, 1, 2]
    finally:
        await consumer.stop()
