"""Metric VALUES after a known scenario, not just names: a worker on Tansu writing to the
REST CRM contract server, one scripted CRM rejection, one unreadable record, then one
monitor tick; and the webhook counts by Meta field through the real receiver."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import pytest
from sqlalchemy import select

from receiver._harness import running_receiver
from wa_bridge.metrics import sample_values
from wa_bridge.settings import Settings
from wa_bridge.store import create_engine
from wa_bridge.store.tables import event_traces, worker_heartbeats
from wa_bridge.worker.alerts import Alerter, Evaluator, load_rules
from wa_bridge.worker.loop import Worker
from wa_bridge.worker.monitor import Monitor
from worker.conftest import FlakyCrm, make_event, publish
from worker.sqlcrm import SAMPLES

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


def _value(name: str, **labels: str) -> float:
    return sum(
        value
        for found, value in sample_values([name])[name]
        if all(found.get(k) == v for k, v in labels.items())
    )


async def test_worker_scenario_metric_values(
    settings_factory: Callable[..., Settings],
    worker_factory: Callable[..., AbstractAsyncContextManager[Worker]],
    crm: FlakyCrm,
) -> None:
    settings = settings_factory()
    before: dict[str, float] = {
        "applied": _value(
            "wa_bridge_events_total", type="whatsapp.message.received", outcome="applied"
        ),
        "dead": _value("wa_bridge_events_total", type="unknown", outcome="dead_lettered"),
        "rejected": _value(
            "wa_bridge_crm_requests_total", connector="rest", endpoint="apply", status="400"
        ),
        "ok": _value(
            "wa_bridge_crm_requests_total", connector="rest", endpoint="apply", status="200"
        ),
        "seconds": _value(
            "wa_bridge_crm_request_seconds_count", connector="rest", endpoint="apply"
        ),
    }
    crm.script(status=400, body={"error": {"message": "scripted refusal"}})  # the first batch
    events = [make_event(n, "+5215550000001") for n in range(3)]
    await publish(settings, [*events, b"not an event"])
    async with worker_factory(settings) as worker:
        stats = await worker.run_until_idle()
        assert (stats.delivered, stats.dead_lettered) == (3, 1)
        monitor = Monitor(
            worker,
            worker.processor.pipeline.store.ops,
            evaluator=Evaluator(load_rules().rules),
            alerter=Alerter(worker.processor.pipeline.store.ops, None, owner="t", stale_after_s=60),
            interval_s=1.0,
            worker_id="test-worker",
        )
        await monitor.tick()
    assert (
        _value("wa_bridge_events_total", type="whatsapp.message.received", outcome="applied")
        - before["applied"]
        == 3
    )
    assert (
        _value("wa_bridge_events_total", type="unknown", outcome="dead_lettered") - before["dead"]
        == 1
    )
    # the batch was refused once (400), then halved: each half went through (the worker
    # never retries one event at a time; all three events are of one contact, so the
    # halves are [0] and [1, 2])
    assert (
        _value("wa_bridge_crm_requests_total", connector="rest", endpoint="apply", status="400")
        - before["rejected"]
        == 1
    )
    ok = _value("wa_bridge_crm_requests_total", connector="rest", endpoint="apply", status="200")
    assert ok - before["ok"] == 2
    seconds = _value("wa_bridge_crm_request_seconds_count", connector="rest", endpoint="apply")
    assert seconds - before["seconds"] == 3  # every answered request has a latency
    # the monitor's gauges: one open dead letter, nothing behind, ready
    assert _value("wa_bridge_dead_letters_open") == 1
    lags = sample_values(["wa_bridge_consumer_lag"])["wa_bridge_consumer_lag"]
    ours = [v for labels, v in lags if labels["topic"] == settings.kafka_topic]
    assert ours == [0.0] * settings.kafka_partitions
    assert _value("wa_bridge_worker_ready") == 1
    # traces: where each event was consumed, and the CRM's own ids
    engine = create_engine(settings.database_url or "")
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(select(event_traces))).all()
            beat = (await conn.execute(select(worker_heartbeats))).one()
    finally:
        await engine.dispose()
    assert sorted(r.event_id for r in rows) == sorted(e.id for e in events)
    for row in rows:
        assert row.topic == settings.kafka_topic and row.offset is not None
        assert row.outcome == "applied" and row.received_at is None  # make_event has none
        assert [kind for kind, _ in row.crm_ids] == ["upsert_contact", "add_note"]
        assert all(crm_id for _, crm_id in row.crm_ids)
        assert row.contact_hash.startswith("h:")
    assert beat.worker_id == "test-worker"
    assert beat.figures["dead_letters_open"] == 1
    assert beat.figures["crm"]["rest"]["requests"] >= 3  # the refused batch and its halves


async def test_webhook_changes_are_counted_by_meta_field(broker: Any, topic_factory: Any) -> None:
    def count(field: str) -> float:
        return _value("wa_bridge_webhook_changes_total", field=field, outcome="published")

    body = (SAMPLES / "account_batch.json").read_bytes()
    fields = (
        "message_template_status_update",
        "message_template_quality_update",
        "template_category_update",
        "phone_number_quality_update",
        "account_update",
    )
    before = {f: count(f) for f in fields}
    messages = count("messages")
    async with running_receiver(broker.bootstrap, topic_factory("wh")) as receiver:
        assert (await receiver.post(body)).status_code == 200
        text = (SAMPLES / "text_mx.json").read_bytes()
        assert (await receiver.post(text)).status_code == 200
        assert (await receiver.post(b"{}")).status_code == 400  # not a webhook
    assert {f: count(f) - before[f] for f in fields} == dict.fromkeys(fields, 1)
    assert count("messages") - messages == 1


def test_odd_webhook_shapes_are_counted_as_other_never_raise() -> None:
    from wa_bridge.metrics import count_webhook_changes

    def count(field: str) -> float:
        return _value("wa_bridge_webhook_changes_total", field=field, outcome="not_a_webhook")

    other, unknown = count("other"), count("unknown")
    for odd in ({"entry": [{"changes": [{"field": ["x"]}, {"field": {"a": 1}}, 5]}]}, [], None):
        count_webhook_changes(odd, "not_a_webhook")
    assert (count("other") - other, count("unknown") - unknown) == (3, 2)
