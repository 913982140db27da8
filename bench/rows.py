"""What the ledger claim and the trace cost PostgreSQL per event, and what other row
shapes would cost instead (#14: "fewer rows per event").

Shapes, each on a throwaway schema with the columns and indexes of today's tables,
``--warm`` events written first, then ``--batches`` × ``--batch`` events measured; the
shapes alternate from round to round:

- ``today``: the worker's two statements. The claim (``processed_events``: primary key
  and ``first_seen_at``) at the start of the batch, the trace upsert (``event_traces``:
  primary key, message id, contact id, contact hash, outcome time) at its end.
- ``merged``: one table for both. The claim inserts the row with what is known at the
  start (event id, type, message id, contact hash, first seen; indexed), the end updates
  the same row with the rest (contact id, Kafka position, outcome, CRM ids; not indexed,
  so the update can be HOT; fillfactor 70).
- ``late``: no claim row. The start only looks the ids up (``SELECT``), the end inserts
  the trace with ``ON CONFLICT DO NOTHING RETURNING``. Illustration only: with an HTTP CRM
  two workers could then both call the CRM for one event before either commits.
- ``plain``: today's two rows, each by a plain ``INSERT`` (no ``ON CONFLICT``) inside a
  savepoint, as ``store._bulk.insert_new`` sends a large batch's claim and traces (a row
  that exists already would roll the savepoint back and take today's statement; none here).
- ``batch``: today's claim, then the batch's traces as **one row** (``trace_batches``: the
  entries as one jsonb array, and the ids a trace is looked up by, event id, message id,
  contact id and contact hash, in a ``text[]`` with a GIN index; outcome time B-tree).
- ``blob``: the same row without the GIN index (a lookup would then read every batch).

Prints PostgreSQL wall time per event of the start and end statements (one connection,
statements back to back, so this is the server's time plus a local round trip).

    .venv/bin/python -m bench.rows [--rounds 4] [--batches 40] [--batch 2000] [--warm 100000]
                                   [--shapes today,plain,merged,late,batch,blob]
                                   [--url postgresql://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"

_TRACE_COLUMNS = """event_id varchar(200) PRIMARY KEY, event_type varchar(100) NOT NULL,
  message_id varchar(200), contact_id varchar(64), contact_hash varchar(64),
  topic varchar(200), partition int, "offset" bigint, attempt int,
  event_time timestamptz, received_at timestamptz, outcome varchar(64) NOT NULL,
  outcome_at timestamptz NOT NULL, crm_ids jsonb"""
_TRACE_DDL = f"""
CREATE TABLE tr ({_TRACE_COLUMNS});
CREATE INDEX ON tr (message_id); CREATE INDEX ON tr (contact_id);
CREATE INDEX ON tr (contact_hash); CREATE INDEX ON tr (outcome_at);
"""
DDL = {
    "today": """
CREATE TABLE led (event_id varchar(200) PRIMARY KEY, outcome varchar(64),
  first_seen_at timestamptz NOT NULL, updated_at timestamptz NOT NULL);
CREATE INDEX ON led (first_seen_at);
"""
    + _TRACE_DDL,
    "merged": """
CREATE TABLE m (event_id varchar(200) PRIMARY KEY, event_type varchar(100) NOT NULL,
  message_id varchar(200), contact_hash varchar(64), first_seen_at timestamptz NOT NULL,
  contact_id varchar(64), topic varchar(200), partition int, "offset" bigint, attempt int,
  event_time timestamptz, received_at timestamptz, outcome varchar(64),
  outcome_at timestamptz, crm_ids jsonb) WITH (fillfactor = 70);
CREATE INDEX ON m (message_id); CREATE INDEX ON m (contact_hash);
CREATE INDEX ON m (first_seen_at);
""",
    "late": _TRACE_DDL,
}
DDL["plain"] = DDL["today"]
_BATCH_DDL = """
CREATE TABLE led (event_id varchar(200) PRIMARY KEY, outcome varchar(64),
  first_seen_at timestamptz NOT NULL, updated_at timestamptz NOT NULL);
CREATE INDEX ON led (first_seen_at);
CREATE TABLE tb (id bigserial PRIMARY KEY, outcome_at timestamptz NOT NULL,
  keys text[] NOT NULL, entries jsonb NOT NULL);
