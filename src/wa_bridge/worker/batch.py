"""One batch of records: apply them together, route each failure by its class.

A batch holds records of any partitions and topics (the main topic and its retry topics),
each partition's records in offset order, and is applied as one pipeline call (one store
transaction, as few CRM requests as the connector can make of it). What a failure does:

- events the pipeline refused on their own (their mapping, their keys; no CRM call was
  made): dead-lettered, and the others applied again;
- a rate limit: waited out in place for as long as the CRM asks (never counted as a try,
  never a reason to route an event);
- a spent CRM budget (``CrmQuotaExhausted``): the worker pauses consumption until the
  budget is back, then the same batch again (:mod:`wa_bridge.worker.quota_pause`);
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
whose contact has an earlier event in the retry path are sent behind it (park behind:
:mod:`wa_bridge.worker.routing`, which also routes the failed events).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import orjson

from wa_bridge.bus.consumer import Delivery
from wa_bridge.bus.record_producer import RecordProducer
from wa_bridge.clock import SYSTEM_CLOCK, Clock
from wa_bridge.errors import (
    CrmQuotaExhausted,
    CrmRateLimited,
    CrmRejected,
    InvalidEvent,
    PermanentError,
    RetryableError,
)
from wa_bridge.events import CanonicalEvent
from wa_bridge.log import get_logger
from wa_bridge.worker.dlq import DeadLetterer
from wa_bridge.worker.options import BatchOptions
from wa_bridge.worker.outcomes import BatchItem, Tally, count_delivered, export
from wa_bridge.worker.pipeline import BatchResult, EventsRefused, Pipeline, check_route
from wa_bridge.worker.quota_pause import QuotaPause
from wa_bridge.worker.retry import (
    UNEXPECTED_ERROR,
    ParkingLot,
    error_class_of,
    retry_in_place,
    wait_out_outages,
)
from wa_bridge.worker.routing import Router

__all__ = ["BatchProcessor"]

log = get_logger("worker")

# CRM answers that refuse the caller, not a record: splitting the batch cannot help.
_CALLER_REFUSED = frozenset({401, 403})
# Calls a batch's search for its failing events may make, per halving level (two halves
# each, twice over: a few bad events are found; a batch where everything fails is not
# searched 2n times).
_SEARCH_CALLS_PER_LEVEL: Final = 4


@dataclass(frozen=True, slots=True)
class _Failed:
    items: list[BatchItem]  # what is left of the batch (refused events were dead-lettered)
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
        quota: QuotaPause | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.options = options
        self.pipeline = pipeline
        self.clock = clock
        self.parking = parking or ParkingLot()
        self.quota = quota or QuotaPause(clock)
        self.router = Router(
            options,
            producer=producer,
            dead_letterer=dead_letterer,
            parking=self.parking,
            clock=clock,
        )

    def note_in_retry(self, delivery: Delivery) -> None:
        """A fetched retry record parks its contact (rebuilds the lot after a restart)."""
        self.router.note_in_retry(delivery)

    async def process(self, deliveries: Sequence[Delivery]) -> Tally:
        """Apply ``deliveries`` (each partition's in offset order) and route what fails;
        when this returns, every one of them is finished (see the module docstring)."""
        tally = Tally()
        good: list[BatchItem] = []
        for item in (self._parse(d) for d in deliveries):
            if item.error is not None:
                await self.router.dead_letter(item, item.error, tally, attempts=1)
            else:
                good.append(item)
        items = await self.router.unparked(good, tally)
        failed = await self._attempt(items, tally, attempts=self.options.in_place_attempts)
        if failed is not None:
            await self._isolate(failed, tally, _Search.for_size(len(failed.items)))
        return tally

    def _parse(self, delivery: Delivery) -> BatchItem:
        is_retry = delivery.topic != self.options.base_topic
        level = max(1, delivery.attempt) if is_retry else 0
        try:
            event = CanonicalEvent.from_json(delivery.value)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            error = InvalidEvent(
                f"record {delivery.topic}/{delivery.partition}@{delivery.offset} is not a "
                f"canonical event ({type(exc).__name__}); fix the producer"
            )
            return BatchItem(delivery, None, level, error)
        try:
            check_route(event, self.options.phone_number_ids)
        except PermanentError as exc:
            return BatchItem(delivery, event, level, exc)
        return BatchItem(delivery, event, level)

    async def _attempt(
        self, items: list[BatchItem], tally: Tally, *, attempts: int
    ) -> _Failed | None:
        """Apply ``items`` with ``attempts`` tries; dead-letter what the pipeline refused
        and apply the rest again. None when done, else what is left and why it failed."""
        while items:
            started = self.clock.monotonic()
            try:
                result = await self._apply(items, attempts)
            except EventsRefused as refused:
                items = await self._refuse(items, refused, tally)
                continue
            except Exception as exc:  # the poison-event rule: its class decides (bugs too)
                return _Failed(items, exc)
            elapsed_s = self.clock.monotonic() - started
            delivered = [i for i in items if i.event_id not in result.rejected]
            for item in items:
                self.router.release(item)
            if delivered:
                count_delivered(delivered, result, tally, elapsed_s)
            await self._rejected(items, result, tally)
            return None
        return None

    async def _rejected(self, items: list[BatchItem], result: BatchResult, tally: Tally) -> None:
        """Dead-letter the events the CRM refused record by record; the rest took effect."""
        done: set[str] = set()
        for item in items:
            error = result.rejected.get(item.event_id)
            if error is not None and item.event_id not in done:
                done.add(item.event_id)
                await self.router.dead_letter(item, error, tally, attempts=item.level + 1)

    async def _apply(self, items: list[BatchItem], attempts: int) -> BatchResult:
        """Pipeline with the in-place budget; waits out rate limits, our own outages and
        a spent CRM budget (paused until it is back)."""
        events: list[CanonicalEvent] = [i.event for i in items if i.event]
        origins = {i.event_id: i.origin for i in items}  # for each event's trace

        def waiting(exc: BaseException) -> None:
            log.warning("store_unavailable_waiting", error_class=type(exc).__name__)

        while True:
            try:
                result = await wait_out_outages(
                    lambda: retry_in_place(
                        lambda: self.pipeline.apply(events, origins=origins),
                        attempts=attempts,
                        on_retry=_log_in_place_retry,
                        clock=self.clock,
                    ),
                    clock=self.clock,
                    on_wait=waiting,
                )
            except CrmQuotaExhausted as exc:  # nothing committed: the same batch, later
                await self.quota.wait_out(exc)
                continue
            self.quota.resumed()
            return result

    async def _refuse(
        self, items: list[BatchItem], refused: EventsRefused, tally: Tally
    ) -> list[BatchItem]:
        """Dead-letter the refused events (a second copy of one in the batch is a duplicate
        of it); return the others, in order."""
        rest: list[BatchItem] = []
        seen: set[str] = set()
        for item in items:
            error = refused.errors.get(item.event_id)
            if error is None:
                rest.append(item)
            elif item.event_id in seen:
                tally.duplicates += 1
                export("noop")
            else:
                seen.add(item.event_id)
                self.router.release(item)
                await self.router.dead_letter(item, error, tally, attempts=item.level + 1)
        return rest

    async def _isolate(self, failed: _Failed, tally: Tally, search: _Search) -> None:
        """Find the events that make ``failed.items`` fail by halving (module docstring)."""
        items, error = failed.items, failed.error
        if len(items) == 1 or search.calls < 2:
            if len(items) > 1:
                log.info("batch_search_spent", size=len(items), error_class=error_class_of(error))
            for item in items:
                await self.router.fail(item, error, tally)
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
                    await self.router.fail(item, f.error, tally)
            return
        for f in failures:
            await self._isolate(f, tally, search)

    async def _once(self, items: list[BatchItem], tally: Tally) -> _Failed | None:
        """One try of ``items`` (rate limits and outages still waited out)."""
        return await self._attempt(await self.router.unparked(items, tally), tally, attempts=1)


def _halves(items: list[BatchItem]) -> tuple[list[BatchItem], list[BatchItem], bool]:
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
