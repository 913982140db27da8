"""The issue's "done when", as the README's walkthrough does it: the CRM rejects a mapping,
the dead letter and the alert arrive, the console says why, the mapping is fixed,
previewed and replayed, the CRM is right with no duplicate, and every message can be
traced end to end (wa-bridge trace) and found by wa-bridge gaps while it was missing.

Real parts: the receiver app on Tansu, ``run_worker`` (consumer loop, retention and the
monitor with its alerts) on PostgreSQL with the built-in SQL CRM, a local HTTP receiver
for the alert webhook, the console through the admin app, the CLI.
"""

from __future__ import annotations

import asyncio
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI
from typer.testing import CliRunner

from ops.test_alerts import Receiver
from receiver._harness import running_receiver
from wa_bridge.bus.embedded import EmbeddedBroker
from wa_bridge.cli.main import app as cli_app
from wa_bridge.ops.backend import admin_api
from wa_bridge.worker.runner import run_worker
from worker.sqlcrm import SAMPLES, SQL_MAPPING, crm_state, note_writes, sample_events, sql_settings

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]

OPERATOR = "operator-token-for-the-walkthrough"
RULES = """\
rules:
  - name: DeadLettersOpen
    summary: "{value:.0f} dead letter(s) open"
    severity: warning
    kind: value
    metric: wa_bridge_dead_letters_open
    aggregate: max
    op: ">"
    threshold: 0
"""


async def _until(check: Callable[[], Any], what: str, timeout_s: float = 30.0) -> None:
    async with asyncio.timeout(timeout_s):
        while True:  # polled: the worker and the monitor run on their own
            if await check():
                return
            await asyncio.sleep(0.1)


def _cli(env: dict[str, str], *args: str) -> Any:
    return asyncio.to_thread(CliRunner().invoke, cli_app, list(args), env=env)


