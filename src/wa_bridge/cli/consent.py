"""``wa-bridge consent show CONTACT``: a contact's consent history, and its state now.

CONTACT is a contact id, a phone number (any form: ``+52 55 1234 5678``,
``5215512345678``) or a BSUID. Every row of the append-only consent ledger is printed,
oldest first (when the customer gave or withdrew it, how, where, the text shown, who
recorded it), then the current state per channel and purpose: the latest row. This is
the operator reading their own evidence, so it shows it whole (it is not a log).
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any

import orjson
import typer

from wa_bridge.cli._common import require_state_database, settings_or_exit
from wa_bridge.errors import WaBridgeError

__all__ = ["current_states", "register"]

consent_app = typer.Typer(
    help="The consent ledger: opt-in and opt-out evidence.", no_args_is_help=True
)


def current_states(history: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """``channel:purpose`` → the latest row of ``history`` (oldest first)."""
    return {f"{row['channel']}:{row['purpose']}": row for row in history}


def _when(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value or "-")


def _line(row: dict[str, Any]) -> str:
    shown = (row.get("text_shown") or "").replace("\n", " ")
    parts = [
        _when(row["at"]),
        f"{row['status']:7}",
        f"{row['channel']}:{row['purpose']}",
        f"via {row.get('captured_via') or '-'}",
        f"source {row.get('source') or '-'}",
        f"evidence {row.get('evidence') or '-'}",
        f"recorded by {row.get('recorded_by') or '-'} at {_when(row.get('recorded_at'))}",
        f"event {row['event_id']}",
    ]
    if shown:
        parts.append(f'shown "{shown[:200]}"')
    return "  ".join(parts)


@consent_app.command("show")
def show_cmd(
    contact: Annotated[str, typer.Argument(help="A contact id, phone number or BSUID.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Print a contact's consent history (oldest first) and its current state."""
    from wa_bridge.store.consent import consent_history, contact_by_reference
    from wa_bridge.store.db import store_errors
    from wa_bridge.store.sql import SqlStore
    from wa_bridge.worker.assembly import state_store

    settings = settings_or_exit()
    require_state_database(settings)

    async def run() -> tuple[str | None, list[dict[str, Any]]]:
        async with state_store(settings) as store:
            assert isinstance(store, SqlStore)
            with store_errors("consent show"):
                async with store.engine.connect() as conn:
                    contact_id = await contact_by_reference(conn, contact)
                    if contact_id is None:
                        return None, []
                    return contact_id, await consent_history(conn, contact_id)

    try:
        contact_id, history = asyncio.run(run())
    except WaBridgeError as exc:
        typer.echo(f"wa-bridge: {exc}", err=True)
        raise typer.Exit(code=1) from exc
    if contact_id is None:
        typer.echo(f"wa-bridge: no contact {contact!r}", err=True)
        raise typer.Exit(code=1)
    current = current_states(history)
    if as_json:
        body = {"contact_id": contact_id, "current": current, "history": history}
        typer.echo(
            orjson.dumps(
                body, default=str, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS
            ).decode()
        )
        return
    typer.echo(f"contact {contact_id}")
    for row in history:
        typer.echo(f"  {_line(row)}")
    if not history:
        typer.echo("  no consent recorded")
    for scope, row in current.items():
        typer.echo(f"now {scope}: {row['status']} since {_when(row['at'])}")


def register(app: typer.Typer) -> None:
    app.add_typer(consent_app, name="consent")
