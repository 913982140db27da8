"""One batch of records: apply them together, route each failure by its class.

A batch holds records of any partitions and topics (the main topic and its retry topics),
each partition's records in offset order, and is applied as one pipeline call (one store
transaction, as few CRM requests as the connector can make of it). What a failure does:

- events the pipeline refused on their own (their mapping, their keys; no CRM call was
  made): dead-lettered, and the others applied again;
- a rate limit: waited out in place for as long as the CRM asks (never counted as a try,
  never a reason to route an event);
- our state or bus down: waited out, then the same batch again;
- a retryable error or a bug, after ``in_place_attempts`` tries of the whole batch (same
  keys: idempotent), or a permanent error at once: the batch is split in two halves and
  each is tried once, recursively, until a failing event is alone; that event's class
  decides its fate (retry topic or DLQ). Never one event at a time: one bad event costs
  about two calls per halving. Halves split between contacts when the batch has several
  (independent of each other); if both halves fail for a reason about the call, not a
  record (the CRM down, our credentials refused), every event is routed at once instead
  of calling a failing CRM 2n times; and the search stops after about four calls per
  halving level (many bad events, a bad deploy): what is left is routed by its error.

Order per contact: a contact's events keep their offset order in every half, an earlier
half is settled before a later one of the same contact, and before each try the events
whose contact has an earlier event in the retry path are sent behind it (park behind).

The bookkeeping around it (the outage waits, the retry-topic publish, the dead-letter
write) waits out ``BusUnavailable`` and ``StoreUnavailable`` only: any other exception
there is a bug of ours and propagates, so the worker stops with nothing of this batch
committed instead of stalling in a loop.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

import orjson

from wa_bridge.bus.consumer import Delivery, retry_headers
from wa_bridge.bus.record_producer import RecordProducer
from wa_bridge.bus.topics import retry_topic
from wa_bridge.clock import SYSTEM_CLOCK, Clock, epoch_ms
from wa_bridge.errors import (
    CrmRateLimited,
    CrmRejected,
    InvalidEvent,
    PermanentError,
    RetryableError,
)
from wa_bridge.events import CanonicalEvent
from wa_bridge.log import get_logger
from wa_bridge.ops.metrics import EVENT_OUTCOMES, WORKER_BATCH_SECONDS
from wa_bridge.store.api import LedgerOutcome
from wa_bridge.worker.dlq import DeadLetterer, dead_letter_of
from wa_bridge.worker.options import BatchOptions
from wa_bridge.worker.pipeline import BatchResult, EventsRefused, Pipeline, check_route
from wa_bridge.worker.retry import (
    UNEXPECTED_ERROR,
    ErrorClass,
    ParkingLot,
    error_class_of,
    fate_of,
    retry_in_place,
    wait_out_outages,
)

__all__ = ["BatchProcessor", "Outcome", "RetryReason", "Tally"]

log = get_logger("worker")

# How one event's processing ended, as counted (Tally, WorkerStats) and exported
# (wa_bridge_event_outcomes_total{outcome=...}).
Outcome = Literal["applied", "noop", "stale", "retried", "dead_lettered"]
# Why an event goes to a retry topic: its error class, or an earlier event of its
# contact is already there.
RetryReason = ErrorClass | Literal["ParkedBehind"]
# CRM answers that refuse the caller, not a record: splitting the batch cannot help.
_CALLER_REFUSED = frozenset({401, 403})
# Calls a batch's search for its failing events may make, per halving level (two halves
# each, twice over: a few bad events are found; a batch where everything fails is not
# searched 2n times).
_SEARCH_CALLS_PER_LEVEL: Final = 4


@dataclass(slots=True)
class Tally:
    delivered: int = 0
    duplicates: int = 0
    stale: int = 0
    retried: int = 0
    dead_lettered: int = 0

    def add(self, other: Tally) -> None:
        self.delivered += other.delivered
        self.duplicates += other.duplicates
        self.stale += other.stale
        self.retried += other.retried
        self.dead_lettered += other.dead_lettered

    @property
    def finished(self) -> int:
        """Events that took effect (or needed none): the DLQ guard's good outcomes."""
        return self.delivered + self.duplicates + self.stale


