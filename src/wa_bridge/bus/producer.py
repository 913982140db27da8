"""Publishing canonical events to Kafka: the ``EventPublisher`` seam and its Kafka version.

``KafkaPublisher`` shares one aiokafka producer between all concurrent requests: each
request sends its records (getting one future per record) and waits for all of them, so
records of concurrent requests travel in the same batches. There is no flush per request.

The publisher never blocks start-up: :meth:`KafkaPublisher.keep_connected` connects in the
background, probes the broker with a cheap metadata request, and (re)creates the topic
when the broker lost it (the embedded broker keeps everything in memory). While the broker
is unreachable :meth:`publish_many` raises ``BusUnavailable`` at once.

Throughput notes (measured with ``bench/receiver.py``): aiokafka keeps one produce request
in flight per broker and, per partition, one open batch; a record that finds the open
batch full waits until the sender takes it. With aiokafka's 16 KiB default a batch holds
about 12 of our ~1.3 KB records, so one busy contact (one partition) got ~12 records per
broker round trip, and the requests that lost the race for the next batch waited seconds
(the 2 s p99). Batches of ``max_batch_bytes`` (256 KiB) hold everything that arrives
during a round trip. Keys are hashed once each (:class:`_KeyPartitioner`), and one timer
serves the acknowledgement deadlines of all requests (:mod:`wa_bridge.bus._deadlines`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal, Protocol, Self

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError, KafkaError
from aiokafka.partitioner import DefaultPartitioner

from wa_bridge.bus._deadlines import AckDeadlines
from wa_bridge.bus.admin import describe_durability, ensure_topics
from wa_bridge.bus.headers import event_headers, record_key
from wa_bridge.bus.security import kafka_client_options
from wa_bridge.errors import BusUnavailable, ConfigError
from wa_bridge.events import CanonicalEvent
from wa_bridge.log import get_logger
from wa_bridge.settings import DEFAULT_KAFKA_LINGER_MS, Settings

__all__ = ["DEFAULT_MAX_BATCH_BYTES", "RETRY_AFTER_S", "EventPublisher", "KafkaPublisher"]

# What we tell Meta (Retry-After) and callers (retry_after_s) when the bus is down.
RETRY_AFTER_S: Final = 5.0
# The broker must have answered a metadata request this recently to count as ready.
_READY_WINDOW_PROBES: Final = 3
_CONNECT_BACKOFF_MAX_S: Final = 5.0
# How often a receiver refused by the durability check looks at the topic again.
_UNSAFE_RECHECK_S: Final = 30.0
# Per-partition batch size: room for all records of a broker round trip at 10k+ req/s.
# Kafka's default message.max.bytes (1 MiB) bounds a batch; stay well below it.
DEFAULT_MAX_BATCH_BYTES: Final = 256 * 1024
# The partitioner forgets its cache past this many keys (contacts seen recently).
_PARTITION_CACHE_KEYS: Final = 100_000

log = get_logger("bus.producer")


class EventPublisher(Protocol):
    """Where the receiver sends canonical events."""

    @property
    def is_ready(self) -> bool:
        """True when a publish is expected to succeed now (cheap; no I/O)."""
        ...

    async def keep_connected(self) -> None:
        """Connect, watch and repair the connection until cancelled; never raises otherwise."""
        ...

    async def publish_many(self, events: Sequence[CanonicalEvent]) -> None:
        """Return once every event is acknowledged; raise BusUnavailable otherwise.

        After BusUnavailable some events may still be written later: the caller must have
        its sender retry (at-least-once; the worker deduplicates by event id).
        """
        ...

    async def stop(self) -> None:
        """Send what is buffered (bounded by the publish timeout) and disconnect."""
        ...


class _KeyPartitioner:
    """aiokafka's default partitioner, with each key's choice remembered.

    The partition of a key is what the default (murmur2, the Java client's hash) gives
    for the topic's current partition count, taken from the topic metadata aiokafka
    passes in; it is recomputed when that count changes. Same key, same count, same
    partition: one contact's events keep their order. murmur2 is pure Python, so hashing
    each key once instead of once per record saves real time on the hot path.
    """

    def __init__(self, max_keys: int = _PARTITION_CACHE_KEYS) -> None:
        self._default = DefaultPartitioner()
        self._max_keys = max_keys
        self._index: dict[bytes, tuple[int, int]] = {}

    def __call__(self, key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
        if key is None:
            return int(self._default(key, all_partitions, available))
        count = len(all_partitions)
        cached = self._index.get(key)
        if cached is not None and cached[0] == count:
            return all_partitions[cached[1]]
        partition = int(self._default(key, all_partitions, available))
        if len(self._index) >= self._max_keys:
            self._index.clear()
        self._index[key] = (count, all_partitions.index(partition))
        return partition


def _retrieve(fut: asyncio.Future[Any]) -> None:
    # A record we stopped waiting for may fail later: read its exception so asyncio does
    # not report it as never retrieved.
    if not fut.cancelled():
        fut.exception()


@dataclass
class KafkaPublisher:
    """An :class:`EventPublisher` on one shared ``AIOKafkaProducer`` (acks=all).

    On connecting it makes sure the topic exists and checks that an acknowledgement
    means more than one copy (:class:`~wa_bridge.bus.admin.TopicDurability`): with
    ``durability_check="enforce"`` an unsafe topic is a ConfigError from :meth:`start`,
    and :meth:`keep_connected` stays disconnected (not ready: 503) until it is fixed.
    ``client_options`` are the connection's security options, given to every client.
    """

    bootstrap: str
    topic: str
    partitions: int = 12
    replication_factor: int | None = None
    min_insync_replicas: int | None = None
    durability_check: Literal["enforce", "warn"] = "enforce"
    client_options: Mapping[str, Any] = field(default_factory=dict, repr=False)
    enable_idempotence: bool = True
    linger_ms: float = DEFAULT_KAFKA_LINGER_MS
    max_batch_bytes: int = DEFAULT_MAX_BATCH_BYTES
    publish_timeout_s: float = 5.0
    probe_interval_s: float = 1.0
    _producer: AIOKafkaProducer | None = field(default=None, init=False, repr=False)
    _healthy: bool = field(default=False, init=False)
    _last_ok_at: float = field(default=float("-inf"), init=False)
    _connect_lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False, repr=False)
    _ack_deadlines: AckDeadlines = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._ack_deadlines = AckDeadlines(self.publish_timeout_s)

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        return cls(**cls._options_from(settings))

    @classmethod
    def _options_from(cls, settings: Settings) -> dict[str, Any]:
        """The constructor's arguments from settings (a client adds its own)."""
        return {
            "bootstrap": settings.kafka_bootstrap,
            "topic": settings.kafka_topic,
            "partitions": settings.kafka_partitions,
            "replication_factor": settings.kafka_replication_factor,
            "min_insync_replicas": settings.kafka_min_insync_replicas,
            "durability_check": settings.kafka_durability_check,
            "client_options": kafka_client_options(settings),
            "enable_idempotence": settings.kafka_enable_idempotence,
            "linger_ms": settings.kafka_linger_ms,
            "publish_timeout_s": settings.publish_timeout_s,
        }

    @property
    def is_ready(self) -> bool:
        window_s = self.probe_interval_s * _READY_WINDOW_PROBES + self.publish_timeout_s
        recent = time.monotonic() - self._last_ok_at <= window_s
        return self._connected() and self._healthy and recent

    def _connected(self) -> bool:
        return self._producer is not None

    async def start(self) -> None:
        """Connect once; raise BusUnavailable when the broker cannot be reached."""
        async with self._connect_lock:
            if not self._connected():
                await self._connect()

    async def _connect(self) -> None:
        """Start this client's producer and check the topic (under the connect lock)."""
        producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap,
            acks="all",
            enable_idempotence=self.enable_idempotence,
            linger_ms=self.linger_ms,
            max_batch_size=self.max_batch_bytes,
            partitioner=_KeyPartitioner(),
            compression_type=None,
            request_timeout_ms=max(1000, int(self.publish_timeout_s * 1000)),
            **self.client_options,
        )
        try:
            async with asyncio.timeout(self.publish_timeout_s):
                await producer.start()
            await self._ensure_topic()
            await self._check_durability()
        except (KafkaError, OSError, TimeoutError, BusUnavailable) as exc:
            await producer.stop()
            raise self._unreachable(exc) from exc
        except ConfigError:
            await producer.stop()
            raise
        self._producer = producer
        self._mark_ok()
        log.info("bus_connected", topic=self.topic)

    def _unreachable(self, exc: Exception) -> BusUnavailable:
        return BusUnavailable(
            f"cannot connect to Kafka at {self.bootstrap}: {type(exc).__name__}: {exc}",
            retry_after_s=RETRY_AFTER_S,
        )

    async def keep_connected(self) -> None:
        backoff_s = self.probe_interval_s
        while True:
            if not self._connected():
                try:
                    await self.start()
                    backoff_s = self.probe_interval_s
                except BusUnavailable as exc:
                    log.warning("bus_connect_failed", error=str(exc), retry_in_s=backoff_s)
                    await asyncio.sleep(backoff_s)
                    backoff_s = min(backoff_s * 2, _CONNECT_BACKOFF_MAX_S)
                    continue
                except ConfigError as exc:
                    # Refuse to accept webhooks (503: Meta retries) rather than acknowledge
                    # events the cluster may keep one copy of; look again later.
                    log.error("bus_refused", reason=str(exc), retry_in_s=_UNSAFE_RECHECK_S)
                    await asyncio.sleep(_UNSAFE_RECHECK_S)
                    continue
            await self.probe()
            await asyncio.sleep(self.probe_interval_s)

    # what the client raises when the broker cannot be reached (the subclass's client)
    _client_errors: tuple[type[Exception], ...] = (KafkaError,)

    async def _topic_listed(self, timeout_s: float) -> bool | None:
        """Whether the broker's metadata lists our topic; None before :meth:`start`."""
        if self._producer is None:
            return None
        cluster = await self._producer.client.fetch_all_metadata()
        return cluster.partitions_for_topic(self.topic) is not None

    async def probe(self) -> bool:
        """Ask the broker for its metadata; recreate the topic if it is gone. True if healthy."""
        was_healthy = self._healthy
        timeout_s = max(self.probe_interval_s, 1.0)
        unreachable: tuple[type[Exception], ...] = (
            *self._client_errors,
            OSError,
            TimeoutError,
            BusUnavailable,
        )
        try:
            async with asyncio.timeout(timeout_s):
                listed = await self._topic_listed(timeout_s)
                if listed is None:
                    return False
                if not listed:
                    log.warning("bus_topic_missing", topic=self.topic)
                    await self._ensure_topic()
        except unreachable as exc:
            if was_healthy:
                log.warning("bus_unhealthy", error=type(exc).__name__)
            self._healthy = False
            return False
        if not was_healthy:
            log.info("bus_recovered", topic=self.topic)
        self._mark_ok()
        return True

    async def publish_many(self, events: Sequence[CanonicalEvent]) -> None:
        producer = self._producer
        if producer is None or not self._healthy:
            raise BusUnavailable("Kafka is not reachable", retry_after_s=RETRY_AFTER_S)
        if not events:
            return
        futures: list[asyncio.Future[Any]] = []
        try:
            # Each send is bounded by aiokafka (request_timeout_ms = publish_timeout_s):
            # it waits only for metadata or for room in a full batch.
            for event in events:
                futures.append(
                    await producer.send(
                        self.topic,
                        value=event.to_json(),
                        key=record_key(event),
                        headers=event_headers(event),
                    )
                )
            acked = futures[0] if len(futures) == 1 else asyncio.gather(*futures)
            if not acked.done():
                self._ack_deadlines.watch(acked)
                await acked
            else:
                acked.result()
        except (KafkaError, TimeoutError) as exc:
            self._abandon(futures)
            raise self._failed(exc) from exc

    async def stop(self) -> None:
        producer, self._producer = self._producer, None
        self._healthy = False
        if producer is None:
            return
        try:
            async with asyncio.timeout(self.publish_timeout_s):
                await producer.stop()
        except (KafkaError, OSError, TimeoutError) as exc:
            log.warning("bus_stop_incomplete", error=type(exc).__name__)

    async def _ensure_topic(self) -> None:
        await ensure_topics(
            self.bootstrap,
            [self.topic],
            self.partitions,
            replication_factor=self.replication_factor,
            min_insync_replicas=self.min_insync_replicas,
            client_options=self.client_options,
            timeout_s=self.publish_timeout_s,
        )

    async def _check_durability(self) -> None:
        try:
            durability = await describe_durability(
                self.bootstrap,
                self.topic,
                client_options=self.client_options,
                timeout_s=self.publish_timeout_s,
            )
        except BusUnavailable as exc:
            if self.durability_check == "enforce":
                raise
            log.warning("bus_durability_unknown", reason=str(exc))
            return
        problem = durability.problem()
        if problem is None:
            log.info(
                "bus_durability_checked",
                topic=self.topic,
                brokers=durability.brokers,
                replication_factor=durability.replication_factor,
                copies_per_ack=durability.copies_per_ack,
            )
        elif self.durability_check == "enforce":
            raise ConfigError(problem)
        else:
            log.warning("bus_durability_risk", reason=problem)

    def _mark_ok(self) -> None:
        self._healthy = True
        self._last_ok_at = time.monotonic()

    def _abandon(self, futures: list[asyncio.Future[Any]]) -> None:
        for fut in futures:
            fut.add_done_callback(_retrieve)

    def _failed(self, exc: BaseException) -> BusUnavailable:
        # Until the next successful probe, answer "unavailable" at once instead of
        # queueing more records behind a broker that does not acknowledge. A non-retriable
        # error about one record (too large, say) says nothing about the broker.
        if isinstance(exc, TimeoutError | KafkaConnectionError) or getattr(exc, "retriable", False):
            self._healthy = False
        reason = "timed out" if isinstance(exc, TimeoutError) else type(exc).__name__
        log.warning("bus_publish_failed", error=reason)
        return BusUnavailable(f"Kafka did not acknowledge: {reason}", retry_after_s=RETRY_AFTER_S)
