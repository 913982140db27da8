"""The bus: Kafka clients, topic names and the record codec, behind typed seams.

Its public modules (``_``-prefixed ones are private to it); importing the package imports
none of them, so a command pays only for what it uses.
"""

__all__ = [
    "admin",  # topic creation and the durability check
    "consumer",  # the RecordConsumer seam and its aiokafka adapter
    "embedded",  # the embedded Tansu broker of `wa-bridge dev` and the tests
    "headers",  # the ce_* header codec
    "oauth",  # OAUTHBEARER token providers
    "producer",  # the receiver's EventPublisher seam and its aiokafka version (acks=all)
    "publishers",  # the publisher WA_BRIDGE_KAFKA_CLIENT chooses
    "rdkafka_config",  # TLS/SASL settings → librdkafka properties
    "rdkafka_producer",  # the EventPublisher on librdkafka (confluent-kafka), the default
    "record_producer",  # the worker's RecordProducer seam (retry topics, DLQ)
    "security",  # TLS/SASL settings → client options
    "topics",  # topic names and header keys, defined once
]
