"""``wa-bridge gaps``: messages received but not applied, and why.

"Received" means what Kafka holds: the receiver answers Meta's 200 only after Kafka
acknowledged an event, and the receiver writes no database row, so the main topic is
the record of everything received. This reads the main topic from ``since`` to its end
(with a consumer outside the worker group: nothing is committed) and compares each
event with the ledger, the dead letters, the retry topics and the group's committed
offsets. Kafka's retention bounds how far back this can look.

Why an event is not applied, in the order checked:
``dead-lettered`` (with the error, while the dead letter is open), ``in retry`` (a
record of it waits in a retry topic), ``not consumed yet`` (past the group's committed
offset: lag), ``no ledger row`` (consumed, yet never applied: look at its trace).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from wa_bridge.bus.security import kafka_client_options
from wa_bridge.bus.topics import retry_topic
from wa_bridge.errors import BusUnavailable
from wa_bridge.settings import Settings
from wa_bridge.store.api import Store

__all__ = ["Gap", "ReceivedEvent", "find_gaps"]

_DONE: Final = frozenset({"applied", "noop", "stale", "replayed"})
_FETCH_MS: Final = 500


@dataclass(frozen=True, slots=True)
class ReceivedEvent:
    event_id: str
    event_type: str
    topic: str
    partition: int
    offset: int
    timestamp_ms: int


@dataclass(frozen=True, slots=True)
class Gap:
    event: ReceivedEvent
    reason: str  # dead-lettered | in retry | not consumed yet | no ledger row
    detail: str


def _event_of(record: Any) -> ReceivedEvent:
    try:
        raw = orjson.loads(record.value)
        event_id, event_type = str(raw["id"]), str(raw.get("type", "unknown"))
    except (orjson.JSONDecodeError, KeyError, TypeError):
        event_id, event_type = f"offset:{record.offset}", "unreadable"
    return ReceivedEvent(
        event_id, event_type, record.topic, record.partition, record.offset, record.timestamp
    )


async def _read(consumer: AIOKafkaConsumer, topic: str, since_ms: int) -> list[ReceivedEvent]:
    """Every record of ``topic`` at or after ``since_ms`` (record time), in offset order."""
    partitions = sorted(consumer.partitions_for_topic(topic) or ())
    if not partitions:
        return []
    tps = [TopicPartition(topic, p) for p in partitions]
    consumer.assign(tps)
    ends = await consumer.end_offsets(tps)
    starts = await consumer.beginning_offsets(tps)
    try:
        found = await consumer.offsets_for_times({tp: since_ms for tp in tps})
        starts = {tp: (found[tp].offset if found.get(tp) else ends[tp]) for tp in tps}
    except KafkaError:  # brokers without timestamp lookups: scan and filter by time
        pass
    for tp in tps:
        consumer.seek(tp, starts[tp])
    out: list[ReceivedEvent] = []
    pending = {tp for tp in tps if starts[tp] < ends[tp]}
    while pending:
        batches = await consumer.getmany(*pending, timeout_ms=_FETCH_MS)
        for tp, records in batches.items():
            out += [
                _event_of(r) for r in records if r.offset < ends[tp] and r.timestamp >= since_ms
            ]
        for tp in list(pending):
            if await consumer.position(tp) >= ends[tp]:
                pending.discard(tp)
    return sorted(out, key=lambda e: (e.partition, e.offset))


async def _committed(settings: Settings, partitions: Sequence[int]) -> dict[int, int]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=settings.consumer_group,
        enable_auto_commit=False,
        **kafka_client_options(settings),
    )
    await consumer.start()
    try:
        out = {}
        for p in partitions:
            offset = await consumer.committed(TopicPartition(settings.kafka_topic, p))
            out[p] = offset or 0
        return out
    finally:
        await consumer.stop()


async def find_gaps(settings: Settings, store: Store, *, since: datetime) -> tuple[int, list[Gap]]:
    """(events received since ``since``, those not applied with why). Raises
    BusUnavailable when Kafka cannot be read."""
    since_ms = int(since.timestamp() * 1000)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=None,
        enable_auto_commit=False,
        **kafka_client_options(settings),
    )
    try:
        await consumer.start()
        received = await _read(consumer, settings.kafka_topic, since_ms)
        retrying: dict[str, int] = {}
        for level in range(1, len(settings.retry_delays_s) + 1):
            for event in await _read(consumer, retry_topic(settings.kafka_topic, level), since_ms):
                retrying[event.event_id] = max(level, retrying.get(event.event_id, 0))
        committed = await _committed(settings, sorted({e.partition for e in received}))
    except KafkaError as exc:
        raise BusUnavailable(f"cannot read {settings.kafka_topic}: {type(exc).__name__}") from exc
    finally:
        await consumer.stop()
    ids = [e.event_id for e in received]
    ledger = {e.event_id: e.outcome for e in await store.ops.ledger_entries(ids)}
    letters = {d.event_id: d for d in await store.ops.dead_letters_about(ids=ids, limit=100_000)}
    gaps = []
    for event in received:
        outcome = ledger.get(event.event_id)
        if outcome in _DONE:
            continue
        letter = letters.get(event.event_id)
        if letter is not None and letter.status == "open":
            crm = f"; CRM said: {letter.crm_error}" if letter.crm_error else ""
            detail = f"dead letter {letter.id}: {letter.error_class}: {letter.error_message}{crm}"
            gaps.append(Gap(event, "dead-lettered", detail))
        elif letter is not None:
            continue  # discarded on purpose (a replayed one has its ledger outcome)
        elif event.event_id in retrying:
            level = retrying[event.event_id]
            gaps.append(
                Gap(event, "in retry", f"waiting in {retry_topic(settings.kafka_topic, level)}")
            )
        elif event.offset >= committed.get(event.partition, 0):
            mark = committed.get(event.partition, 0)
            behind = f"group {settings.consumer_group} committed offset {mark}"
            gaps.append(Gap(event, "not consumed yet", behind))
        else:
            gaps.append(
                Gap(
                    event,
                    "no ledger row",
                    f"consumed but never applied: wa-bridge trace {event.event_id}",
                )
            )
    return len(received), gaps
