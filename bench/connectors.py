"""CRM requests per 1,000 events, per connector, through the whole pipeline (issue #10).

    .venv/bin/python -m bench.connectors                    # every connector, 100/s and 5/s
    .venv/bin/python -m bench.connectors --seconds 20 --connectors hubspot --rates 100
    .venv/bin/python -m bench.connectors --by-endpoint      # where the requests go

Each row is one connector at one rate, on fresh parts: a Tansu broker (``EmbeddedBroker``,
a topic of 12 partitions), a fresh PostgreSQL schema, ``wa-bridge receiver`` and
``wa-bridge worker`` as processes of their own (the shipped mapping of that connector), and
the strict contract stand-in of the CRM (``tests/connectors/servers``) in a process of its
own (its CPU never slows the load generator), where every request is counted. A signed
probe message must reach the stand-in before the load starts (the worker has joined its
group); the probe's requests are not counted.

Before the load, one inbound message from each contact (not counted): the CRM and the
book (``crm_records``) know them all, as in a deployment that has run for a while
(``--cold``: they are new when the load starts). The load is a steady, realistic mix
over ``--contacts`` people (200): an inbound text message, then the statuses of the
business's answer (sent, delivered, read, seconds apart), and on every tenth exchange an
inbox event (tagged); about 4.1 events per exchange, sent in time order at a fixed
``--rates`` per second for ``--seconds``. Webhooks are signed like Meta's; inbox events
carry an inbox bearer token. ``--set NAME=VALUE`` passes a setting to receiver and worker.

Per row it prints: CRM requests per 1,000 events (every API request the stand-in got from
the first send until the pipeline went quiet, token calls apart), events/s achieved
(events accepted ÷ first accept → last CRM write), and the p50 / p99 event-to-CRM latency:
from the receiver's 200 to the first CRM *write* (not a search or read) carrying the
event's message id that the stand-in saw after it (statuses coalesced into one write
count from their own accept). Inbox events carry no message id and are not in the latency.
Targets (#10): HubSpot and Salesforce ≤ 10 requests per 1,000 events at 100/s, ≤ 40 at
5/s, p99 < 2 s. Not a test: it prints figures (exit 1 if a row lost events or broke the
CRM's contract).
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import dataclasses
import logging
import multiprocessing as mp
import os
import random
import re
import secrets
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench._server import ROOT, run_server

HOST = "127.0.0.1"
RESULTS = ROOT / "bench" / "results"
TEXT_BODY = ROOT / "bench" / "data" / "text_webhook.json"
DEFAULT_PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
PHONE_NUMBER_ID = "112233445566778"
TARGETS = {  # requests per 1,000 events by rate; p99 latency (#10)
    "hubspot": {100.0: 10.0, 5.0: 40.0},
    "salesforce": {100.0: 10.0, 5.0: 40.0},
}
TARGET_P99_S = 2.0
# offsets of one exchange's events from its start, seconds: inbound, sent, delivered, read
EXCHANGE = (("in", 0.0), ("sent", 0.4), ("delivered", 0.9), ("read", 3.0))
INBOX_EVERY = 10  # an inbox event on every tenth exchange, 1.5 s in
WRITE_METHODS = ("POST", "PATCH", "PUT")
NOT_WRITES = ("search", "read", "query")


# --- the load ------------------------------------------------------------------------


@dataclass(frozen=True)
class Planned:
    at_s: float  # planned offset from the start of the load
    path: str  # "webhook" or "inbox"
    body: bytes
    trace: str | None  # the message id a CRM write of it carries
    kind: str = "in"  # in, sent, delivered, read or inbox


def _who(n: int) -> tuple[str, str]:
    return f"5215590{n:06d}", f"MX.{n:019d}"


def _inbound(tag: str, seq: int, who: int, ts: int) -> bytes:
    body = orjson.loads(TEXT_BODY.read_bytes())
    value = body["entry"][0]["changes"][0]["value"]
    wa_id, user_id = _who(who)
    value["contacts"][0].pop("parent_user_id", None)
    value["contacts"][0].update(wa_id=wa_id, user_id=user_id, profile={"name": f"Bench {who}"})
    message = value["messages"][0]
    message.pop("from_parent_user_id", None)
    message.update(
        {
            "from": wa_id,
            "from_user_id": user_id,
            "id": msg_id(tag, "I", seq),
            "timestamp": str(ts),
            "text": {"body": f"bench message {seq}"},
        }
    )
    return orjson.dumps(body)


def _status(tag: str, seq: int, who: int, status: str, ts: int) -> bytes:
    body = orjson.loads(TEXT_BODY.read_bytes())
    value = body["entry"][0]["changes"][0]["value"]
    wa_id, user_id = _who(who)
    value.pop("contacts")
    value.pop("messages")
    value["statuses"] = [
        {
            "id": msg_id(tag, "O", seq),
            "status": status,
            "timestamp": str(ts),
            "recipient_id": wa_id,
            "recipient_user_id": user_id,
        }
    ]
    return orjson.dumps(body)


def _inbox(tag: str, seq: int, who: int, at: datetime) -> bytes:
    return orjson.dumps(
        {
            "type": "tagged",
            "id": f"bench-{tag}-{seq}",
            "time": at.isoformat().replace("+00:00", "Z"),
            "phone_number_id": PHONE_NUMBER_ID,
            "contact": {"wa_id": _who(who)[0]},
            "tags": ["bench"],
        }
    )


def msg_id(tag: str, kind: str, seq: int) -> str:
    return f"wamid.CB{tag}{kind}{seq:07d}"


MSG_ID = re.compile(rb"wamid\.CB[0-9a-f]{6}[IO]\d{7}")


def plan_load(tag: str, rate: float, seconds: float, contacts: int, seed: int) -> list[Planned]:
    """``rate × seconds`` events in time order, re-timed to a fixed interval of 1/rate."""
    rng = random.Random(seed)
    want = round(rate * seconds)
    per_exchange = len(EXCHANGE) + 1 / INBOX_EVERY
    gap_s = per_exchange / rate
    t0 = int(time.time())
    events: list[tuple[float, int, str, bytes, str | None, str]] = []
    order: list[int] = []
    n = 0
    while len(events) < want + len(EXCHANGE) * 4:
        if not order:
            order = rng.sample(range(contacts), contacts)
        who, start = order.pop(), n * gap_s
        for kind, offset in EXCHANGE:
            at, ts = start + offset, t0 + int(start + offset)
            if kind == "in":
                body, trace = _inbound(tag, n, who, ts), msg_id(tag, "I", n)
            else:
                body, trace = _status(tag, n, who, kind, ts), msg_id(tag, "O", n)
            events.append((at, len(events), "webhook", body, trace, kind))
        if n % INBOX_EVERY == INBOX_EVERY - 1:
            at = start + 1.5
            when = datetime.now(UTC) + timedelta(seconds=at)
            events.append((at, len(events), "inbox", _inbox(tag, n, who, when), None, "inbox"))
        n += 1
    events.sort()
    return [
        Planned(i / rate, path, body, trace, kind)
        for i, (_, _, path, body, trace, kind) in enumerate(events[:want])
    ]


def plan_warmup(tag: str, contacts: int, rate: float = 100.0) -> list[Planned]:
    """One inbound message from every contact: the CRM and the book know them all after."""
    ts = int(time.time())
    return [
        Planned(i / rate, "webhook", _inbound(tag, i, i, ts), msg_id(tag, "I", i))
        for i in range(contacts)
    ]


@dataclass
class Sent:
    planned: Planned
    status: int = 0
    accepted_s: float = 0.0  # time.time() of the 2xx answer
    error: str = ""  # the HTTP client's error, when there was no answer
    sent_s: float = 0.0  # time.time() when the request went


async def send_load(
    client: httpx.AsyncClient, plan: list[Planned], secret: str, inbox_token: str
) -> list[Sent]:
    """Open loop: each request goes at its planned time, whatever the others are doing."""
    from wa_bridge.receiver import WEBHOOK_PATH, sign
    from wa_bridge.receiver.inbox import INBOX_PATH

    results = [Sent(p) for p in plan]

    async def one(item: Sent) -> None:
        p = item.planned
        if p.path == "webhook":
            headers = {"content-type": "application/json"}
            headers["x-hub-signature-256"] = sign(p.body, secret.encode())
            url = WEBHOOK_PATH
        else:
            headers = {
                "content-type": "application/json",
                "authorization": f"Bearer {inbox_token}",
            }
            url = INBOX_PATH
        item.sent_s = time.time()
        try:
            answer = await client.post(url, content=p.body, headers=headers)
            item.status = answer.status_code
        except httpx.HTTPError as exc:
            item.status, item.error = 0, type(exc).__name__
        item.accepted_s = time.time()

    start = time.monotonic() + 0.05
    async with asyncio.TaskGroup() as tg:
        for item in results:
            ahead = start + item.planned.at_s - time.monotonic()
            if ahead > 0:
                await asyncio.sleep(ahead)
            tg.create_task(one(item))
    return results


# --- the parts --------------------------------------------------------------------------


@dataclass(frozen=True)
class Vendor:
    name: str
    mapping: str

    def server(self) -> Any:
        sys.path.insert(0, str(ROOT / "tests"))
        from connectors.servers import HubSpotServer, RestCrmServer, SalesforceServer

        kinds = {"hubspot": HubSpotServer, "salesforce": SalesforceServer, "rest": RestCrmServer}
        return kinds[self.name]()


VENDORS = {
    "hubspot": Vendor("hubspot", "hubspot.yaml"),
    "salesforce": Vendor("salesforce", "salesforce.yaml"),
    "rest": Vendor("rest", "rest.yaml"),
}


@dataclass(frozen=True)
class Seen:
    """One request as the stand-in recorded it, without its body."""

    method: str
    endpoint: str
    arrived: float  # time.time() at the stand-in
    status: int
    auth_endpoint: bool
    violations: tuple[str, ...]
    message_ids: tuple[str, ...]  # message ids in the body of a write

    @property
    def is_write(self) -> bool:
        endpoint = self.endpoint.lower()
        return self.method in WRITE_METHODS and not any(w in endpoint for w in NOT_WRITES)


def _seen(request: Any) -> Seen:
    seen = Seen(
        request.method,
        request.endpoint,
        request.arrived,
        request.status,
        request.auth_endpoint,
        tuple(request.violations),
        (),
    )
    if request.body is None or not seen.is_write:
        return seen
    found = sorted({m.decode() for m in MSG_ID.findall(orjson.dumps(request.body))})
    return dataclasses.replace(seen, message_ids=tuple(found))


def serve_stand_in(vendor_name: str, conn: Connection) -> None:
    """The stand-in's own process: serves until told ``None``; answers an index with the
    requests recorded from it on (so its CPU never slows the load generator here)."""
    server = VENDORS[vendor_name].server()
    server.clock = time.time  # arrivals comparable with this machine's wall clock
    server.start(host=HOST)
    conn.send((server.url, server.token))
    while (start := conn.recv()) is not None:
        with server._lock:
            recorded = server.requests[start:]
        conn.send([_seen(r) for r in recorded])
    server.stop()


class StandIn:
    """The CRM stand-in in a process of its own, and the requests it saw."""

    def __init__(self, vendor: Vendor) -> None:
        ctx = mp.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=serve_stand_in, args=(vendor.name, child), daemon=True)
        self.seen: list[Seen] = []

    def start(self) -> None:
        self._proc.start()
        if not self._conn.poll(60):
            raise RuntimeError("the CRM stand-in did not start")
        self.url, self.token = self._conn.recv()

    def refresh(self) -> list[Seen]:
        self._conn.send(len(self.seen))
        self.seen.extend(self._conn.recv())
        return self.seen

    async def arefresh(self) -> list[Seen]:
        return await asyncio.to_thread(self.refresh)

    def stop(self) -> None:
        self._conn.send(None)
        self._proc.join(10)
        if self._proc.is_alive():
            self._proc.kill()


@contextmanager
def stand_in(vendor: Vendor) -> Iterator[StandIn]:
    server = StandIn(vendor)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def pipeline_env(
    vendor: Vendor, server: StandIn, bootstrap: str, db_url: str, secret: str, inbox: str
) -> dict[str, str]:
    tag = secrets.token_hex(4)
    return {
        "WA_BRIDGE_KAFKA_BOOTSTRAP": bootstrap,
        "WA_BRIDGE_KAFKA_TOPIC": f"bench.crm.{tag}",
        "WA_BRIDGE_KAFKA_PARTITIONS": "12",
        "WA_BRIDGE_KAFKA_ENABLE_IDEMPOTENCE": "false",
        "WA_BRIDGE_CONSUMER_GROUP": f"bench-{tag}",
        "WA_BRIDGE_DATABASE_URL": db_url,
        "WA_BRIDGE_APP_SECRETS": secret,
        "WA_BRIDGE_ADMIN_TOKENS": f"inbox:{inbox}",
        "WA_BRIDGE_CONNECTOR": vendor.name,
        "WA_BRIDGE_CRM_BASE_URL": server.url,
        "WA_BRIDGE_CRM_TOKEN": server.token,
        "WA_BRIDGE_MAPPINGS_PATH": str(ROOT / "mappings" / vendor.mapping),
        "WA_BRIDGE_LOG_LEVEL": "WARNING",
    }


@contextmanager
def processes(env: dict[str, str], workdir: Path) -> Iterator[str]:
    """``wa-bridge receiver`` and ``wa-bridge worker``; yields the receiver's base URL."""
    from wa_bridge.bus.embedded import free_port

    exe = str(Path(sys.executable).with_name("wa-bridge"))
    with ExitStack() as stack:
        rport, wport = free_port(HOST), free_port(HOST)
        receiver = stack.enter_context(
            run_server(
                [exe, "receiver", "--host", HOST, "--port", str(rport)],
                host=HOST,
                port=rport,
                env=env,
                cpus=None,
                log_path=workdir / "receiver.log",
                start_timeout_s=60,
            )
        )
        stack.enter_context(
            run_server(
                [exe, "worker", "--metrics-port", str(wport)],
                host=HOST,
                port=wport,
                env=env,
                cpus=None,
                log_path=workdir / "worker.log",
                start_timeout_s=60,
            )
        )
        yield receiver.base_url


