"""Signed Meta webhook → receiver (real ASGI app + KafkaPublisher) → Tansu → worker → SQL CRM.

Also: an event the mapping rejects is dead-lettered, listed by ``wa-bridge dlq``, and
replayed once fixed, with no duplicate.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from receiver._harness import running_receiver
from wa_bridge.bus.embedded import EmbeddedBroker
from wa_bridge.cli.main import app
from wa_bridge.worker.runner import open_worker
from worker.sqlcrm import SAMPLES, SQL_MAPPING, crm_state, note_writes, sample_events, sql_settings

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

PARTITIONS = 3  # what the receiver harness creates the topic with


def _cli(env: dict[str, str], *args: str) -> Any:
    """Run the CLI in a thread (it runs its own event loop)."""
    return asyncio.to_thread(CliRunner().invoke, app, list(args), env=env)


def _strict_mapping(tmp_path: Path) -> Path:
    """mappings/ copied with inbound note bodies capped at 5 characters (a bad deploy)."""
    target = tmp_path / "mappings"
    shutil.copytree(SQL_MAPPING.parent, target)
    path, base = target / "sql.yaml", target / "base.yaml"  # sql.yaml extends base.yaml
    text = base.read_text()
    assert text.count("max_length: 4096") >= 1
    base.write_text(text.replace("max_length: 4096", "max_length: 5", 1))
    return path


async def test_signed_webhook_becomes_contact_case_and_note(
    broker: EmbeddedBroker, topic_factory: Callable[[str], str], sql_crm_url: str
) -> None:
    topic = topic_factory("e2e")
    settings = sql_settings(broker.bootstrap, topic, sql_crm_url, kafka_partitions=PARTITIONS)
    body = (SAMPLES / "text_mx.json").read_bytes()
    (event,) = sample_events("text_mx.json")
    async with running_receiver(broker.bootstrap, topic) as receiver:
        for _ in range(3):  # Meta delivers the same webhook three times
            response = await receiver.post(body)
            assert response.status_code == 200, response.text
    async with open_worker(settings) as worker:
        stats = await worker.run_until_idle()
    assert (stats.delivered, stats.duplicates, stats.dead_lettered) == (1, 2, 0)
    state = await crm_state(sql_crm_url)
    assert (state.contacts, state.cases) == (1, 1)
    note = state.notes[str(event.data["message_id"])]
    assert note["body"] == event.data["text"]["body"]
    assert note["direction"] == "inbound"
    assert note["case_key"] and note["contact_key"]
    assert await note_writes(sql_crm_url) == {str(event.data["message_id"]): 1}


async def test_rejected_event_is_listed_then_replayed_once(
    broker: EmbeddedBroker,
    topic_factory: Callable[[str], str],
    sql_crm_url: str,
    tmp_path: Path,
) -> None:
    topic = topic_factory("e2e")
    strict = _strict_mapping(tmp_path)
    settings = sql_settings(
        broker.bootstrap, topic, sql_crm_url, kafka_partitions=PARTITIONS, mappings_path=str(strict)
    )
    bodies = [(SAMPLES / name).read_bytes() for name in ("text_mx.json", "statuses_br.json")]
    (rejected,) = sample_events("text_mx.json")
    async with running_receiver(broker.bootstrap, topic) as receiver:
        for body in bodies:
            assert (await receiver.post(body)).status_code == 200
    async with open_worker(settings) as worker:
        stats = await worker.run_until_idle()
    assert stats.dead_lettered == 1
    assert str(rejected.data["message_id"]) not in (await crm_state(sql_crm_url)).notes

    env = {"WA_BRIDGE_DATABASE_URL": sql_crm_url, "WA_BRIDGE_CONNECTOR": "sql"}
    listed = await _cli(env, "dlq", "list", "--json", "--error-class", "MappingOutputInvalid")
    assert listed.exit_code == 0, listed.output
    (row,) = [orjson.loads(line) for line in listed.stdout.splitlines()]
    assert row["event_id"] == rejected.id
    assert "add_note.body: longer than max_length 5" in row["error_message"]

    # The mapping is fixed (the shipped one): replay, then replay again.
    env["WA_BRIDGE_MAPPINGS_PATH"] = str(SQL_MAPPING)
    first = await _cli(env, "dlq", "replay", str(row["id"]), "--actor", "ops")
    assert first.exit_code == 0, first.output
    assert "replayed" in first.stdout
    again = await _cli(env, "dlq", "replay", str(row["id"]), "--actor", "ops")
    assert again.exit_code == 0, again.output
    assert "skipped" in again.stdout

    state = await crm_state(sql_crm_url)
    note = state.notes[str(rejected.data["message_id"])]
    assert note["body"] == rejected.data["text"]["body"]
    assert note["case_key"] and note["contact_key"]
    writes = await note_writes(sql_crm_url)
    assert writes[str(rejected.data["message_id"])] == 1
    listed = await _cli(env, "dlq", "list", "--json")
    assert listed.stdout.strip() == ""  # nothing open any more
