"""What a failed batch does: waits out rate limits, names refused events, halves for a bug,
routes a whole batch when the CRM is down. Never one event at a time.

A BatchProcessor on a real SQLite store and the REST connector against the contract
server, with a scripted RecordProducer (retry topics and the DLQ) and, for the waits, a
ManualClock.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

import pytest

from wa_bridge.bus.consumer import Delivery
from wa_bridge.bus.topics import dlq_topic, retry_topic
from wa_bridge.clock import SYSTEM_CLOCK, Clock, ManualClock
from wa_bridge.errors import CrmRejected
from wa_bridge.events import CanonicalEvent
from wa_bridge.settings import Settings
from wa_bridge.store.api import DeadLetterFilter, EventOrigin, Store
from wa_bridge.worker.assembly import build_crm_connector
from wa_bridge.worker.batch import BatchProcessor
from wa_bridge.worker.dlq import DeadLetterer
from wa_bridge.worker.options import BatchOptions
from wa_bridge.worker.pipeline import BatchResult, Pipeline

from .conftest import FlakyCrm, make_event
from .mapper import NoteMapper
from .scripted import ScriptedProducer

TOPIC = "wa.unit"
Build = Callable[..., BatchProcessor]


@pytest.fixture
async def build(store: Store, crm: FlakyCrm) -> AsyncIterator[Build]:
    closers: list[Any] = []

    def make(
        producer: ScriptedProducer,
        *,
        attempts: int = 2,
        clock: Clock = SYSTEM_CLOCK,
        pipeline_cls: type[Pipeline] = Pipeline,
    ) -> BatchProcessor:
        settings = Settings(
            kafka_topic=TOPIC,
            connector="rest",
            crm_base_url=crm.url,
            crm_token=crm.token,
            retry_delays_s=[5.0, 60.0],
            retry_in_place_attempts=attempts,
        )
        connector = build_crm_connector(settings, store, clock=clock)  # the gate waits on it
        closers.append(connector.aclose)
        return BatchProcessor(
            BatchOptions.from_settings(settings),
            pipeline=pipeline_cls(store, NoteMapper(), connector),
            dead_letterer=DeadLetterer(producer, store, base_topic=TOPIC),
            producer=producer,
            clock=clock,
        )

    yield make
    for close in closers:
        await close()


class CountingPipeline(Pipeline):
    """The real pipeline, counting its calls (each one store transaction)."""

    calls = 0

    async def apply(
        self,
        events: Sequence[CanonicalEvent],
        *,
        use_ledger: bool = True,
        origins: Mapping[str, EventOrigin] | None = None,
    ) -> BatchResult:
        self.calls += 1
        return await super().apply(events, use_ledger=use_ledger, origins=origins)


def records(n: int, **poison: str) -> list[Delivery]:
    """``n`` events of ``n`` contacts over 2 partitions; ``poison={"3": "bug"}`` taints one."""
    out = []
    for i in range(n):
        contact = f"+5215540{i:06d}"
        extra = {"poison": poison[str(i)]} if str(i) in poison else {}
        event = make_event(i, contact, **extra)
        out.append(
            Delivery(topic=TOPIC, partition=i % 2, offset=i, key=contact, value=event.to_json())
        )
    return out


def batch_requests(crm: FlakyCrm) -> int:
    return sum(1 for r in crm.requests if r.path == "/batch")


async def test_rate_limits_are_waited_out_on_the_clock_without_using_the_budget(
    build: Build, crm: FlakyCrm
) -> None:
    clock = ManualClock()
    producer = ScriptedProducer()
    processor = build(producer, attempts=1, clock=clock)  # a counted failure would split it
    crm.script(status=429, retry_after_s=30, times=3)
    crm.script(status=429, times=2)  # no Retry-After: back off 1 s, then 2 s
    waits: list[float] = []
    async with asyncio.timeout(10):
        work = asyncio.create_task(processor.process(records(3)))
        for _ in range(5):
            await clock.sleeping()
            before = clock.monotonic()
            clock.advance(30 if len(waits) < 3 else 2 ** (len(waits) - 3))
            waits.append(clock.monotonic() - before)
        tally = await work
    assert waits == [30, 30, 30, 1, 2]
    assert (tally.delivered, tally.retried, tally.dead_lettered) == (3, 0, 0)
    assert producer.sent == []  # no retry topic, no DLQ for a quota
    assert batch_requests(crm) == 6  # the same batch, whole, every time
    assert sorted(crm.notes()) == ["wamid.0", "wamid.1", "wamid.2"]


async def test_refused_events_are_dead_lettered_by_name_and_the_rest_applied_at_once(
    build: Build, crm: FlakyCrm, store: Store
) -> None:
    producer = ScriptedProducer()
    processor = build(producer)
    tally = await processor.process(records(10, **{"2": "permanent", "7": "permanent"}))
    assert (tally.delivered, tally.dead_lettered) == (8, 2)
    assert batch_requests(crm) == 1  # no search for them: they were named
    assert producer.sent == [dlq_topic(TOPIC)] * 2
    letters = await store.list_dead_letters(DeadLetterFilter())
    assert sorted(d.event_id for d in letters) == ["ev-2", "ev-7"]
    assert {d.error_class for d in letters} == {"MappingOutputInvalid"}


async def test_a_bug_is_isolated_by_halving_never_one_event_at_a_time(
    build: Build, crm: FlakyCrm, store: Store
) -> None:
    producer = ScriptedProducer()
    processor = build(producer)
    tally = await processor.process(records(16, **{"5": "bug"}))
    assert (tally.delivered, tally.dead_lettered) == (15, 1)
    # halves of 8, 4, 2, 1 without the bug each went through once: 4 CRM calls, not 15
    assert batch_requests(crm) == 4
    assert len(crm.notes()) == 15
    (letter,) = await store.list_dead_letters(DeadLetterFilter())
    assert (letter.event_id, letter.error_class) == ("ev-5", "UnexpectedError")


async def test_a_crm_outage_routes_the_whole_batch_after_two_probes(
    build: Build, crm: FlakyCrm
) -> None:
    producer = ScriptedProducer()
    processor = build(producer)
    crm.script(status=503, times=100)
    tally = await processor.process(records(16))
    # 2 tries of the batch (the in-place budget), then one of each half: both down
    assert batch_requests(crm) == 4
    assert (tally.retried, tally.dead_lettered, tally.delivered) == (16, 0, 0)
    assert producer.sent == [retry_topic(TOPIC, 1)] * 16


async def test_a_record_that_fails_the_call_is_found_and_the_others_written(
    build: Build, crm: FlakyCrm
) -> None:
    """A 5xx caused by one record (the CRM is up: the other half goes through)."""
    producer = ScriptedProducer()
    processor = build(producer)
    crm.flaky["wamid.9"] = 100
    tally = await processor.process(records(16))
    assert (tally.delivered, tally.retried) == (15, 1)
    assert producer.sent == [retry_topic(TOPIC, 1)]
    assert "wamid.9" not in crm.notes() and len(crm.notes()) == 15
    assert batch_requests(crm) <= 2 + 2 * 4  # the budget, then two calls per halving


async def test_when_every_event_fails_the_search_stops_and_routes_the_rest(
    build: Build, crm: FlakyCrm, store: Store
) -> None:
    """A bad deploy: every event hits the bug. 64 events are not searched 127 times."""
    producer = ScriptedProducer()
    processor = build(producer, attempts=1, pipeline_cls=CountingPipeline)
    tally = await processor.process(records(64, **{str(i): "bug" for i in range(64)}))
    assert tally.dead_lettered == 64
    assert isinstance(processor.pipeline, CountingPipeline)
    assert processor.pipeline.calls <= 1 + 4 * 6  # the batch, then ≤ 4 per halving level
    assert batch_requests(crm) == 0


class RefusingPipeline(Pipeline):
    """The real pipeline, plus what a connector's batch results will say: the CRM refused
    the records of the events listed in ``refuse`` (PHASE2: OpRejected per operation)."""

    refuse: frozenset[str] = frozenset({"ev-1", "ev-4"})

    async def apply(
        self,
        events: Sequence[CanonicalEvent],
        *,
        use_ledger: bool = True,
        origins: Mapping[str, EventOrigin] | None = None,
    ) -> BatchResult:
        result = await super().apply(events, use_ledger=use_ledger, origins=origins)
        for event in events:
            if event.id in self.refuse:
                result.rejected[event.id] = CrmRejected(
                    "record refused", status_code=400, crm_error="email is invalid"
                )
        return result


async def test_records_the_crm_refused_are_dead_lettered_and_the_batch_is_not_split(
    build: Build, crm: FlakyCrm, store: Store
) -> None:
    producer = ScriptedProducer()
    processor = build(producer, pipeline_cls=RefusingPipeline)
    tally = await processor.process(records(6))
    assert (tally.delivered, tally.dead_lettered, tally.retried) == (4, 2, 0)
    assert batch_requests(crm) == 1  # written once; nothing searched, nothing retried
    letters = await store.list_dead_letters(DeadLetterFilter())
    assert sorted((d.event_id, d.crm_error) for d in letters) == [
        ("ev-1", "email is invalid"),
        ("ev-4", "email is invalid"),
    ]