# --- measuring ------------------------------------------------------------------------------


def write_times(requests: list[Seen]) -> dict[str, list[float]]:
    """Message id → the arrival times (ascending) of CRM writes carrying it."""
    seen: dict[str, list[float]] = {}
    for r in requests:
        for found in r.message_ids:
            seen.setdefault(found, []).append(r.arrived)
    for times in seen.values():
        times.sort()
    return seen


def first_after(times: list[float], t: float) -> float | None:
    i = bisect.bisect_left(times, t)
    return times[i] if i < len(times) else None


def percentile(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return float("nan")
    rank = max(1, -(-len(sorted_values) * p // 100))
    return sorted_values[int(rank) - 1]


@dataclass
class Row:
    connector: str
    rate: float
    events: int = 0
    accepted: int = 0
    requests: int = 0
    by_endpoint: Counter[str] = field(default_factory=Counter)
    achieved: float = 0.0
    p50_s: float = float("nan")
    p99_s: float = float("nan")
    traced: int = 0
    untraced: int = 0  # traceable events with no CRM write after their accept
    untraced_kinds: Counter[str] = field(default_factory=Counter)
    dead_letters: int = 0
    dead_letter_causes: list[tuple[str, int]] = field(default_factory=list)
    violations: int = 0
    rate_limited: int = 0

    @property
    def per_thousand(self) -> float:
        return 1000 * self.requests / self.accepted if self.accepted else float("nan")

    def verdict(self) -> str:
        target = TARGETS.get(self.connector, {}).get(self.rate)
        if target is None:
            return "(no target)"
        met = self.per_thousand <= target and self.p99_s < TARGET_P99_S
        problems = self.untraced or self.dead_letters or self.violations
        return ("met" if met and not problems else "NOT met") + f" (≤ {target:g}, p99 < 2 s)"


def traces(sent: list[Sent]) -> dict[str, float]:
    """Message id → its latest accept."""
    return {s.planned.trace: s.accepted_s for s in sent if s.planned.trace and s.status == 200}


async def wait_quiet(server: StandIn, traced: dict[str, float], timeout_s: float) -> None:
    """Until every traced event has a CRM write after its accept, or nothing new comes."""
    deadline = time.monotonic() + timeout_s
    last_n, last_change = -1, time.monotonic()
    while time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        requests = await server.arefresh()
        if len(requests) != last_n:
            last_n, last_change = len(requests), time.monotonic()
        seen = write_times(requests)
        pending = sum(1 for m, t in traced.items() if first_after(seen.get(m, []), t) is None)
        if pending == 0 and time.monotonic() - last_change > 2.0:
            return
        if time.monotonic() - last_change > 30.0:
            return


async def probe(client: httpx.AsyncClient, server: StandIn, secret: str, timeout_s: float) -> None:
    """A signed message answers 200 and reaches the stand-in (the worker is in its group)."""
    from wa_bridge.receiver import WEBHOOK_PATH, sign

    tag = "ffffff"
    body = _inbound(tag, 9_999_999, 999_999, int(time.time()))
    wanted = msg_id(tag, "I", 9_999_999)
    deadline = time.monotonic() + timeout_s
    status = 0
    while status != 200:
        try:
            answer = await client.post(
                WEBHOOK_PATH,
                content=body,
                headers={
                    "content-type": "application/json",
                    "x-hub-signature-256": sign(body, secret.encode()),
                },
            )
            status = answer.status_code
        except httpx.HTTPError:
            status = 0
        if time.monotonic() > deadline:
            raise RuntimeError(f"the probe never got 200 (last {status})")
        if status != 200:
            await asyncio.sleep(0.2)
    while wanted not in write_times(await server.arefresh()):
        if time.monotonic() > deadline:
            raise RuntimeError("the probe never reached the CRM stand-in: see worker.log")
        await asyncio.sleep(0.2)


async def dead_letter_count(url: str) -> tuple[int, list[tuple[str, int]]]:
    """How many dead letters the row left, and their most common causes."""
    from bench.e2e import NoteReader

    reader = NoteReader(url)
    try:
        count = await reader.dead_letters()
        return count, (await reader.dead_letter_causes() if count else [])
    finally:
        await reader.aclose()


async def run_row(args: argparse.Namespace, vendor: Vendor, rate: float, bootstrap: str) -> Row:
    from bench.worker import fresh_schema
    from wa_bridge.store import open_store

    row = Row(vendor.name, rate)
    workdir = RESULTS / f"connectors-{datetime.now():%Y%m%d-%H%M%S}-{vendor.name}-{rate:g}"
    workdir.mkdir(parents=True)
    secret, inbox_token = secrets.token_hex(16), secrets.token_hex(16)
    async with fresh_schema(args.pg_url) as db_url:
        store = await open_store(db_url, create=True)
        await store.aclose()
        with stand_in(vendor) as server:
            env = pipeline_env(vendor, server, bootstrap, db_url, secret, inbox_token)
            env.update(item.split("=", 1) for item in args.set)
            with processes(env, workdir) as base_url:
                limits = httpx.Limits(max_connections=1000, max_keepalive_connections=200)
                async with httpx.AsyncClient(
                    base_url=base_url, timeout=30.0, limits=limits
                ) as client:
                    await probe(client, server, secret, timeout_s=90)
                    if not args.cold:
                        warm = await send_load(
                            client, plan_warmup("eeeeee", args.contacts), secret, inbox_token
                        )
                        await wait_quiet(server, traces(warm), timeout_s=args.drain_timeout)
                    await asyncio.sleep(1.0)  # the last batch is done
                    before = len(await server.arefresh())
                    tag = secrets.token_hex(3)
                    plan = plan_load(tag, rate, args.seconds, args.contacts, seed=args.seed)
                    sent = await send_load(client, plan, secret, inbox_token)
                    await wait_quiet(server, traces(sent), timeout_s=args.drain_timeout)
                requests = (await server.arefresh())[before:]
            row.dead_letters, row.dead_letter_causes = await dead_letter_count(db_url)
    measure(row, sent, requests)
    with open(workdir / "sent.jsonl", "wb") as out:  # noqa: ASYNC230 - the load is over
        for item in sent:
            p = item.planned
            line = {"at": p.at_s, "kind": p.kind, "trace": p.trace, "status": item.status}
            line |= {"error": item.error, "sent": item.sent_s, "accepted": item.accepted_s}
            out.write(orjson.dumps(line) + b"\n")
    answers = Counter(s.error or s.status for s in sent)
    took = sorted(s.accepted_s - s.sent_s for s in sent)
    print(
        f"  answers: {dict(answers)}; answer time p50 {percentile(took, 50):.3f} "
        f"p99 {percentile(took, 99):.3f} max {took[-1]:.3f} s",
        file=sys.stderr,
    )
    print(f"  logs and figures of this row: {workdir}", file=sys.stderr)
    return row


def measure(row: Row, sent: list[Sent], requests: list[Seen]) -> None:
    api = [r for r in requests if not r.auth_endpoint]
    row.events = len(sent)
    row.accepted = sum(1 for s in sent if 200 <= s.status < 300)
    row.requests = len(api)
    row.by_endpoint = Counter(r.endpoint for r in api)
    row.violations = sum(1 for r in api if r.violations)
    row.rate_limited = sum(1 for r in api if r.status == 429)
    seen = write_times(api)
    latencies, last_write = [], 0.0
    for s in sent:
        trace = s.planned.trace
        if trace is None or s.status != 200:
            continue
        at = first_after(seen.get(trace, []), s.accepted_s)
        if at is None:
            row.untraced += 1
            row.untraced_kinds[s.planned.kind] += 1
            continue
        latencies.append(at - s.accepted_s)
        last_write = max(last_write, at)
    latencies.sort()
    row.traced = len(latencies)
    row.p50_s, row.p99_s = percentile(latencies, 50), percentile(latencies, 99)
    first = min((s.accepted_s for s in sent if s.status), default=0.0)
    if last_write > first:
        row.achieved = row.accepted / (last_write - first)


# --- report --------------------------------------------------------------------------------


def print_flags(r: Row) -> None:
    """What went wrong in a row, if anything: it is not a figure of the code then."""
    notes = []
    if r.accepted != r.events:
        notes.append(f"{r.events - r.accepted} not accepted")
    if r.untraced:
        kinds = ", ".join(f"{k} {n}" for k, n in r.untraced_kinds.most_common())
        notes.append(f"{r.untraced} events never reached the CRM ({kinds})")
    if r.dead_letters:
        notes.append(f"{r.dead_letters} dead letters")
    if r.violations:
        notes.append(f"{r.violations} requests broke the contract")
    if r.rate_limited:
        notes.append(f"{r.rate_limited} answered 429")
    if notes:
        print(f"  FLAGGED {r.connector} {r.rate:g}/s: " + ", ".join(notes))
    for cause, n in r.dead_letter_causes:
        print(f"    {n} dead-lettered with {cause}")


def print_table(rows: list[Row], *, by_endpoint: bool) -> None:
    head = (
        "| connector | rate (ev/s) | events | CRM requests | requests / 1,000 events "
        "| events/s achieved | p50 / p99 event → CRM (s) | target |"
    )
    print("\n" + head)
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for r in rows:
        print(
            f"| {r.connector} | {r.rate:g} | {r.accepted:,} | {r.requests:,} | "
            f"{r.per_thousand:,.1f} | {r.achieved:,.1f} | {r.p50_s:.2f} / {r.p99_s:.2f} | "
            f"{r.verdict()} |"
        )
    for r in rows:
        print_flags(r)
    if by_endpoint:
        for r in rows:
            print(f"\n{r.connector} at {r.rate:g}/s, requests by endpoint (per 1,000 events):")
            for endpoint, n in r.by_endpoint.most_common():
                print(f"  {n:6,}  {1000 * n / max(1, r.accepted):7.1f}  {endpoint}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.connectors", description=__doc__.split("\n")[0]
    )
    p.add_argument("--seconds", type=float, default=30.0, help="seconds of load per row")
    p.add_argument("--rates", default="100,5", help="events per second, comma-separated")
    p.add_argument("--connectors", default="hubspot,salesforce,rest")
    p.add_argument("--contacts", type=int, default=200)
    p.add_argument("--seed", type=int, default=10)
    p.add_argument("--drain-timeout", type=float, default=120.0)
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting for receiver and worker, e.g. WA_BRIDGE_WORKER_LINGER_MS=1000",
    )
    p.add_argument(
        "--cold",
        action="store_true",
        help="no warm-up: every contact is new to the CRM when the load starts",
    )
    p.add_argument("--by-endpoint", action="store_true", help="requests per endpoint per row")
    p.add_argument(
        "--pg-url", default=os.environ.get("WA_BRIDGE_TEST_DATABASE_URL", DEFAULT_PG_URL)
    )
    return p.parse_args(argv)


async def run(args: argparse.Namespace) -> int:
    from wa_bridge.bus.embedded import EmbeddedBroker

    for name in [k for k in os.environ if k.startswith("WA_BRIDGE_")]:
        os.environ.pop(name)  # the run decides the settings, not the caller's shell
    rates = [float(r) for r in args.rates.split(",")]
    vendors = [VENDORS[name.strip()] for name in args.connectors.split(",")]
    print(
        f"{args.seconds:g} s per row, {args.contacts} contacts "
        f"({'new to the CRM' if args.cold else 'known: one message each before the load'}), "
        "12 partitions; "
        f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    rows = []
    for vendor in vendors:
        for rate in rates:
            print(f"running {vendor.name} at {rate:g} events/s ...", flush=True)
            broker = EmbeddedBroker()  # a fresh broker per row: nothing left of the last
            await broker.astart()
            try:
                rows.append(await run_row(args, vendor, rate, broker.bootstrap))
            finally:
                await broker.astop()
    print_table(rows, by_endpoint=args.by_endpoint)
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    bad = any(r.untraced or r.violations or r.accepted != r.events for r in rows)
    return 1 if bad else 0


def main(argv: list[str] | None = None) -> int:
    logging.getLogger("httpx").setLevel(logging.WARNING)
    return asyncio.run(run(parse_args(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
