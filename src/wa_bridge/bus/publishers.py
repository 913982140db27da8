"""The receiver's publisher as ``WA_BRIDGE_KAFKA_CLIENT`` chooses it.

``confluent`` (the default): :class:`~wa_bridge.bus.rdkafka_producer.RdKafkaPublisher`,
librdkafka; ``aiokafka``: :class:`~wa_bridge.bus.producer.KafkaPublisher`. Same contract,
same settings; ``bench/README.md`` has them side by side.
"""

from __future__ import annotations

from wa_bridge.bus.producer import KafkaPublisher
from wa_bridge.settings import Settings

__all__ = ["publisher_from_settings"]


def publisher_from_settings(settings: Settings) -> KafkaPublisher:
    """A publisher for ``settings`` (not connected yet); ConfigError for bad settings."""
    if settings.kafka_client == "confluent":
        from wa_bridge.bus.rdkafka_producer import RdKafkaPublisher

        return RdKafkaPublisher.from_settings(settings)
    return KafkaPublisher.from_settings(settings)
