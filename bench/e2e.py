"""End-to-end: signed webhooks at a steady rate through ``wa-bridge dev`` into the SQL CRM.

    .venv/bin/python -m bench.e2e                      # 1,000 webhooks/s for 30 s, SQLite
    .venv/bin/python -m bench.e2e --db postgres        # the production shape: 12 partitions
    .venv/bin/python -m bench.e2e --rate 500 --duration 10 --db postgres --profile

GitHub issue #5: "1,000 signed webhooks/s through `wa-bridge dev` for 30 s, printing
p50/p99 from receipt to CRM row (target p99 < 500 ms)"; #13: on PostgreSQL with 12
partitions, p99 < 250 ms. Not a test: it prints figures.

How it runs: ``wa-bridge dev`` (embedded Tansu, receiver and worker in one process) as a
subprocess with its data dir under ``bench/results/e2e-<stamp>/``, SQLite state by default
or a fresh PostgreSQL schema (``--db postgres``). The app secret is read from the dev
secrets file. One signed probe must answer 200 and reach ``crm_notes`` (so the worker has
joined its group) before the load starts.

The load generator is a separate process (uvloop, raw HTTP/1.1 on keep-alive connections):
every request body is built and signed before the clock starts (distinct wamid, one of
``--contacts`` contacts), then sends are paced open-loop on a fixed schedule of ``--rate``
per second; a send that finds every connection busy waits in a queue (its lag behind the
schedule is printed). A warm-up (``--warmup`` s) at the same rate goes first; its messages
are checked but not in the figures.

Latency per message = ``crm_notes.created_at`` (the worker's UTC wall clock when it wrote
the row) − the generator's UTC wall clock when it wrote the request: send → CRM row, an
upper bound of receipt → row (the event's ``recvtime`` is not stored in the CRM or the
ledger). Both clocks are this machine's CLOCK_REALTIME.
"""

from __future__ import annotations

import argparse
import array
import asyncio
import hashlib
import hmac
import itertools
import logging
import multiprocessing as mp
import os
import secrets
import shlex
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench._cpu import _cpu_busy_s, _proc_cpu_s
from bench._server import run_server

HERE = Path(__file__).resolve().parent
BODY_PATH = HERE / "data" / "text_webhook.json"
RESULTS = HERE / "results"
HOST = "127.0.0.1"
DEFAULT_PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
TARGET_P99_MS = {"sqlite": 500.0, "postgres": 250.0}
DEFAULT_PARTITIONS = {"sqlite": 1, "postgres": 12}  # dev's default; the production shape
STATUS_IO_ERROR = 0  # the connection failed before an answer (not resent)


# --- the load generator (its own process) ---------------------------------------------


@dataclass(frozen=True)
class LoadSpec:
    host: str
    port: int
    path: str
    secret: str
    run_tag: str
    rate: float
    count: int
    contacts: int
    connections: int
    out: str  # file the arrays are written to


def wamid(run_tag: str, seq: int) -> str:
    return f"wamid.E2E{run_tag}{seq:08d}"


