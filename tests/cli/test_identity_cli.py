"""``wa-bridge identity``: report, merge (dry run first), merges, unmerge, on SQLite with the
built-in SQL CRM, as an operator runs them; every step is in the audit log."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import select
from typer.testing import CliRunner

from wa_bridge.cli.main import app
from wa_bridge.events import Contact
from wa_bridge.store import open_store
from wa_bridge.store.tables import audit_log

OLD, NEW = "+541160001001", "+5491160001001"  # one Argentine mobile, before and after folding


async def _seed(url: str) -> tuple[str, str]:
    store = await open_store(url, create=True)
    try:
        async with store.transaction() as tx:
            other, keep = await tx.resolve_contacts(
                [
                    ("waba", Contact(key=OLD, phone_e164=OLD)),
                    ("waba", Contact(key=NEW, phone_e164=NEW, user_id="AR.1")),
                ]
            )
        assert keep is not None and other is not None
        return keep, other
    finally:
        await store.aclose()


async def _audit(url: str) -> list[tuple[str, str, str]]:
    store = await open_store(url)
    try:
        async with store.engine.connect() as conn:
            rows = await conn.execute(
                select(audit_log.c.action, audit_log.c.actor, audit_log.c.target).order_by(
                    audit_log.c.id
                )
            )
            return [(str(a), str(b), str(c)) for a, b, c in rows]
    finally:
        await store.aclose()


def test_report_merge_and_unmerge_from_the_command_line(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'state.db'}"
    keep, other = asyncio.run(_seed(url))
    env = {"WA_BRIDGE_DATABASE_URL": url, "WA_BRIDGE_CONNECTOR": "sql", "USER": "ana"}
    runner = CliRunner()

    report = runner.invoke(app, ["identity", "report"], env=env)
    assert report.exit_code == 0, report.output
    assert OLD not in report.stdout and NEW not in report.stdout  # masked
    assert "+54•••••••••01 (h:" in report.stdout and "phone_variant" in report.stdout
    assert f"merge: wa-bridge identity merge {keep} {other}" in report.stdout
    assert "1 pair(s)" in report.stderr

    dry = runner.invoke(app, ["identity", "merge", keep, other, "--dry-run"], env=env)
    assert dry.exit_code == 0, dry.output
    assert dry.stdout.splitlines()[0] == f"dry run: would merge {other} into {keep}"
    assert dry.stdout.splitlines()[-1] == "nothing changed"

    done = runner.invoke(app, ["identity", "merge", keep, other], env=env)
    assert done.exit_code == 0, done.output
    assert done.stdout.splitlines()[0] == f"merge 1: {other} into {keep}"
    assert done.stdout.splitlines()[-1] == "undo: wa-bridge identity unmerge 1"

    again = runner.invoke(app, ["identity", "merge", keep, other], env=env)
    assert again.exit_code == 1
    assert f"already merged into {keep} (merge 1)" in again.stderr

    listed = runner.invoke(app, ["identity", "merges"], env=env)
    assert f"{other} into {keep}  by ana  merged" in listed.stdout

    undone = runner.invoke(app, ["identity", "unmerge", "1", "--actor", "bo"], env=env)
    assert undone.exit_code == 0, undone.output
    assert undone.stdout.splitlines()[0] == f"merge 1 undone: {other} apart from {keep}"

    shown = runner.invoke(app, ["identity", "report", "--show-identifiers"], env=env)
    assert OLD in shown.stdout and NEW in shown.stdout  # apart again: reported again

    assert asyncio.run(_audit(url)) == [
        ("identity.report", "ana", "identities"),
        ("identity.merge.dry_run", "ana", f"contact:{other}"),
        ("identity.merge", "ana", f"contact:{other}"),
        ("identity.unmerge", "bo", "merge:1"),
        ("identity.report.reveal", "ana", "identities"),
    ]


def test_unknown_merge_is_refused(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'state.db'}"
    asyncio.run(_seed(url))
    result = CliRunner().invoke(
        app,
        ["identity", "unmerge", "7"],
        env={"WA_BRIDGE_DATABASE_URL": url, "WA_BRIDGE_CONNECTOR": "sql"},
    )
    assert result.exit_code == 1
    assert "no merge 7" in result.stderr
