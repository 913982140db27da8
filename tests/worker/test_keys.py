"""A fault after a CRM call of the batch used the new keys: the retry writes the same keys.

Real normalized events through the worker with ``mappings/rest.yaml`` into the REST CRM
contract server. 40 new people make 120 operations: two ``POST /batch`` calls (100 per
call), the first one creating contacts and cases under keys minted in the batch's store
transaction. Before #10 the keys were random: the second call's failure rolled them
back and the retry wrote every person of the first call again under new keys.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import text

from wa_bridge.settings import Settings
from wa_bridge.store import create_engine
from wa_bridge.worker.runner import open_worker

from .conftest import FAST_GROUP, FlakyCrm
from .processes import wait_for
from .sqlcrm import ROOT, publish, text_events

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

PEOPLE = 40


async def _state_contacts(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(text("SELECT contact_id FROM contacts"))
            return {str(r) for r in rows.scalars()}
    finally:
        await engine.dispose()


@pytest.mark.parametrize("fault", ["second_call_503", "first_call_accepted_then_timeout"])
async def test_a_retried_batch_writes_the_keys_its_first_try_used(
    settings_factory: Callable[..., Settings], crm: FlakyCrm, fault: str
) -> None:
    settings = settings_factory(
        kafka_partitions=1, mappings_path=str(ROOT / "mappings" / "rest.yaml"), crm_timeout_s=0.3
    )
    events = text_events(PEOPLE, contacts=PEOPLE)
    if fault == "second_call_503":
        crm.flaky[str(events[-1].data["message_id"])] = 1  # its note is in the second call
    else:
        crm.script(delay_s=0.6)  # longer than crm_timeout_s: applied, the client gave up
    # all in the log before the worker joins: its first fetch takes every event (published
    # after the join, aiokafka's background fetch may hand over the first 30 people alone)
    await publish(settings, events)
    async with open_worker(settings, consumer_options=FAST_GROUP) as worker:
        stats = await worker.run_until_idle()

    async def landed() -> bool:  # the abandoned slow request lands before we look
        return crm.all_answered()

    await wait_for(landed, timeout_s=5)
    assert (stats.delivered, stats.retried, stats.dead_lettered) == (PEOPLE, 0, 0)
    first, _ = [r for r in crm.requests if r.path == "/batch"][:2]
    assert len(first.body["operations"]) == 100  # the batch took two calls
    contacts, cases = crm.collection("contacts"), crm.collection("cases")
    notes = crm.notes()
    assert (len(contacts), len(cases), len(notes)) == (PEOPLE, PEOPLE, PEOPLE)
    # no orphans: every note and case points at a record that exists, under our keys
    assert {n["contact_key"] for n in notes.values()} == set(contacts)
    assert {n["case_key"] for n in notes.values()} == set(cases)
    assert {c["contact_key"] for c in cases.values()} == set(contacts)
    assert set(contacts) == await _state_contacts(settings.database_url or "")
