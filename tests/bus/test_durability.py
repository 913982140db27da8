"""Topic durability: what topic creation sets, what is read back, and when we refuse."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from typer.testing import CliRunner

from wa_bridge.bus.admin import TopicDurability, describe_durability, ensure_topics
from wa_bridge.bus.embedded import EmbeddedBroker
from wa_bridge.bus.producer import KafkaPublisher
from wa_bridge.cli.main import app
from wa_bridge.cli.receiver import check_bus
from wa_bridge.errors import ConfigError
from wa_bridge.settings import Settings

# --- the rule -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("brokers", "rf", "isr"),
    [
        (1, 1, None),  # wa-bridge dev, Tansu: one copy is all there is
        (1, 1, 1),
        (3, 3, 2),  # the recommended shape
        (3, 2, 2),
        (5, 3, 3),
        (3, 3, None),  # Redpanda: no min.insync.replicas, a Raft majority (2 of 3)
    ],
)
def test_safe_topics_pass(brokers: int, rf: int, isr: int | None) -> None:
    assert TopicDurability("wa.events", brokers, rf, isr).problem() is None


@pytest.mark.parametrize(
    ("brokers", "rf", "isr", "why"),
    [
        (3, 1, 1, "replication factor 1"),
        (3, 3, 1, "min.insync.replicas 1"),
        (3, 2, 1, "min.insync.replicas 1"),
        (3, 1, None, "min.insync.replicas unset"),  # a majority of one
        (3, 2, 3, "exceeds its replication factor"),
        (1, 1, 2, "exceeds its replication factor"),  # every acks=all write would fail
    ],
)
def test_unsafe_topics_are_named_with_the_fix(
    brokers: int, rf: int, isr: int | None, why: str
) -> None:
    problem = TopicDurability("wa.events", brokers, rf, isr).problem()
    assert problem is not None and why in problem and "'wa.events'" in problem
    if "exceeds" not in why:
        assert "WA_BRIDGE_KAFKA_DURABILITY_CHECK=warn" in problem


# --- against the broker -----------------------------------------------------------------------


async def topic_min_insync(bootstrap: str, topic: str) -> str | None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        (response,) = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic)]
        )
    finally:
        await admin.close()
    for item in response.to_object()["resources"]:
        for entry in item["config_entries"]:
            if entry["config_names"] == "min.insync.replicas":
                return str(entry["config_value"])
    return None


@pytest.mark.kafka
async def test_created_topics_get_the_configured_min_insync_replicas(
    broker: EmbeddedBroker, topic_factory: Callable[[str], str]
) -> None:
    topic = topic_factory("isr")
    await ensure_topics(broker.bootstrap, [topic], 2, replication_factor=1, min_insync_replicas=1)
    assert await topic_min_insync(broker.bootstrap, topic) == "1"
    durability = await describe_durability(broker.bootstrap, topic)
    assert durability == TopicDurability(topic, 1, 1, 1)


@pytest.mark.kafka
async def test_unset_replication_on_one_broker_is_one_copy_and_no_isr_override(
    broker: EmbeddedBroker, topic_factory: Callable[[str], str]
) -> None:
    topic = topic_factory("auto")
    assert await ensure_topics(broker.bootstrap, [topic], 1) == [topic]
    assert await topic_min_insync(broker.bootstrap, topic) is None
    durability = await describe_durability(broker.bootstrap, topic)
    assert (durability.brokers, durability.replication_factor) == (1, 1)
    assert durability.problem() is None


def settings_for(broker: EmbeddedBroker, topic: str, **extra: object) -> Settings:
    return Settings(
        _env_file=None,
        kafka_bootstrap=broker.bootstrap,
        kafka_topic=topic,
        kafka_partitions=1,
        kafka_enable_idempotence=False,
        publish_timeout_s=3.0,
        **extra,  # type: ignore[arg-type]
    )


@pytest.mark.kafka
async def test_publisher_refuses_a_topic_no_acks_all_write_can_pass(
    broker: EmbeddedBroker, topic_factory: Callable[[str], str]
) -> None:
    topic = topic_factory("bad")
    await ensure_topics(broker.bootstrap, [topic], 1, replication_factor=1, min_insync_replicas=2)
    publisher = KafkaPublisher.from_settings(settings_for(broker, topic))
    with pytest.raises(ConfigError, match="exceeds its replication factor"):
        await publisher.start()
    assert not publisher.is_ready
    # the receiver's start-up check says the same, so `wa-bridge receiver` exits 2
    with pytest.raises(ConfigError, match="exceeds"):
        await check_bus(settings_for(broker, topic))


@pytest.mark.kafka
async def test_keep_connected_stays_not_ready_while_the_topic_is_unsafe(
    broker: EmbeddedBroker, topic_factory: Callable[[str], str]
) -> None:
    topic = topic_factory("bad")
    await ensure_topics(broker.bootstrap, [topic], 1, replication_factor=1, min_insync_replicas=2)
    publisher = KafkaPublisher.from_settings(settings_for(broker, topic))
    keeper = asyncio.create_task(publisher.keep_connected())
    try:
        await asyncio.sleep(1.0)
        assert not keeper.done() and not publisher.is_ready
    finally:
        keeper.cancel()
        await asyncio.gather(keeper, return_exceptions=True)
        await publisher.stop()


@pytest.mark.kafka
async def test_warn_mode_connects_despite_the_problem(
    broker: EmbeddedBroker, topic_factory: Callable[[str], str]
) -> None:
    topic = topic_factory("warn")
    await ensure_topics(broker.bootstrap, [topic], 1, replication_factor=1, min_insync_replicas=2)
    publisher = KafkaPublisher.from_settings(
        settings_for(broker, topic, kafka_durability_check="warn")
    )
    await publisher.start()
    try:
        assert publisher.is_ready
    finally:
        await publisher.stop()


@pytest.mark.kafka
def test_receiver_command_exits_2_with_the_reason(
    broker: EmbeddedBroker, topic_factory: Callable[[str], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    topic = topic_factory("cli")
    asyncio.run(
        ensure_topics(broker.bootstrap, [topic], 1, replication_factor=1, min_insync_replicas=2)
    )
    for key, value in {
        "KAFKA_BOOTSTRAP": broker.bootstrap,
        "KAFKA_TOPIC": topic,
        "KAFKA_ENABLE_IDEMPOTENCE": "false",
        "APP_SECRETS": "app-secret-for-the-test",
    }.items():
        monkeypatch.setenv("WA_BRIDGE_" + key, value)
    result = CliRunner().invoke(app, ["receiver", "--port", "0"])
    assert result.exit_code == 2
    assert "refusing to start" in result.output and "exceeds" in result.output
