"""Soak: a steady stream of signed webhooks for minutes, with random faults, then the
fault table (the same shape as ``pytest tests/faults``).

    .venv/bin/python -m bench.soak                     # 10 minutes, 40 webhooks/s
    .venv/bin/python -m bench.soak --minutes 2 --rate 20 --fault-every 20 --seed 7
    .venv/bin/python -m bench.soak --minutes 3 --faults "broker down and back,disk full"

What runs: one Tansu broker, a throwaway PostgreSQL cluster (the machine's initdb on a
free port, so it can be crashed; never the shared server), 2 ``wa-bridge receiver`` and 3
``wa-bridge worker`` processes with the built-in SQL CRM. A sender posts text webhooks at
``--rate`` per second to the receivers in turn, resending on anything but 200 (as Meta
does), one contact's next message after its previous one was acknowledged. Every
``--fault-every`` seconds one fault is drawn:

- ``worker SIGKILL``: a random worker is killed, a new one started;
- ``worker SIGKILL mid-batch``: the next batch's transaction is held open on a CRM
  write (a trigger), the worker holding it killed, a new one started;
- ``broker down and back``: Tansu stopped for 3 s while the stream goes on (receivers
  answer 503). Tansu keeps its log in memory only, so the stream pauses first until
  what it acknowledged is applied; the topics are created again after the start, and
  the sender sends one request at a time from the stop until 3 s after the start (a
  restarted Tansu loses acknowledged records under concurrent produce requests);
- ``PostgreSQL crash and restart``: ``pg_ctl stop -m immediate``, 3 s, start;
- ``rebalance``: a worker joins, or one leaves with SIGTERM (never below 2);
- ``disk full``: CRM writes fail with SQLSTATE 53100 for 5 s.

Each message is counted in the row of the fault whose window it was sent in (``none``
before the first). After the last window the stream stops and the workers get
``--drain-s`` to apply everything; then the table is read from the SQL CRM tables and
the trigger-kept write log: applied (distinct notes), duplicated (writes beyond the
first), lost (acknowledged, never applied). Exit 1 when any row has a duplicate or a loss.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the fleet helpers the fault tests use

import httpx  # noqa: E402
from sqlalchemy import text  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncEngine  # noqa: E402

from faults.fleet import (  # noqa: E402
    Receiver,
    Sender,
    WorkerProc,
    applied_count,
    new_app_secret,
    poll,
    ready,
    receiver_process,
    tally,
    worker_proc,
)
from faults.pg_cluster import PgCluster, throwaway_cluster  # noqa: E402
from faults.table import FaultRow, format_table  # noqa: E402
from wa_bridge.bus.admin import ensure_topics  # noqa: E402
from wa_bridge.bus.embedded import EmbeddedBroker  # noqa: E402
from wa_bridge.settings import Settings  # noqa: E402
from wa_bridge.store import create_engine, open_store  # noqa: E402
from wa_bridge.worker.runner import worker_topics  # noqa: E402
from worker.conftest import WRITE_LOG_DDL  # noqa: E402
from worker.sqlcrm import sql_settings  # noqa: E402

RESULTS = ROOT / "bench" / "results"
FAULTS = (
    "worker SIGKILL",
    "worker SIGKILL mid-batch",
    "broker down and back",
    "PostgreSQL crash and restart",
    "rebalance",
    "disk full",
)
DOWN_S = 3.0
FULL_S = 5.0
MIN_WORKERS, MAX_WORKERS = 2, 4


def _fault_sql(is_full: bool, pause_s: float) -> list[str]:
    """The trigger function the faults switch: disk full, or hold the next write open."""
    body = ""
    if is_full:
        body = (
            "RAISE EXCEPTION 'could not extend file: No space left on device' "
            "USING ERRCODE = 'disk_full'; "
        )
    elif pause_s:
        body = f"IF nextval('soak_pause_hits') = 1 THEN PERFORM pg_sleep({pause_s}); END IF; "
    return [
        "CREATE OR REPLACE FUNCTION soak_fault() RETURNS trigger AS $$ BEGIN "
        f"{body}RETURN NEW; END $$ LANGUAGE plpgsql"
    ]


SETUP_SQL = (
    *WRITE_LOG_DDL,
    "CREATE SEQUENCE IF NOT EXISTS soak_pause_hits",
    *_fault_sql(is_full=False, pause_s=0),
    "CREATE TRIGGER crm_notes_soak_fault BEFORE INSERT ON crm_notes "
    "FOR EACH ROW EXECUTE FUNCTION soak_fault()",
)


async def execute(engine: AsyncEngine, *statements: str) -> None:
    async with engine.begin() as conn:
        for statement in statements:
            await conn.execute(text(statement))


@dataclass
class Stream:
    """The sender's loop: message after message at ``rate``, pausable."""

    sender: Sender
    rate: float
    next_n: int = 0
    running: asyncio.Event = field(default_factory=asyncio.Event)
    stopped: bool = False
    inflight: set[asyncio.Task[None]] = field(default_factory=set)

    async def run(self) -> None:
        last: dict[int, asyncio.Task[None]] = {}
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
        self.running.set()
        async with httpx.AsyncClient(timeout=10.0, limits=limits) as client:
            t0, sent_at_t0 = time.monotonic(), 0
            while not self.stopped:
                if not self.running.is_set():
                    await self.running.wait()
                    t0, sent_at_t0 = time.monotonic(), self.next_n
                due = t0 + (self.next_n - sent_at_t0) / self.rate
                if due > time.monotonic():
                    await asyncio.sleep(due - time.monotonic())
                    continue
                n = self.next_n
                self.next_n += 1
                contact = n % self.sender.contacts
                task = asyncio.create_task(self.sender.send_one(client, n, last.get(contact)))
                last[contact] = task
                self.inflight.add(task)
                task.add_done_callback(self.inflight.discard)
            await self.drain()

    async def drain(self) -> None:
        while self.inflight:
            await asyncio.gather(*list(self.inflight))

    async def pause(self) -> None:
        self.running.clear()
        await self.drain()


