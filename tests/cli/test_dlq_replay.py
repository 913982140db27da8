"""``wa-bridge dlq replay``: ids and filters through the one replay path, on SQLite."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select
from typer.testing import CliRunner

from wa_bridge.cli.main import app
from wa_bridge.store import create_engine, open_store
from wa_bridge.store.api import NewDeadLetter
from wa_bridge.store.tables import audit_log


async def _seed(url: str) -> int:
    store = await open_store(url, create=True)
    try:
        async with store.transaction() as tx:
            [dead_letter_id] = await tx.add_dead_letters(
                [
                    NewDeadLetter(
                        event_id="wa:messages:wamid.CLI1",
                        event_type="whatsapp.message.received",
                        contact_key=None,
                        payload=b"{}",
                        error_class="CrmRejected",
                        error_message="CRM rejected the contact",
                        crm_error=None,
                        attempts=1,
                        failed_at=datetime.now(UTC),
                    )
                ]
            )
        return dead_letter_id
    finally:
        await store.aclose()


def test_dry_run_names_each_dead_letter_once_and_reports_missing_ids(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'state.db'}"
    dead_letter_id = asyncio.run(_seed(url))

    result = CliRunner().invoke(
        app,
        ["dlq", "replay", str(dead_letter_id), "99999", str(dead_letter_id), "--dry-run"],
        env={"WA_BRIDGE_DATABASE_URL": url, "WA_BRIDGE_CONNECTOR": "sql"},
    )

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"{dead_letter_id:>6}  would_replay wa:messages:wamid.CLI1"
    ]
    assert "wa-bridge dlq: no dead letter 99999" in result.stderr
    assert asyncio.run(_audit(url)) == [  # one row per dead letter named, missing ones too
        ("dlq.replay.dry_run", f"dead_letter:{dead_letter_id}", "would_replay"),
        ("dlq.replay.dry_run", "dead_letter:99999", "not_found"),
    ]


async def _audit(url: str) -> list[tuple[str, str, str]]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(select(audit_log).order_by(audit_log.c.id))
            return [(row.action, row.target, row.detail) for row in rows]
    finally:
        await engine.dispose()
