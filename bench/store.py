"""Store + SQL CRM throughput: 100,000 synthetic events over 5,000 contacts, 2,000 per batch.

Per batch, in ONE transaction (as the worker does): claim_events, resolve_contacts,
open_cases, SqlCrmConnector.apply_in (upsert_contact + add_note per event), set_outcomes.
Runs on a throwaway PostgreSQL schema (dropped afterwards) and prints events/s.

    .venv/bin/python bench/store.py [--events N] [--contacts N] [--batch N] [--url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from wa_bridge.connectors.sql import SqlCrmConnector
from wa_bridge.events import Contact
from wa_bridge.operations import CrmOperation
from wa_bridge.store import create_engine, open_store

DEFAULT_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


def _contact(i: int) -> Contact:
    phone = f"+1555{i:07d}"
    return Contact(key=phone, phone_e164=phone, wa_id=phone[1:], user_id=f"US.{i}")


async def run(url: str, events: int, contacts: int, batch: int) -> None:
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(url)
    async with admin.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    store = await open_store(f"{url}{'&' if '?' in url else '?'}search_path={schema}", create=True)
    connector = SqlCrmConnector(store)
    t0 = datetime(2026, 6, 10, tzinfo=UTC)
    try:
        started = time.perf_counter()
        for start in range(0, events, batch):
            ids = [f"ev{n}" for n in range(start, min(start + batch, events))]
            who = [_contact(n % contacts) for n in range(start, start + len(ids))]
            at = [t0 + timedelta(seconds=n) for n in range(start, start + len(ids))]
            async with store.transaction() as tx:
                claimed = await tx.claim_events(ids)
                keys = await tx.resolve_contacts([("waba-1", c) for c in who])
                case_keys = await tx.open_cases(
                    [(k or "", "+15550000000", a) for k, a in zip(keys, at, strict=True)]
                )
                ops: list[CrmOperation] = []
                for n, (eid, c, k, ck, a) in enumerate(
                    zip(ids, who, keys, case_keys, at, strict=True)
                ):
                    if eid not in claimed:
                        continue
                    ops.append(
                        CrmOperation(
                            kind="upsert_contact",
                            fields={
                                "phone_e164": c.phone_e164,
                                "wa_id": c.wa_id,
                                "bsuid": c.user_id,
                            },
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
                await connector.apply_in(tx, ops)
                await tx.set_outcomes([(eid, "applied") for eid in claimed])
        elapsed = time.perf_counter() - started
        print(
            f"store bench: {events} events over {contacts} contacts, batches of {batch}: "
            f"{elapsed:.2f} s, {events / elapsed:,.0f} events/s"
        )
    finally:
        await store.aclose()
        async with admin.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--contacts", type=int, default=5_000)
    parser.add_argument("--batch", type=int, default=2_000)
    parser.add_argument("--url", default=os.environ.get("WA_BRIDGE_TEST_DATABASE_URL", DEFAULT_URL))
    args = parser.parse_args()
    asyncio.run(run(args.url, args.events, args.contacts, args.batch))


if __name__ == "__main__":
    main()
