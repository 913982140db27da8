"""Where an event that cannot be applied now goes: behind its contact's earlier event in
the retry path (park behind), to the next retry topic, or to the DLQ, by its error class.

The bookkeeping here (the retry-topic publish, the dead-letter write) waits out
``BusUnavailable`` and ``StoreUnavailable`` only: any other exception is a bug of ours
and propagates, so the worker stops with nothing of the batch committed instead of
stalling in a loop.
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass

import orjson

from wa_bridge.bus.consumer import Delivery, retry_headers
from wa_bridge.bus.record_producer import RecordProducer
from wa_bridge.bus.topics import retry_topic
from wa_bridge.clock import Clock, epoch_ms
from wa_bridge.log import get_logger
from wa_bridge.worker.dlq import DeadLetterer, dead_letter_of
from wa_bridge.worker.options import BatchOptions
from wa_bridge.worker.outcomes import BatchItem, RetryReason, Tally, count_routed
from wa_bridge.worker.retry import (
    UNEXPECTED_ERROR,
    ParkingLot,
    error_class_of,
    fate_of,
    wait_out_outages,
)

__all__ = ["Router"]

log = get_logger("worker")


@dataclass(eq=False, repr=False)
class Router:
    """Routes events to the retry topics and the DLQ, and keeps the parking lot right."""

    options: BatchOptions
    _: KW_ONLY
    producer: RecordProducer
    dead_letterer: DeadLetterer
    parking: ParkingLot
    clock: Clock

    def note_in_retry(self, delivery: Delivery) -> None:
        """A fetched retry record parks its contact (rebuilds the lot after a restart)."""
        if delivery.key is None:
            return
        try:
            event_id = str(orjson.loads(delivery.value)["id"])
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return
        self.parking.park(delivery.partition, delivery.key, event_id, max(1, delivery.attempt))

    async def unparked(self, items: list[BatchItem], tally: Tally) -> list[BatchItem]:
        """Send behind their contact's earlier event in the retry path the items that have
        one at a higher level; return the others, in order."""
        if not self.parking.contacts():  # nothing in the retry path: nothing to go behind
            return list(items)
        free: list[BatchItem] = []
        for item in items:
            if self.parked_level(item) > item.level:
                await self.park_behind(item, tally)
            else:
                free.append(item)
        return free

    async def fail(self, item: BatchItem, exc: BaseException, tally: Tally) -> None:
        """``item`` failed with ``exc`` on its own: its class decides (retry topic or DLQ)."""
        if error_class_of(exc) == UNEXPECTED_ERROR:
            log.error(
                "event_failed_unexpectedly",
                event_id=item.event_id,
                event_type=item.event_type,
                exc_info=exc,
            )
        if self.parked_level(item) > item.level:  # an earlier event of it went ahead
            await self.park_behind(item, tally)
            return
        fate = fate_of(exc, attempt=item.level, max_attempt=len(self.options.retry_delays_s))
        if fate.action == "retry":
            await self.to_retry(item, item.level + 1, tally, error_class=fate.error_class)
        else:
            self.release(item)
            await self.dead_letter(item, exc, tally, attempts=item.level + 1)

    def parked_level(self, item: BatchItem) -> int:
        key = item.delivery.key
        if key is None:
            return 0
        return self.parking.level_ahead(item.delivery.partition, key, item.event_id)

    async def park_behind(self, item: BatchItem, tally: Tally) -> None:
        level = max(1, self.parked_level(item))
        await self.to_retry(item, level, tally, error_class="ParkedBehind")

    async def to_retry(
        self, item: BatchItem, level: int, tally: Tally, *, error_class: RetryReason
    ) -> None:
        d = item.delivery
        due_ms = epoch_ms(self.clock) + int(self.options.retry_delays_s[level - 1] * 1000)
        await self._publish(
            retry_topic(self.options.base_topic, level),
            d,
            retry_headers(d, attempt=level, due_ms=due_ms),
        )
        if d.key is not None:
            self.parking.park(d.partition, d.key, item.event_id, level)
        count_routed("retried", item, tally, attempt=level, error_class=error_class)

    async def dead_letter(
        self, item: BatchItem, exc: BaseException, tally: Tally, *, attempts: int
    ) -> None:
        d = item.delivery
        letter = dead_letter_of(
            exc,
            event_id=item.event_id,
            event_type=item.event_type,
            contact_key=d.key,
            payload=d.value,
            attempts=attempts,
            failed_at=self.clock.now(),
            origin=d.origin(),
        )

        def waiting(exc: BaseException) -> None:
            log.warning("dead_letter_write_failed", error_class=type(exc).__name__)

        await wait_out_outages(
            lambda: self.dead_letterer.write([letter]), clock=self.clock, on_wait=waiting
        )
        count_routed("dead_lettered", item, tally, attempt=attempts, error_class=letter.error_class)

    def release(self, item: BatchItem) -> None:
        if item.delivery.key is not None:
            self.parking.release(item.delivery.partition, item.delivery.key, item.event_id)

    async def _publish(self, topic: str, d: Delivery, headers: list[tuple[str, bytes]]) -> None:
        def waiting(exc: BaseException) -> None:  # nothing is committed yet: wait
            log.warning("retry_publish_failed", topic=topic, error_class=type(exc).__name__)

        await wait_out_outages(
            lambda: self.producer.send_and_wait(
                topic,
                value=d.value,
                key=d.key.encode() if d.key is not None else None,
                partition=d.partition,
                headers=headers,
            ),
            clock=self.clock,
            on_wait=waiting,
        )
