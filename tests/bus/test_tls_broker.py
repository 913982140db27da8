"""Every Kafka client wa-bridge builds, over real TLS (mutual), with the settings alone."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
import trustme

from wa_bridge.bus.admin import ensure_topics_for
from wa_bridge.bus.consumer import TopicPartition, build_consumer
from wa_bridge.bus.producer import KafkaPublisher
from wa_bridge.bus.rdkafka_producer import RdKafkaPublisher
from wa_bridge.bus.record_producer import build_producer
from wa_bridge.errors import BusUnavailable
from wa_bridge.events import CanonicalEvent
from wa_bridge.settings import Settings

from ._tls import TlsFiles, tls_broker, write_client_files

pytestmark = pytest.mark.kafka


def tls_settings(bootstrap: str, files: TlsFiles, topic: str, **extra: object) -> Settings:
    return Settings(
        _env_file=None,
        kafka_bootstrap=bootstrap,
        kafka_topic=topic,
        kafka_partitions=1,
        kafka_enable_idempotence=False,
        kafka_security_protocol="SSL",
        kafka_ssl_ca_file=files.ca,
        kafka_ssl_cert_file=files.client_cert,
        kafka_ssl_key_file=files.client_key,
        consumer_group=f"{topic}.group",
        consumer_session_timeout_ms=1000,
        publish_timeout_s=3.0,
        **extra,  # type: ignore[arg-type]
    )


class _Listener:
    async def on_revoked(self, partitions: list[TopicPartition]) -> None:
        return None

    async def on_assigned(self, partitions: list[TopicPartition]) -> None:
        return None


EVENT = CanonicalEvent(
    id="evt-tls-1",
    type="whatsapp.message.received",
    source="waba/1029384756",
    time="2026-06-10T12:00:00Z",
    data={"n": 1},
    subject="+5215512345678",
)


async def test_admin_publisher_worker_producer_and_consumer_speak_tls(
    tmp_path: Path, topic_factory: Callable[[str], str]
) -> None:
    ca = trustme.CA()
    files = write_client_files(ca, tmp_path)
    topic = topic_factory("tls")
    async with tls_broker(ca, require_client_cert=True) as bootstrap:
        settings = tls_settings(bootstrap, files, topic)
        assert await ensure_topics_for(settings, [topic, f"{topic}.dlq"]) == [
            topic,
            f"{topic}.dlq",
        ]
        publisher = KafkaPublisher.from_settings(settings)
        await publisher.start()
        try:
            await publisher.publish_many([EVENT])
        finally:
            await publisher.stop()
        producer = build_producer(settings)
        await producer.start()
        try:
            await producer.send_and_wait(
                f"{topic}.dlq", b"dead", key=b"k", partition=None, headers=()
            )
        finally:
            await producer.stop()
        consumer = build_consumer(settings)
        await consumer.start([topic, f"{topic}.dlq"], _Listener())
        seen: dict[str, bytes] = {}
        try:
            async with asyncio.timeout(30):
                while len(seen) < 2:
                    fetched = await consumer.getmany(timeout_ms=200, max_records=10)
                    for records in fetched.values():
                        seen.update({r.topic: r.value for r in records})
        finally:
            await consumer.stop()
    assert CanonicalEvent.from_json(seen[topic]).id == EVENT.id
    assert seen[f"{topic}.dlq"] == b"dead"


async def test_a_broker_signed_by_another_ca_is_refused(
    tmp_path: Path, topic_factory: Callable[[str], str]
) -> None:
    broker_ca, our_ca = trustme.CA(), trustme.CA()
    files = write_client_files(our_ca, tmp_path)
    async with tls_broker(broker_ca, require_client_cert=False) as bootstrap:
        publisher = KafkaPublisher.from_settings(tls_settings(bootstrap, files, topic_factory("x")))
        with pytest.raises(BusUnavailable):
            await publisher.start()
        assert not publisher.is_ready


async def test_without_a_client_certificate_a_mutual_tls_broker_refuses(
    tmp_path: Path, topic_factory: Callable[[str], str]
) -> None:
    ca = trustme.CA()
    files = write_client_files(ca, tmp_path)
    async with tls_broker(ca, require_client_cert=True) as bootstrap:
        settings = Settings(
            _env_file=None,
            kafka_bootstrap=bootstrap,
            kafka_security_protocol="SSL",
            kafka_ssl_ca_file=files.ca,
        )
        with pytest.raises(BusUnavailable):
            await ensure_topics_for(settings, [topic_factory("x")], timeout_s=3.0)


async def test_the_confluent_publisher_speaks_mutual_tls_and_refuses_another_ca(
    tmp_path: Path, topic_factory: Callable[[str], str]
) -> None:
    ca, other_ca = trustme.CA(), trustme.CA()
    files = write_client_files(ca, tmp_path / "ours")
    strangers = write_client_files(other_ca, tmp_path / "strangers")
    topic = topic_factory("tls-rd")
    async with tls_broker(ca, require_client_cert=True) as bootstrap:
        publisher = RdKafkaPublisher.from_settings(tls_settings(bootstrap, files, topic))
        await publisher.start()
        try:
            await publisher.publish_many([EVENT])
        finally:
            await publisher.stop()
        refused = RdKafkaPublisher.from_settings(
            tls_settings(bootstrap, strangers, topic_factory("x"))
        )
        with pytest.raises(BusUnavailable):
            await refused.start()
        assert not refused.is_ready
        consumer = build_consumer(tls_settings(bootstrap, files, topic))
        await consumer.start([topic], _Listener())
        values: list[bytes] = []
        try:
            async with asyncio.timeout(30):
                while not values:
                    fetched = await consumer.getmany(timeout_ms=200, max_records=10)
                    values += [r.value for records in fetched.values() for r in records]
        finally:
            await consumer.stop()
    assert CanonicalEvent.from_json(values[0]).id == EVENT.id
