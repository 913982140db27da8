"""``wa-bridge db purge``: the retention job from the command line."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from typer.testing import CliRunner

from wa_bridge.cli.main import app
from wa_bridge.store import open_store


async def _claim(url: str, event_id: str, at: datetime) -> None:
    store = await open_store(url, create=True, clock=lambda: at)
    try:
        async with store.transaction() as tx:
            assert await tx.claim_events([event_id]) == {event_id}
    finally:
        await store.aclose()


async def _known(url: str, event_id: str) -> bool:
    store = await open_store(url)
    try:
        async with store.transaction() as tx:
            return not await tx.claim_events([event_id])
    finally:
        await store.aclose()


def test_purge_forgets_only_ids_past_the_window(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'state.db'}"
    now = datetime.now(UTC)
    asyncio.run(_claim(url, "wa:old", now - timedelta(days=20)))
    asyncio.run(_claim(url, "wa:recent", now - timedelta(days=3)))

    result = CliRunner().invoke(
        app,
        ["db", "purge"],
        env={"WA_BRIDGE_DATABASE_URL": url, "WA_BRIDGE_DEDUP_RETENTION_DAYS": "14"},
    )

    assert result.exit_code == 0, result.output
    assert "purged 1 ledger ids" in result.output
    assert asyncio.run(_known(url, "wa:recent"))  # still deduplicated
    assert not asyncio.run(_known(url, "wa:old"))  # forgotten (and claimed anew just now)
