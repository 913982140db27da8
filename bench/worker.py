"""Worker throughput: pre-loaded canonical events → one Worker → the SQL CRM on PostgreSQL.

    .venv/bin/python bench/worker.py [--events 100000] [--contacts 5000] [--statuses 0.3]
                                     [--partitions 12] [--batch 2000] [--in-flight 2]
                                     [--log-level INFO] [--url URL | --url sqlite]
                                     [--skip-plain] [--skip-steps] [--default-gc]
                                     [--pg-statements] [--idle-probe]

Starts its own Tansu broker, builds the events with ``normalize_webhook`` from real webhook
shapes (text messages; a share of them followed by a status about an earlier message of
the same contact), produces them to a fresh topic, then runs ``Worker.run_until_idle()``
with ``mappings/sql.yaml`` into the built-in SQL CRM tables, on a fresh PostgreSQL schema
dropped at the end (``--url sqlite``: a fresh SQLite file instead). The URL comes from
``--url``, ``WA_BRIDGE_TEST_DATABASE_URL`` or the local default. Every run is checked
after it (exit 1 on a failure): each event in the ledger once and applied, one trace each,
one CRM note per message, each message's status its last one (CRM and store), one contact
per person with its phone and BSUID linked to it and no one else's.

Two runs, each on its own schema, topic and group:
1. plain: the worker as shipped; prints events/s (timed from the group join to idle).
2. steps: the same with the store and connector subclassed to time each step of the
   batch transaction (claim_events and set_outcomes are the ledger's cost).
``--idle-probe``: during the plain run, what the batches in flight wait on while the event
loop is idle (``bench/_idle.py``).
``--pg-statements``: after the plain run, PostgreSQL's execution time per event by
statement and table (``pg_stat_statements``; start a server that loads it with
``bench/pgstat-server`` and pass its URL with ``--url``).
Worker logs (one INFO line per event, as in production) go to stderr; pass
``--log-level WARNING`` to measure without them, or redirect stderr to /dev/null.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine

from wa_bridge.bus.admin import ensure_topics
from wa_bridge.bus.embedded import EmbeddedBroker
from wa_bridge.bus.headers import event_headers, record_key
from wa_bridge.cli._common import tune_gc
from wa_bridge.connectors.base import CrmResult
from wa_bridge.connectors.sql import SqlCrmConnector
from wa_bridge.log import configure_logging
from wa_bridge.normalize import normalize_webhook
from wa_bridge.operations import CrmOperation
from wa_bridge.settings import Settings
from wa_bridge.store import SqlStore, SqlStoreTx, create_engine
from wa_bridge.worker.loop import WorkerStats
from wa_bridge.worker.outcomes import Tally
from wa_bridge.worker.runner import open_worker, worker_topics

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "tests" / "samples" / "meta"
MAPPING = ROOT / "mappings" / "sql.yaml"
DEFAULT_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
STEPS = ("claim", "identity", "resolve", "statuses", "cases", "crm", "traces", "outcomes", "commit")
Record = tuple[bytes, bytes, list[tuple[str, bytes]]]


@dataclass
class Expected:
    """What the CRM and the store must hold after the run (the checks)."""

    events: int = 0
    contacts: int = 0
    final_status: dict[str, str | None] = field(default_factory=dict)  # message → last status


# --- events --------------------------------------------------------------------------


def _load(name: str) -> dict[str, Any]:
    body: dict[str, Any] = orjson.loads((SAMPLES / name).read_bytes())
    return body


def build_records(
    events: int, contacts: int, status_share: float
) -> tuple[list[Record], int, Expected]:
    """``events`` records, all ids distinct: text messages, and every ``1/status_share``-th
    event a status (sent, then delivered, then read) about an earlier message of the same
    contact."""
    text_body = _load("text_mx.json")
    status_body = _load("statuses_br.json")
    value = text_body["entry"][0]["changes"][0]["value"]
    contact, message = value["contacts"][0], value["messages"][0]
    contact.pop("parent_user_id", None)
    message.pop("from_parent_user_id", None)
    s_value = status_body["entry"][0]["changes"][0]["value"]
    status = {k: v for k, v in s_value["statuses"][0].items() if k in ("id", "status")}
    s_value["statuses"] = [status]
    s_contact = s_value["contacts"][0]
    received = datetime.now(UTC)
    every = round(1 / status_share) if status_share > 0 else 0
    records: list[Record] = []
    pending: dict[int, list[tuple[str, int]]] = defaultdict(list)  # contact → (msg, step)
    cycle = ("sent", "delivered", "read")
    statuses = 0
    expected = Expected(contacts=min(events, contacts))
    for n in range(events):
        who = n % contacts
        wa_id = f"52155{who:08d}"
        if every and n % every == every - 1 and pending[who]:
            msg_id, step = pending[who].pop(0)
            if step + 1 < len(cycle):
                pending[who].append((msg_id, step + 1))
            s_contact.update(wa_id=wa_id, user_id=f"MX.{who:019d}")
            status.update(id=msg_id, status=cycle[step], timestamp=str(1781200000 + n))
            status["recipient_id"] = wa_id
            batch = normalize_webhook(status_body, received_at=received)
            expected.final_status[msg_id] = cycle[step]
            statuses += 1
        else:
            msg_id = f"wamid.B{who:06d}N{n:08d}"
            contact.update(wa_id=wa_id, user_id=f"MX.{who:019d}")
            message.update(id=msg_id, timestamp=str(1781200000 + n), text={"body": f"message {n}"})
            message["from"] = wa_id
            message["from_user_id"] = f"MX.{who:019d}"
            batch = normalize_webhook(text_body, received_at=received)
            pending[who].append((msg_id, 0))
            expected.final_status[msg_id] = None
        records += [(record_key(e), e.to_json(), event_headers(e)) for e in batch]
    expected.events = len(records)
    return records, statuses, expected


async def preload(bootstrap: str, topic: str, records: Sequence[Record]) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=5, max_batch_size=256 * 1024
    )
    await producer.start()
    try:
        futures = [
            await producer.send(topic, value, key=key, headers=headers)
            for key, value, headers in records
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


# --- PostgreSQL's CPU (the backends of the worker's connections) ---------------------

_TICK_S = 1.0 / os.sysconf("SC_CLK_TCK")


def _cpu_s(pid: int) -> float | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) * _TICK_S  # utime, stime


class DbCost:
    """What one engine's work cost the database: the statements sent (SQLAlchemy
    executions; BEGIN and COMMIT apart) and the CPU time of the PostgreSQL backends serving
    its connections (Linux /proc): each new connection's backend pid is recorded; their CPU
    between :meth:`start` and :meth:`seconds` is the database's cost of that work, apart
    from other sessions on a shared server. Needs the server on this machine; otherwise
    None. A backend that exited meanwhile is not counted."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.pids: list[int] = []
        self.statements = 0
        self._base: dict[int, float] = {}
        self.enabled = engine.dialect.name == "postgresql"
        event.listen(engine.sync_engine, "before_cursor_execute", self._on_execute)
        if self.enabled:
            event.listen(engine.sync_engine, "connect", self._on_connect)

    def _on_connect(self, dbapi_connection: Any, _record: Any) -> None:
        self.pids.append(int(dbapi_connection.driver_connection.get_server_pid()))

    def _on_execute(self, *_args: Any) -> None:
        self.statements += 1

    def start(self) -> None:
        """From now on (backends connected later count from zero)."""
        self.statements = 0
        self._base = {pid: cpu for pid in self.pids if (cpu := _cpu_s(pid)) is not None}

    def seconds(self) -> float | None:
        """CPU seconds of the recorded backends since :meth:`start`, or None if unreadable."""
        if not self.enabled or not self.pids:
            return None
        total, seen = 0.0, False
        for pid in self.pids:
            cpu = _cpu_s(pid)
            if cpu is not None:
                total += cpu - self._base.get(pid, 0.0)
                seen = True
        return total if seen else None


