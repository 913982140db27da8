"""The floor under the worker (#14): the same records, the main rows, the least Python.

    .venv/bin/python -m bench.floor [--events 100000] [--batch 2000] [--in-flight 2]

Not a worker. It answers one question for the owner of #14: on this machine, how many
events per second could *any* rewrite of the worker reach while writing the rows the
worker writes for every event? It reads `bench/worker.py`'s 100k records from a Tansu
topic with aiokafka (as the worker does), parses each with orjson, and per batch, in one
transaction on a schema made by the real ``create_all``, writes:

- the ledger claim (``processed_events``, ``ON CONFLICT DO NOTHING RETURNING``),
- each message's CRM note (``crm_notes``; a status updates its message's note),
- each status (``message_statuses``, moving forward only),
- each event's trace (``event_traces``, all five indexes),

then commits the Kafka offsets. ``--in-flight`` batches overlap, each on its own
connection. With ``--mapping``, each record also becomes a ``CanonicalEvent`` and goes
through the shipped SQL mapping (``mappings/sql.yaml``, the worker's compiled mapper),
whose operations are counted: what the mapping engine as it is adds to the floor.

It leaves out what the worker also does: the mapping (unless ``--mapping``), identity
resolution, contacts, cases and consent (about a sixth of PostgreSQL's time and most of
the worker's Python; see bench/README "Why 20,000 events per second per process is not
reached"). So its figure is an upper bound for a fused worker, not a worker.

Prints events/s, the process's CPU per event, and the CPU of PostgreSQL's backends per
event (they run on this machine); exits 1 unless the tables hold one ledger row and one
trace per event, one note per message and one status row per message with a status.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from bench.worker import DEFAULT_URL, MAPPING, _cpu_s, build_records, preload
from wa_bridge.bus.admin import ensure_topics
from wa_bridge.bus.embedded import EmbeddedBroker
from wa_bridge.cli._common import tune_gc
from wa_bridge.events import CanonicalEvent
from wa_bridge.mapping import load_mapping
from wa_bridge.store import SqlStore, create_engine

_RANK = {"sent": 1, "delivered": 2, "read": 3, "failed": 4}

_CLAIM = """INSERT INTO processed_events (event_id, outcome, first_seen_at, updated_at)
SELECT e, NULL, $2, $2 FROM jsonb_array_elements_text($1::jsonb) e
ON CONFLICT DO NOTHING RETURNING event_id"""
_NOTES = """INSERT INTO crm_notes (note_key, contact_key, direction, message_type, body,
  status, occurred_at, created_at, updated_at)
SELECT r->>0, r->>1, r->>2, r->>3, r->>4, r->>5, (r->>6)::timestamptz, $2, $2
FROM jsonb_array_elements($1::jsonb) r
ON CONFLICT (note_key) DO UPDATE SET status = coalesce(excluded.status, crm_notes.status),
  occurred_at = excluded.occurred_at, updated_at = excluded.updated_at"""
_STATUSES = """INSERT INTO message_statuses (message_id, status, rank, updated_at)
SELECT r->>0, r->>1, (r->>2)::int, $2 FROM jsonb_array_elements($1::jsonb) r
ON CONFLICT (message_id) DO UPDATE SET status = excluded.status, rank = excluded.rank,
  updated_at = excluded.updated_at WHERE message_statuses.rank < excluded.rank"""
_TRACES = """INSERT INTO event_traces (event_id, event_type, message_id, contact_id,
  contact_hash, topic, partition, "offset", attempt, event_time, received_at, outcome,
  outcome_at, crm_ids)
SELECT r->>0, r->>1, r->>2, r->>3, r->>3, $3, (r->>4)::int, (r->>5)::bigint, 1,
  (r->>6)::timestamptz, (r->>7)::timestamptz, 'applied', $2, r->8
FROM jsonb_array_elements($1::jsonb) r
ON CONFLICT (event_id) DO UPDATE SET outcome = excluded.outcome,
  outcome_at = excluded.outcome_at"""


def _rows(
    records: Sequence[Any], mapper: Any, mapped: list[int]
) -> tuple[list[str], list[list[Any]], list[list[Any]], list[list[Any]]]:
    """Event ids, note rows, status rows (the last per message) and trace rows; with a
    ``mapper``, each event's operation count is appended to ``mapped``."""
    ids: list[str] = []
    notes: dict[str, list[Any]] = {}
    statuses: dict[str, list[Any]] = {}
    traces: list[list[Any]] = []
    for record in records:
        if mapper is not None:
            canonical = CanonicalEvent.from_json(record.value)
            mapped.append(len(mapper.apply(canonical)))
            event = canonical.to_dict()
        else:
            event = orjson.loads(record.value)
        data = event["data"]
        event_id = event["id"]
        message_id = data.get("message_id")
        subject = event.get("subject")
        ids.append(event_id)
        status = data.get("status")
        if status is not None:
            statuses[message_id] = [message_id, status, _RANK.get(status, 0)]
            notes[message_id] = [message_id, subject, None, None, None, status, event["time"]]
        elif message_id is not None:
            text = data.get("text")
            body = text.get("body") if isinstance(text, dict) else None
            note = [message_id, subject, data.get("direction"), data.get("message_type")]
            notes[message_id] = [*note, body, None, event["time"]]
        traces.append(
            [
                event_id,
                event["type"],
                message_id,
                subject,
                record.partition,
                record.offset,
                event["time"],
                event.get("recvtime"),
                [["add_note", message_id]],
            ]
        )
    # rows in key order: batches in flight at once lock shared rows in the same order
    return ids, sorted(notes.values(), key=_first), sorted(statuses.values(), key=_first), traces


