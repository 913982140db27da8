"""The receiver's default publisher: librdkafka (``confluent-kafka``) under asyncio.

Why: with aiokafka the receiver spent most of its CPU in the client's pure-Python record
batching and sender task (``bench/receiver``, py-spy). librdkafka batches, compresses
nothing, sends and tracks acknowledgements in C threads; what stays in Python is one
``produce()`` call per record and one callback per record when it is acknowledged.

How the acknowledgements reach asyncio (:class:`_PollThread`): a daemon thread calls
``Producer.poll()``, which blocks without the GIL until librdkafka has delivery reports
and then runs their callbacks in that thread. Each request has one :class:`_Request`
(one asyncio future for all its records); a callback counts the record down and, at the
last one, queues the request. After each ``poll()`` the thread hands the whole queue to
the event loop with *one* ``call_soon_threadsafe``, where the futures are resolved: one
wake-up of the loop per batch of acknowledgements, not per record.

The guarantees are those of :class:`~wa_bridge.bus.producer.KafkaPublisher`: acks=all,
``publish_many`` returns only when every record is acknowledged, ``BusUnavailable`` (503)
when the broker is unreachable, refused or too slow (``message.timeout.ms`` and our own
deadline are both ``publish_timeout_s``). Keys are partitioned with ``murmur2_random``:
murmur2 like the Java client and aiokafka, so a contact's events land on the partition
they did with aiokafka. Topic creation and the durability check use the aiokafka admin
client, as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from wa_bridge.bus.headers import event_headers, record_key
from wa_bridge.bus.producer import RETRY_AFTER_S, KafkaPublisher
from wa_bridge.bus.rdkafka_config import rdkafka_security_config
from wa_bridge.errors import BusUnavailable, ConfigError
from wa_bridge.events import CanonicalEvent
from wa_bridge.log import get_logger
from wa_bridge.settings import Settings

__all__ = ["RdKafkaPublisher", "producer_config"]

log = get_logger("bus.rdkafka")
_LIBRDKAFKA_LOG: Final = logging.getLogger("wa_bridge.bus.librdkafka")

# How long one poll() blocks when nothing happens: bounds how late a stop is noticed.
_POLL_S: Final = 0.1
# Errors that say the broker (not one record) is the problem: stop accepting until a probe.
_BROKER_DOWN: Final = frozenset(
    {
        KafkaError._ALL_BROKERS_DOWN,
        KafkaError._TRANSPORT,
        KafkaError._MSG_TIMED_OUT,
        KafkaError._TIMED_OUT,
        KafkaError.REQUEST_TIMED_OUT,
        KafkaError.NOT_ENOUGH_REPLICAS,
        KafkaError.NOT_ENOUGH_REPLICAS_AFTER_APPEND,
    }
)


def producer_config(
    *,
    bootstrap: str,
    enable_idempotence: bool,
    linger_ms: float,
    max_batch_bytes: int,
    publish_timeout_s: float,
    security: Mapping[str, Any],
) -> dict[str, Any]:
    """The librdkafka producer properties (``security``: from :func:`rdkafka_security_config`)."""
    timeout_ms = max(1000, int(publish_timeout_s * 1000))
    return {
        "bootstrap.servers": bootstrap,
        "acks": "all",
        "enable.idempotence": enable_idempotence,
        "linger.ms": linger_ms,
        "batch.size": max_batch_bytes,
        "compression.type": "none",
        "partitioner": "murmur2_random",  # aiokafka's and Java's key → partition
        "message.timeout.ms": timeout_ms,
        "request.timeout.ms": timeout_ms,
        "socket.connection.setup.timeout.ms": timeout_ms,
        "reconnect.backoff.max.ms": 5000,
        "log.connection.close": False,
        **security,
    }


class _DeliveryFailed(Exception):
    def __init__(self, error: KafkaError) -> None:
        super().__init__(error.name())
        self.error = error


class _Request:
    """The records of one ``publish_many``: one future, counted down by the callbacks."""

    __slots__ = ("error", "future", "left", "sink")

    def __init__(self, future: asyncio.Future[None], count: int, sink: list[_Request]) -> None:
        self.future = future
        self.left = count
        self.error: KafkaError | None = None
        self.sink = sink

    def delivered(self, error: KafkaError | None, _msg: Message) -> None:
        """librdkafka's delivery callback (poll thread)."""
        if error is not None and self.error is None:
            self.error = error
        self.left -= 1
        if self.left == 0:
            self.sink.append(self)


