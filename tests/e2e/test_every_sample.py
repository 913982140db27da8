"""Every sample webhook, through the real receiver, Kafka and the worker into the SQL CRM.

The project's own samples always run; Meta's documented shapes and pywa's test data under
``../shared/fixtures/meta`` run when that folder is there. Each body must be answered 200
with all its events on the topic, and the worker must take every event (applied, noop or
stale); only events naming no contact are dead-lettered, with that reason. Nothing is lost.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from sqlalchemy import text

from receiver._harness import read_records, running_receiver
from wa_bridge.bus.embedded import EmbeddedBroker
from wa_bridge.normalize import normalize_webhook
from wa_bridge.store import create_engine
from wa_bridge.worker.runner import open_worker
from worker.sqlcrm import SAMPLES, sql_settings

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]


def _pywa_payloads(folder: Path) -> list[bytes]:
    out = []
    for path in sorted(folder.glob("*.json")):
        named = orjson.loads(path.read_bytes())
        for payload in named.values():
            if isinstance(payload, dict) and payload.get("object") == "whatsapp_business_account":
                out.append(orjson.dumps(payload))
    return out


async def _through_everything(
    bodies: list[bytes], broker: EmbeddedBroker, topic: str, database_url: str
) -> list[tuple[str, str, str]]:
    """Post, consume, apply; return the dead letters as (event id, error class, message)."""
    expected = sum(
        len(normalize_webhook(orjson.loads(b), received_at=datetime.now(UTC))) for b in bodies
    )
    async with running_receiver(broker.bootstrap, topic) as receiver:
        for body in bodies:
            response = await receiver.post(body)
            assert response.status_code == 200, response.text
    records = await read_records(broker.bootstrap, topic, at_least=expected)
    assert len(records) == expected

    settings = sql_settings(broker.bootstrap, topic, database_url, kafka_partitions=3)
    async with open_worker(settings) as worker:
        stats = await worker.run_until_idle()
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            dead = [
                (str(row[0]), str(row[1]), str(row[2]))
                for row in await conn.execute(
                    text("SELECT event_id, error_class, error_message FROM dead_letters")
                )
            ]
            ledger = (await conn.execute(text("SELECT count(*) FROM processed_events"))).scalar()
    finally:
        await engine.dispose()
    assert stats.dead_lettered == len(dead)
    unique_ids = {dict(r.headers).get("ce_id") for r in records}
    assert ledger == len(unique_ids)  # every event taken: applied, noop, stale or dead-lettered
    assert stats.delivered + stats.stale + stats.duplicates + stats.dead_lettered == expected
    return dead


async def test_own_samples_flow_end_to_end(
    broker: EmbeddedBroker, topic_factory: Callable[[str], str], sql_crm_url: str
) -> None:
    bodies = [p.read_bytes() for p in sorted(SAMPLES.glob("*.json"))]
    assert len(bodies) >= 15
    dead = await _through_everything(bodies, broker, topic_factory("own"), sql_crm_url)
    assert dead == []


async def test_shared_meta_samples_flow_end_to_end(
    broker: EmbeddedBroker,
    topic_factory: Callable[[str], str],
    sql_crm_url: str,
    shared_fixtures: Path,
) -> None:
    meta = shared_fixtures / "meta"
    bodies = [p.read_bytes() for p in sorted((meta / "docs").glob("*.json"))]
    bodies += _pywa_payloads(meta / "pywa" / "tests" / "data" / "updates")
    assert len(bodies) > 100
    dead = await _through_everything(bodies, broker, topic_factory("shared"), sql_crm_url)
    # pywa's samples carry literal placeholders ("<WHATSAPP_USER_PHONE_NUMBER>"): a message
    # from no one the CRM can key on is dead-lettered with that reason, never dropped.
    for event_id, error_class, message in dead:
        assert "<" in event_id, (event_id, error_class, message)
        assert error_class == "UnkeyedOperation"  # an InvalidEvent
        assert "names no contact" in message
