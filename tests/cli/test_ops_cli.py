"""The ops commands on a real SQLite store: bulk replay (progress, resume, loop guard),
discard, audit list, retention run (every purge audited)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
from typer.testing import CliRunner

from ops.test_admin_api import _seed
from wa_bridge.cli.main import app
from wa_bridge.store import open_store
from wa_bridge.store.api import NewDeadLetter, Store


def _env(url: str, **extra: str) -> dict[str, str]:
    return {"WA_BRIDGE_DATABASE_URL": url, "WA_BRIDGE_CONNECTOR": "sql", **extra}


async def _broken(url: str, n: int) -> list[int]:
    store = await open_store(url, create=True)
    try:
        async with store.transaction() as tx:
            return await tx.add_dead_letters(
                [
                    NewDeadLetter(
                        event_id=f"broken-{i}",
                        event_type="whatsapp.message.received",
                        contact_key=None,
                        payload=b"not an event",
                        error_class="InvalidEvent",
                        error_message="unreadable",
                        crm_error=None,
                        attempts=1,
                        failed_at=datetime.now(UTC),
                    )
                    for i in range(n)
                ]
            )
    finally:
        await store.aclose()


async def _with_store(url: str, work: object) -> object:
    store = await open_store(url)
    try:
        return await work(store)  # type: ignore[operator]
    finally:
        await store.aclose()


def test_bulk_replay_holds_back_what_keeps_failing(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 's.db'}"
    good = asyncio.run(_seed(url))
    (bad,) = asyncio.run(_broken(url, 1))
    env = _env(url, WA_BRIDGE_REPLAY_MAX_FAILURES="2")
    first = CliRunner().invoke(app, ["dlq", "replay", "--all", "--actor", "ops"], env=env)
    assert first.exit_code == 1, first.output
    assert "2 replayed, 1 failed, 0 held" in first.output
    second = CliRunner().invoke(app, ["dlq", "replay", "--all", "--actor", "ops"], env=env)
    assert "0 replayed, 1 failed, 0 held" in second.output
    third = CliRunner().invoke(app, ["dlq", "replay", "--all", "--actor", "ops"], env=env)
    assert "0 replayed, 0 failed, 1 held" in third.output  # the loop guard
    assert "without success" in third.output
    by_id = CliRunner().invoke(app, ["dlq", "replay", str(bad), "--actor", "ops"], env=env)
    assert "failed" in by_id.output  # by id, an operator may still try
    audit = CliRunner().invoke(app, ["audit", "list", "--action", "dlq.replay", "--json"], env=env)
    targets = [orjson.loads(line)["target"] for line in audit.stdout.splitlines()]
    assert targets.count(f"dead_letter:{bad}") == 3  # the held one was not replayed
    assert sorted(targets.count(f"dead_letter:{i}") for i in good) == [1, 1]


def test_an_interrupted_run_resumes_after_its_cursor(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 's.db'}"
    ids = asyncio.run(_seed(url))

    async def interrupted(store: Store) -> int:
        from wa_bridge.ops.dead_letters import selection_of
        from wa_bridge.store.api import DeadLetterFilter

        run = await store.ops.start_replay_run(
            actor="ops", selection=selection_of(DeadLetterFilter())
        )
        await store.ops.advance_replay_run(run.id, cursor=ids[0], replayed=1, failed=0, held=0)
        return run.id

    run_id = asyncio.run(_with_store(url, interrupted))
    resumed = CliRunner().invoke(app, ["dlq", "replay", "--resume"], env=_env(url))
    assert resumed.exit_code == 0, resumed.output
    assert f"resuming run {run_id} after dead letter {ids[0]}" in resumed.output
    assert f"run {run_id}: 2 replayed" in resumed.output  # 1 before + 1 now
    listed = CliRunner().invoke(app, ["dlq", "list", "--json", "--status", "open"], env=_env(url))
    assert [orjson.loads(x)["id"] for x in listed.stdout.splitlines()] == [ids[0]]
    again = CliRunner().invoke(app, ["dlq", "replay", "--resume"], env=_env(url))
    assert again.exit_code == 1 and "no interrupted run" in again.output


def test_discard_and_retention_are_audited(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 's.db'}"
    ids = asyncio.run(_seed(url))
    done = CliRunner().invoke(
        app,
        ["dlq", "discard", str(ids[0]), "999", "--reason", "test", "--actor", "ops"],
        env=_env(url),
    )
    assert done.exit_code == 1  # 999 does not exist
    assert f"{ids[0]:>6}  discarded" in done.output and "not_found" in done.output

    async def age(store: Store) -> None:
        from sqlalchemy import update

        from wa_bridge.store.tables import audit_log, dead_letters

        old = datetime.now(UTC) - timedelta(days=400)
        async with store.transaction() as tx:
            conn = tx.connection  # type: ignore[attr-defined]
            await conn.execute(update(dead_letters).values(last_failed_at=old))
            await conn.execute(update(audit_log).values(at=old))

    asyncio.run(_with_store(url, age))
    env = _env(
        url, WA_BRIDGE_OPEN_DEAD_LETTER_RETENTION_DAYS="300", WA_BRIDGE_AUDIT_RETENTION_DAYS="365"
    )
    purged = CliRunner().invoke(app, ["retention", "run"], env=env)
    assert purged.exit_code == 0, purged.output
    assert "dead_letters              1 removed" in purged.output  # the discarded one
    assert "open_dead_letters         1 removed" in purged.output
    assert "audit_log                 1 removed" in purged.output
    assert "note_bodies        kept (no window)" in purged.output
    audit = CliRunner().invoke(app, ["audit", "list", "--json"], env=_env(url))
    rows = [orjson.loads(line) for line in audit.stdout.splitlines()]
    assert {r["target"] for r in rows if r["action"] == "retention.purge"} == {
        "dead_letters",
        "open_dead_letters",
        "audit_log",
    }
    alias = CliRunner().invoke(app, ["db", "purge"], env=env)
    assert alias.exit_code == 0 and "purged 0 ledger ids" in alias.output
