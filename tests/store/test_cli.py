"""``wa-bridge db upgrade`` and ``wa-bridge crm show`` end to end on a SQLite file."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from wa_bridge.bus.embedded import free_port
from wa_bridge.cli._common import run_cli
from wa_bridge.cli.main import app
from wa_bridge.connectors.sql import SqlCrmConnector
from wa_bridge.operations import CrmOperation
from wa_bridge.store import default_database_url, open_store, resolve_database_url

T0 = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)


async def _fill(url: str) -> None:
    store = await open_store(url)
    try:
        ops = [
            CrmOperation(
                kind="upsert_contact",
                fields={"phone_e164": "+5215512345678", "name": "Ana"},
                event_id="e1",
                contact_key="c_1",
            ),
            CrmOperation(
                kind="upsert_case",
                fields={"status": "open", "opened_at": T0},
                event_id="e1",
                index=1,
                contact_key="c_1",
                case_key="k_1",
            ),
            CrmOperation(
                kind="add_note",
                fields={"message_id": "wamid.1", "body": "hola", "occurred_at": T0},
                event_id="e1",
                index=2,
                contact_key="c_1",
                case_key="k_1",
            ),
            CrmOperation(
                kind="upsert_deal",
                fields={"stage": "won", "amount": Decimal("1249.90"), "currency": "MXN"},
                event_id="e1",
                index=3,
                contact_key="c_1",
                case_key="k_1",
            ),
            CrmOperation(
                kind="set_consent",
                fields={
                    "channel": "whatsapp",
                    "purpose": "marketing",
                    "status": "opt_in",
                    "occurred_at": T0,
                },
                event_id="e1",
                index=4,
                contact_key="c_1",
            ),
        ]
        await SqlCrmConnector(store).apply(ops)
    finally:
        await store.aclose()


def test_db_upgrade_then_crm_show(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("WA_BRIDGE_DATABASE_URL", url)
    runner = CliRunner()
    result = runner.invoke(app, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    asyncio.run(_fill(url))
    shown = runner.invoke(app, ["crm", "show"])
    assert shown.exit_code == 0, shown.output
    assert "c_1" in shown.output and "k_1" in shown.output and "hola" in shown.output
    assert "deal k_1  won  1249.9000 MXN" in shown.output
    assert "consent whatsapp:marketing  opt_in" in shown.output
    as_json = runner.invoke(app, ["crm", "show", "--json", "--contact", "c_1"])
    assert as_json.exit_code == 0, (as_json.output, as_json.exception)
    [contact] = orjson.loads(as_json.output)
    assert contact["phone_e164"] == "+5215512345678"
    assert [n["note_key"] for n in contact["notes"]] == ["wamid.1"]
    [deal] = contact["deals"]
    assert (deal["deal_key"], deal["stage"], deal["currency"]) == ("k_1", "won", "MXN")
    assert contact["consent"]["whatsapp:marketing"]["status"] == "opt_in"
    none = runner.invoke(app, ["crm", "show", "--contact", "c_missing"])
    assert none.output.strip() == "no contacts"


def test_db_upgrade_without_url_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WA_BRIDGE_DATABASE_URL", raising=False)
    result = CliRunner().invoke(app, ["db", "upgrade"])
    assert result.exit_code == 2
    assert "WA_BRIDGE_DATABASE_URL" in result.output


def test_default_database_url_resolution(tmp_path: Path) -> None:
    assert default_database_url(tmp_path) == f"sqlite+aiosqlite:///{tmp_path}/wa-bridge.db"
    assert resolve_database_url(None, tmp_path) == default_database_url(tmp_path)
    assert (
        resolve_database_url("postgresql+asyncpg://h/db", tmp_path) == "postgresql+asyncpg://h/db"
    )


@pytest.mark.parametrize(
    "command",
    [
        ["crm", "show"],
        ["dlq", "list"],
        ["dlq", "replay", "1"],
        ["trace", "wamid.X"],
        ["consent", "show", "+5215512345678"],
        ["export", "conversions", "--since", "2026-12-01"],
    ],
    ids=" ".join,
)
def test_a_state_command_outside_dev_s_directory_says_where_it_looked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    monkeypatch.delenv("WA_BRIDGE_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 1, result.output
    assert "no state database at .wa-bridge/wa-bridge.db" in result.output
    assert "WA_BRIDGE_DATABASE_URL" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / ".wa-bridge").exists()  # nothing created where nothing was


@pytest.mark.parametrize(
    "command",
    [["dlq", "list"], ["dlq", "replay", "1"], ["consent", "show", "+5215512345678"]],
    ids=" ".join,
)
def test_a_state_database_that_does_not_answer_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    port = free_port()  # nothing listens there
    monkeypatch.setenv("WA_BRIDGE_DATABASE_URL", f"postgresql+asyncpg://u@127.0.0.1:{port}/db")
    with pytest.raises(SystemExit) as stopped:
        run_cli(app, command)  # the console script's entry point
    assert stopped.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("wa-bridge: state database unreachable during"), err
    assert len(err.strip().splitlines()) == 1


async def test_a_worker_without_a_database_url_makes_the_embedded_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `wa-bridge worker` with no WA_BRIDGE_DATABASE_URL used to stop at once with "state
    # database unavailable during create_all; retry later" when .wa-bridge/ was absent
    from wa_bridge.settings import Settings
    from wa_bridge.worker.assembly import open_state_store

    monkeypatch.chdir(tmp_path)
    store = await open_state_store(Settings(database_url=None))
    await store.aclose()
    assert (tmp_path / ".wa-bridge" / "wa-bridge.db").is_file()