def build_requests(spec: LoadSpec) -> list[bytes]:
    """Every request in full (head + body), signed, built before the clock starts."""
    template = orjson.loads(BODY_PATH.read_bytes())
    value = template["entry"][0]["changes"][0]["value"]
    contact, message = value["contacts"][0], value["messages"][0]
    key = spec.secret.encode()
    now_s = int(time.time())
    out = []
    for seq in range(spec.count):
        who = seq % spec.contacts
        wa_id = f"5215590{who:06d}"
        contact.update(wa_id=wa_id, user_id=f"MX.{who:019d}", parent_user_id=f"MX.ENT.{who:015d}")
        contact["profile"] = {"name": f"Bench {who}"}
        message.update(
            {
                "from": wa_id,
                "from_user_id": f"MX.{who:019d}",
                "from_parent_user_id": f"MX.ENT.{who:015d}",
                "id": wamid(spec.run_tag, seq),
                "timestamp": str(now_s + int(seq / spec.rate)),
                "text": {"body": f"bench message {seq}"},
            }
        )
        body = orjson.dumps(template)
        sig = hmac.new(key, body, hashlib.sha256).hexdigest()
        head = (
            f"POST {spec.path} HTTP/1.1\r\nHost: {spec.host}:{spec.port}\r\n"
            f"Content-Type: application/json\r\nX-Hub-Signature-256: sha256={sig}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        out.append(head.encode() + body)
    return out


async def _read_answer(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length = 0
    for line in lines[1:]:
        name, _, val = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(val)
    if length:
        await reader.readexactly(length)
    return status


async def _connection(
    spec: LoadSpec,
    requests: list[bytes],
    queue: asyncio.Queue[int],
    arrays: dict[str, array.array[int]],
) -> None:
    reader, writer = await asyncio.open_connection(spec.host, spec.port)
    try:
        while True:
            seq = await queue.get()
            if seq < 0:
                return
            arrays["send"][seq] = time.time_ns()
            try:
                writer.write(requests[seq])
                arrays["status"][seq] = await _read_answer(reader)
            except (OSError, asyncio.IncompleteReadError, ValueError):
                arrays["status"][seq] = STATUS_IO_ERROR
                writer.close()
                reader, writer = await asyncio.open_connection(spec.host, spec.port)
            arrays["done"][seq] = time.time_ns()
    finally:
        writer.close()


async def _load(spec: LoadSpec, requests: list[bytes], started: Any) -> dict[str, float]:
    n = spec.count
    arrays = {k: array.array("q", bytes(8 * n)) for k in ("sched", "send", "done", "status")}
    queue: asyncio.Queue[int] = asyncio.Queue()
    conns = [
        asyncio.create_task(_connection(spec, requests, queue, arrays))
        for _ in range(spec.connections)
    ]
    await asyncio.sleep(0.2)  # connections open before the clock starts
    started.set()
    cpu0 = time.process_time()
    t0_mono, t0_wall = time.monotonic() + 0.05, time.time_ns() + 50_000_000
    interval = 1.0 / spec.rate
    for seq in range(n):
        due = t0_mono + seq * interval
        ahead = due - time.monotonic()
        if ahead > 0.001:
            await asyncio.sleep(ahead)
        arrays["sched"][seq] = t0_wall + round(seq * interval * 1e9)
        queue.put_nowait(seq)
    for _ in conns:
        queue.put_nowait(-1)
    await asyncio.gather(*conns)
    elapsed = time.monotonic() - t0_mono
    cpu = time.process_time() - cpu0
    with open(spec.out, "wb") as f:  # noqa: ASYNC230 - the load is over
        for k in ("sched", "send", "done", "status"):
            arrays[k].tofile(f)
    return {"elapsed_s": elapsed, "cpu_s": cpu}


def loadgen_main(spec: LoadSpec, started: Any, result: Any) -> None:
    """Entry point of the generator process: build, pace, record; figures via ``result``."""
    import uvloop

    requests = build_requests(spec)
    figures = uvloop.run(_load(spec, requests, started))
    result.put(figures)


@dataclass(frozen=True)
class Sent:
    sched_ns: array.array[int]
    send_ns: array.array[int]
    done_ns: array.array[int]
    status: array.array[int]
    elapsed_s: float
    cpu_s: float


def read_sent(path: Path, n: int, figures: dict[str, float]) -> Sent:
    parts = []
    with open(path, "rb") as f:
        for _ in range(4):
            a = array.array("q")
            a.fromfile(f, n)
            parts.append(a)
    sched, send, done, status = parts
    return Sent(sched, send, done, status, figures["elapsed_s"], figures["cpu_s"])


# --- the service under test ---------------------------------------------------------------


@asynccontextmanager
async def database(args: argparse.Namespace, data_dir: Path) -> AsyncIterator[str | None]:
    """None (dev's own SQLite default) or a PostgreSQL URL on a fresh schema with tables."""
    if args.db == "sqlite":
        yield None
        return
    from bench.worker import fresh_schema
    from wa_bridge.store import open_store

    async with fresh_schema(args.pg_url) as url:
        store = await open_store(url, create=True)
        await store.aclose()
        yield url


def dev_command(template: str | None, port: int, data_dir: Path) -> list[str]:
    """``wa-bridge dev`` from this venv, or ``--dev-cmd`` with {host} {port} {data_dir}."""
    if template:
        return shlex.split(template.format(host=HOST, port=port, data_dir=data_dir))
    exe = str(Path(sys.executable).with_name("wa-bridge"))
    return [exe, "dev", "--host", HOST, "--port", str(port), "--data-dir", str(data_dir)]


def sign(secret: str, body: bytes) -> dict[str, str]:
    sig = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"Content-Type": "application/json", "X-Hub-Signature-256": "sha256=" + sig}


async def wait_ready(url: str, secret: str, notes: NoteReader, timeout_s: float) -> float:
    """A signed probe answers 200 and its note reaches the CRM; returns the seconds taken."""
    from wa_bridge.cli.dev import sample_webhook

    body = sample_webhook().replace(b"wamid.DEV", b"wamid.PRB" + secrets.token_hex(3).encode())
    probe_id = orjson.loads(body)["entry"][0]["changes"][0]["value"]["messages"][0]["id"]
    started = time.monotonic()
    deadline = started + timeout_s
    async with httpx.AsyncClient(timeout=10.0) as client:
        while True:
            try:
                status = (
                    await client.post(url, content=body, headers=sign(secret, body))
                ).status_code
            except httpx.TransportError:
                status = 0
            if status == 200:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"the signed probe never got 200 (last: {status})")
            await asyncio.sleep(0.2)
    while await notes.count(probe_id) < 1:
        if time.monotonic() > deadline:
            raise RuntimeError("the probe's note never reached crm_notes: is the worker running?")
        await asyncio.sleep(0.2)
    return time.monotonic() - started