async def test_break_watch_fix_replay_and_trace(
    broker: EmbeddedBroker, topic_factory: Callable[[str], str], sql_crm_url: str, tmp_path: Path
) -> None:
    # --- a mapping the CRM cannot take (note bodies capped at 5 characters)
    mappings = tmp_path / "mappings"
    shutil.copytree(SQL_MAPPING.parent, mappings)
    base = mappings / "base.yaml"
    fixed_text = base.read_text()
    base.write_text(fixed_text.replace("max_length: 4096", "max_length: 5", 1))
    rules = tmp_path / "alerts.yaml"
    rules.write_text(RULES)
    alerts = Receiver()
    topic = topic_factory("walk")
    settings = sql_settings(
        broker.bootstrap,
        topic,
        sql_crm_url,
        kafka_partitions=3,
        mappings_path=str(mappings / "sql.yaml"),
        admin_tokens=[f"operator:{OPERATOR}"],
        monitor_interval_s=0.2,
        alert_rules_path=str(rules),
        alert_webhook_url=alerts.url,
    )
    env = {
        "WA_BRIDGE_DATABASE_URL": sql_crm_url,
        "WA_BRIDGE_KAFKA_BOOTSTRAP": broker.bootstrap,
        "WA_BRIDGE_KAFKA_TOPIC": topic,
        "WA_BRIDGE_CONSUMER_GROUP": settings.consumer_group,
        "WA_BRIDGE_RETRY_DELAYS_S": "0.2,0.5",
        "WA_BRIDGE_KAFKA_ENABLE_IDEMPOTENCE": "false",
    }
    (text_event,) = sample_events("text_mx.json")
    wamid = str(text_event.data["message_id"])
    stop = asyncio.Event()
    worker = asyncio.create_task(run_worker(settings, stop=stop))
    try:
        async with running_receiver(broker.bootstrap, topic) as receiver:
            for name in ("text_mx.json", "statuses_br.json"):
                answer = await receiver.post((SAMPLES / name).read_bytes())
                assert answer.status_code == 200, answer.text

        # --- the dead letter and the alert arrive
        await _until(lambda: _has(alerts, "[FIRING]"), "the alert")
        assert len([b for b in alerts.bodies if "[FIRING]" in b["text"]]) == 1
        assert "DeadLettersOpen" in alerts.bodies[0]["text"]
        assert "5550001234" not in str(alerts.bodies)  # no personal data in alerts

        # --- wa-bridge gaps finds it, with why
        gaps = await _cli(env, "gaps", "--since", "1h", "--json")
        assert gaps.exit_code == 1, gaps.output
        (gap,) = [orjson.loads(line) for line in gaps.stdout.splitlines()]
        assert gap["event_id"] == text_event.id and gap["reason"] == "dead-lettered"
        assert "max_length 5" in gap["detail"]

        # --- the console says why; the mapping is fixed, previewed and replayed
        routers, closers = admin_api(settings)
        console = FastAPI()
        for router in routers:
            console.include_router(router)
        transport = httpx.ASGITransport(app=console)
        async with httpx.AsyncClient(transport=transport, base_url="http://c") as client:
            await client.post("/admin/sign-in", data={"token": OPERATOR})
            listing = await client.get(
                "/admin/letters", params={"error_class": "MappingOutputInvalid"}
            )
            (letter_id,) = re.findall(r'href="/admin/letters/(\d+)"', listing.text)
            page = await client.get(f"/admin/letters/{letter_id}")
            assert "longer than max_length 5" in page.text
            assert 'id="preview-error"' in page.text  # a replay now would fail the same way
            base.write_text(fixed_text)  # the fix
            page = await client.get(f"/admin/letters/{letter_id}")
            assert 'id="preview-ok"' in page.text
            csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
            assert csrf is not None
            done = await client.post(
                f"/admin/letters/{letter_id}/replay", data={"csrf": csrf.group(1)}
            )
            assert "replayed" in done.headers["location"]
        for close in closers:
            await close()

        # --- the CRM is right, written once; the alert resolves
        state = await crm_state(sql_crm_url)
        assert state.notes[wamid]["body"] == text_event.data["text"]["body"]
        assert (await note_writes(sql_crm_url))[wamid] == 1
        await _until(lambda: _has(alerts, "[RESOLVED]"), "the resolve message")
        assert len(alerts.bodies) == 2
        gaps = await _cli(env, "gaps", "--since", "1h", "--json")
        assert gaps.exit_code == 0 and gaps.stdout.strip() == "", gaps.output

        # --- trace: the replayed message, and a status applied on the first try
        traced = await _cli(env, "trace", wamid, "--json")
        assert traced.exit_code == 0, traced.output
        report = orjson.loads(traced.stdout)
        (line,) = [e for e in report["events"] if e["event_id"] == text_event.id]
        steps = [s["what"] for s in line["steps"]]
        for wanted in ("received", "published", "claimed", "dead_lettered", "replay", "replayed"):
            assert wanted in steps, (wanted, steps)
        published = next(s for s in line["steps"] if s["what"] == "published")
        assert re.fullmatch(rf"{re.escape(topic)} partition \d offset \d+", published["detail"])
        assert {kind for kind, _ in line["crm_ids"]} >= {"upsert_contact", "add_note"}
        assert line["status"] == "replayed"
        (status_event, *_) = sample_events("statuses_br.json")
        traced = await _cli(env, "trace", str(status_event.data["message_id"]), "--json")
        report = orjson.loads(traced.stdout)
        applied = [e for e in report["events"] if e["status"] == "applied"]
        assert applied and all(e["crm_ids"] for e in applied)
        audit = await _cli(env, "audit", "list", "--action", "dlq.replay", "--json")
        assert any(
            orjson.loads(r)["target"] == f"dead_letter:{letter_id}"
            for r in audit.stdout.splitlines()
        )
    finally:
        stop.set()
        await asyncio.wait_for(worker, timeout=30)
        alerts.close()


async def _has(alerts: Receiver, word: str) -> bool:
    return any(word in body["text"] for body in alerts.bodies)