# --- step timing (subclasses of the real store and connector) ------------------------


class Steps:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    @contextmanager
    def timed(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - started


class TimedTx(SqlStoreTx):
    steps: Steps

    async def claim_events(self, event_ids: Sequence[str]) -> set[str]:
        with self.steps.timed("claim"):
            return await super().claim_events(event_ids)

    async def set_outcomes(self, outcomes: Sequence[tuple[str, Any]]) -> None:
        with self.steps.timed("outcomes"):
            await super().set_outcomes(outcomes)

    async def resolve_contacts(self, items: Sequence[Any]) -> list[str | None]:
        with self.steps.timed("resolve"):
            return await super().resolve_contacts(items)

    async def apply_identity_changes(self, changes: Sequence[Any]) -> list[str | None]:
        with self.steps.timed("identity"):
            return await super().apply_identity_changes(changes)

    async def load_cases(self, contact_ids: Sequence[str], conversation_ids: Any = ()) -> Any:
        with self.steps.timed("cases"):
            return await super().load_cases(contact_ids, conversation_ids)

    async def save_cases(self, records: Sequence[Any], new: Sequence[str]) -> None:
        with self.steps.timed("cases"):
            await super().save_cases(records, new)

    async def seen_messages(self, message_ids: Sequence[str]) -> set[str]:
        with self.steps.timed("statuses"):
            return await super().seen_messages(message_ids)

    async def advance_statuses(self, items: Sequence[Any]) -> list[bool]:
        with self.steps.timed("statuses"):
            return await super().advance_statuses(items)

    async def record_traces(self, traces: Sequence[Any], signals: Sequence[Any] = ()) -> None:
        with self.steps.timed("traces"):
            await super().record_traces(traces, signals)


class TimedStore(SqlStore):
    steps: Steps

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[SqlStoreTx]:  # type: ignore[override]
        async with super().transaction() as tx:
            timed = TimedTx(tx.connection, self._now)
            timed.steps = self.steps
            yield timed
            await timed.finish()  # the claims were made on timed, not on tx
            started = time.perf_counter()
        self.steps.seconds["commit"] += time.perf_counter() - started


class TimedConnector(SqlCrmConnector):
    steps: Steps

    async def apply_in(self, tx: Any, ops: Sequence[CrmOperation]) -> Sequence[CrmResult]:
        with self.steps.timed("crm"):
            return await super().apply_in(tx, ops)


# --- runs ----------------------------------------------------------------------------


@asynccontextmanager
async def fresh_schema(url: str) -> AsyncIterator[str]:
    """A fresh PostgreSQL schema (dropped after), or for ``sqlite…`` a fresh file."""
    if url.startswith("sqlite"):
        with tempfile.TemporaryDirectory(prefix="bench-worker-") as tmp:
            yield f"sqlite+aiosqlite:///{tmp}/state.db"
        return
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(url)
    async with admin.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{url}{'&' if '?' in url else '?'}search_path={schema}"
    finally:
        async with admin.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await admin.dispose()


def _bench_module(name: str) -> Any:
    """``bench.<name>``, also when this file runs as ``python bench/worker.py``."""
    if __package__ in (None, "") and str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    return importlib.import_module(f"bench.{name}")


def _pgstat() -> Any:
    return _bench_module("_pgstat")


def _idle_probe(worker: Any) -> Any:
    """``bench._idle.IdleProbe`` on ``worker``'s batches in flight, started."""
    probe = _bench_module("_idle").IdleProbe(worker._in_flight)
    probe.start()
    return probe


class _TimedStats(WorkerStats):
    """The worker's stats, noting when the last of ``total`` events took effect (its batch
    committed): the rest of a run is the end of burst mode (the last fetch poll, the
    caught-up check), which a worker that keeps running never has."""

    def __init__(self, total: int) -> None:
        super().__init__()
        self.total = total
        self.done_at: float | None = None

    def add(self, tally: Tally) -> None:
        super().add(tally)
        if self.done_at is None and self.finished >= self.total:
            self.done_at = time.perf_counter()


async def one_run(
    args: argparse.Namespace,
    broker: EmbeddedBroker,
    records: list[Record],
    expected: Expected,
    *,
    timed: bool,
) -> tuple[float, float, float, Steps | None, Any]:
    """Returns (events/s, seconds, the worker process's CPU seconds, steps, stats); exits
    with status 1 when a check failed."""
    async with fresh_schema(args.url) as url:
        settings = Settings(
            kafka_bootstrap=broker.bootstrap,
            kafka_topic=f"bench.{uuid.uuid4().hex[:8]}",
            kafka_partitions=args.partitions,
            kafka_enable_idempotence=False,
            consumer_group=f"bench-{uuid.uuid4().hex[:8]}",
            consumer_session_timeout_ms=1000,
            database_url=url,
            connector="sql",
            mappings_path=str(MAPPING),
            worker_batch_max=args.batch,
            worker_batches_in_flight=args.in_flight,
        )
        await ensure_topics(broker.bootstrap, worker_topics(settings), args.partitions)
        await preload(broker.bootstrap, settings.kafka_topic, records)
        steps: Steps | None = None
        store: SqlStore = TimedStore(create_engine(url)) if timed else SqlStore(create_engine(url))
        backends = DbCost(store.engine)  # before the first connection
        await store.create_all()
        if timed:
            steps = Steps()
            store.steps = steps  # type: ignore[attr-defined]
            timed_connector = TimedConnector(store)
            timed_connector.steps = steps
            connector: SqlCrmConnector = timed_connector
        else:
            connector = SqlCrmConnector(store)
        try:
            async with open_worker(settings, store=store, connector=connector) as worker:
                await _joined(worker)
                profiled = args.pg_statements and not timed and await _pgstat().reset(store.engine)
                started, cpu = time.perf_counter(), time.process_time()
                backends.start()
                probe = _idle_probe(worker) if args.idle_probe and not timed else None
                worker.stats = _TimedStats(len(records))
                stats = await worker.run_until_idle(timeout_s=3600)
                seconds = time.perf_counter() - started
                done_at = worker.stats.done_at
                applied_s = seconds if done_at is None else done_at - started
                cpu_s = time.process_time() - cpu
                if probe is not None:
                    await probe.stop()
                pg_cpu_s = backends.seconds()
                statements = backends.statements
                costs = await _pgstat().statement_costs(store.engine) if profiled else None
        finally:
            await connector.aclose()
            await store.aclose()
        problems = await verify(url, expected)
        if problems:
            print("CHECKS FAILED: " + "; ".join(problems))
            raise SystemExit(1)
        print("   checks: every event applied once, statuses monotonic, identity exact: ok")
        print(
            f"   statements: {statements:,} ({statements / max(stats.batches, 1):.1f} per batch; "
            "BEGIN and COMMIT apart)"
        )
        if pg_cpu_s is not None:
            print(
                f"   PostgreSQL backends (the worker's connections): {pg_cpu_s:.2f} CPU-s, "
                f"{pg_cpu_s / len(records) * 1e6:.1f} µs per event"
            )
        if probe is not None:
            probe.report()
        if costs is not None:
            _pgstat().print_costs(costs, len(records))
        elif args.pg_statements and not timed:
            print("   pg_stat_statements is not loaded by this server: see bench/pgstat-server")
        print(
            f"   to the last event applied: {len(records) / applied_s:,.0f} events/s "
            f"({applied_s:.2f} s; then {seconds - applied_s:.2f} s to the end of burst mode)"
        )
        return len(records) / seconds, seconds, cpu_s, steps, stats


async def verify(url: str, expected: Expected) -> list[str]:
    """The checks: every event applied once, statuses monotonic, identity exact."""
    problems: list[str] = []

    def want(what: str, got: object, wanted: object) -> None:
        if got != wanted:
            problems.append(f"{what}: {got} (expected {wanted})")

    engine = create_engine(url)
    try:
        async with engine.connect() as conn:

            async def one(sql: str) -> Any:
                return (await conn.execute(text(sql))).scalar_one()

            want("ledger rows", await one("SELECT count(*) FROM processed_events"), expected.events)
            want(
                "ledger rows not applied",
                await one(
                    "SELECT count(*) FROM processed_events "
                    "WHERE outcome IS NULL OR outcome <> 'applied'"
                ),
                0,
            )
            want("traces", await one("SELECT count(*) FROM event_traces"), expected.events)
            notes = dict((await conn.execute(text("SELECT note_key, status FROM crm_notes"))).all())
            want("CRM notes", len(notes), len(expected.final_status))
            statuses = dict(
                (await conn.execute(text("SELECT message_id, status FROM message_statuses"))).all()
            )
            wrong = [
                m
                for m, last in expected.final_status.items()
                if last is not None and (notes.get(m) != last or statuses.get(m) != last)
            ]
            want("messages whose status is not their last one", len(wrong), 0)
            want("contacts", await one("SELECT count(*) FROM contacts"), expected.contacts)
            want("CRM contacts", await one("SELECT count(*) FROM crm_contacts"), expected.contacts)
            pairs = (
                await conn.execute(
                    text(
                        "SELECT DISTINCT p.value, b.value FROM identities p JOIN identities b "
                        "ON b.contact_id = p.contact_id AND b.kind = 'bsuid' AND b.is_current "
                        "WHERE p.kind = 'phone' AND p.is_current"
                    )
                )
            ).all()
            want("contacts with their phone and BSUID", len(pairs), expected.contacts)
            mixed = [1 for phone, bsuid in pairs if int(phone[-8:]) != int(bsuid.split(".")[1])]
            want("phones linked to another contact's BSUID", len(mixed), 0)
    finally:
        await engine.dispose()
    return problems


async def _joined(worker: Any) -> None:
    """Wait for the group join (not part of throughput): partitions assigned."""
    async with asyncio.timeout(60):
        while not worker.consumer.assignment():  # noqa: ASYNC110 - no event to wait on
            await asyncio.sleep(0.01)


def _report_steps(steps: Steps, seconds: float, events: int) -> None:
    # Batches in flight run concurrently (one transaction each), so step times are summed
    # over overlapping transactions: compare shares, not against the wall time.
    total = sum(steps.seconds.values())
    print("   step        seconds   µs/event   share of step time (summed over batches)")
    for name in STEPS:
        s = steps.seconds.get(name, 0.0)
        print(f"   {name:<10} {s:8.2f}  {s / events * 1e6:9.1f}   {s / total:6.1%}")
    ledger = steps.seconds.get("claim", 0.0) + steps.seconds.get("outcomes", 0.0)
    print(
        f"   ledger (claim + outcomes): {ledger / events * 1e6:.1f} µs/event, {ledger / total:.1%}"
    )


async def main_async(args: argparse.Namespace) -> None:
    configure_logging(level=args.log_level)
    t0 = time.perf_counter()
    records, statuses, expected = build_records(args.events, args.contacts, args.statuses)
    print(
        f"built {len(records)} events ({statuses} statuses) over {args.contacts} contacts "
        f"in {time.perf_counter() - t0:.1f} s; partitions={args.partitions} "
        f"batch={args.batch} in_flight={args.in_flight} log_level={args.log_level}"
    )
    print(_bench_module("_machine").describe())
    if not args.default_gc:
        tune_gc()  # as `wa-bridge worker` does at start-up (freezes the records built above)
    broker = EmbeddedBroker()
    await broker.astart()
    try:
        if not args.skip_plain:
            rate, seconds, cpu_s, _, stats = await one_run(
                args, broker, records, expected, timed=False
            )
            print(
                f"1. plain: {rate:,.0f} events/s ({seconds:.2f} s), "
                f"{len(records) / cpu_s:,.0f} events per worker CPU-second; {stats}"
            )
        if not args.skip_steps:
            rate, seconds, cpu_s, steps, stats = await one_run(
                args, broker, records, expected, timed=True
            )
            print(
                f"2. steps timed: {rate:,.0f} events/s ({seconds:.2f} s), "
                f"{len(records) / cpu_s:,.0f} events per worker CPU-second"
            )
            assert steps is not None
            _report_steps(steps, seconds, len(records))
    finally:
        await broker.astop()
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--contacts", type=int, default=5_000)
    parser.add_argument("--statuses", type=float, default=0.3, help="share of status events")
    parser.add_argument("--partitions", type=int, default=12)
    parser.add_argument("--batch", type=int, default=2000, help="worker_batch_max")
    parser.add_argument("--in-flight", type=int, default=2, help="worker_batches_in_flight")
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--skip-plain", action="store_true")
    parser.add_argument(
        "--default-gc", action="store_true", help="keep Python's GC thresholds (no tune_gc)"
    )
    parser.add_argument("--skip-steps", action="store_true")
    parser.add_argument(
        "--pg-statements",
        action="store_true",
        help="print PostgreSQL's time per statement (needs pg_stat_statements loaded)",
    )
    parser.add_argument(
        "--idle-probe",
        action="store_true",
        help="plain run: what the batches wait on while the event loop is idle (bench/_idle.py)",
    )
    parser.add_argument("--url", default=os.environ.get("WA_BRIDGE_TEST_DATABASE_URL", DEFAULT_URL))
    args = parser.parse_args()
    asyncio.run(main_async(args))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