class NoteReader:
    """Reads ``crm_notes`` (and dead letters) through the product's own engine and tables."""

    def __init__(self, url: str) -> None:
        from wa_bridge.store import create_engine

        self._engine = create_engine(url)

    async def count(self, prefix: str) -> int:
        from sqlalchemy import func, select

        from wa_bridge.store.tables import crm_notes

        q = select(func.count()).where(crm_notes.c.note_key.like(prefix + "%"))
        async with self._engine.connect() as conn:
            return int((await conn.execute(q)).scalar_one())

    async def created(self, prefix: str) -> dict[str, datetime]:
        from sqlalchemy import select

        from wa_bridge.store.tables import crm_notes

        q = select(crm_notes.c.note_key, crm_notes.c.created_at).where(
            crm_notes.c.note_key.like(prefix + "%")
        )
        async with self._engine.connect() as conn:
            return {key: at for key, at in await conn.execute(q)}

    async def dead_letters(self) -> int:
        from sqlalchemy import func, select

        from wa_bridge.store.tables import dead_letters

        async with self._engine.connect() as conn:
            return int(
                (await conn.execute(select(func.count()).select_from(dead_letters))).scalar_one()
            )

    async def dead_letter_causes(self, most: int = 3) -> list[tuple[str, int]]:
        """The most common dead-letter messages (class: message), with their counts."""
        from sqlalchemy import func, select

        from wa_bridge.store.tables import dead_letters

        cause = dead_letters.c.error_class + ": " + func.left(dead_letters.c.error_message, 300)
        q = select(cause, func.count()).group_by(cause).order_by(func.count().desc()).limit(most)
        async with self._engine.connect() as conn:
            return [(str(text), int(n)) for text, n in await conn.execute(q)]

    async def aclose(self) -> None:
        await self._engine.dispose()


# --- measuring -------------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    from bench._cpu import _stat_fields

    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int(_stat_fields(int(entry.name))[1]) == pid:
                    found.append(int(entry.name))
            except (OSError, ValueError, IndexError):
                continue
    return found


@dataclass(frozen=True)
class CpuWindow:
    """CPU seconds of the dev process and its children (Tansu), and of the whole machine."""

    at_s: float
    dev_s: float
    broker_s: float
    busy_s: float

    @classmethod
    def take(cls, dev_pid: int) -> CpuWindow:
        broker = 0.0
        for child in _children(dev_pid):
            try:
                broker += _proc_cpu_s(child)
            except OSError:
                continue
        busy = _cpu_busy_s(set(range(os.cpu_count() or 1)))
        return cls(time.monotonic(), _proc_cpu_s(dev_pid), broker, busy)