CREATE INDEX ON tb (outcome_at);
"""
DDL["batch"] = _BATCH_DDL + "CREATE INDEX ON tb USING gin (keys);"
DDL["blob"] = _BATCH_DDL

_CLAIM = """INSERT INTO led (event_id, outcome, first_seen_at, updated_at)
SELECT e, 'applied', $2, $2 FROM jsonb_array_elements_text($1::jsonb) e
ON CONFLICT DO NOTHING RETURNING event_id"""
_TRACE_INSERT = """INSERT INTO tr SELECT r->>0, r->>1, r->>2, r->>3, r->>4, r->>5,
  (r->>6)::int, (r->>7)::bigint, 1, (r->>8)::timestamptz, (r->>8)::timestamptz,
  'applied', $2, r->9
FROM jsonb_array_elements($1::jsonb) r"""
_TRACE_UPSERT = (
    _TRACE_INSERT
    + """ ON CONFLICT (event_id) DO UPDATE SET outcome = excluded.outcome,
  outcome_at = excluded.outcome_at, crm_ids = excluded.crm_ids,
  contact_id = excluded.contact_id"""
)
_PLAIN_CLAIM = """INSERT INTO led (event_id, outcome, first_seen_at, updated_at)
SELECT e, 'applied', $2, $2 FROM jsonb_array_elements_text($1::jsonb) e"""
_MERGED_CLAIM = """INSERT INTO m (event_id, event_type, message_id, contact_hash, first_seen_at)
SELECT r->>0, r->>1, r->>2, r->>3, $2 FROM jsonb_array_elements($1::jsonb) r
ON CONFLICT DO NOTHING RETURNING event_id"""
_MERGED_FINISH = """UPDATE m SET contact_id = r->>1, topic = r->>2, partition = (r->>3)::int,
  "offset" = (r->>4)::bigint, attempt = 1, event_time = (r->>5)::timestamptz,
  received_at = (r->>5)::timestamptz, outcome = 'applied', outcome_at = $2, crm_ids = r->6
