"""``wa-bridge export conversions --since DATE [--format csv|json]``: converted cases with
their click id, source, consent evidence, value and times, for an ads platform's
offline-conversion upload (see :mod:`wa_bridge.store.conversions`).

CSV has a header row (the columns of :data:`~wa_bridge.store.conversions.CONVERSION_COLUMNS`),
times in ISO 8601 UTC, values as plain decimals; JSON is one array of objects. The rows
name wa-bridge's contact id, never a phone number: join it to your CRM with
``wa-bridge crm show`` or the CRM's own contact key.
"""

from __future__ import annotations

import asyncio
import csv
import io
from dataclasses import asdict
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

import orjson
import typer

from wa_bridge.cli._common import require_state_database, settings_or_exit
from wa_bridge.errors import WaBridgeError

__all__ = ["register", "to_csv", "to_json"]

export_app = typer.Typer(help="Export what wa-bridge knows, for other tools.", no_args_is_help=True)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    return value


def _rows(conversions: list[Any]) -> list[dict[str, Any]]:
    return [{k: _plain(v) for k, v in asdict(c).items()} for c in conversions]


def to_csv(conversions: list[Any]) -> str:
    from wa_bridge.store.conversions import CONVERSION_COLUMNS

    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(CONVERSION_COLUMNS), lineterminator="\n")
    writer.writeheader()
    writer.writerows(_rows(conversions))
    return out.getvalue()


def to_json(conversions: list[Any]) -> str:
    return orjson.dumps(_rows(conversions), option=orjson.OPT_INDENT_2).decode() + "\n"


def _since(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter("a date (2026-06-01) or an ISO time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@export_app.command("conversions")
def conversions_cmd(
    since: Annotated[
        str, typer.Option("--since", help="Cases converted on or after this date or ISO time.")
    ],
    fmt: Annotated[
        Literal["csv", "json"], typer.Option("--format", help="csv (default) or json.")
    ] = "csv",
) -> None:
    """Print converted cases: click id, source, consent, outcome value and currency, times."""
    from wa_bridge.store.conversions import conversions_since
    from wa_bridge.store.db import store_errors
    from wa_bridge.store.sql import SqlStore
    from wa_bridge.worker.assembly import state_store

    settings = settings_or_exit()
    require_state_database(settings)
    start = _since(since)

    async def run() -> list[Any]:
        async with state_store(settings) as store:
            assert isinstance(store, SqlStore)
            with store_errors("export conversions"):
                async with store.engine.connect() as conn:
                    return list(await conversions_since(conn, start))

    try:
        found = asyncio.run(run())
    except WaBridgeError as exc:
        typer.echo(f"wa-bridge: {exc}", err=True)
        raise typer.Exit(code=1) from exc
    typer.echo(to_csv(found) if fmt == "csv" else to_json(found), nl=False)


def register(app: typer.Typer) -> None:
    app.add_typer(export_app, name="export")