def _socket_inode(local_port: int) -> str | None:
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == local_port:
                    return fields[9]
    return None


@dataclass
class Soak:
    args: argparse.Namespace
    settings: Settings
    engine: AsyncEngine
    broker: EmbeddedBroker
    cluster: PgCluster
    logs: Path
    stream: Stream
    rng: random.Random
    workers: list[tuple[WorkerProc, contextlib.ExitStack]] = field(default_factory=list)
    started: int = 0

    def start_worker(self) -> None:
        self.started += 1
        stack = contextlib.ExitStack()
        proc = stack.enter_context(worker_proc(self.settings, self.logs / f"w{self.started}.log"))
        self.workers.append((proc, stack))

    def stop_worker(self, i: int, sig: int) -> None:
        proc, stack = self.workers.pop(i)
        proc.proc.send_signal(sig)
        with contextlib.suppress(Exception):
            proc.proc.wait(timeout=30)
        stack.close()

    async def applied(self) -> int:
        for _ in range(100):
            with contextlib.suppress(Exception):
                return await applied_count(self.engine)
            await asyncio.sleep(0.5)  # the database is down: soon back
        raise RuntimeError("state database unreachable for 50 s")

    async def worker_sigkill(self) -> None:
        self.stop_worker(self.rng.randrange(len(self.workers)), signal.SIGKILL)
        self.start_worker()

    async def worker_sigkill_mid_batch(self) -> None:
        await execute(self.engine, "SELECT setval('soak_pause_hits', 1, false)")
        await execute(self.engine, *_fault_sql(is_full=False, pause_s=10))
        pid = None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(15):
                while pid is None:
                    pid = await self._paused_client_port()
                    await asyncio.sleep(0.05)
        await execute(self.engine, *_fault_sql(is_full=False, pause_s=0))
        victim = self._worker_holding(pid) if pid else None
        self.stop_worker(
            victim if victim is not None else self.rng.randrange(len(self.workers)),
            signal.SIGKILL,
        )
        self.start_worker()

    async def _paused_client_port(self) -> int | None:
        async with self.engine.connect() as conn:
            port = (
                await conn.execute(
                    text(
                        "SELECT client_port FROM pg_stat_activity "
                        "WHERE wait_event = 'PgSleep' AND query ILIKE '%crm_notes%'"
                    )
                )
            ).scalar()
        return int(port) if port is not None else None

    def _worker_holding(self, client_port: int) -> int | None:
        """The index of the worker whose process owns the TCP connection from
        ``client_port`` (read from /proc: the socket's inode, then each worker's fds)."""
        inode = _socket_inode(client_port)
        if inode is None:
            return None
        for i, (proc, _) in enumerate(self.workers):
            fd_dir = Path(f"/proc/{proc.proc.pid}/fd")
            with contextlib.suppress(OSError):
                for fd in fd_dir.iterdir():
                    with contextlib.suppress(OSError):
                        if fd.readlink().name == f"socket:[{inode}]":
                            return i
        return None

    async def broker_down_and_back(self) -> None:
        await self.stream.pause()
        target = self.stream.next_n

        async def drained() -> bool:
            return await self.applied() >= target

        await poll(drained, timeout_s=600)  # memory storage: drain before the stop
        await self.broker.astop()
        # one request at a time until the broker is back and settled: a restarted Tansu
        # hands out a fresh partition's offsets racily under concurrent produce requests
        # (see tests/faults/test_infra_faults.py::test_broker_down_and_back)
        sender = self.stream.sender
        sender._slots = asyncio.Semaphore(1)
        self.stream.running.set()
        await asyncio.sleep(DOWN_S)
        await self.broker.astart()
        await ensure_topics(
            self.settings.kafka_bootstrap,
            worker_topics(self.settings),
            self.settings.kafka_partitions,
        )
        await asyncio.sleep(DOWN_S)
        sender._slots = asyncio.Semaphore(sender.max_in_flight)

    async def postgres_crash_and_restart(self) -> None:
        await asyncio.to_thread(self.cluster.stop, "immediate")
        await self.engine.dispose()
        await asyncio.sleep(DOWN_S)
        await asyncio.to_thread(self.cluster.start)

    async def rebalance(self) -> None:
        if len(self.workers) < MAX_WORKERS and (
            len(self.workers) <= MIN_WORKERS or self.rng.random() < 0.5
        ):
            self.start_worker()
        else:
            self.stop_worker(self.rng.randrange(len(self.workers)), signal.SIGTERM)

    async def disk_full(self) -> None:
        await execute(self.engine, *_fault_sql(is_full=True, pause_s=0))
        await asyncio.sleep(FULL_S)
        await execute(self.engine, *_fault_sql(is_full=False, pause_s=0))

    def action(self, fault: str) -> Callable[[], Awaitable[None]]:
        return {
            "worker SIGKILL": self.worker_sigkill,
            "worker SIGKILL mid-batch": self.worker_sigkill_mid_batch,
            "broker down and back": self.broker_down_and_back,
            "PostgreSQL crash and restart": self.postgres_crash_and_restart,
            "rebalance": self.rebalance,
            "disk full": self.disk_full,
        }[fault]


