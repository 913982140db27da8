"""The worker's periodic sweep: close the cases whose customer-service window lapsed.

A case lapses when its contact writes nothing for ``conversation_window_s``; the next event
of that contact closes it (:mod:`wa_bridge.worker.conversations`), but a customer who never
writes again sends no next event. So every ``conversation_sweep_interval_s`` the sweep
looks for open cases whose window ended and publishes one ``conversation.window.check``
per case to the main topic, keyed like the contact's events: the check is applied after
every event of that contact already on the bus (a backlog after an outage included), so
a case is never closed under a message still waiting to be applied. The check's id names
the window it asks about, so checks repeated by several workers, or by a sweep that comes
round again before the first was applied, take effect once (the ledger).

Runs in the worker's TaskGroup; every worker of a group may run it. A database or broker
outage is logged and tried again next time: the sweep never stops event processing.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from wa_bridge.bus.headers import event_headers, record_key
from wa_bridge.bus.record_producer import RecordProducer
from wa_bridge.clock import SYSTEM_CLOCK, Clock, sleep_unless_stopped
from wa_bridge.errors import BusUnavailable, StoreUnavailable
from wa_bridge.events import CanonicalEvent
from wa_bridge.log import get_logger
from wa_bridge.settings import Settings
from wa_bridge.store.api import CaseRecord, Store
from wa_bridge.worker.conversations import CASE_SOURCE, rfc3339
from wa_bridge.worker.facts import WINDOW_CHECK

__all__ = ["SweepOptions", "check_event", "run_sweep", "sweep_once"]

log = get_logger("worker.sweep")
_MAX_PER_SWEEP: Final = 1000
_REMEMBERED: Final = 100_000  # checks sent, not sent again until their case changes


@dataclass(frozen=True, slots=True)
class SweepOptions:
    interval_s: float  # 0 turns the sweep off
    topic: str  # the main topic

    @classmethod
    def from_settings(cls, settings: Settings) -> SweepOptions:
        return cls(interval_s=settings.conversation_sweep_interval_s, topic=settings.kafka_topic)


def check_event(case: CaseRecord, now: datetime) -> CanonicalEvent:
    """The ``conversation.window.check`` of ``case`` (open, with a window), sent at ``now``."""
    lapses_at = rfc3339(case.lapses_at) or ""
    at = rfc3339(now) or ""
    return CanonicalEvent(
        id=f"check:{case.case_key}:{lapses_at}",
        type=WINDOW_CHECK,
        source=CASE_SOURCE,
        time=at,
        data={
            "case_key": case.case_key,
            "contact_id": case.contact_id,
            "business_number": case.business_number,
            "lapses_at": lapses_at,
        },
        subject=case.contact_ref,
        recvtime=at,
    )


async def sweep_once(
    store: Store, producer: RecordProducer, topic: str, now: datetime, sent: dict[str, str]
) -> int:
    """Publish a check for each open case lapsed by ``now`` not already checked (``sent``:
    case key → the check's id, kept between sweeps); return how many were published.
    Raises StoreUnavailable or BusUnavailable."""
    published = 0
    for case in await store.lapsed_cases(now, _MAX_PER_SWEEP):
        event = check_event(case, now)
        if sent.get(case.case_key) == event.id:
            continue
        await producer.send_and_wait(
            topic,
            event.to_json(),
            key=record_key(event),
            partition=None,
            headers=event_headers(event),
        )
        if len(sent) >= _REMEMBERED:
            sent.clear()
        sent[case.case_key] = event.id
        published += 1
    return published


async def run_sweep(
    store: Store,
    producer: RecordProducer,
    options: SweepOptions,
    stop: asyncio.Event,
    *,
    clock: Clock = SYSTEM_CLOCK,
) -> None:
    """Sweep now, then every interval, until ``stop`` is set (interval 0: never)."""
    if options.interval_s <= 0:
        return
    sent: dict[str, str] = {}
    while not stop.is_set():
        try:
            published = await sweep_once(store, producer, options.topic, clock.now(), sent)
        except (StoreUnavailable, BusUnavailable) as exc:  # next round tries again
            log.warning("sweep_failed", error_class=type(exc).__name__)
        else:
            if published:
                log.info("window_checks_published", cases=published)
        await sleep_unless_stopped(clock, options.interval_s, stop)
