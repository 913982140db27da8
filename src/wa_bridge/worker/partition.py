"""One partition's records: apply them in order, route each failure by its class.

Main-topic records are applied as one batch (one store transaction). When the batch
fails, its events are applied one by one so only the bad one is retried or
dead-lettered. Retry-topic records come one at a time, in order, once due. Events whose
records the CRM refused one by one (the pipeline's ``BatchResult.rejected``) are
dead-lettered with the CRM's message; the rest of their batch is applied.

Whatever the pipeline raises for an event decides that event's fate by its class (a bug
included: the poison-event rule). The bookkeeping around it (the store outage wait, the
retry-topic publish, the dead-letter write) waits out ``BusUnavailable`` and
``StoreUnavailable`` only: any other exception there is a bug of ours and propagates, so
the worker stops with nothing committed instead of stalling the partition in a loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import orjson

from wa_bridge.bus.consumer import Delivery, retry_headers
from wa_bridge.bus.record_producer import RecordProducer
from wa_bridge.bus.topics import retry_topic
from wa_bridge.clock import SYSTEM_CLOCK, Clock, epoch_ms
from wa_bridge.errors import InvalidEvent, PermanentError, RetryableError
from wa_bridge.events import CanonicalEvent
from wa_bridge.log import get_logger
from wa_bridge.metrics import EVENT_OUTCOMES, WORKER_BATCH_SECONDS, count_event
from wa_bridge.settings import Settings
from wa_bridge.store.api import EventOrigin, LedgerOutcome
from wa_bridge.worker.dlq import DeadLetterer, dead_letter_of
from wa_bridge.worker.pipeline import BatchResult, Pipeline, check_route
from wa_bridge.worker.retry import (
    UNEXPECTED_ERROR,
    ErrorClass,
    ParkingLot,
    error_class_of,
    fate_of,
    retry_in_place,
    wait_out_outages,
)

__all__ = ["Outcome", "PartitionOptions", "PartitionProcessor", "RetryReason", "Tally"]

log = get_logger("worker")


@dataclass(frozen=True, slots=True)
class PartitionOptions:
    """What a :class:`PartitionProcessor` reads from the settings."""

    base_topic: str  # the main topic; retry topics are named after it
    retry_delays_s: tuple[float, ...]  # one per retry topic, in order
    in_place_attempts: int  # tries of an event before it moves to the next retry topic
    phone_number_ids: frozenset[str]  # numbers served; empty serves all

    @classmethod
    def from_settings(cls, settings: Settings) -> PartitionOptions:
        return cls(
            base_topic=settings.kafka_topic,
            retry_delays_s=tuple(settings.retry_delays_s),
            in_place_attempts=settings.retry_in_place_attempts,
            phone_number_ids=frozenset(settings.phone_number_ids),
        )


# How one event's processing ended, as counted (Tally, WorkerStats) and exported
# (wa_bridge_event_outcomes_total{outcome=...}).
Outcome = Literal["applied", "noop", "stale", "retried", "dead_lettered"]
# Why an event goes to a retry topic: its error class, or an earlier event of its
# contact is already there.
RetryReason = ErrorClass | Literal["ParkedBehind"]


@dataclass(slots=True)
class Tally:
    delivered: int = 0
    duplicates: int = 0
    stale: int = 0
    retried: int = 0
    dead_lettered: int = 0


@dataclass(frozen=True, slots=True)
class _Item:
    delivery: Delivery
    event: CanonicalEvent | None
    error: BaseException | None = None

    @property
    def event_id(self) -> str:
        return self.event.id if self.event else f"offset:{self.delivery.offset}"

    @property
    def event_type(self) -> str:
        return self.event.type if self.event else "unknown"


def _parse(delivery: Delivery, phone_number_ids: frozenset[str]) -> _Item:
    try:
        event = CanonicalEvent.from_json(delivery.value)
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        error = InvalidEvent(
            f"record {delivery.topic}/{delivery.partition}@{delivery.offset} is not a "
            f"canonical event ({type(exc).__name__}); fix the producer"
        )
        return _Item(delivery, None, error)
    try:
        check_route(event, phone_number_ids)
    except PermanentError as exc:
        return _Item(delivery, event, exc)
    return _Item(delivery, event)


class PartitionProcessor:
    """Applies records of one partition at a time; shared by all partitions (stateless
    apart from the parking lot, which is keyed by partition)."""

    def __init__(
        self,
        options: PartitionOptions,
        *,
        pipeline: Pipeline,
        dead_letterer: DeadLetterer,
        producer: RecordProducer,
        parking: ParkingLot | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.pipeline = pipeline
        self.dead_letterer = dead_letterer
        self.producer = producer
        self.parking = parking or ParkingLot()
        self.clock = clock
        self.options = options

    def note_in_retry(self, delivery: Delivery) -> None:
        """A fetched retry record parks its contact (rebuilds the lot after a restart)."""
        if delivery.key is None:
            return
        try:
            event_id = str(orjson.loads(delivery.value)["id"])
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return
        self.parking.park(delivery.partition, delivery.key, event_id, max(1, delivery.attempt))

    async def process(self, deliveries: Sequence[Delivery], *, is_retry: bool) -> Tally:
        tally = Tally()
        items = [_parse(d, self.options.phone_number_ids) for d in deliveries]
        if is_retry:
            for item in items:
                await self._one(item, tally, level=max(1, item.delivery.attempt))
            return tally
        candidates: list[_Item] = []
        for item in items:
            if item.error is not None:
                await self._dead_letter(item, item.error, tally, attempts=1)
            elif self._parked_level(item):
                await self._park_behind(item, tally)
            else:
                candidates.append(item)
        if candidates:
            await self._batch(candidates, tally)
        return tally

    # --- main-topic batch -------------------------------------------------------------

    async def _batch(self, items: list[_Item], tally: Tally) -> None:
        events = [i.event for i in items if i.event is not None]
        started = self.clock.monotonic()
        try:
            result = await self._apply(
                events, attempts=self.options.in_place_attempts, origins=_origins(items)
            )
        except Exception as exc:  # the pipeline failed for some event: find it, one by one
            log.info(
                "batch_failed_isolating",
                partition=items[0].delivery.partition,
                size=len(items),
                error_class=error_class_of(exc),
            )
            budget = 1 if isinstance(exc, RetryableError) else self.options.in_place_attempts
            for item in items:
                await self._one(item, tally, level=0, attempts=budget)
            return
        applied = await self._dead_letter_refused(items, result, tally, attempts=1)
        if applied:
            self._delivered(applied, result, tally, started)

    # --- one event --------------------------------------------------------------------

    async def _one(self, item: _Item, tally: Tally, *, level: int, attempts: int = 0) -> None:
        if item.error is not None or item.event is None:
            await self._dead_letter(item, item.error or InvalidEvent("empty"), tally, attempts=1)
            return
        ahead = self._parked_level(item)
        if ahead > level:
            await self._park_behind(item, tally)
            return
        started = self.clock.monotonic()
        try:
            result = await self._apply(
                [item.event],
                attempts=attempts or self.options.in_place_attempts,
                origins=_origins([item]),
            )
        except Exception as exc:  # the poison-event rule: its class decides (bugs included)
            await self._fail(item, exc, tally, level=level)
            return
        self._release(item)
        if await self._dead_letter_refused([item], result, tally, attempts=level + 1):
            self._delivered([item], result, tally, started)

    async def _apply(
        self,
        events: list[CanonicalEvent],
        *,
        attempts: int,
        origins: dict[str, EventOrigin] | None = None,
    ) -> BatchResult:
        """Pipeline with the in-place budget; waits out infrastructure outages."""

        def waiting(exc: BaseException) -> None:
            log.warning("store_unavailable_waiting", error_class=type(exc).__name__)

        return await wait_out_outages(
            lambda: retry_in_place(
                lambda: self.pipeline.apply(events, origins=origins),
                attempts=attempts,
                on_retry=_log_in_place_retry,
                clock=self.clock,
            ),
            clock=self.clock,
            on_wait=waiting,
        )

    async def _fail(self, item: _Item, exc: BaseException, tally: Tally, *, level: int) -> None:
        if error_class_of(exc) == UNEXPECTED_ERROR:
            log.error(
                "event_failed_unexpectedly",
                event_id=item.event_id,
                event_type=item.event_type,
                exc_info=exc,
            )
        fate = fate_of(exc, attempt=level, max_attempt=len(self.options.retry_delays_s))
        if fate.action == "retry":
            await self._to_retry(item, level + 1, tally, error_class=fate.error_class)
        else:
            self._release(item)
            await self._dead_letter(item, exc, tally, attempts=level + 1)

    # --- the CRM's refusals --------------------------------------------------------------

    async def _dead_letter_refused(
        self, items: Sequence[_Item], result: BatchResult, tally: Tally, *, attempts: int
    ) -> list[_Item]:
        """Dead-letter the events the CRM refused (``result.rejected``: nothing of them was
        committed), each with the CRM's message; return the other items (applied)."""
        if not result.rejected:
            return list(items)
        applied: list[_Item] = []
        refused: set[str] = set()
        for item in items:
            error = result.rejected.get(item.event_id)
            if error is None:
                applied.append(item)
            elif item.event_id not in refused:  # the same event twice in a batch: once
                refused.add(item.event_id)
                self._release(item)
                await self._dead_letter(item, error, tally, attempts=attempts)
        return applied

    # --- routing ----------------------------------------------------------------------

    def _parked_level(self, item: _Item) -> int:
        key = item.delivery.key
        if key is None:
            return 0
        return self.parking.level_ahead(item.delivery.partition, key, item.event_id)

    async def _park_behind(self, item: _Item, tally: Tally) -> None:
        level = max(1, self._parked_level(item))
        await self._to_retry(item, level, tally, error_class="ParkedBehind")

    async def _to_retry(
        self, item: _Item, level: int, tally: Tally, *, error_class: RetryReason
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
        tally.retried += 1
        _routed("retried", item, attempt=level, error_class=error_class)

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

    async def _dead_letter(
        self, item: _Item, exc: BaseException, tally: Tally, *, attempts: int
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
        tally.dead_lettered += 1
        _routed("dead_lettered", item, attempt=attempts, error_class=letter.error_class)

    def _release(self, item: _Item) -> None:
        if item.delivery.key is not None:
            self.parking.release(item.delivery.partition, item.delivery.key, item.event_id)

    def _delivered(
        self, items: Sequence[_Item], result: BatchResult, tally: Tally, started: float
    ) -> None:
        """Count each event's outcome; one INFO line per batch, one DEBUG line per event.

        At thousands of events a second an INFO line each cost ~17% of the worker's CPU
        (py-spy); each event's outcome and time stay queryable in the ledger
        (processed_events), and retries and dead letters keep their own INFO line.
        """
        elapsed_s = self.clock.monotonic() - started
        duration_ms = round(elapsed_s * 1000, 2)
        seen: set[str] = set()
        counts: dict[Outcome, int] = {"applied": 0, "noop": 0, "stale": 0}
        for item in items:
            outcome = _delivered_outcome(result.outcomes.get(item.event_id, "applied"))
            if item.event_id in seen:
                outcome = "noop"  # the same event twice in one batch
            seen.add(item.event_id)
            counts[outcome] += 1
            log.debug(
                "event_delivered",
                event_id=item.event_id,
                event_type=item.event_type,
                partition=item.delivery.partition,
                offset=item.delivery.offset,
                attempt=item.delivery.attempt,
                outcome=outcome,
                duration_ms=duration_ms,
            )
        tally.delivered += counts["applied"]
        tally.duplicates += counts["noop"]
        tally.stale += counts["stale"]
        for counted, count in counts.items():
            if count:
                _export(counted, count)
        WORKER_BATCH_SECONDS.observe(elapsed_s)
        log.info(
            "batch_delivered",
            partition=items[0].delivery.partition,
            first_offset=items[0].delivery.offset,
            last_offset=items[-1].delivery.offset,
            attempt=items[0].delivery.attempt,
            duration_ms=duration_ms,
            **counts,
        )


def _origins(items: Sequence[_Item]) -> dict[str, EventOrigin]:
    """Ops hook: where each event was consumed (its first topic/partition/offset, and the
    retry level), for its trace."""
    return {
        i.event_id: EventOrigin(*i.delivery.origin(), attempt=i.delivery.attempt) for i in items
    }


def _log_in_place_retry(error: BaseException, attempt: int) -> None:
    error_class = error_class_of(error)
    if error_class == UNEXPECTED_ERROR:  # a bug of ours: keep the traceback
        log.warning("retrying_in_place", error_class=error_class, attempt=attempt, exc_info=error)
    else:
        log.info("retrying_in_place", error_class=error_class, attempt=attempt)


def _delivered_outcome(ledger: LedgerOutcome) -> Literal["applied", "noop", "stale"]:
    """A delivered event's outcome from the ledger's word for it."""
    if ledger == "noop" or ledger == "stale":
        return ledger
    return "applied"


def _export(outcome: Outcome, count: int = 1) -> None:
    EVENT_OUTCOMES.labels(outcome=outcome).inc(count)


def _routed(
    outcome: Literal["retried", "dead_lettered"], item: _Item, *, attempt: int, error_class: str
) -> None:
    """Export and log (one INFO line) an event sent to a retry topic or the DLQ."""
    _export(outcome)
    count_event(item.event_type, outcome)  # ops hook: by event type
    log.info(
        f"event_{outcome}",
        event_id=item.event_id,
        event_type=item.event_type,
        partition=item.delivery.partition,
        offset=item.delivery.offset,
        attempt=attempt,
        error_class=error_class,
    )
