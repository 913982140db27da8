"""Scale-out: 1, 2 and 3 worker processes in one group on one PostgreSQL; events/s in all.

    .venv/bin/python -m bench.scale [--workers 1,2,3] [--events 100000] [--contacts 5000]
                                    [--partitions 12] [--batch 2000] [--in-flight 2] [--url URL]

For each worker count: a fresh schema, topic and group; the events of ``bench/worker.py``
(same builder, same checks) produced to the topic first; then N worker processes (each
``open_worker`` with ``mappings/sql.yaml`` into the SQL CRM, GC tuned as ``wa-bridge
worker`` does, logs at WARNING) join the group. Once the group is settled (every main
partition assigned, no change for 2 s) all are told to go at once; the clock runs from
"go" until the ledger holds every event (polled every 0.2 s). Then each worker stops and
reports its peak RSS (``VmHWM``: the whole backlog was in flight, fetched ahead by its
consumer) and CPU seconds; the run fails (exit 1) when a check fails.

Processes share the machine's cores with PostgreSQL and Tansu: on a 2-core box the
figure says how the deployment behaves there, not how far it would scale on more cores.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text

from bench.worker import DEFAULT_URL, MAPPING, build_records, fresh_schema, preload, verify
from wa_bridge.bus.admin import ensure_topics
from wa_bridge.bus.embedded import EmbeddedBroker
from wa_bridge.cli._common import tune_gc
from wa_bridge.connectors.sql import SqlCrmConnector
from wa_bridge.log import configure_logging
from wa_bridge.settings import Settings
from wa_bridge.store import create_engine, open_store
from wa_bridge.worker.runner import open_worker, worker_topics

SETTLE_S = 2.0


def _settings(args: argparse.Namespace) -> Settings:
    return Settings(
        kafka_bootstrap=args.bootstrap,
        kafka_topic=args.topic,
        kafka_partitions=args.partitions,
        kafka_enable_idempotence=False,
        consumer_group=args.group,
        consumer_session_timeout_ms=6000,
        database_url=args.db,
        connector="sql",
        mappings_path=str(MAPPING),
        worker_batch_max=args.batch,
        worker_batches_in_flight=args.in_flight,
    )


def _peak_rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


# --- one worker process --------------------------------------------------------------


async def child(args: argparse.Namespace) -> None:
    """Join the group, report the main partitions held until told "go", run until "stop"."""
    configure_logging(level="WARNING")
    tune_gc()
    settings = _settings(args)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    store = await open_store(settings.database_url or "", create=False)
    connector = SqlCrmConnector(store)
    try:
        async with open_worker(settings, store=store, connector=connector) as worker:
            go = asyncio.ensure_future(reader.readline())
            held = -1
            while not go.done():
                now = sum(1 for tp in worker.consumer.assignment() if tp.topic == args.topic)
                if now != held:
                    held = now
                    print(f"held {now}", flush=True)
                await asyncio.wait([go], timeout=0.05)
            stop = asyncio.Event()

            async def wait_stop() -> None:
                await reader.readline()
                stop.set()

            waiter = asyncio.ensure_future(wait_stop())
            cpu = time.process_time()
            await worker.run(stop)
            waiter.cancel()
            print(
                f"done rss_kb={_peak_rss_kb()} cpu_s={time.process_time() - cpu:.2f} "
                f"stats={worker.stats}",
                flush=True,
            )
    finally:
        await connector.aclose()
        await store.aclose()


# --- the parent ----------------------------------------------------------------------


@dataclass
class Child:
    proc: asyncio.subprocess.Process
    held: int = -1
    report: str = ""

    async def follow(self) -> None:
        assert self.proc.stdout is not None
        async for raw in self.proc.stdout:
            line = raw.decode().strip()
            if line.startswith("held "):
                self.held = int(line.split()[1])
            elif line.startswith("done "):
                self.report = line

    def say(self, word: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"{word}\n".encode())


async def _ledger_count(url: str) -> int:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return int(
                (await conn.execute(text("SELECT count(*) FROM processed_events"))).scalar_one()
            )
    finally:
        await engine.dispose()


async def one_scale(
    args: argparse.Namespace, broker: EmbeddedBroker, records: list, expected: object, n: int
) -> None:
    async with fresh_schema(args.url) as url:
        store = await open_store(url, create=True)
        await store.aclose()
        topic, group = f"scale.{uuid.uuid4().hex[:8]}", f"scale-{uuid.uuid4().hex[:8]}"
        given = {"bootstrap": broker.bootstrap, "topic": topic, "group": group, "db": url}
        base = argparse.Namespace(**{**vars(args), **given})
        await ensure_topics(broker.bootstrap, worker_topics(_settings(base)), args.partitions)
        await preload(broker.bootstrap, topic, records)
        cmd = [sys.executable, "-m", "bench.scale", "--child", "--bootstrap", broker.bootstrap]
        cmd += ["--topic", topic, "--group", group, "--db", url]
        cmd += ["--partitions", str(args.partitions), "--batch", str(args.batch)]
        cmd += ["--in-flight", str(args.in_flight)]
        children = []
        for _ in range(n):
            proc = await asyncio.create_subprocess_exec(
                *cmd,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL,
            )
            children.append(Child(proc))
        followers = [asyncio.ensure_future(c.follow()) for c in children]
        # settled: every main partition held, each worker holds some, unchanged for 2 s
        async with asyncio.timeout(180):
            stable_since, last = time.monotonic(), None
            while True:
                state = tuple(c.held for c in children)
                if state != last:
                    stable_since, last = time.monotonic(), state
                settled = sum(state) == args.partitions and min(state) > 0
                if settled and time.monotonic() - stable_since >= SETTLE_S:
                    break
                await asyncio.sleep(0.05)
        started = time.perf_counter()
        for c in children:
            c.say("go")
        async with asyncio.timeout(3600):
            while await _ledger_count(url) < len(records):  # noqa: ASYNC110 - polls the db
                await asyncio.sleep(0.2)
        seconds = time.perf_counter() - started
        for c in children:
            c.say("stop")
        await asyncio.gather(*(c.proc.wait() for c in children))
        await asyncio.gather(*followers)
        problems = await verify(url, expected)  # type: ignore[arg-type]
        verdict = "FAILED " + "; ".join(problems) if problems else "ok"
        print(
            f"{n} worker(s): {len(records) / seconds:,.0f} events/s in all ({seconds:.2f} s); "
            f"partitions held {list(last or ())}; checks: {verdict}"
        )
        for i, c in enumerate(children):
            fields = dict(part.split("=", 1) for part in c.report.split()[1:3]) if c.report else {}
            rss = int(fields.get("rss_kb", 0)) / 1024
            print(f"   worker {i + 1}: peak RSS {rss:,.0f} MiB, CPU {fields.get('cpu_s', '?')} s")
        if problems:
            raise SystemExit(1)


async def main_async(args: argparse.Namespace) -> None:
    configure_logging(level="WARNING")
    records, statuses, expected = build_records(args.events, args.contacts, args.statuses)
    print(
        f"built {len(records)} events ({statuses} statuses) over {args.contacts} contacts; "
        f"partitions={args.partitions} batch={args.batch} in_flight={args.in_flight}"
    )
    tune_gc()
    broker = EmbeddedBroker()
    await broker.astart()
    try:
        for n in (int(w) for w in args.workers.split(",")):
            await one_scale(args, broker, records, expected, n)
    finally:
        await broker.astop()
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", default="1,2,3", help="worker counts to run, in turn")
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--contacts", type=int, default=5_000)
    parser.add_argument("--statuses", type=float, default=0.3)
    parser.add_argument("--partitions", type=int, default=12)
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--in-flight", type=int, default=2)
    parser.add_argument("--url", default=os.environ.get("WA_BRIDGE_TEST_DATABASE_URL", DEFAULT_URL))
    # a worker process (started by the parent)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--bootstrap", help=argparse.SUPPRESS)
    parser.add_argument("--topic", help=argparse.SUPPRESS)
    parser.add_argument("--group", help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    args = parser.parse_args()
    asyncio.run(child(args) if args.child else main_async(args))


if __name__ == "__main__":
    main()