def _settle(requests: list[_Request]) -> None:
    """Resolve finished requests (event loop)."""
    for request in requests:
        future = request.future
        if future.done():  # timed out by our deadline already
            continue
        if request.error is None:
            future.set_result(None)
        else:
            future.set_exception(_DeliveryFailed(request.error))


class _PollThread:
    """Serves librdkafka's callbacks in a thread; hands finished requests to the loop."""

    def __init__(self, producer: Producer, loop: asyncio.AbstractEventLoop) -> None:
        self.producer = producer
        self.loop = loop
        self.finished: list[_Request] = []  # appended to by callbacks, in this thread only
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wa-bridge-kafka-poll", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        poll, stopping = self.producer.poll, self._stopping
        while not stopping.is_set():
            poll(_POLL_S)
            self.hand_over()

    def hand_over(self) -> None:
        if self.finished:
            # The list stays the same object: every request holds it as its sink.
            finished = self.finished.copy()
            self.finished.clear()
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
                self.loop.call_soon_threadsafe(_settle, finished)

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join()


def _retrieve(fut: asyncio.Future[Any]) -> None:
    if not fut.cancelled():
        fut.exception()


@dataclass
class RdKafkaPublisher(KafkaPublisher):
    """:class:`KafkaPublisher`'s contract on a librdkafka producer (see the module doc).

    ``rdkafka_security`` holds the ``security.protocol``/``ssl.*``/``sasl.*`` properties;
    ``client_options`` (the aiokafka form of the same settings) serve the admin client.
    """

    rdkafka_security: Mapping[str, Any] = field(default_factory=dict, repr=False)
    _rd: Producer | None = field(default=None, init=False, repr=False)
    _poller: _PollThread | None = field(default=None, init=False, repr=False)

    @classmethod
    def _options_from(cls, settings: Settings) -> dict[str, Any]:
        return {
            **super()._options_from(settings),
            "rdkafka_security": rdkafka_security_config(settings),
        }

    def _connected(self) -> bool:
        return self._rd is not None

    async def _connect(self) -> None:
        """Start the librdkafka producer and its poll thread, check the topic (under the
        connect lock)."""
        config = producer_config(
            bootstrap=self.bootstrap,
            enable_idempotence=self.enable_idempotence,
            linger_ms=self.linger_ms,
            max_batch_bytes=self.max_batch_bytes,
            publish_timeout_s=self.publish_timeout_s,
            security=self.rdkafka_security,
        )
        config["error_cb"] = self._on_error
        # librdkafka's own lines (connection failures, say) through stdlib logging,
        # served by the poll thread, instead of raw lines on stderr
        config["logger"] = _LIBRDKAFKA_LOG
        try:
            producer = Producer(config)
        except KafkaException as exc:
            raise ConfigError(f"Kafka producer configuration: {exc}") from exc
        poller = _PollThread(producer, asyncio.get_running_loop())
        poller.start()
        try:
            await self._metadata(producer, self.publish_timeout_s)
            await self._ensure_topic()
            await self._check_durability()
        except (KafkaException, OSError, TimeoutError, BusUnavailable) as exc:
            await self._close(producer, poller, flush=False)
            raise self._unreachable(exc) from exc
        except ConfigError:
            await self._close(producer, poller, flush=False)
            raise
        self._rd, self._poller = producer, poller
        self._mark_ok()
        log.info("bus_connected", topic=self.topic, client="confluent")

    _client_errors = (KafkaException,)

    async def _topic_listed(self, timeout_s: float) -> bool | None:
        if self._rd is None:
            return None
        return self.topic in await self._metadata(self._rd, timeout_s)

    async def publish_many(self, events: Sequence[CanonicalEvent]) -> None:
        producer, poller = self._rd, self._poller
        if producer is None or poller is None or not self._healthy:
            raise BusUnavailable("Kafka is not reachable", retry_after_s=RETRY_AFTER_S)
        if not events:
            return
        future: asyncio.Future[None] = poller.loop.create_future()
        delivered = _Request(future, len(events), poller.finished).delivered
        # Any: confluent-kafka types its headers narrower than our list of (str, bytes)
        produce: Any = producer.produce
        topic = self.topic
        try:
            for event in events:
                produce(
                    topic,
                    event.to_json(),
                    record_key(event),
                    on_delivery=delivered,
                    headers=event_headers(event),
                )
        except (BufferError, KafkaException) as exc:
            # Records already handed over are still counted down by their callbacks; this
            # request is answered now. Its future may still be resolved later: harmless.
            future.add_done_callback(_retrieve)
            raise self._refused(exc) from exc
        self._ack_deadlines.watch(future)
        try:
            await future
        except (_DeliveryFailed, TimeoutError) as exc:
            raise self._failed_delivery(exc) from exc

    async def stop(self) -> None:
        producer, poller = self._rd, self._poller
        self._rd, self._poller = None, None
        self._healthy = False
        if producer is None or poller is None:
            return
        await self._close(producer, poller, flush=True)

    async def _close(self, producer: Producer, poller: _PollThread, *, flush: bool) -> None:
        poller.stop()
        if flush:
            left = await asyncio.to_thread(producer.flush, self.publish_timeout_s)
            if left:
                log.warning("bus_stop_incomplete", unsent=left)
        else:
            await asyncio.to_thread(producer.purge)
            await asyncio.to_thread(producer.flush, 0)
        poller.hand_over()  # acknowledgements served by flush()

    async def _metadata(self, producer: Producer, timeout_s: float) -> set[str]:
        cluster = await asyncio.to_thread(producer.list_topics, None, timeout_s)
        return {name for name, meta in cluster.topics.items() if meta.error is None}

    def _on_error(self, error: KafkaError) -> None:
        """librdkafka's global error callback (poll thread): all brokers down → not ready."""
        poller = self._poller
        if error.code() == KafkaError._ALL_BROKERS_DOWN and poller is not None:
            with contextlib.suppress(RuntimeError):  # a closed loop
                poller.loop.call_soon_threadsafe(self._brokers_down)

    def _brokers_down(self) -> None:
        if self._healthy:
            log.warning("bus_unhealthy", error="all brokers down")
        self._healthy = False

    def _refused(self, exc: BaseException) -> BusUnavailable:
        reason = "local queue full" if isinstance(exc, BufferError) else type(exc).__name__
        log.warning("bus_publish_failed", error=reason)
        return BusUnavailable(
            f"Kafka did not take the records: {reason}", retry_after_s=RETRY_AFTER_S
        )

    def _failed_delivery(self, exc: _DeliveryFailed | TimeoutError) -> BusUnavailable:
        if isinstance(exc, TimeoutError):
            self._healthy = False
            reason = "timed out"
        else:
            code = exc.error.code()
            if code in (KafkaError._MSG_TIMED_OUT, KafkaError.REQUEST_TIMED_OUT):
                reason = "timed out"
            else:
                reason = exc.error.name()
            if code in _BROKER_DOWN or exc.error.retriable():
                self._healthy = False
        log.warning("bus_publish_failed", error=reason)
        return BusUnavailable(f"Kafka did not acknowledge: {reason}", retry_after_s=RETRY_AFTER_S)
