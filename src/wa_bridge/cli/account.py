"""``wa-bridge account events``: the account notices Meta sent, as the worker kept them.

Template status, quality and category changes, phone-number quality and messaging-limit
changes, account updates (``account_events``, written by the worker with each batch).
They carry no personal data.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Annotated, Literal

import typer

from wa_bridge.cli._common import echo_rows, exit_with, settings_or_exit, with_store
from wa_bridge.cli.gaps import parse_since
from wa_bridge.errors import WaBridgeError
from wa_bridge.store.api import AccountEvent

__all__ = ["register"]

account_app = typer.Typer(
    help="The WhatsApp Business account: Meta's notices.", no_args_is_help=True
)
Scope = Literal["template", "phone_number", "account"]


def _line(event: AccountEvent) -> str:
    moved = f"{event.previous} → {event.current}" if event.previous else (event.current or "")
    parts = [
        event.at.isoformat(),
        event.scope,
        event.subject or "-",
        event.label or "-",
        event.change or "-",
        moved,
        event.detail or "",
    ]
    return "  ".join(part for part in parts if part)


def _row(event: AccountEvent) -> dict[str, object]:
    return {**asdict(event), "at": event.at.isoformat()}


@account_app.command("events")
def events_cmd(
    since: Annotated[
        str | None, typer.Option("--since", help="2h, 30m, 7d or an ISO time (default: all)")
    ] = None,
    scope: Annotated[Scope | None, typer.Option("--scope", help="Only this kind.")] = None,
    subject: Annotated[
        str | None, typer.Option("--subject", help="A template id, number or WABA id.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="The latest this many.")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object a line.")] = False,
) -> None:
    """List account notices, oldest first: what changed, from what to what, and why."""
    settings = settings_or_exit()
    start = parse_since(since, datetime.now(UTC)) if since else None
    try:
        found = with_store(
            settings,
            lambda store: store.account_events(
                since=start, scope=scope, subject=subject, limit=limit
            ),
        )
    except WaBridgeError as exc:
        raise exit_with(f"wa-bridge: {exc}", 1) from exc
    echo_rows(found, as_json=as_json, data=_row, line=_line)
    if not found and not as_json:
        typer.echo("no account events")


def register(app: typer.Typer) -> None:
    app.add_typer(account_app, name="account")