@contextlib.asynccontextmanager
async def fleet(args: argparse.Namespace, logs: Path) -> AsyncIterator[Soak]:
    broker = EmbeddedBroker(log_path=logs / "tansu.log")
    await broker.astart()
    with contextlib.ExitStack() as stack:
        cluster = stack.enter_context(throwaway_cluster())
        cluster.createdb("soak")
        url = cluster.url("soak")
        store = await open_store(url, create=True)
        await store.aclose()
        engine = create_engine(url)
        await execute(engine, *SETUP_SQL)
        settings = sql_settings(
            broker.bootstrap,
            "wa.soak",
            url,
            kafka_partitions=args.partitions,
            worker_batch_max=200,
            consumer_session_timeout_ms=3000,
            consumer_group=f"soak-{uuid.uuid4().hex[:6]}",
        )
        secret = new_app_secret()
        receivers: list[Receiver] = [
            stack.enter_context(receiver_process(settings, secret, logs / f"r{i}.log"))
            for i in (1, 2)
        ]
        await ready(receivers)
        sender = Sender(receivers, secret, contacts=args.contacts, rate=args.rate)
        soak = Soak(
            args,
            settings,
            engine,
            broker,
            cluster,
            logs,
            Stream(sender, args.rate),
            random.Random(args.seed),
        )
        try:
            for _ in range(3):
                soak.start_worker()
            yield soak
        finally:
            for proc, worker_stack in soak.workers:
                proc.proc.send_signal(signal.SIGKILL)
                worker_stack.close()
            await engine.dispose()
            await broker.astop()