@dataclass(frozen=True, slots=True)
class _Item:
    delivery: Delivery
    event: CanonicalEvent | None
    level: int  # 0: the main topic; n: retry topic n
    error: BaseException | None = None

    @property
    def event_id(self) -> str:
        return self.event.id if self.event else f"offset:{self.delivery.offset}"

    @property
    def event_type(self) -> str:
        return self.event.type if self.event else "unknown"

    @property
    def contact(self) -> tuple[int, str]:
        """What orders this event: its record key (else the record itself), per partition."""
        d = self.delivery
        return d.partition, d.key if d.key is not None else f"{d.topic}@{d.offset}"


@dataclass(frozen=True, slots=True)
class _Failed:
    items: list[_Item]  # what is left of the batch (refused events were dead-lettered)
    error: BaseException


@dataclass(slots=True)
class _Search:
    """What is left of a failed batch's budget of single tries."""

    calls: int

    @classmethod
    def for_size(cls, size: int) -> _Search:
        return cls(_SEARCH_CALLS_PER_LEVEL * max(1, math.ceil(math.log2(max(2, size)))))


class BatchProcessor:
    """Applies batches of records; shared by every batch in flight (stateless apart from
    the parking lot, which is keyed by partition)."""

    def __init__(
        self,
        options: BatchOptions,
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

    async def process(self, deliveries: Sequence[Delivery]) -> Tally:
        """Apply ``deliveries`` (each partition's in offset order) and route what fails;
        when this returns, every one of them is finished (see the module docstring)."""
        tally = Tally()
        good: list[_Item] = []
        for item in (self._parse(d) for d in deliveries):
            if item.error is not None:
                await self._dead_letter(item, item.error, tally, attempts=1)
            else:
                good.append(item)
        items = await self._unparked(good, tally)
        failed = await self._attempt(items, tally, attempts=self.options.in_place_attempts)
        if failed is not None:
            await self._isolate(failed, tally, _Search.for_size(len(failed.items)))
        return tally

    def _parse(self, delivery: Delivery) -> _Item:
        is_retry = delivery.topic != self.options.base_topic
        level = max(1, delivery.attempt) if is_retry else 0
        try:
            event = CanonicalEvent.from_json(delivery.value)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            error = InvalidEvent(
                f"record {delivery.topic}/{delivery.partition}@{delivery.offset} is not a "
                f"canonical event ({type(exc).__name__}); fix the producer"
            )
            return _Item(delivery, None, level, error)
        try:
            check_route(event, self.options.phone_number_ids)
        except PermanentError as exc:
            return _Item(delivery, event, level, exc)
        return _Item(delivery, event, level)

    # --- applying ---------------------------------------------------------------------

    async def _attempt(self, items: list[_Item], tally: Tally, *, attempts: int) -> _Failed | None:
        """Apply ``items`` with ``attempts`` tries; dead-letter what the pipeline refused
        and apply the rest again. None when done, else what is left and why it failed."""
        while items:
            started = self.clock.monotonic()
            try:
                result = await self._apply([i.event for i in items if i.event], attempts)
            except EventsRefused as refused:
                items = await self._refuse(items, refused, tally)
                continue
            except Exception as exc:  # the poison-event rule: its class decides (bugs too)
                return _Failed(items, exc)
            for item in items:
                self._release(item)
            self._delivered(items, result, tally, started)
            return None
        return None

    async def _apply(self, events: list[CanonicalEvent], attempts: int) -> BatchResult:
        """Pipeline with the in-place budget; waits out rate limits and our own outages."""

        def waiting(exc: BaseException) -> None:
            log.warning("store_unavailable_waiting", error_class=type(exc).__name__)

        return await wait_out_outages(
            lambda: retry_in_place(
                lambda: self.pipeline.apply(events),
                attempts=attempts,
                on_retry=_log_in_place_retry,
                clock=self.clock,
            ),
            clock=self.clock,
            on_wait=waiting,
        )

    async def _refuse(
        self, items: list[_Item], refused: EventsRefused, tally: Tally
    ) -> list[_Item]:
        """Dead-letter the refused events (a second copy of one in the batch is a duplicate
        of it); return the others, in order."""
        rest: list[_Item] = []
        seen: set[str] = set()
        for item in items:
            error = refused.errors.get(item.event_id)
            if error is None:
                rest.append(item)
            elif item.event_id in seen:
                tally.duplicates += 1
                _export("noop")
            else:
                seen.add(item.event_id)
                self._release(item)
                await self._dead_letter(item, error, tally, attempts=item.level + 1)
        return rest

    async def _isolate(self, failed: _Failed, tally: Tally, search: _Search) -> None:
        """Find the events that make ``failed.items`` fail by halving (module docstring)."""
        items, error = failed.items, failed.error
        if len(items) == 1 or search.calls < 2:
            if len(items) > 1:
                log.info("batch_search_spent", size=len(items), error_class=error_class_of(error))
            for item in items:
                await self._fail(item, error, tally)
            return
        log.info(
            "batch_failed_splitting",
            size=len(items),
            partitions=len({i.delivery.partition for i in items}),
            error_class=error_class_of(error),
        )
        left, right, independent = _halves(items)
        search.calls -= 2
        if not independent:  # one contact: settle the earlier half before the later one
            for half in (left, right):
                again = await self._once(half, tally)
                if again is not None:
                    await self._isolate(again, tally, search)
            return
        results = [await self._once(half, tally) for half in (left, right)]
        failures = [f for f in results if f is not None]
        if len(failures) == 2 and all(_is_about_the_call(f.error) for f in failures):
            log.info("batch_failed_whole", size=len(items), error_class=error_class_of(error))
            for f in failures:
                for item in f.items:
                    await self._fail(item, f.error, tally)
            return
        for f in failures:
            await self._isolate(f, tally, search)

    async def _once(self, items: list[_Item], tally: Tally) -> _Failed | None:
        """One try of ``items`` (rate limits and outages still waited out)."""
        return await self._attempt(await self._unparked(items, tally), tally, attempts=1)

    async def _fail(self, item: _Item, exc: BaseException, tally: Tally) -> None:
        if error_class_of(exc) == UNEXPECTED_ERROR:
            log.error(
                "event_failed_unexpectedly",
                event_id=item.event_id,
                event_type=item.event_type,
                exc_info=exc,
            )
        if self._parked_level(item) > item.level:  # an earlier event of it went ahead
            await self._park_behind(item, tally)
            return
        fate = fate_of(exc, attempt=item.level, max_attempt=len(self.options.retry_delays_s))
        if fate.action == "retry":
            await self._to_retry(item, item.level + 1, tally, error_class=fate.error_class)
        else:
            self._release(item)
            await self._dead_letter(item, exc, tally, attempts=item.level + 1)

    # --- routing ----------------------------------------------------------------------

    async def _unparked(self, items: list[_Item], tally: Tally) -> list[_Item]:
        """Send behind their contact's earlier event in the retry path the items that have
        one at a higher level; return the others, in order."""
        free: list[_Item] = []
        for item in items:
            if self._parked_level(item) > item.level:
                await self._park_behind(item, tally)
            else:
                free.append(item)
        return free

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
            size=len(items),
            partitions=len({(i.delivery.topic, i.delivery.partition) for i in items}),
            duration_ms=duration_ms,
            **counts,
        )


