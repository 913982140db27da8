"""Delayed retry topics, park-behind ordering, the DLQ guard, and replay (+ dlq CLI)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from wa_bridge.cli.main import app
from wa_bridge.errors import DlqLimitExceeded
from wa_bridge.store import open_store
from wa_bridge.store.api import DeadLetterFilter
from wa_bridge.worker.assembly import DeadLetterReplayer
from wa_bridge.worker.dlq import DlqGuard

from .conftest import FlakyCrm, make_event, publish
from .mapper import NoteMapper

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

K = "+5215599990000"


async def test_contact_events_stay_ordered_while_one_is_in_retry(
    settings_factory: Callable[..., Any], worker_factory: Callable[..., Any], crm: FlakyCrm
) -> None:
    settings = settings_factory(kafka_partitions=1)
    # ev-0 of K fails past the in-place budget (batch 1 + alone 1 = 2 tries) → retry.1,
    # fails there twice more (2 in place) → retry.2, then succeeds.
    crm.flaky["wamid.0"] = 5
    events = [make_event(i, K if i % 2 == 0 else f"+5215588880{i:03d}") for i in range(6)]
    async with worker_factory(settings) as worker:
        await publish(settings, events)
        stats = await worker.run_until_idle()
    assert stats.dead_lettered == 0
    assert sorted(crm.notes()) == [f"wamid.{i}" for i in range(6)]
    writes = crm.note_writes()
    k_order = [w for w in writes if w in ("wamid.0", "wamid.2", "wamid.4")]
    assert k_order == ["wamid.0", "wamid.2", "wamid.4"]  # K's later events did not overtake
    # the other contact was not held up behind K
    assert writes.index("wamid.1") < writes.index("wamid.0")
    assert stats.retried >= 3


async def test_retries_exhausted_go_to_the_dlq(
    settings_factory: Callable[..., Any], worker_factory: Callable[..., Any], crm: FlakyCrm
) -> None:
    settings = settings_factory(kafka_partitions=1)
    crm.flaky["wamid.0"] = 100
    async with worker_factory(settings) as worker:
        await publish(settings, [make_event(0, K), make_event(1, K)])
        stats = await worker.run_until_idle()
    assert stats.dead_lettered == 1
    assert sorted(crm.notes()) == ["wamid.1"]  # released once its head was dead-lettered
    store = await open_store(settings.database_url)
    try:
        (letter,) = await store.list_dead_letters(DeadLetterFilter())
    finally:
        await store.aclose()
    assert letter.error_class == "CrmUnavailable"
    assert letter.attempts == 3


async def test_dlq_guard_stops_consuming(
    settings_factory: Callable[..., Any], worker_factory: Callable[..., Any], crm: FlakyCrm
) -> None:
    settings = settings_factory(kafka_partitions=1)
    events = [make_event(i, f"+5215577770{i:03d}", poison="permanent") for i in range(10)]
    async with worker_factory(settings, guard=DlqGuard(window=8, max_ratio=0.5)) as worker:
        await publish(settings, events)
        with pytest.raises(DlqLimitExceeded):
            await worker.run_until_idle()


async def test_replay_after_the_crm_accepts_applies_once(
    settings_factory: Callable[..., Any], worker_factory: Callable[..., Any], crm: FlakyCrm
) -> None:
    settings = settings_factory(kafka_partitions=1)
    crm.script(status=400)  # a batch of one event is not tried again for a permanent error
    async with worker_factory(settings) as worker:
        await publish(settings, [make_event(0, K)])
        await worker.run_until_idle()
    assert crm.notes() == {}
    store = await open_store(settings.database_url)
    try:
        (letter,) = await store.list_dead_letters(DeadLetterFilter())
        async with DeadLetterReplayer(settings, store, mapper=NoteMapper()) as replayer:
            first = await replayer.replay([letter.id], actor="ops")
            second = await replayer.replay([letter.id], actor="ops")
    finally:
        await store.aclose()
    assert [r.status for r in first] == ["replayed"]
    assert [r.status for r in second] == ["skipped"]
    assert list(crm.notes()) == ["wamid.0"]
    assert crm.note_writes() == ["wamid.0"]


async def test_dlq_list_and_show_cli(
    settings_factory: Callable[..., Any],
    worker_factory: Callable[..., Any],
    crm: FlakyCrm,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = settings_factory(kafka_partitions=1)
    async with worker_factory(settings) as worker:
        await publish(settings, [make_event(0, K, poison="permanent"), make_event(1, K)])
        await worker.run_until_idle()
    monkeypatch.setenv("WA_BRIDGE_DATABASE_URL", settings.database_url or "")
    runner = CliRunner()

    def cli(*args: str) -> Any:  # the CLI runs its own event loop: give it a thread
        return asyncio.to_thread(runner.invoke, app, list(args))

    listed = await cli("dlq", "list", "--json", "--error-class", "MappingOutputInvalid")
    assert listed.exit_code == 0, listed.output
    (row,) = [orjson.loads(line) for line in listed.stdout.splitlines()]
    assert row["event_id"] == "ev-0"
    shown = await cli("dlq", "show", str(row["id"]))
    assert shown.exit_code == 0, shown.output
    detail = orjson.loads(shown.stdout)
    assert detail["event"]["id"] == "ev-0"
    assert detail["history"]
    dry = await cli("dlq", "replay", str(row["id"]), "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "would_replay" in dry.stdout
