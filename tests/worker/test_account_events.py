"""Account notices through the pipeline into ``account_events``, and ``wa-bridge account
events`` reading them back; none reaches the CRM (the shipped mappings say ``none``)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from wa_bridge.cli.main import app
from wa_bridge.connectors.sql import SqlCrmConnector
from wa_bridge.mapping import load_mapping
from wa_bridge.store import open_store
from wa_bridge.worker.pipeline import Pipeline

from .conversation_events import webhook_events
from .sqlcrm import SAMPLES, SQL_MAPPING, crm_state


async def _apply(url: str) -> None:
    store = await open_store(url, create=True)
    try:
        pipeline = Pipeline(store, load_mapping(SQL_MAPPING), SqlCrmConnector(store))
        events = webhook_events(orjson.loads((SAMPLES / "account_batch.json").read_bytes()))
        await pipeline.apply(events)
        await pipeline.apply(events, use_ledger=False)  # a replay: nothing twice
    finally:
        await store.aclose()


def test_every_notice_is_kept_and_listed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'state.db'}"
    asyncio.run(_apply(url))
    monkeypatch.setenv("WA_BRIDGE_DATABASE_URL", url)
    runner = CliRunner()
    listed = runner.invoke(app, ["account", "events", "--json"])
    assert listed.exit_code == 0, listed.output
    rows = [orjson.loads(line) for line in listed.output.splitlines()]
    assert [(r["scope"], r["change"], r["previous"], r["current"]) for r in rows] == [
        ("template", "APPROVED", None, "UTILITY"),
        ("template", "YELLOW", "GREEN", "YELLOW"),
        ("template", "MARKETING", "UTILITY", "MARKETING"),
        ("phone_number", "UPGRADE", None, "TIER_10K"),
        ("account", "VERIFIED_ACCOUNT", None, None),
    ]
    assert (
        rows[0]["label"] == "recordatorio_cita (es_MX)" and rows[0]["subject"] == "7000000000000001"
    )
    assert rows[3]["subject"] == "541150000002"
    templates = runner.invoke(app, ["account", "events", "--scope", "template", "--limit", "2"])
    assert templates.exit_code == 0, templates.output
    lines = templates.output.splitlines()
    assert len(lines) == 2 and "GREEN → YELLOW" in lines[0] and "MARKETING" in lines[1]
    none = runner.invoke(app, ["account", "events", "--since", "2099-01-01T00:00:00"])
    assert none.output.strip() == "no account events"


def test_account_notices_reach_no_crm(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'state.db'}"
    asyncio.run(_apply(url))
    state = asyncio.run(crm_state(url))
    assert (state.contacts, state.cases, state.notes) == (0, 0, {})