def _first(row: list[Any]) -> str:
    key: str = row[0]
    return key


async def _apply(
    conn: asyncpg.Connection, records: Sequence[Any], topic: str, mapper: Any, mapped: list[int]
) -> None:
    ids, notes, statuses, traces = _rows(records, mapper, mapped)
    now = datetime.now(UTC)
    async with conn.transaction():
        claimed = await conn.fetch(_CLAIM, orjson.dumps(ids).decode(), now)
        if len(claimed) != len(ids):
            raise SystemExit(f"claimed {len(claimed)} of {len(ids)}: the topic was not fresh")
        await conn.execute(_NOTES, orjson.dumps(notes).decode(), now)
        if statuses:
            await conn.execute(_STATUSES, orjson.dumps(statuses).decode(), now)
        await conn.execute(_TRACES, orjson.dumps(traces).decode(), now, topic)


async def _consume(args: argparse.Namespace, bootstrap: str, topic: str, dsn: str) -> float:
    mapper = load_mapping(MAPPING) if args.mapping else None
    mapped: list[int] = []  # operations per mapped event
    conns = [await asyncpg.connect(dsn) for _ in range(args.in_flight)]
    pids = [conn.get_server_pid() for conn in conns]
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"floor-{uuid.uuid4().hex[:8]}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    await consumer.start()
    try:
        done, slots = 0, asyncio.Semaphore(args.in_flight)
        tasks: list[asyncio.Task[None]] = []
        free = list(conns)
        pg0 = sum(_cpu_s(pid) or 0.0 for pid in pids)
        started, cpu0 = time.perf_counter(), time.process_time()

        async def run(batch: list[Any], offsets: dict[TopicPartition, int]) -> None:
            conn = free.pop()
            try:
                await _apply(conn, batch, topic, mapper, mapped)
                await consumer.commit(offsets)
            finally:
                free.append(conn)
                slots.release()

        while done < args.expected:
            fetched = await consumer.getmany(timeout_ms=200, max_records=args.batch)
            batch = [r for records in fetched.values() for r in records]
            if not batch:
                continue
            offsets = {tp: records[-1].offset + 1 for tp, records in fetched.items()}
            await slots.acquire()
            tasks.append(asyncio.create_task(run(batch, offsets)))
            done += len(batch)
        await asyncio.gather(*tasks)  # a failed batch raises here
        seconds = time.perf_counter() - started
        cpu = time.process_time() - cpu0
        pg = sum(_cpu_s(pid) or 0.0 for pid in pids) - pg0
        n = args.expected
        counts = [
            await conns[0].fetchval(f"SELECT count(*) FROM {table}")
            for table in ("processed_events", "event_traces", "crm_notes", "message_statuses")
        ]
        if counts[:2] != [n, n] or counts[2] != args.messages or counts[3] != args.statused:
            raise SystemExit(
                f"rows (ledger, traces, notes, statuses) {counts}: expected "
                f"{[n, n, args.messages, args.statused]}"
            )
        ops = f" (+ mapping: {sum(mapped):,} operations)" if mapper is not None else ""
        print(
            f"floor{ops}: {n / seconds:,.0f} events/s ({seconds:.2f} s); this process "
            f"{cpu / n * 1e6:.1f} µs CPU per event ({n / cpu:,.0f} per CPU-second); "
            f"PostgreSQL backends {pg / n * 1e6:.1f} µs per event"
        )
        return n / seconds
    finally:
        await consumer.stop()
        for conn in conns:
            await conn.close()


async def _main(args: argparse.Namespace) -> None:
    records, statuses, expected = build_records(args.events, args.contacts, 0.3)
    args.expected = expected.events
    args.messages = len(expected.final_status)  # one note per message
    args.statused = sum(1 for s in expected.final_status.values() if s is not None)
    print(f"built {len(records)} events ({statuses} statuses) over {args.contacts} contacts")
    tune_gc()
    url = args.url
    schema = f"bench_floor_{uuid.uuid4().hex[:8]}"
    dsn = url.replace("postgresql+asyncpg://", "postgresql://")
    admin = await asyncpg.connect(dsn)
    await admin.execute(f'CREATE SCHEMA "{schema}"')
    broker = EmbeddedBroker()
    await broker.astart()
    try:
        store = SqlStore(create_engine(f"{url}?search_path={schema}"))
        await store.create_all()
        await store.aclose()
        topic = f"bench.floor.{uuid.uuid4().hex[:8]}"
        await ensure_topics(broker.bootstrap, [topic], args.partitions)
        await preload(broker.bootstrap, topic, records)
        await _consume(args, broker.bootstrap, topic, f"{dsn}?options=-csearch_path%3D{schema}")
    finally:
        await broker.astop()
        await admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await admin.close()
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--contacts", type=int, default=5_000)
    parser.add_argument("--partitions", type=int, default=12)
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--in-flight", type=int, default=2)
    parser.add_argument("--mapping", action="store_true", help="also map each event")
    parser.add_argument("--url", default=os.environ.get("WA_BRIDGE_TEST_DATABASE_URL", DEFAULT_URL))
    asyncio.run(_main(parser.parse_args()))


if __name__ == "__main__":
    main()