def percentile(sorted_ms: list[float], p: float) -> float:
    """Nearest-rank percentile of an ascending list (p in 0..100)."""
    if not sorted_ms:
        return float("nan")
    rank = max(1, -(-len(sorted_ms) * p // 100))
    return sorted_ms[int(rank) - 1]


def _pcts(values_ms: list[float]) -> str:
    s = sorted(values_ms)
    cells = [f"p{p} {percentile(s, p):,.0f}" for p in (50, 90, 99)]
    return "  ".join([*cells, f"max {s[-1]:,.0f} ms" if s else "max n/a"])


async def drain(notes: NoteReader, prefix: str, expected: int, timeout_s: float) -> float:
    """Poll until ``expected`` notes are in the CRM (or the timeout); returns seconds waited."""
    started = time.monotonic()
    while await notes.count(prefix) < expected:
        if time.monotonic() - started > timeout_s:
            break
        await asyncio.sleep(0.25)
    return time.monotonic() - started


@dataclass
class Report:
    args: argparse.Namespace
    sent: Sent
    created: dict[str, datetime]
    warm_n: int
    run_tag: str
    problems: list[str]

    def measured(self) -> range:
        return range(self.warm_n, len(self.sent.status))

    def latencies_ms(self) -> list[tuple[int, float]]:
        out = []
        for seq in self.measured():
            at = self.created.get(wamid(self.run_tag, seq))
            if at is not None:
                out.append((seq, at.timestamp() * 1e3 - self.sent.send_ns[seq] / 1e6))
        return out

    def print(self, cpu: tuple[CpuWindow, CpuWindow], drained_s: float, dead: int) -> None:
        s, seqs = self.sent, self.measured()
        first, last = s.send_ns[seqs[0]], s.send_ns[seqs[-1]]
        rate = (len(seqs) - 1) / max(1e-9, (last - first) / 1e9)
        non200 = sum(1 for q in seqs if s.status[q] != 200)
        io_err = sum(1 for q in seqs if s.status[q] == STATUS_IO_ERROR)
        print(
            f"\nsent {len(seqs):,} measured webhooks at {rate:,.0f}/s (asked {self.args.rate:g}/s)"
        )
        print(f"  non-200 answers: {non200} (of them connection errors: {io_err})")
        answer = [(s.done_ns[q] - s.send_ns[q]) / 1e6 for q in seqs]
        lag = [(s.send_ns[q] - s.sched_ns[q]) / 1e6 for q in seqs]
        print(f"  HTTP answer (send → 200):   {_pcts(answer)}")
        print(f"  generator lag behind plan:  {_pcts(lag)}")
        lat = self.latencies_ms()
        ok = sum(1 for q in seqs if s.status[q] == 200)
        in_crm = len(lat)
        lost = sum(
            1 for q in seqs if s.status[q] == 200 and wamid(self.run_tag, q) not in self.created
        )
        extra = len(self.created) - sum(
            1 for q in range(len(s.status)) if wamid(self.run_tag, q) in self.created
        )
        print(
            f"  CRM notes: {in_crm:,} for {len(seqs):,} sent ({ok:,} answered 200); "
            f"drained {drained_s:.1f} s after the last send; dead letters: {dead}"
        )
        if lost:
            self.problems.append(f"LOSS: {lost} webhooks answered 200 have no CRM note")
        if extra:
            self.problems.append(f"DUPLICATES/unknown: {extra} notes with our prefix not sent")
        if in_crm != len(seqs):
            self.problems.append(f"CRM notes {in_crm} != sent {len(seqs)}")
        if dead:
            self.problems.append(f"{dead} dead letters")
        values = [ms for _, ms in lat]
        print(f"  latency send → CRM row:     {_pcts(values)}")
        planned = [ms + (s.send_ns[q] - s.sched_ns[q]) / 1e6 for q, ms in lat]
        print(f"  (from the planned send:     {_pcts(planned)}; counts the generator's lag)")
        p99 = percentile(sorted(values), 99)
        target = TARGET_P99_MS[self.args.db]
        verdict = "MET" if p99 < target else "NOT MET"
        print(
            f"  target p99 < {target:.0f} ms (receipt → row; send → row bounds it): "
            f"{verdict} (p99 {p99:,.0f} ms)"
        )
        self._timeline(lat)
        self._batches()
        self._cpu(*cpu)
        for p in self.problems:
            print(f"  FLAGGED: {p}")

    def _timeline(self, lat: list[tuple[int, float]], window_s: int = 5) -> None:
        per = max(1, round(self.args.rate * window_s))
        cells = []
        for start in range(0, len(lat), per):
            chunk = sorted(ms for _, ms in lat[start : start + per])
            cells.append(f"{percentile(chunk, 99):,.0f}")
        print(f"  p99 per {window_s} s of sending (ms): {' '.join(cells)}")

    def _batches(self) -> None:
        """Rows are stamped once per connector batch: distinct created_at = write batches."""
        stamps = sorted({at for at in self.created.values()})
        if len(stamps) < 2:
            return
        gaps = sorted((b - a).total_seconds() * 1e3 for a, b in itertools.pairwise(stamps))
        size = len(self.created) / len(stamps)
        print(
            f"  CRM write batches: {len(stamps):,} (mean {size:,.1f} rows), gap between "
            f"batches p50 {percentile(gaps, 50):,.0f} / max {gaps[-1]:,.0f} ms"
        )

    def _cpu(self, before: CpuWindow, after: CpuWindow) -> None:
        span = max(1e-9, after.at_s - before.at_s)
        ncpu = os.cpu_count() or 1
        dev = (after.dev_s - before.dev_s) / span
        broker = (after.broker_s - before.broker_s) / span
        gen = self.sent.cpu_s / max(1e-9, self.sent.elapsed_s)
        busy = (after.busy_s - before.busy_s) / span
        others = max(0.0, busy - dev - broker - gen)
        print(
            f"  CPU during the load (1.0 = one core of {ncpu}): wa-bridge dev {dev:.2f}, "
            f"Tansu {broker:.2f}, load generator {gen:.2f}, others {others:.2f}"
        )


# --- the run -----------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.e2e", description=__doc__.split("\n")[0])
    p.add_argument("--rate", type=float, default=1000.0, help="webhooks per second")
    p.add_argument("--duration", type=float, default=30.0, help="seconds of measured load")
    p.add_argument("--warmup", type=float, default=3.0, help="seconds of unmeasured load first")
    p.add_argument("--contacts", type=int, default=300)
    p.add_argument("--connections", type=int, default=64, help="keep-alive connections")
    p.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    p.add_argument(
        "--partitions",
        type=int,
        default=None,
        help="partitions of the topic (default: 1, dev's own, on SQLite; 12 on PostgreSQL)",
    )
    p.add_argument(
        "--pg-url", default=os.environ.get("WA_BRIDGE_TEST_DATABASE_URL", DEFAULT_PG_URL)
    )
    p.add_argument("--drain-timeout", type=float, default=180.0, help="seconds to wait for rows")
    p.add_argument("--profile", action="store_true", help="py-spy record the dev process")
    p.add_argument(
        "--dev-cmd",
        default=None,
        help="command instead of `wa-bridge dev` ({host}, {port}, {data_dir} filled in)",
    )
    return p.parse_args(argv)


def _loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


async def _send_load(
    args: argparse.Namespace, spec: LoadSpec, dev_pid: int, workdir: Path
) -> tuple[Sent, tuple[CpuWindow, CpuWindow]]:
    ctx = mp.get_context("spawn")
    started, result = ctx.Event(), ctx.Queue()
    gen = ctx.Process(target=loadgen_main, args=(spec, started, result), daemon=True)
    gen.start()
    if not await asyncio.to_thread(started.wait, 120):
        gen.kill()
        raise RuntimeError("the load generator did not start")
    before = CpuWindow.take(dev_pid)
    spy = None
    if args.profile:
        from bench import _pyspy

        spy = _pyspy.start_record(
            dev_pid, out=workdir / "dev-profile.txt", duration_s=args.warmup + args.duration
        )
    figures = await asyncio.to_thread(result.get, True, args.warmup + args.duration + 120)
    after = CpuWindow.take(dev_pid)
    await asyncio.to_thread(gen.join, 10)
    if spy is not None:
        await asyncio.to_thread(spy.wait, 60)
    return read_sent(Path(spec.out), spec.count, figures), (before, after)


def _print_profile(path: Path) -> None:
    from bench import _pyspy

    if not path.exists():
        print("py-spy wrote no profile (permission? see ptrace_scope)")
        return
    spots = _pyspy.summarize(path)
    print(f"\npy-spy profile of wa-bridge dev under load: {spots.samples} samples, raw in {path}")
    _pyspy.print_hot_spots(spots)


async def run(args: argparse.Namespace) -> int:
    from wa_bridge.bus.embedded import free_port
    from wa_bridge.cli.dev import load_dev_secrets
    from wa_bridge.receiver import WEBHOOK_PATH

    for name in ("WA_BRIDGE_DATABASE_URL", "WA_BRIDGE_APP_SECRETS", "WA_BRIDGE_KAFKA_PARTITIONS"):
        os.environ.pop(name, None)  # the run decides these, not the caller's shell
    workdir = RESULTS / f"e2e-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    data_dir = workdir / "data"
    data_dir.mkdir(parents=True)
    load_before = _loadavg()
    async with database(args, data_dir) as pg_url:
        db_url = pg_url or f"sqlite+aiosqlite:///{(data_dir / 'wa-bridge.db').resolve()}"
        partitions = args.partitions or DEFAULT_PARTITIONS[args.db]
        env = {"WA_BRIDGE_LOG_LEVEL": "WARNING", "WA_BRIDGE_KAFKA_PARTITIONS": str(partitions)}
        if pg_url:
            env["WA_BRIDGE_DATABASE_URL"] = pg_url
        port = free_port(HOST)
        cmd = dev_command(args.dev_cmd, port, data_dir)
        log = workdir / "dev.log"
        with run_server(
            cmd, host=HOST, port=port, env=env, cpus=None, log_path=log, start_timeout_s=60
        ) as server:
            secret = load_dev_secrets(data_dir)["WA_BRIDGE_APP_SECRETS"].split(",")[0]
            notes = NoteReader(db_url)
            try:
                url = server.base_url + WEBHOOK_PATH
                ready_s = await wait_ready(url, secret, notes, timeout_s=90)
                print(
                    f"wa-bridge dev pid {server.pid} on {url}; database: "
                    f"{'PostgreSQL (fresh schema)' if pg_url else 'SQLite (dev default)'}, "
                    f"{partitions} partition(s); "
                    f"probe 200 + CRM row after {ready_s:.1f} s; logs {log}"
                )
                run_tag = secrets.token_hex(3)
                warm_n = round(args.warmup * args.rate)
                spec = LoadSpec(
                    host=HOST,
                    port=port,
                    path=WEBHOOK_PATH,
                    secret=secret,
                    run_tag=run_tag,
                    rate=args.rate,
                    count=warm_n + round(args.duration * args.rate),
                    contacts=args.contacts,
                    connections=args.connections,
                    out=str(workdir / "sent.bin"),
                )
                print(
                    f"load: {args.rate:g}/s for {args.warmup:g} s warm-up + {args.duration:g} s "
                    f"measured, {args.contacts} contacts, {args.connections} connections; "
                    f"load average before: {load_before}"
                )
                sent, cpu = await _send_load(args, spec, server.pid, workdir)
                load_during = _loadavg()
                prefix = wamid(run_tag, 0)[:-8]
                expected = sum(1 for st in sent.status if st == 200)
                drained_s = await drain(notes, prefix, expected, args.drain_timeout)
                created = await notes.created(prefix)
                dead = await notes.dead_letters()
            finally:
                await notes.aclose()
    report = Report(args, sent, created, warm_n, run_tag, problems=[])
    report.print(cpu, drained_s, dead)
    print(f"  load average at the end of the load: {load_during} (2 cores; others' suites count)")
    print(
        "  latency is send → CRM row (generator's send clock vs crm_notes.created_at, both UTC "
        "wall clock here): an upper bound of receipt → row"
    )
    if args.profile:
        _print_profile(workdir / "dev-profile.txt")
    return 1 if report.problems else 0


def main(argv: list[str] | None = None) -> int:
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per probe otherwise
    return asyncio.run(run(parse_args(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
