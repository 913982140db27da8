"""``wa-bridge audit list``: who did what, when, to which ids."""

from __future__ import annotations

from typing import Annotated

import typer

from wa_bridge.cli._common import echo_rows, json_fields, settings_or_exit, with_store
from wa_bridge.store.audit import AuditEntry, AuditFilter

__all__ = ["register"]

audit_app = typer.Typer(help="The audit log.", no_args_is_help=True)


@audit_app.command("list")
def list_(
    since: Annotated[str | None, typer.Option("--since", help="2h, 7d or an ISO time")] = None,
    actor: Annotated[str | None, typer.Option("--actor")] = None,
    action: Annotated[str | None, typer.Option("--action", help="prefix, e.g. dlq.")] = None,
    target: Annotated[str | None, typer.Option("--target", help="e.g. dead_letter:12")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1)] = 100,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Audit rows, newest first."""
    from datetime import UTC, datetime

    from wa_bridge.cli.gaps import parse_since

    settings = settings_or_exit()
    flt = AuditFilter(
        since=parse_since(since, datetime.now(UTC)) if since else None,
        actor=actor,
        action=action,
        targets=[target] if target else [],
        limit=limit,
    )
    echo_rows(
        with_store(settings, lambda store: store.ops.list_audit(flt)),
        as_json=as_json,
        data=lambda row: json_fields(
            row, "id", "at", "actor", "role", "action", "target", "detail"
        ),
        line=_line,
    )


def _line(row: AuditEntry) -> str:
    return (
        f"{row.at:%Y-%m-%d %H:%M:%S}  {row.actor:<22} {row.role:<9} {row.action:<20} "
        f"{row.target:<22} {row.detail}".rstrip()
    )


def register(app: typer.Typer) -> None:
    app.add_typer(audit_app, name="audit")
