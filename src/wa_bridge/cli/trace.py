"""``wa-bridge trace WAMID|CONTACT``: every step of a message (or a contact's messages)."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
import typer

from wa_bridge.cli._common import settings_or_exit, with_store

__all__ = ["register"]


def trace(
    query: Annotated[str, typer.Argument(help="wamid, event id, phone, bsuid:… or c_… contact id")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
    limit: Annotated[int, typer.Option("--limit", min=1)] = 200,
) -> None:
    """Follow a message from Meta to the CRM: received, published, applied or failed,
    replays, and the CRM record ids. Phones are shown masked."""
    from wa_bridge.ops.trace import trace as run_trace

    settings = settings_or_exit()
    report = with_store(settings, lambda store: run_trace(store, query, limit=limit))
    if as_json:
        typer.echo(orjson.dumps(_as_data(report), option=orjson.OPT_INDENT_2).decode())
    else:
        _print(report)
    if not report.events:
        raise typer.Exit(code=1)


def _as_data(report: Any) -> dict[str, Any]:
    return {
        "query": report.shown_as,
        "kind": report.query_kind,
        "contact_ids": list(report.contact_ids),
        "events": [
            {
                "event_id": e.event_id,
                "event_type": e.event_type,
                "message_id": e.message_id,
                "status": e.status,
                "dead_letter_id": e.dead_letter_id,
                "crm_ids": [list(p) for p in e.crm_ids],
                "steps": [
                    {"at": s.at.isoformat() if s.at else None, "what": s.what, "detail": s.detail}
                    for s in e.steps
                ],
            }
            for e in report.events
        ],
    }


def _print(report: Any) -> None:
    contacts = ", ".join(report.contact_ids) or "none known"
    typer.echo(f"{report.query_kind} {report.shown_as}: contact {contacts}")
    if not report.events:
        typer.echo("nothing found: not received, or older than the trace retention", err=True)
    for e in report.events:
        typer.echo(f"\n{e.event_type}  {e.event_id}  [{e.status}]")
        if e.message_id:
            typer.echo(f"  message {e.message_id}")
        for s in e.steps:
            when = f"{s.at:%Y-%m-%d %H:%M:%S}" if s.at else "?" * 19
            typer.echo(f"  {when}  {s.what:<14} {s.detail}".rstrip())


def register(app: typer.Typer) -> None:
    app.command(name="trace")(trace)