def _halves(items: list[_Item]) -> tuple[list[_Item], list[_Item], bool]:
    """Two halves of ``items``, each in order, and whether they share no contact."""
    contacts = list(dict.fromkeys(i.contact for i in items))
    if len(contacts) > 1:
        first = set(contacts[: len(contacts) // 2])
        left = [i for i in items if i.contact in first]
        right = [i for i in items if i.contact not in first]
        return left, right, True
    mid = len(items) // 2
    return items[:mid], items[mid:], False


def _is_about_the_call(error: BaseException) -> bool:
    """The CRM is down, or refuses us (not a record): every record of the call fails."""
    if isinstance(error, CrmRejected):
        return error.status_code in _CALLER_REFUSED
    return isinstance(error, RetryableError) and not isinstance(error, CrmRateLimited)


def _log_in_place_retry(error: BaseException, attempt: int) -> None:
    error_class = error_class_of(error)
    if error_class == UNEXPECTED_ERROR:  # a bug of ours: keep the traceback
        log.warning("retrying_in_place", error_class=error_class, attempt=attempt, exc_info=error)
    else:
        retry_after_s = getattr(error, "retry_after_s", None)
        log.info(
            "retrying_in_place",
            error_class=error_class,
            attempt=attempt,
            retry_after_s=retry_after_s,
        )


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
    log.info(
        f"event_{outcome}",
        event_id=item.event_id,
        event_type=item.event_type,
        partition=item.delivery.partition,
        offset=item.delivery.offset,
        attempt=attempt,
        error_class=error_class,
    )
