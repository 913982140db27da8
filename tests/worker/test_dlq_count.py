"""``wa-bridge dlq list`` prints the true count of matching dead letters, past the page."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from wa_bridge.cli.main import app
from wa_bridge.store import NewDeadLetter, open_store

T0 = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)


def _letter(n: int, error_class: str) -> NewDeadLetter:
    return NewDeadLetter(
        event_id=f"ev-{n}",
        event_type="whatsapp.message.received",
        contact_key="c_1",
        payload=b"{}",
        error_class=error_class,
        error_message="failed",
        crm_error=None,
        attempts=1,
        failed_at=T0 + timedelta(minutes=n),
    )


async def _fill(url: str) -> None:
    store = await open_store(url, create=True)
    try:
        async with store.transaction() as tx:
            await tx.add_dead_letters([_letter(n, "CrmRejected") for n in range(7)])
            await tx.add_dead_letters([_letter(n, "InvalidEvent") for n in range(7, 9)])
    finally:
        await store.aclose()


def test_dlq_list_counts_every_match_not_only_the_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'dlq.db'}"
    asyncio.run(_fill(url))
    monkeypatch.setenv("WA_BRIDGE_DATABASE_URL", url)
    runner = CliRunner()
    paged = runner.invoke(app, ["dlq", "list", "--limit", "3", "--error-class", "CrmRejected"])
    assert paged.exit_code == 0, paged.output
    assert len(paged.stdout.splitlines()) == 3
    assert "7 dead letter(s) match; showing the newest 3" in paged.stderr
    whole = runner.invoke(app, ["dlq", "list", "--json"])
    assert whole.exit_code == 0, whole.output
    assert [orjson.loads(line)["event_id"] for line in whole.stdout.splitlines()][:2] == [
        "ev-8",
        "ev-7",
    ]
    assert "9 dead letter(s)" in whole.stderr
