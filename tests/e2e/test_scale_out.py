"""Scale-out proof: 2 receivers and 3 workers as separate processes on one broker and one
PostgreSQL; a 4th worker joins and another is SIGKILLed while signed webhooks stream in.

Every message must be in the SQL CRM exactly once (one committed write per note, one
ledger row per event) and each contact's notes written in the order they were sent.
The receivers answer Meta's 200 only after Kafka's acknowledgement, so a message the
sender saw acknowledged is one the workers must apply.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from faults.fleet import (
    Sender,
    new_app_secret,
    ready,
    receiver_process,
    tally,
    wait_applied,
    worker_proc,
)
from wa_bridge.bus.embedded import EmbeddedBroker
from wa_bridge.store import create_engine
from worker.sqlcrm import crm_state, note_order, order_breaks, sql_settings

pytestmark = [
    pytest.mark.kafka,
    pytest.mark.postgres,
    pytest.mark.slow,
    pytest.mark.serial,  # several processes and timings: alone, not beside xdist's other worker
    pytest.mark.timeout(300),  # several processes on a shared 2-core machine
]

MESSAGES = 1200
CONTACTS = 48
RATE = 60.0  # webhooks/s: a steady stream of ~20 s
PARTITIONS = 6  # room for 4 workers
JOIN_AT = 300  # a 4th worker joins once this many notes are in the CRM
KILL_AT = 700  # then one of the first three is SIGKILLed


async def message_outcomes(engine: AsyncEngine) -> dict[str, int]:
    """Ledger rows of the messages, by outcome (the conversation sweep's own checks,
    ``check:…``, are left out: the sample messages are older than the 24 h window)."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT outcome, count(*) FROM processed_events "
                "WHERE event_id LIKE 'wa:messages:%' GROUP BY outcome"
            )
        )
        return {str(outcome): int(count) for outcome, count in rows}


@pytest.fixture
async def crm_engine(sql_crm_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(sql_crm_url)
    yield engine
    await engine.dispose()


async def test_two_receivers_four_workers_one_killed_apply_each_event_once_in_order(
    broker: EmbeddedBroker, sql_crm_url: str, crm_engine: AsyncEngine, tmp_path: Path
) -> None:
    settings = sql_settings(
        broker.bootstrap,
        f"wa.scale.{uuid.uuid4().hex[:8]}",
        sql_crm_url,
        kafka_partitions=PARTITIONS,
        worker_batch_max=50,  # many small batches: the kill lands mid-stream
        consumer_session_timeout_ms=3000,  # a loaded machine misses 1 s heartbeats
    )
    secret = new_app_secret()
    log = tmp_path.joinpath
    with (
        receiver_process(settings, secret, log("r1.log")) as r1,
        receiver_process(settings, secret, log("r2.log")) as r2,
        worker_proc(settings, log("w1.log")) as w1,
        worker_proc(settings, log("w2.log")) as w2,
        worker_proc(settings, log("w3.log")) as w3,
    ):
        await ready([r1, r2])
        sender = Sender([r1, r2], secret, contacts=CONTACTS, rate=RATE)
        stream = asyncio.create_task(sender.send(range(MESSAGES)))
        try:
            await wait_applied(crm_engine, JOIN_AT, timeout_s=60, watch=[w1, w2, w3])
            with worker_proc(settings, log("w4.log")) as w4:
                await wait_applied(crm_engine, KILL_AT, timeout_s=60, watch=[w1, w2, w3, w4])
                w2.kill()
                before_end = not stream.done()
                await stream
                await wait_applied(crm_engine, MESSAGES, timeout_s=60, watch=[w1, w3, w4])
        finally:
            if not stream.done():
                stream.cancel()
    assert before_end, "the kill must land while the stream is still coming in"
    for worker_log in ("w1.log", "w2.log", "w3.log", "w4.log"):  # each had its share
        assert "batch_delivered" in log(worker_log).read_text(), worker_log
    assert sender.sent == MESSAGES
    assert set(sender.statuses) <= {200, 503, 0}, sender.statuses
    counted = await tally(sql_crm_url, range(MESSAGES), CONTACTS)
    assert (counted.applied, counted.duplicated, counted.lost) == (MESSAGES, 0, 0)
    assert counted.unexpected == 0 and counted.dead_letters == 0
    assert await message_outcomes(crm_engine) == {"applied": MESSAGES}  # one ledger row each
    state = await crm_state(sql_crm_url)
    assert state.contacts == CONTACTS
    assert order_breaks(await note_order(crm_engine)) == []