FROM jsonb_array_elements($1::jsonb) r WHERE m.event_id = r->>0"""
_LATE_LOOKUP = (
    "SELECT event_id FROM tr WHERE event_id IN (SELECT jsonb_array_elements_text($1::jsonb))"
)
_LATE_INSERT = _TRACE_INSERT + " ON CONFLICT DO NOTHING RETURNING event_id"
_BATCH_INSERT = "INSERT INTO tb (outcome_at, keys, entries) VALUES ($2, $3::text[], $1::jsonb)"

Row = tuple[str, str, str, str, str, str, int, int, str, dict[str, str]]


def _rows(batch: int, first_offset: int, contacts: int = 5000) -> list[Row]:
    rows: list[Row] = []
    for i in range(batch):
        wamid = f"wamid.{uuid.uuid4().hex}{uuid.uuid4().hex[:12]}"
        c = random.randrange(contacts)
        rows.append(
            (
                f"wa:messages:{wamid}",
                "whatsapp.message.received",
                wamid,
                f"c_{c:08d}",
                f"h{c:063d}",
                "wa.events",
                c % 12,
                first_offset + i,
                "2026-12-07T06:00:00Z",
                {"contact": str(c), "note": f"n{first_offset + i}"},
            )
        )
    return rows


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


async def _start(conn: asyncpg.Connection, shape: str, rows: list[Row], now: datetime) -> None:
    if shape in ("today", "batch", "blob"):
        claimed = await conn.fetch(_CLAIM, _json([r[0] for r in rows]), now)
    elif shape == "plain":
        async with conn.transaction():  # a savepoint: a duplicate would fall back to today's
            await conn.execute(_PLAIN_CLAIM, _json([r[0] for r in rows]), now)
        claimed = rows
    elif shape == "merged":
        known = _json([[r[0], r[1], r[2], r[4]] for r in rows])
        claimed = await conn.fetch(_MERGED_CLAIM, known, now)
    else:
        seen = await conn.fetch(_LATE_LOOKUP, _json([r[0] for r in rows]))
        claimed = rows if not seen else []
    if len(claimed) != len(rows):
        raise SystemExit(f"{shape}: claimed {len(claimed)} of {len(rows)} new events")


async def _finish(conn: asyncpg.Connection, shape: str, rows: list[Row], now: datetime) -> None:
    if shape == "today":
        await conn.execute(_TRACE_UPSERT, _json(rows), now)
    elif shape == "plain":
        async with conn.transaction():  # a savepoint, as the claim's
            await conn.execute(_TRACE_INSERT, _json(rows), now)
    elif shape in ("batch", "blob"):
        keys = sorted({key for r in rows for key in (r[0], r[2], r[3], r[4])})
        await conn.execute(_BATCH_INSERT, _json(rows), now, keys)
    elif shape == "merged":
        payload = _json([[r[0], r[3], r[5], r[6], r[7], r[8], r[9]] for r in rows])
        await conn.execute(_MERGED_FINISH, payload, now)
    else:
        written = await conn.fetch(_LATE_INSERT, _json(rows), now)
        if len(written) != len(rows):
            raise SystemExit(f"late: wrote {len(written)} of {len(rows)} traces")


@dataclass
class Timing:
    start_s: float = 0.0
    finish_s: float = 0.0
    events: int = 0


async def _batches(
    conn: asyncpg.Connection, shape: str, *, batches: int, batch: int, offset: int
) -> Timing:
    now = datetime.now(UTC)
    timing = Timing()
    for k in range(batches):
        rows = _rows(batch, offset + k * batch)
        async with conn.transaction():
            t0 = time.perf_counter()
            await _start(conn, shape, rows, now)
            t1 = time.perf_counter()
            await _finish(conn, shape, rows, now)
            t2 = time.perf_counter()
        timing.start_s += t1 - t0
        timing.finish_s += t2 - t1
        timing.events += batch
    return timing


async def _one(conn: asyncpg.Connection, shape: str, args: argparse.Namespace) -> str:
    schema = f"bench_rows_{shape}_{uuid.uuid4().hex[:8]}"
    await conn.execute(f"CREATE SCHEMA {schema}; SET search_path = {schema}")
    try:
        await conn.execute(DDL[shape])
        await _batches(conn, shape, batches=args.warm // args.batch, batch=args.batch, offset=0)
        await conn.execute("ANALYZE; CHECKPOINT")  # plans as autovacuum would leave them
        t = await _batches(conn, shape, batches=args.batches, batch=args.batch, offset=args.warm)
        start, finish = (s / t.events * 1e6 for s in (t.start_s, t.finish_s))
        hot = ""
        if shape == "merged":
            counts = await conn.fetchrow(
                "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables "
                "WHERE schemaname = $1 AND relname = 'm'",
                schema,
            )
            if counts is not None and counts["n_tup_upd"]:
                hot = f"  (HOT updates {counts['n_tup_hot_upd'] / counts['n_tup_upd']:.0%})"
        total = start + finish
        if shape in ("batch", "blob"):
            size = await conn.fetchval("SELECT pg_total_relation_size('tb')")
            hot = f"  (traces {size / t.events:.0f} bytes/event on disk)"
        elif shape in ("today", "late", "plain"):
            size = await conn.fetchval("SELECT pg_total_relation_size('tr')")
            hot = f"  (traces {size / t.events:.0f} bytes/event on disk)"
        return f"{shape:7s} start {start:5.1f}  end {finish:5.1f}  total {total:5.1f} µs/event{hot}"
    finally:
        await conn.execute(f"SET search_path = public; DROP SCHEMA {schema} CASCADE")


async def _main(args: argparse.Namespace) -> None:
    conn = await asyncpg.connect(args.url)
    try:
        shapes = args.shapes.split(",")
        for n in range(args.rounds):
            k = n % len(shapes)
            for shape in shapes[k:] + shapes[:k]:
                print(f"round {n + 1}  {await _one(conn, shape, args)}", flush=True)
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--shapes", default="today,plain,merged,late,batch,blob", help="which, in order"
    )
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--warm", type=int, default=100_000)
    url = os.environ.get("WA_BRIDGE_TEST_DATABASE_URL", DEFAULT_URL)
    parser.add_argument("--url", default=url.replace("postgresql+asyncpg://", "postgresql://"))
    asyncio.run(_main(parser.parse_args()))


if __name__ == "__main__":
    main()