async def run(args: argparse.Namespace) -> int:
    logs = RESULTS / f"soak-{time.strftime('%Y%m%d-%H%M%S')}"
    logs.mkdir(parents=True, exist_ok=True)
    windows: list[tuple[str, int]] = [("none", 0)]  # (fault, first message number)
    async with fleet(args, logs) as soak:
        sending = asyncio.create_task(soak.stream.run())
        end = time.monotonic() + args.minutes * 60
        while time.monotonic() + args.fault_every < end:
            await asyncio.sleep(args.fault_every)
            fault = soak.rng.choice(args.faults)
            windows.append((fault, soak.stream.next_n))
            print(f"{time.strftime('%H:%M:%S')} {fault} (from message {soak.stream.next_n})")
            await soak.action(fault)()
        await asyncio.sleep(max(0.0, end - time.monotonic()))
        soak.stream.stopped = True
        soak.stream.running.set()
        await sending
        total = soak.stream.next_n

        async def all_applied() -> bool:
            return await soak.applied() >= total

        with contextlib.suppress(TimeoutError):
            await poll(all_applied, timeout_s=args.drain_s)
        rows = await table(soak, windows, total)
        resent = soak.stream.sender.resent
    print(f"\n{total} messages, {resent} resends; logs in {logs}\n")
    print(format_table(rows))
    return 1 if any(r.duplicated or r.lost for r in rows) else 0


async def table(soak: Soak, windows: list[tuple[str, int]], total: int) -> list[FaultRow]:
    bounds = [start for _, start in windows[1:]] + [total]
    per_fault: dict[str, list[int]] = {}
    for (fault, start), stop in zip(windows, bounds, strict=True):
        counted = await tally(
            soak.settings.database_url or "", range(start, stop), soak.stream.sender.contacts
        )
        acc = per_fault.setdefault(fault, [0, 0, 0, 0])
        for i, value in enumerate(counted.row()):
            acc[i] += value
    return [FaultRow(fault, *values) for fault, values in per_fault.items()]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=40.0, help="webhooks per second")
    parser.add_argument("--contacts", type=int, default=200)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--fault-every", type=float, default=30.0, help="seconds")
    parser.add_argument("--drain-s", type=float, default=120.0)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument(
        "--faults",
        default=",".join(FAULTS),
        help=f"comma-separated subset to draw from (default: all of {', '.join(FAULTS)})",
    )
    args = parser.parse_args(argv)
    args.faults = [f.strip() for f in args.faults.split(",") if f.strip()]
    unknown = set(args.faults) - set(FAULTS)
    if unknown or not args.faults:
        parser.error(f"unknown fault(s): {', '.join(sorted(unknown)) or '(none given)'}")
    return args


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(run(parse_args(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
