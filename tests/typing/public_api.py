"""Public signatures, checked by mypy --strict (scripts/test runs mypy on this file too).

Nothing here runs: the functions are only type-checked, like faststream's tests/mypy.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import Any, assert_type

from wa_bridge.bus.consumer import Delivery, RecordConsumer, TopicPartition, build_consumer
from wa_bridge.bus.record_producer import RecordProducer, build_producer
from wa_bridge.clock import SYSTEM_CLOCK, Clock, ManualClock, epoch_ms
from wa_bridge.connectors import SetupResult, set_up_crm
from wa_bridge.connectors.base import CrmConnector, OpResult, RecordBook
from wa_bridge.connectors.gate import CrmGate, quota_key
from wa_bridge.errors import CrmQuotaExhausted
from wa_bridge.events import CanonicalEvent, Contact
from wa_bridge.mapping import CompiledMapping, load_mapping
from wa_bridge.normalize import normalize_webhook
from wa_bridge.normalize.phones import country_of, to_e164
from wa_bridge.operations import CrmOperation
from wa_bridge.settings import Settings, load_settings
from wa_bridge.store import open_store
from wa_bridge.store.api import Store, StoreTx
from wa_bridge.worker.assembly import (
    DeadLetterReplayer,
    build_crm_connector,
    load_event_mapper,
    open_pipeline,
    open_state_store,
    state_store,
)
from wa_bridge.worker.pipeline import EventMapper, Pipeline
from wa_bridge.worker.replay import ReplayResult
from wa_bridge.worker.retry import ErrorClass, error_class_of


def _normalize() -> None:
    events = normalize_webhook({}, received_at=datetime.now(UTC))
    assert_type(events, list[CanonicalEvent])
    assert_type(events[0].subject, str | None)
    assert_type(CanonicalEvent.from_json(b"{}"), CanonicalEvent)
    assert_type(Contact(key=None).to_dict(), dict[str, Any])
    assert_type(to_e164("5215512345678"), str | None)
    assert_type(country_of("+525512345678"), str | None)


def _mapping() -> None:
    mapping = load_mapping("mappings/sql.yaml")
    assert_type(mapping, CompiledMapping)
    assert_type(mapping.apply(CanonicalEvent.from_json(b"{}")), list[CrmOperation])


async def _store_and_connector(connector: CrmConnector, op: CrmOperation) -> None:
    store: Store = await open_store("sqlite+aiosqlite:///x.db")  # SqlStore is a Store
    async with store.transaction() as tx:
        assert_type(tx, StoreTx)
        assert_type(await tx.claim_events(["id"]), set[str])
        book = await tx.load_records(connector.instance, ["c_1"])
        assert_type(book, RecordBook)
    assert_type(await connector.apply([op], book), list[OpResult])


def _settings() -> None:
    assert_type(load_settings(), Settings)


async def _worker_assembly(settings: Settings) -> None:
    store = await open_state_store(settings)
    assert_type(store, Store)
    assert_type(load_event_mapper(settings), EventMapper)
    assert_type(build_crm_connector(settings, store), CrmConnector)
    async with contextlib.AsyncExitStack() as stack:
        assert_type(await open_pipeline(settings, stack, store=store), Pipeline)
    async with state_store(settings) as opened, DeadLetterReplayer(settings, opened) as replayer:
        assert_type(await replayer.replay([1], actor="ops"), list[ReplayResult])
    assert_type(error_class_of(KeyError()), ErrorClass)


async def _clock_and_bus(settings: Settings) -> None:
    clocks: list[Clock] = [SYSTEM_CLOCK, ManualClock()]  # both are Clocks
    assert_type(epoch_ms(clocks[0]), int)
    consumer: RecordConsumer = build_consumer(settings)
    fetched = await consumer.getmany(timeout_ms=100, max_records=10)
    assert_type(fetched, dict[TopicPartition, list[Delivery]])
    producer: RecordProducer = build_producer(settings)
    await producer.send_and_wait("t", b"v", key=None, partition=None, headers=())


async def _quota_and_setup(settings: Settings, gate: CrmGate) -> None:
    assert_type(await gate.admit(), bool)  # True: the probe; release it when answered
    gate.release(True)
    assert_type(quota_key(settings), str)
    assert_type(
        CrmQuotaExhausted("x", resume_at=datetime.now(UTC), retry_after_s=1).resume_at, datetime
    )
    assert_type(await set_up_crm(settings, dry_run=True, engine=None), SetupResult)
