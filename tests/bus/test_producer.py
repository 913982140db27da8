"""KafkaPublisher and ensure_topics against the session Tansu broker."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient

from wa_bridge.bus.admin import ensure_topics
from wa_bridge.bus.embedded import EmbeddedBroker, free_port
from wa_bridge.bus.producer import KafkaPublisher
from wa_bridge.bus.rdkafka_producer import RdKafkaPublisher
from wa_bridge.errors import BusUnavailable
from wa_bridge.events import CanonicalEvent

pytestmark = pytest.mark.kafka


@pytest.fixture(params=["aiokafka", "confluent"])
def publisher_cls(request: pytest.FixtureRequest) -> type[KafkaPublisher]:
    """Both producers the receiver can use (``WA_BRIDGE_KAFKA_CLIENT``), same contract."""
    return KafkaPublisher if request.param == "aiokafka" else RdKafkaPublisher


def make_events(n: int, subject: str | None = "+5215512345678") -> list[CanonicalEvent]:
    return [
        CanonicalEvent(
            id=f"evt-{subject}-{i}",
            type="whatsapp.message.received",
            source="waba/1029384756",
            time="2026-06-10T12:00:00Z",
            data={"n": i},
            subject=subject,
        )
        for i in range(n)
    ]


async def partition_count(bootstrap: str, topic: str) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    return len(described["partitions"])


async def read_all(bootstrap: str, topic: str, count: int) -> list[CanonicalEvent]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    out: list[tuple[int, int, CanonicalEvent]] = []
    try:
        async with asyncio.timeout(20):
            while len(out) < count:
                for records in (await consumer.getmany(timeout_ms=200)).values():
                    out += [
                        (r.partition, r.offset, CanonicalEvent.from_json(r.value)) for r in records
                    ]
    finally:
        await consumer.stop()
    return [event for _, _, event in sorted(out, key=lambda t: (t[0], t[1]))]


async def test_ensure_topics_is_idempotent(
    broker: EmbeddedBroker, topic_factory: Callable[[str], str]
) -> None:
    topic = topic_factory("admin")
    assert await ensure_topics(broker.bootstrap, [topic], 4) == [topic]
    assert await ensure_topics(broker.bootstrap, [topic, topic], 4) == []
    assert await partition_count(broker.bootstrap, topic) == 4


async def test_ensure_topics_without_a_broker_is_bus_unavailable() -> None:
    with pytest.raises(BusUnavailable):
        await ensure_topics(f"127.0.0.1:{free_port()}", ["x"], 1, timeout_s=1.0)


async def test_start_creates_the_topic_and_publishes_in_order(
    publisher_cls: type[KafkaPublisher], broker: EmbeddedBroker, topic_factory: Callable[[str], str]
) -> None:
    topic = topic_factory("pub")
    publisher = publisher_cls(broker.bootstrap, topic, partitions=5, enable_idempotence=False)
    await publisher.start()
    try:
        assert publisher.is_ready
        assert await partition_count(broker.bootstrap, topic) == 5
        events = make_events(30)
        # Concurrent requests share the producer; each waits only for its own records.
        await asyncio.gather(*(publisher.publish_many(events[i : i + 10]) for i in (0, 10, 20)))
        await publisher.publish_many([])
    finally:
        await publisher.stop()
    got = await read_all(broker.bootstrap, topic, 30)
    assert sorted(e.id for e in got) == sorted(e.id for e in events)
    # One key → one partition → the order of each request is kept.
    for start in (0, 10, 20):
        ids = [e.id for e in got if e.id in {x.id for x in events[start : start + 10]}]
        assert ids == [e.id for e in events[start : start + 10]]


async def test_publish_before_connect_is_bus_unavailable(
    publisher_cls: type[KafkaPublisher],
) -> None:
    publisher = publisher_cls(f"127.0.0.1:{free_port()}", "never", enable_idempotence=False)
    assert not publisher.is_ready
    with pytest.raises(BusUnavailable) as info:
        await publisher.publish_many(make_events(1))
    assert info.value.retry_after_s


async def test_start_without_a_broker_fails_fast_and_keep_connected_recovers(
    publisher_cls: type[KafkaPublisher],
    topic_factory: Callable[[str], str],
) -> None:
    port = free_port()
    topic = topic_factory("late")
    publisher = publisher_cls(
        f"127.0.0.1:{port}",
        topic,
        partitions=2,
        enable_idempotence=False,
        publish_timeout_s=2.0,
        probe_interval_s=0.1,
    )
    with pytest.raises(BusUnavailable):
        await publisher.start()
    broker = EmbeddedBroker(port=port)
    async with asyncio.TaskGroup() as tasks:
        keeper = tasks.create_task(publisher.keep_connected())
        try:
            await asyncio.sleep(0.3)
            assert not publisher.is_ready
            await broker.astart()
            async with asyncio.timeout(20):
                while True:  # polled: readiness has no event to wait on
                    if publisher.is_ready:
                        break
                    await asyncio.sleep(0.05)
            await publisher.publish_many(make_events(3, subject=None))
        finally:
            keeper.cancel()
            await publisher.stop()
            await broker.astop()
    assert keeper.cancelled()


def test_headers_and_key() -> None:
    from wa_bridge.bus.headers import event_headers, record_key

    (event,) = make_events(1)
    assert record_key(event) == b"+5215512345678"
    assert dict(event_headers(event))["ce_type"] == b"whatsapp.message.received"
    (anonymous,) = make_events(1, subject=None)
    assert record_key(anonymous) == b"waba/1029384756"
    assert orjson.loads(anonymous.to_json())["id"] == anonymous.id


def test_key_partitioner_matches_the_default_and_follows_the_partition_count() -> None:
    from aiokafka.partitioner import DefaultPartitioner

    from wa_bridge.bus.producer import _KeyPartitioner

    default = DefaultPartitioner()
    cached = _KeyPartitioner(max_keys=8)
    keys = [f"+52155{i:08d}".encode() for i in range(40)]
    for count in (12, 12, 5, 12):  # a second pass hits the cache; a new count recomputes
        parts = list(range(count))
        for key in keys:
            assert cached(key, parts, parts) == default(key, parts, parts)
    assert cached(None, [0, 1, 2], [2]) == 2  # no key: an available partition


async def test_one_contact_flooding_one_partition_is_all_acknowledged_in_order(
    publisher_cls: type[KafkaPublisher], broker: EmbeddedBroker, topic_factory: Callable[[str], str]
) -> None:
    # 64 concurrent requests of ~1 KB events for one key: far more than aiokafka's
    # default 16 KiB batch holds, so records wait for batches; none may be lost.
    topic = topic_factory("flood")
    publisher = publisher_cls(broker.bootstrap, topic, partitions=3, enable_idempotence=False)
    await publisher.start()
    events = [
        CanonicalEvent(
            id=f"flood-{i}",
            type="whatsapp.message.received",
            source="waba/1029384756",
            time="2026-06-10T12:00:00Z",
            data={"n": i, "pad": "x" * 1000},
            subject="+5215512345678",
        )
        for i in range(256)
    ]
    try:
        await asyncio.gather(*(publisher.publish_many(events[i : i + 4]) for i in range(0, 256, 4)))
    finally:
        await publisher.stop()
    got = await read_all(broker.bootstrap, topic, len(events))
    assert sorted(e.id for e in got) == sorted(e.id for e in events)
    for start in range(0, 256, 4):  # each request's own order is kept on the one partition
        mine = {e.id for e in events[start : start + 4]}
        assert [e.id for e in got if e.id in mine] == [e.id for e in events[start : start + 4]]


def _all_stopped(pid: int) -> bool:
    """Whether every thread of ``pid`` is stopped (``/proc/<pid>/task/*/stat`` state T)."""
    tasks = Path(f"/proc/{pid}/task").iterdir()
    return all((t / "stat").read_text().rsplit(") ", 1)[1][0] in "tT" for t in tasks)


async def _stopped(pid: int, timeout_s: float = 5.0) -> None:
    """Wait until ``pid`` is stopped: SIGSTOP takes effect asynchronously, and on a loaded
    box the broker was seen answering a request a few ms after it."""
    async with asyncio.timeout(timeout_s):
        while not _all_stopped(pid):  # noqa: ASYNC110 - a process state has no event
            await asyncio.sleep(0.005)


async def test_a_broker_that_stops_answering_is_bus_unavailable_within_the_timeout(
    publisher_cls: type[KafkaPublisher], tmp_path: Path, topic_factory: Callable[[str], str]
) -> None:
    # Its own broker: it gets frozen (SIGSTOP), so the connection stays open and
    # silent; only the publish deadline can end the wait.
    own = EmbeddedBroker(log_path=tmp_path / "tansu.log")
    own.start()
    topic = topic_factory("frozen")
    publisher = publisher_cls(
        own.bootstrap, topic, partitions=2, enable_idempotence=False, publish_timeout_s=1.0
    )
    try:
        await publisher.start()
        await publisher.publish_many(make_events(2))
        pid = own._proc.pid  # type: ignore[union-attr]  # the broker this test started
        os.kill(pid, signal.SIGSTOP)
        try:
            await _stopped(pid)
            with pytest.raises(BusUnavailable, match="timed out"):
                await publisher.publish_many(make_events(3))
            assert not publisher.is_ready
            with pytest.raises(BusUnavailable):  # at once, until a probe succeeds
                await publisher.publish_many(make_events(1))
        finally:
            os.kill(pid, signal.SIGCONT)
    finally:
        await publisher.stop()
        own.stop()


async def test_both_clients_put_a_key_on_the_same_partition(
    broker: EmbeddedBroker, topic_factory: Callable[[str], str]
) -> None:
    # Switching WA_BRIDGE_KAFKA_CLIENT must not move a contact to another partition
    # (its events would lose their order): both hash keys with murmur2.
    topic = topic_factory("same-partition")
    subjects = [f"+52155{i:08d}" for i in range(24)]
    for cls in (KafkaPublisher, RdKafkaPublisher):
        publisher = cls(broker.bootstrap, topic, partitions=7, enable_idempotence=False)
        await publisher.start()
        try:
            events = [
                dataclasses.replace(make_events(1, subject=s)[0], id=f"{cls.__name__}:{s}")
                for s in subjects
            ]
            await publisher.publish_many(events)
        finally:
            await publisher.stop()
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=broker.bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    partition_of: dict[tuple[str, str], int] = {}
    try:
        async with asyncio.timeout(20):
            while len(partition_of) < 2 * len(subjects):
                for records in (await consumer.getmany(timeout_ms=200)).values():
                    for r in records:
                        client = CanonicalEvent.from_json(r.value).id.split(":")[0]
                        partition_of[(client, r.key.decode())] = r.partition
    finally:
        await consumer.stop()
    for subject in subjects:
        assert (
            partition_of[("KafkaPublisher", subject)] == partition_of[("RdKafkaPublisher", subject)]
        )
    assert len(set(partition_of.values())) > 1
