"""Store + SQL CRM throughput: 100,000 synthetic events over 5,000 contacts, 2,000 per batch.

Per batch, in ONE transaction (as the worker does): claim_events, resolve_contacts,
open_cases, SqlCrmConnector.apply_in (upsert_contact + add_note per event), set_outcomes.
Runs on a throwaway PostgreSQL schema (dropped afterwards) and prints events/s, the time
spent in each step (summed over batches; "commit" is the transaction's exit) and the load
average. ``--rounds N`` repeats the run on fresh schemas and prints the median.

    .venv/bin/python bench/store.py [--events N] [--contacts N] [--batch N] [--rounds N]
                                    [--url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from wa_bridge.connectors.sql import SqlCrmConnector
from wa_bridge.errors import CrmUnavailable, StoreUnavailable
from wa_bridge.events import Contact
from wa_bridge.operations import CrmOperation
from wa_bridge.store import SqlStore, create_engine, open_store

DEFAULT_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
STEPS = ("claim", "resolve", "cases", "crm", "outcomes", "commit")


class Steps:
    """Wall time per named step, summed over a run."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.retries = 0
        self.cpu_s = 0.0  # this process's CPU time (user + system) for the whole run

    @contextmanager
    def timed(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - started


def _contact(i: int) -> Contact:
    phone = f"+1555{i:07d}"
    return Contact(key=phone, phone_e164=phone, wa_id=phone[1:], user_id=f"US.{i}")


def _ops(
    ids: list[str],
    who: list[Contact],
    keys: list[str | None],
    case_keys: list[str],
    at: list[datetime],
    claimed: set[str],
) -> list[CrmOperation]:
    ops: list[CrmOperation] = []
    for n, (eid, c, k, ck, a) in enumerate(zip(ids, who, keys, case_keys, at, strict=True)):
        if eid not in claimed:
            continue
        ops.append(
            CrmOperation(
                kind="upsert_contact",
                fields={"phone_e164": c.phone_e164, "wa_id": c.wa_id, "bsuid": c.user_id},
                event_id=eid,
                contact_key=k,
            )
        )
        ops.append(
            CrmOperation(
                kind="add_note",
                fields={
                    "message_id": f"wamid.{eid}",
                    "direction": "inbound",
                    "message_type": "text",
                    "body": f"message {n}",
                    "occurred_at": a,
                },
                event_id=eid,
                index=1,
                contact_key=k,
                case_key=ck,
            )
        )
    return ops


async def _apply_batch(
    store: SqlStore,
    connector: SqlCrmConnector,
    steps: Steps,
    ids: list[str],
    who: list[Contact],
    at: list[datetime],
) -> None:
    tx_cm = store.transaction()
    tx = await tx_cm.__aenter__()
    try:
        with steps.timed("claim"):
            claimed = await tx.claim_events(ids)
        with steps.timed("resolve"):
            keys = await tx.resolve_contacts([("waba-1", c) for c in who])
        with steps.timed("cases"):
            case_keys = await tx.open_cases(
                [(k or "", "+15550000000", a) for k, a in zip(keys, at, strict=True)]
            )
        with steps.timed("crm"):
            ops = _ops(ids, who, keys, case_keys, at, claimed)
            await connector.apply_in(tx, ops)
        with steps.timed("outcomes"):
            await tx.set_outcomes([(eid, "applied") for eid in ids if eid in claimed])
    except BaseException as err:
        await tx_cm.__aexit__(type(err), err, err.__traceback__)
        raise
    with steps.timed("commit"):
        await tx_cm.__aexit__(None, None, None)


async def run(url: str, events: int, contacts: int, batch: int) -> tuple[float, Steps]:
    """One run on a fresh schema; return (events/s, step times)."""
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(url)
    async with admin.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    store = await open_store(f"{url}{'&' if '?' in url else '?'}search_path={schema}", create=True)
    connector = SqlCrmConnector(store)
    steps = Steps()
    t0 = datetime(2026, 6, 10, tzinfo=UTC)
    try:
        started, cpu_started = time.perf_counter(), time.process_time()
        for start in range(0, events, batch):
            ids = [f"ev{n}" for n in range(start, min(start + batch, events))]
            who = [_contact(n % contacts) for n in range(start, start + len(ids))]
            at = [t0 + timedelta(seconds=n) for n in range(start, start + len(ids))]
            for attempt in range(1, 4):
                try:
                    await _apply_batch(store, connector, steps, ids, who, at)
                    break
                except (StoreUnavailable, CrmUnavailable):
                    # other test runs on this machine may kill every backend
                    # (tests/worker/test_faults.py): retry, as the worker would
                    if attempt == 3:
                        raise
                    steps.retries += 1
        elapsed = time.perf_counter() - started
        steps.cpu_s = time.process_time() - cpu_started
        return events / elapsed, steps
    finally:
        await store.aclose()
        async with admin.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await admin.dispose()


def _report(rate: float, steps: Steps, events: int) -> str:
    per_10k = ", ".join(
        f"{name} {steps.seconds[name] * 10_000 / events * 1000:.0f}" for name in STEPS
    )
    retried = f", {steps.retries} batch(es) retried" if steps.retries else ""
    return (
        f"{rate:,.0f} events/s, client CPU {steps.cpu_s:.1f} s  "
        f"(ms per 10k events: {per_10k}{retried})"
    )


async def main_async(args: argparse.Namespace) -> None:
    rates = []
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for n in range(args.rounds):
        rate, steps = await run(args.url, args.events, args.contacts, args.batch)
        rates.append(rate)
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
        print(f"round {n + 1}: {_report(rate, steps, args.events)}  load {load}")
    print(
        f"store bench: {args.events} events over {args.contacts} contacts, batches of "
        f"{args.batch}: median of {len(rates)}: {statistics.median(rates):,.0f} events/s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--contacts", type=int, default=5_000)
    parser.add_argument("--batch", type=int, default=2_000)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--url", default=os.environ.get("WA_BRIDGE_TEST_DATABASE_URL", DEFAULT_URL))
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
