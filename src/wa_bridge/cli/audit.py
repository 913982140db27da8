"""``wa-bridge audit list``: who did what, when, to which ids."""

from __future__ import annotations

import asyncio
from typing import Annotated

import orjson
import typer

from wa_bridge.cli._common import settings_or_exit
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
    from wa_bridge.worker.assembly import state_store

    settings = settings_or_exit()
    flt = AuditFilter(
        since=parse_since(since, datetime.now(UTC)) if since else None,
        actor=actor,
        action=action,
        targets=[target] if target else [],
        limit=limit,
    )

    async def run() -> list[AuditEntry]:
        async with state_store(settings) as store:
            return await store.ops.list_audit(flt)

    for row in asyncio.run(run()):
        if as_json:
            data = {
                "id": row.id,
                "at": row.at.isoformat(),
                "actor": row.actor,
                "role": row.role,
                "action": row.action,
                "target": row.target,
                "detail": row.detail,
            }
            typer.echo(orjson.dumps(data).decode())
        else:
            typer.echo(
                f"{row.at:%Y-%m-%d %H:%M:%S}  {row.actor:<22} {row.role:<9} {row.action:<20} "
                f"{row.target:<22} {row.detail}".rstrip()
            )


def register(app: typer.Typer) -> None:
    app.add_typer(audit_app, name="audit")
