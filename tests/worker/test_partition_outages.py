"""Bookkeeping waits out bus and store outages, and a bug there stops the partition.

A BatchProcessor on a real SQLite store and the built-in SQL CRM, with a scripted
RecordProducer (a real alternative to Kafka's, per the seam) and a ManualClock.
"""

from __future__ import annotations

import asyncio

import pytest

from wa_bridge.bus.consumer import Delivery
from wa_bridge.bus.topics import dlq_topic, retry_topic
from wa_bridge.clock import ManualClock
from wa_bridge.errors import BusUnavailable
from wa_bridge.settings import Settings
from wa_bridge.store.api import DeadLetterFilter, Store
from wa_bridge.worker.assembly import build_crm_connector
from wa_bridge.worker.batch import BatchProcessor
from wa_bridge.worker.dlq import DeadLetterer
from wa_bridge.worker.options import BatchOptions
from wa_bridge.worker.pipeline import Pipeline

from .conftest import make_event
from .mapper import NoteMapper
from .scripted import ScriptedProducer

TOPIC = "wa.unit"
K = "+5215512340000"


def _processor(store: Store, producer: ScriptedProducer, clock: ManualClock) -> BatchProcessor:
    settings = Settings(kafka_topic=TOPIC, connector="sql", retry_delays_s=[5.0])
    pipeline = Pipeline(store, NoteMapper(), build_crm_connector(settings, store))
    return BatchProcessor(
        BatchOptions.from_settings(settings),
        pipeline=pipeline,
        dead_letterer=DeadLetterer(producer, store, base_topic=TOPIC),
        producer=producer,
        clock=clock,
    )


def _garbage(offset: int = 0) -> Delivery:
    return Delivery(topic=TOPIC, partition=0, offset=offset, key="garbage", value=b"not json")


async def test_a_bus_outage_while_dead_lettering_is_waited_out(store: Store) -> None:
    clock = ManualClock()
    producer = ScriptedProducer([BusUnavailable("down"), BusUnavailable("still down")])
    processor = _processor(store, producer, clock)
    async with asyncio.timeout(5):
        work = asyncio.create_task(processor.process([_garbage()]))
        await clock.sleeping()
        clock.advance(0.1)
        await clock.sleeping()
        clock.advance(0.2)  # the waits double
        tally = await work
    assert tally.dead_lettered == 1
    assert producer.sent == [dlq_topic(TOPIC)]
    (letter,) = await store.list_dead_letters(DeadLetterFilter())
    assert letter.error_class == "InvalidEvent"


async def test_a_bug_while_dead_lettering_stops_instead_of_looping(store: Store) -> None:
    producer = ScriptedProducer([RuntimeError("a bug in our bookkeeping")])
    processor = _processor(store, producer, ManualClock())
    with pytest.raises(RuntimeError, match="a bug in our bookkeeping"):
        async with asyncio.timeout(5):
            await processor.process([_garbage()])
    assert await store.list_dead_letters(DeadLetterFilter()) == []  # nothing recorded


async def test_a_bug_while_publishing_to_a_retry_topic_stops_instead_of_looping(
    store: Store,
) -> None:
    producer = ScriptedProducer([TypeError("a bug in the retry headers")])
    processor = _processor(store, producer, ManualClock())
    processor.parking.park(0, K, "ev-earlier", 1)  # K has an event in retry: park behind it
    event = make_event(1, K)
    parked = Delivery(topic=TOPIC, partition=0, offset=1, key=K, value=event.to_json())
    with pytest.raises(TypeError, match="retry headers"):
        async with asyncio.timeout(5):
            await processor.process([parked])


async def test_a_bus_outage_while_publishing_to_a_retry_topic_is_waited_out(
    store: Store,
) -> None:
    clock = ManualClock()
    producer = ScriptedProducer([BusUnavailable("down")])
    processor = _processor(store, producer, clock)
    processor.parking.park(0, K, "ev-earlier", 1)
    event = make_event(1, K)
    parked = Delivery(topic=TOPIC, partition=0, offset=1, key=K, value=event.to_json())
    async with asyncio.timeout(5):
        work = asyncio.create_task(processor.process([parked]))
        await clock.sleeping()
        clock.advance(0.1)
        tally = await work
    assert tally.retried == 1
    assert producer.sent == [retry_topic(TOPIC, 1)]
